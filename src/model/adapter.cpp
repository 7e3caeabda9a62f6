#include "cdmf/model/adapter.hpp"

#include <algorithm>
#include <cmath>

#include "cdmf/core/error.hpp"
#include "cdmf/model/compression.hpp"
#include "cdmf/random/counter_rng.hpp"

namespace cdmf {

std::string adapter_name(AdapterKind kind) {
  switch (kind) {
    case AdapterKind::kLora: return "lora";
    case AdapterKind::kDeep: return "deep";
    case AdapterKind::kDeepCompressed: return "deep-compressed";
  }
  return "unknown";
}

AdapterKind parse_adapter_kind(const std::string& name) {
  for (AdapterKind kind : {AdapterKind::kLora, AdapterKind::kDeep, AdapterKind::kDeepCompressed})
    if (adapter_name(kind) == name) return kind;
  fail("unknown adapter '{}' (expected lora, deep or deep-compressed)", name);
}

ModelKind adapter_model_kind(AdapterKind kind) {
  switch (kind) {
    case AdapterKind::kLora: return ModelKind::kShallow;
    case AdapterKind::kDeep: return ModelKind::kNarrow;
    case AdapterKind::kDeepCompressed: return ModelKind::kCompressed;
  }
  return ModelKind::kShallow;
}

void validate_adapter(const AdapterConfig& c, std::int64_t rows, std::int64_t cols) {
  const std::int64_t limit = std::min(rows, cols);
  fail_if(c.rank < 1, "--rank must be at least 1 (got {})", c.rank);
  fail_if(c.rank > limit, "--rank {} exceeds min(rows, cols) = {} of the {} x {} base", c.rank,
          limit, rows, cols);
  fail_if(c.kind == AdapterKind::kDeepCompressed && c.rank % 2 != 0,
          "--rank {} is odd: deep-compressed has width 2*(r/2) and needs an even rank", c.rank);
  if (c.kind != AdapterKind::kLora) {
    fail_if(c.depth < 2, "--depth must be at least 2 (got {})", c.depth);
    fail_if(!(c.init_scale > 0.0) || !std::isfinite(c.init_scale),
            "--init-scale must be positive (got {})", c.init_scale);
  }
  fail_if(c.alpha < 0.0 || !std::isfinite(c.alpha), "--alpha must be positive (got {})", c.alpha);
  fail_if(c.kind == AdapterKind::kDeepCompressed && c.width != 0 && c.width < c.rank,
          "--width {} is below --rank {}", c.width, c.rank);
}

std::int64_t adapter_width(const AdapterConfig& config) {
  return config.kind == AdapterKind::kDeepCompressed ? 2 * (config.rank / 2) : config.rank;
}

Chain overparameterized_adapter(const ProcessGrid& grid, const IndexLayout& layout,
                                const AdapterConfig& config) {
  const std::int64_t width =
      config.width > 0 ? config.width : std::max(layout.rows(), layout.cols());
  return make_deep_chain(grid, layout, config.depth, width, config.init_scale, config.seed,
                         ModelKind::kDeep);
}

Chain make_adapter(const ProcessGrid& grid, const IndexLayout& layout, const AdapterConfig& config,
                   Strategy* loss) {
  validate_adapter(config, layout.rows(), layout.cols());
  switch (config.kind) {
    case AdapterKind::kLora: {
      const std::int64_t r = config.rank;
      const double scale = (config.alpha > 0.0 ? config.alpha : static_cast<double>(r)) /
                           static_cast<double>(r);
      Chain chain;
      chain.kind = ModelKind::kShallow;
      DistMatrix a = gaussian_matrix(grid, layout, {r, layout.cols()}, config.seed,
                                     static_cast<std::uint32_t>(Stream::kFactorInit), Space::kInner,
                                     Space::kCols);
      const double a_scale = scale / std::sqrt(static_cast<double>(layout.cols()));
      for (double& x : a.local()) x *= a_scale;
      chain.factors.push_back(std::move(a));
      chain.lr_multipliers.push_back(scale);
      chain.factors.emplace_back(grid, layout.rows(), r, layout.block());  // B = 0
      chain.lr_multipliers.push_back(1.0);
      return chain;
    }
    case AdapterKind::kDeep:
      return make_deep_chain(grid, layout, config.depth, config.rank, config.init_scale,
                             config.seed, ModelKind::kNarrow);
    case AdapterKind::kDeepCompressed: {
      fail_if(loss == nullptr, "deep-compressed needs the measurement's loss to be built");
      const Chain deep = overparameterized_adapter(grid, layout, config);
      return compress_chain(deep, *loss, {config.rank / 2, config.gamma, config.init_scale});
    }
  }
  fail("unknown adapter kind");
}

StructuredInit structured_adapter_init(const IndexLayout& layout, const AdapterConfig& config) {
  const std::int64_t width =
      config.width > 0 ? config.width : std::max(layout.rows(), layout.cols());
  return StructuredInit(layout.rows(), layout.cols(), config.depth, width, config.seed);
}

Chain make_implicit_adapter(const ProcessGrid& grid, const IndexLayout& layout, const AdapterConfig& config,
                            const Observations& train, double normalization,
                            ImplicitCompressionReport* report) {
  validate_adapter(config, layout.rows(), layout.cols());
  fail_if(config.kind != AdapterKind::kDeepCompressed, "the implicit init is for deep-compressed only");
  return compress_implicit(grid, layout, train, normalization, structured_adapter_init(layout, config),
                           {config.rank / 2, config.gamma, config.init_scale}, report);
}

Chain make_implicit_adapter(const ProcessGrid& grid, const IndexLayout& layout, const AdapterConfig& config,
                            const LinearStrategy& samples) {
  validate_adapter(config, layout.rows(), layout.cols());
  fail_if(config.kind != AdapterKind::kDeepCompressed, "the implicit init is for deep-compressed only");
  return compress_implicit_samples(grid, layout, samples.inputs(), samples.base_residual(),
                                   structured_adapter_init(layout, config),
                                   {config.rank / 2, config.gamma, config.init_scale});
}

std::int64_t trainable_parameters(const Chain& chain) {
  std::int64_t total = 0;
  for (const DistMatrix& w : chain.factors) total += w.rows() * w.cols();
  return total;
}

}  // namespace cdmf
