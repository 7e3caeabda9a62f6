// cdmf inspect: what a factor file or checkpoint holds (format, model, shapes, iteration,
// optimizer and training state, metrics tail, configuration), every dataset read back and its
// checksum verified, and the spectrum of the end-to-end matrix, computed from the factors
// without forming the m x n matrix for thin chains (model/spectrum.hpp).
#include <algorithm>
#include <memory>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cdmf/core/error.hpp"
#include "cdmf/io/adapter_file.hpp"
#include "cdmf/io/checkpoint.hpp"
#include "cdmf/io/factor_file.hpp"
#include "cdmf/io/run_outputs.hpp"
#include "cdmf/model/chain.hpp"
#include "cdmf/model/spectrum.hpp"
#include "commands.hpp"

namespace cdmf::cli {

namespace {
/// An adapter file: its attributes and the spectrum of the update DeltaW (the paper's
/// "parsimonious updates": its numerical rank, singular values above 1e-3 of the largest).
void inspect_adapter(const ProcessGrid& grid, const std::string& path, int top) {
  const AdapterFileInfo info = read_adapter_info(grid.comm(), path);
  const FactorFileInfo& f = info.factors;
  const int block = choose_block_size(f.rows, f.cols, grid);
  const IndexLayout layout(f.rows, f.cols, block, 0, /*permute=*/false);
  Chain chain;
  chain.kind = parse_model_kind(f.model);
  chain.factors = read_factors(grid, layout, f, block);
  chain.lr_multipliers = f.lr_multipliers;
  const std::vector<double> sigma = end_to_end_singular_values(chain);
  if (!grid.is_root()) return;
  const auto rank = sigma.empty() || sigma.front() <= 0.0
                        ? 0
                        : std::count_if(sigma.begin(), sigma.end(),
                                        [&](double s) { return s > 1e-3 * sigma.front(); });
  fmt::print("file           {}\n", path);
  fmt::print("format         {} version {} (written by cdmf {})\n", f.format, f.format_version,
             f.cdmf_version);
  fmt::print("contents       adapter: the update DeltaW = W_K ... W_1 of a base (apply it with "
             "predict --base B --adapter A)\n");
  fmt::print("adapter        {} rank {} (depth {}, init scale {}, gamma {}, alpha {}); measurement "
             "{}\n",
             info.adapter, info.rank, info.depth, info.init_scale, info.gamma, info.alpha,
             info.measurement);
  fmt::print("update         {} x {}, {} factors, width {}\n", f.rows, f.cols, f.depth, f.width);
  fmt::print("base           fingerprint {}\niteration      {}\ncreated        {}\n",
             info.base_fingerprint, f.iteration, f.created);
  for (size_t l = 0; l < f.shapes.size(); ++l)
    fmt::print("  W{:<3} {:>8} x {:<8} lr multiplier {}\n", l + 1, f.shapes[l].rows,
               f.shapes[l].cols, f.lr_multipliers[l]);
  fmt::print("update rank    {} (singular values above 1e-3 of the largest)\n", rank);
  const size_t shown = std::min<size_t>(sigma.size(), static_cast<size_t>(std::max(top, 0)));
  fmt::print("singular values of the update DeltaW (top {} of {}):\n", shown, sigma.size());
  for (size_t k = 0; k < shown; ++k) fmt::print("  s{:<4} {:.10e}\n", k + 1, sigma[k]);
}

void run_inspect(const std::string& path, int top, int tail) {
  ProcessGrid grid(MPI_COMM_WORLD);
  if (is_adapter_file(grid.comm(), path)) return inspect_adapter(grid, path, top);
  const CheckpointInfo info = read_checkpoint_info(grid.comm(), path);
  const FactorFileInfo& f = info.factors;
  const int block = choose_block_size(f.rows, f.cols, grid);
  // Files hold original order: no permutation is needed to read them.
  const IndexLayout layout(f.rows, f.cols, block, 0, /*permute=*/false);
  Chain chain;
  std::optional<LoadedCheckpoint> loaded;
  if (info.restartable) {
    loaded = load_checkpoint(grid, layout, info, block);
    chain = std::move(loaded->chain);
  } else {
    chain.kind = parse_model_kind(f.model);
    chain.factors = read_factors(grid, layout, f, block);
    chain.lr_multipliers = f.lr_multipliers;
  }
  // A diverged state (non-finite factors, or a product that overflows) is reported in one
  // line, not handed to LAPACK.
  const std::string diverged = diverged_factors(chain.factors);
  fail_if(!diverged.empty(), "{}: {}: a diverged state, so no singular values", path,
          diverged);
  const std::vector<double> sigma = end_to_end_singular_values(chain);
  const std::optional<Biases> biases =
      loaded ? std::move(loaded->biases) : read_biases(grid.comm(), path, layout);
  if (!grid.is_root()) return;

  fmt::print("file           {}\n", path);
  fmt::print("format         {} version {} (written by cdmf {})\n", f.format, f.format_version,
             f.cdmf_version);
  fmt::print("contents       {}\n",
             info.restartable
                 ? "checkpoint: factors, optimizer state, permutations, metrics history "
                   "(a --restart point)"
                 : "factor file: factors only (an --init or predict input)");
  fmt::print("model          {}: {} x {}, {} factors, width {}\n", f.model, f.rows, f.cols, f.depth,
             f.width);
  fmt::print("iteration      {}\ncreated        {}\n", f.iteration, f.created);
  for (size_t l = 0; l < f.shapes.size(); ++l)
    fmt::print("  W{:<3} {:>8} x {:<8} lr multiplier {}\n", l + 1, f.shapes[l].rows,
               f.shapes[l].cols, f.lr_multipliers[l]);
  if (loaded) {
    fmt::print("optimizer      {}, {} steps{}\n", info.optimizer, info.step_count,
               info.has_second_moments  ? " (first and second moments per factor)"
               : info.has_first_moments ? " (velocity per factor)"
                                        : "");
    fmt::print("training       {:.2f} s so far; written on {} ranks (grid {})\n",
               info.elapsed_seconds, info.ranks, info.grid);
    fmt::print("data           {} training entries, fingerprint {}\n", info.data.entries,
               info.data.text());
  }
  if (biases) {
    const auto range = [](const std::vector<double>& v) {
      const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
      return v.empty() ? std::string("none") : fmt::format("{:.4f} .. {:.4f}", *lo, *hi);
    };
    fmt::print("biases         mu {:.6f}; {} row biases in {}; {} column biases in {}\n",
               biases->mu, biases->rows.size(), range(biases->rows), biases->cols.size(),
               range(biases->cols));
  } else {
    fmt::print("biases         none (X is the chain alone)\n");
  }
  if (f.clip) fmt::print("clip           predictions clipped to [{}, {}]\n", f.clip->first, f.clip->second);
  fmt::print("integrity      {}\n", f.checksums ? "every dataset read back, checksums match"
                                                : "every factor read back (no checksums recorded)");
  if (loaded) {
    const auto& history = loaded->state.history;
    const size_t shown = std::min(history.size(), static_cast<size_t>(std::max(tail, 0)));
    fmt::print("metrics        last {} of {} logged rows:\n", shown, history.size());
    for (size_t r = history.size() - shown; r < history.size(); ++r)
      fmt::print("  {}\n", progress_line(history[r], loaded->extra_metric_columns));
  }
  const size_t shown = std::min<size_t>(sigma.size(), static_cast<size_t>(std::max(top, 0)));
  fmt::print("singular values of the end-to-end matrix (top {} of {}):\n", shown, sigma.size());
  for (size_t k = 0; k < shown; ++k) fmt::print("  s{:<4} {:.10e}\n", k + 1, sigma[k]);
  std::string config = f.config_json;
  try {
    config = nlohmann::json::parse(f.config_json).dump(2);
  } catch (const nlohmann::json::exception&) {
    // shown as stored
  }
  fmt::print("configuration  {}\n", config);
}
}  // namespace

Command add_inspect_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto top = std::make_shared<int>(10);
  auto tail = std::make_shared<int>(5);
  CLI::App* sub = app.add_subcommand("inspect", "Describe a factor file, checkpoint or adapter");
  sub->add_option("file", *path, "HDF5 factor file, checkpoint or adapter")->required();
  sub->add_option("--top", *top, "number of singular values to print")->capture_default_str();
  sub->add_option("--tail", *tail, "number of metrics rows to print (checkpoints)")
      ->capture_default_str();
  return {sub, [path, top, tail] {
            run_inspect(*path, *top, *tail);
            return 0;
          }};
}

}  // namespace cdmf::cli
