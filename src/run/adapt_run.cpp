// cdmf adapt as a library call (include/cdmf/run/adapt_run.hpp).
#include "cdmf/run/adapt_run.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>

#include <fmt/core.h>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "cdmf/data/readers.hpp"
#include "cdmf/io/adapt_inputs.hpp"
#include "cdmf/io/adapter_file.hpp"
#include "cdmf/io/checkpoint.hpp"
#include "cdmf/io/hash.hpp"
#include "cdmf/io/peft_export.hpp"
#include "cdmf/model/adapter.hpp"
#include "cdmf/model/base.hpp"
#include "cdmf/model/spectrum.hpp"
#include "cdmf/optim/optimizer.hpp"
#include "cdmf/run/memory_estimates.hpp"
#include "cdmf/run/train_run.hpp"
#include "cdmf/strategy/dense_strategy.hpp"
#include "cdmf/strategy/linear_strategy.hpp"
#include "cdmf/strategy/sparse_strategy.hpp"

namespace cdmf::run {

nlohmann::json AdaptOptions::to_json() const {
  nlohmann::json json = run.to_json();
  json.update({{"base", base},
               {"adapter", adapter},
               {"rank", rank},
               {"depth", depth},
               {"width", width},
               {"init_scale", init_scale},
               {"gamma", gamma},
               {"alpha", alpha},
               {"samples", samples},
               {"test_samples", test_samples},
               {"data", data},
               {"test", test},
               {"format", format},
               {"index_base", index_base},
               {"optimizer", optimizer},
               {"lr", lr},
               {"weight_decay", weight_decay},
               {"momentum", momentum},
               {"beta1", beta1},
               {"beta2", beta2},
               {"seed", seed},
               {"block_size", block_size},
               {"loss_normalization", normalization},
               {"permute", !no_permute},
               {"strategy", strategy},
               {"init_structure", init_structure},
               {"export_peft", export_peft},
               {"target_module", target_module}});
  return json;
}

namespace {

/// Options that define the trajectory (a restart keeps them); the base and the data are
/// checked by their fingerprints instead of their paths.
const std::vector<std::string> kRunDefiningOptions = {
    "adapter", "rank",  "depth", "width", "init_scale",   "gamma",              "alpha",
    "lr",      "optimizer", "momentum", "beta1", "beta2", "weight_decay", "seed",
    "loss_normalization", "permute"};

/// Maps the dense indices of one dimension of `entries` (ids of `data_ids`) to the base's
/// indices of the same ids. Collective (errors agreed).
void map_to_base_ids(MPI_Comm comm, EntryList& entries, bool rows, const IdMap& data_ids,
                     const IdMap& base_ids, const std::string& base_path) {
  run_agreed(comm, [&] {
    if (data_ids.empty()) return;
    fail_if(base_ids.empty(), "{}: the data has {} ids (MovieLens) but the base {} has no id maps",
            entries.file, rows ? "user" : "item", base_path);
    std::vector<std::int64_t>& index = rows ? entries.rows : entries.cols;
    for (size_t e = 0; e < entries.size(); ++e) {
      const std::int64_t id = data_ids.ids[static_cast<size_t>(index[e])];
      const std::int64_t mapped = base_ids.index_of(id);
      fail_if(mapped < 0, "{}:{}: {} id {} is not in the base {}", entries.file, entries.lines[e],
              rows ? "user" : "item", id, base_path);
      index[e] = mapped;
    }
  });
}

/// Factors and width of the adapter chain that is trained.
int adapter_factor_count(const AdapterConfig& config) {
  switch (config.kind) {
    case AdapterKind::kLora: return 2;
    case AdapterKind::kDeep: return config.depth;
    case AdapterKind::kDeepCompressed: return config.depth + 2;
  }
  return 2;
}

/// The top `count` singular values of DeltaW (thin chains: from the QR cores of the outer
/// factors, model/spectrum.hpp) and the numerical rank (above 1e-3 of the largest).
struct UpdateSpectrum {
  std::vector<double> top;
  std::int64_t rank = 0;
};
UpdateSpectrum update_spectrum(const Chain& chain, size_t count) {
  const std::vector<double> all = end_to_end_singular_values(chain);
  UpdateSpectrum spectrum;
  spectrum.top.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(std::min(count, all.size())));
  if (!all.empty() && all.front() > 0.0)
    spectrum.rank = std::count_if(all.begin(), all.end(), [&](double s) { return s > 1e-3 * all.front(); });
  return spectrum;
}

}  // namespace

int run_adapt(const AdaptOptions& o) {
  const AdapterKind kind = parse_adapter_kind(o.adapter);
  fail_if(o.base.empty(), "--base is required (the frozen model: a dense /W or a cdmf factor file)");
  const bool linear = !o.samples.empty();
  fail_if(linear == !o.data.empty(),
          "give either --samples (a linear layer) or --data (entries), not {}",
          linear ? "both" : "neither");
  fail_if(!o.test_samples.empty() && !linear, "--test-samples needs --samples");
  fail_if(!o.test.empty() && linear, "--test goes with --data (use --test-samples with --samples)");
  fail_if(!(o.lr > 0.0), "--lr must be positive (got {})", o.lr);
  fail_if(o.run.output.empty(), "--output is required (the adapter file)");
  fail_if(!o.export_peft.empty() && o.target_module.empty(),
          "--export-peft needs --target-module NAME (the module the adapter belongs to)");
  fail_if(o.normalization != "mn" && o.normalization != "observed",
          "--loss-normalization must be 'mn' or 'observed' (got '{}')", o.normalization);
  fail_if(o.strategy != "auto" && o.strategy != "dense" && o.strategy != "sparse",
          "--strategy must be auto, dense or sparse (got '{}')", o.strategy);
  fail_if(o.init_structure != "auto" && o.init_structure != "dense" && o.init_structure != "implicit",
          "--init-structure must be auto, dense or implicit (got '{}')", o.init_structure);
  RunSession session("adapt", o.run, o.to_json(), {},
                     {{"--base", o.base},
                      {"--samples", o.samples},
                      {"--test-samples", o.test_samples},
                      {"--data", o.data},
                      {"--test", o.test}});
  const ProcessGrid& grid = session.grid();
  MPI_Comm comm = grid.comm();

  session.phases().enter("read");
  const BaseFileInfo base_info = read_base_info(comm, o.base);
  const std::int64_t m = base_info.rows, n = base_info.cols;
  fail_if(linear && base_info.biases,
          "{}: a ratings model with biases (train --biases) cannot be the base of a linear layer: "
          "its mean and row/column biases are offsets of observed entries, not weights applied "
          "to inputs (adapt it on entries, with --data)",
          o.base);
  const AdapterConfig config{kind, o.rank, o.depth, o.init_scale, o.gamma, o.alpha, o.width, o.seed};
  validate_adapter(config, m, n);
  IdMap base_row_ids, base_col_ids;
  if (!base_info.dense) read_id_maps(comm, o.base, base_row_ids, base_col_ids);

  std::optional<LoadedData> data;
  SamplesShape samples_shape, test_shape;
  if (!linear) {
    data = read_data(comm, o.data, o.test, {parse_data_format(o.format), o.index_base});
    if (!data->row_ids.empty() || !data->col_ids.empty()) {
      for (EntryList* set : {&data->train, &data->test}) {
        map_to_base_ids(comm, *set, true, data->row_ids, base_row_ids, o.base);
        map_to_base_ids(comm, *set, false, data->col_ids, base_col_ids, o.base);
      }
    } else {
      fail_if(data->rows > m || data->cols > n,
              "{}: the data is {} x {} but the base {} is {} x {} (they must agree in shape)",
              o.data, data->rows, data->cols, o.base, m, n);
    }
  } else {
    samples_shape = read_samples_shape(comm, o.samples);
    if (!o.test_samples.empty()) test_shape = read_samples_shape(comm, o.test_samples);
    for (const auto& [path, shape] : {std::pair{o.samples, samples_shape}, std::pair{o.test_samples, test_shape}}) {
      if (path.empty()) continue;
      fail_if(shape.inputs != n || shape.targets != m,
              "{}: samples of {} inputs and {} targets do not fit the {} x {} base {} (inputs must "
              "be n = {} wide, targets m = {})",
              path, shape.inputs, shape.targets, m, n, o.base, n, m);
    }
  }

  const int block = choose_block_size(m, n, grid, o.block_size);
  const IndexLayout layout(m, n, block, o.seed, !o.no_permute);
  // deep-compressed: the overparameterized init made dense (h x n factors) or kept implicit.
  const std::int64_t deep_width = o.width > 0 ? o.width : std::max(m, n);
  bool implicit_init = kind == AdapterKind::kDeepCompressed && o.init_structure == "implicit";
  {
    // The adapter chain and the measurement's data as for a training run, plus the base and,
    // for the linear layer, the samples, B0 and the forward products (width x s each).
    std::int64_t entries = 0;
    if (data) {
      entries = static_cast<std::int64_t>(data->train.size() + data->test.size());
      MPI_Allreduce(MPI_IN_PLACE, &entries, 1, MPI_INT64_T, MPI_SUM, comm);
    }
    TrainFootprint footprint;
    footprint.rows = m;
    footprint.cols = n;
    footprint.entries = entries;
    footprint.depth = adapter_factor_count(config);
    footprint.width = adapter_width(config);
    footprint.optimizer_copies = o.optimizer == "adam" ? 2 : o.optimizer == "gd" ? 0 : 1;
    footprint.dense_strategy = !linear && (o.strategy == "dense" || (o.strategy == "auto" && 4 * footprint.width > std::min(m, n)));
    if (kind == AdapterKind::kDeepCompressed) {
      footprint.deep_init_depth = o.depth;
      footprint.deep_init_width = deep_width;
    }
    // auto: as train's rule (the structured init exists for widths >= max(m, n)); the linear
    // layer also needs min(s, n) >= r / 2 samples to determine the compression.
    if (kind == AdapterKind::kDeepCompressed && o.init_structure == "auto")
      implicit_init = deep_width >= std::max(m, n) &&
                      (!linear || std::min(samples_shape.samples, n) >= o.rank / 2) &&
                      (std::max(m, n) > kImplicitInitSize ||
                       plan_train_memory("", footprint, grid).per_rank_bytes(grid.size()) >
                           session.budget().per_rank_bytes);
    if (implicit_init) {
      footprint.implicit_init = true;
      footprint.rank = o.rank / 2;
      footprint.deep_init_depth = 0;
    }
    MemoryPlan plan = plan_train_memory(
        fmt::format("adapt --adapter {} ({} x {}, rank {})", o.adapter, m, n, o.rank), footprint, grid);
    double base_bytes = 8.0 * double(m) * double(n);
    if (!base_info.dense) {
      base_bytes = 0.0;
      for (const FactorShape& s : base_info.factors.shapes) base_bytes += 8.0 * double(s.rows) * double(s.cols);
    }
    plan.add("base", base_bytes, base_info.biases ? 8.0 * double(m + n) : 0.0);  // biases: on every rank
    if (linear) {
      const double s = double(samples_shape.samples + test_shape.samples);
      plan.add("samples (X, Y, B0, transposes)", 8.0 * s * double(m + n) * 3.0);
      plan.add("forward products", 8.0 * double(samples_shape.samples) *
                                       double(std::max(footprint.width, footprint.deep_init_depth > 0 ? deep_width : 0)) *
                                       double(std::max(footprint.depth, footprint.deep_init_depth) + 2));
      if (implicit_init) {
        // R = B0 + eps^L Q X and Q X (m x s), Q_x (n x c), R_x (c x c), M (m x c) and its
        // c x c Gram matrix, c = min(s, n); a 64-column panel of X on every rank.
        const double s = double(samples_shape.samples), c = std::min(s, double(n));
        plan.add("implicit compression of the samples (Q X, thin QR of X, M = R R_x^T)",
                 8.0 * (2.0 * double(m) * s + double(n) * c + double(m) * c + 3.0 * c * c),
                 8.0 * double(n) * 64.0);
      }
    }
    session.check_memory(plan);
  }
  const Base base = read_base(grid, layout, base_info, block);
  const std::string base_digest = base_fingerprint(base, layout);

  // The measurement: offsets of the base computed once, so the strategies fit DeltaW unchanged.
  DataFingerprint fingerprint;
  std::optional<Observations> train, test;
  std::unique_ptr<LinearStrategy> linear_loss;
  double normalization = 1.0;
  if (linear) {
    Samples samples = read_samples(grid, layout, o.samples);
    fingerprint = samples.fingerprint;
    DistMatrix b0 = apply_base(base, samples.inputs);
    axpy(-1.0, samples.targets, b0);
    std::optional<DistMatrix> test_x, test_b0;
    if (!o.test_samples.empty()) {
      Samples held_out = read_samples(grid, layout, o.test_samples);
      test_b0 = apply_base(base, held_out.inputs);
      axpy(-1.0, held_out.targets, *test_b0);
      test_x = std::move(held_out.inputs);
    }
    linear_loss = std::make_unique<LinearStrategy>(std::move(samples.inputs), std::move(b0),
                                                   std::move(test_x), std::move(test_b0));
    normalization = linear_loss->normalization();
  } else {
    fingerprint = fingerprint_entries(comm, data->train);
    train = distribute(grid, std::move(data->train), layout);
    subtract_base(base, *train);
    if (!o.test.empty()) {
      test = distribute(grid, std::move(data->test), layout);
      subtract_base(base, *test);
    }
    normalization = o.normalization == "mn" ? double(m) * double(n) : double(train->global_count);
  }
  // A checkpoint continues only the same data on the same base.
  fingerprint.hash += mix64(std::stoull(base_digest, nullptr, 16));

  const std::string model = model_name(adapter_model_kind(kind));
  auto resume = session.find_restart<LoadedCheckpoint>(
      [&](const CheckpointInfo& info) {
        const FactorFileInfo& f = info.factors;
        fail_if(f.model != model, "{}: holds a '{}' chain, not the '{}' chain of a {} adapter",
                f.path, f.model, model, o.adapter);
        fail_if(f.rows != m || f.cols != n,
                "{}: the checkpoint is for a {} x {} update but the base is {} x {}", f.path,
                f.rows, f.cols, m, n);
        fail_if(!(info.data == fingerprint),
                "{}: the checkpoint was written for other data or another base (fingerprint {}, "
                "this run {})",
                f.path, info.data.text(), fingerprint.text());
        fail_if(info.optimizer != o.optimizer, "{}: holds the state of optimizer '{}', not '{}'",
                f.path, info.optimizer, o.optimizer);
        session.check_same_run(info, kRunDefiningOptions);
      },
      [&](const std::string&, const CheckpointInfo& info) {
        return load_checkpoint(grid, layout, info, block);
      });
  if (resume)
    fail_if(resume->loaded.row_permutation != layout.row_permutation() ||
                resume->loaded.col_permutation != layout.col_permutation(),
            "{}: the stored row/column permutations differ from those of --seed {}", resume->path,
            o.seed);

  session.phases().enter("init");
  Chain chain;
  TrainerState start;
  if (resume) {
    chain = std::move(resume->loaded.chain);
    start = std::move(resume->loaded.state);
    if (session.is_root())
      fmt::print("restart: continuing from {} at iteration {} (written on {} ranks, grid {})\n",
                 resume->path, start.iteration, resume->info.ranks, resume->info.grid);
  } else if (kind == AdapterKind::kDeepCompressed && implicit_init) {
    // The structured init, compressed without it ever existing (no h x n or h x h matrix).
    session.phases().enter("compress");
    if (session.is_root()) {
      fmt::print("compress: implicit structured init (signed permutations, width {}) and the top {} "
                 "singular triplets of the first gradient ({})\n",
                 deep_width, o.rank / 2, linear ? "thin QR of the samples" : "PARPACK on its sparse form");
      std::fflush(stdout);
    }
    if (linear) {
      chain = make_implicit_adapter(grid, layout, config, *linear_loss);
    } else {
      ImplicitCompressionReport report;
      chain = make_implicit_adapter(grid, layout, config, *train, normalization, &report);
      if (session.is_root()) {
        const SparseSvd& svd = report.svd;
        fmt::print("compress: PARPACK in {:.2f} s, {} passes over the data, largest residual {:.1e} s_1\n",
                   report.svd_seconds, svd.passes,
                   *std::max_element(svd.residuals.begin(), svd.residuals.end()));
        if (!svd.warning.empty()) fmt::print(stderr, "cdmf: warning: compression: {}\n", svd.warning);
      }
    }
    session.phases().enter("init");
  } else if (kind == AdapterKind::kDeepCompressed) {
    // The overparameterized adapter's first gradient: dense for entries (its width is h).
    session.phases().enter("compress");
    if (linear) {
      chain = make_adapter(grid, layout, config, linear_loss.get());
    } else {
      DenseStrategy wide_loss(*train, nullptr, std::nullopt, normalization);
      chain = make_adapter(grid, layout, config, &wide_loss);
    }
    session.phases().enter("init");
  } else {
    chain = make_adapter(grid, layout, config);  // lora, deep: no loss needed
  }
  std::unique_ptr<Strategy> entries_loss;
  bool sparse = false;
  if (!linear) {
    sparse = o.strategy == "sparse" || (o.strategy == "auto" && is_thin_chain(chain));
    if (sparse)
      entries_loss = std::make_unique<SparseStrategy>(*train, test ? &*test : nullptr, std::nullopt,
                                                      std::nullopt, normalization);
    else
      entries_loss = std::make_unique<DenseStrategy>(*train, test ? &*test : nullptr, std::nullopt,
                                                     normalization);
  }
  Strategy& strategy = linear ? *linear_loss : *entries_loss;
  OptimizerConfig optimizer_config{parse_optimizer_kind(o.optimizer), o.lr, o.momentum, o.beta1,
                                   o.beta2};
  optimizer_config.weight_decay = o.weight_decay;
  Optimizer optimizer(optimizer_config, chain);
  if (resume) restore_optimizer(resume->loaded, optimizer, resume->path);
  const std::int64_t parameters = trainable_parameters(chain);
  if (session.is_root())
    fmt::print("base: {} ({} x {}, {}, fingerprint {}); {}; adapter {}: rank {}, {} factors, width "
               "{}, {} trainable parameters{}\n",
               o.base, m, n,
               base_info.dense ? "dense" : base_info.biases ? "factored, with biases" : "factored",
               base_digest,
               linear ? fmt::format("linear layer, {} samples{}", samples_shape.samples,
                                    o.test_samples.empty() ? "" : fmt::format(", {} test samples", test_shape.samples))
                      : fmt::format("entries, {} training{}", train->global_count,
                                    test ? fmt::format(", {} test", test->global_count) : ""),
               o.adapter, o.rank, chain.depth(), chain.width(), parameters,
               linear ? "" : sparse ? ", sparse strategy" : ", dense strategy");

  // --patience keeps the best adapter on the test set: the trainer keeps the factors of the
  // best logged test loss (in its checkpoints too, so a restart keeps them) and ends with them.
  const bool has_test = linear ? !o.test_samples.empty() : test.has_value();
  RunSession::Training training;
  training.layout = &layout;
  training.meta.config_json = session.config().dump();
  training.meta.data = fingerprint;
  training.meta.row_ids = &base_row_ids;
  training.meta.col_ids = &base_col_ids;
  training.keep_best = o.run.patience > 0 && has_test;
  const TrainResult result = session.train(chain, strategy, optimizer, std::move(start), training);

  session.phases().enter("output");
  const bool best = training.keep_best && !result.interrupted() && result.best_iteration >= 0;
  const Chain& written = chain;  // the best logged iterate when `best`
  const std::string measurement = linear ? "linear" : "entries";
  write_adapter_file(grid, layout, o.run.output, written,
                     {config, measurement, base_digest,
                      best ? result.best_iteration : result.iterations, session.config().dump()},
                     base_row_ids, base_col_ids);
  if (!o.export_peft.empty()) export_peft(layout, written, o.export_peft, o.target_module);
  const UpdateSpectrum spectrum = update_spectrum(written, 16);
  if (session.is_root())
    fmt::print("adapter {} written ({}): update rank {}, top singular value {:.4e}{}\n",
               o.run.output, best ? fmt::format("the best on the test set, iteration {}", result.best_iteration)
                                  : std::string("the final iterate"),
               spectrum.rank, spectrum.top.empty() ? 0.0 : spectrum.top.front(),
               o.export_peft.empty() ? "" : fmt::format("; PEFT export in {}", o.export_peft));
  const auto number_or_null = [](double value) {
    return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
  };
  session.write_summary(
      o.adapter, result,
      {{"adapter", o.adapter},
       {"rank", o.rank},
       {"width", chain.width()},
       {"measurement", measurement},
       {"rows", m},
       {"cols", n},
       {"trainable_parameters", parameters},
       {"best_test_loss", number_or_null(result.best_loss)},
       {"best_iteration",
        result.best_iteration >= 0 ? nlohmann::json(result.best_iteration) : nlohmann::json(nullptr)},
       {"written_iterate", best ? "best" : "final"},
       {"init_structure", kind != AdapterKind::kDeepCompressed || resume
                              ? nlohmann::json(nullptr)
                              : nlohmann::json(implicit_init ? "implicit" : "dense")},
       {"update_rank", spectrum.rank},
       {"update_singular_values", spectrum.top},
       {"base_fingerprint", base_digest},
       {linear ? "train_samples" : "train_entries",
        linear ? samples_shape.samples : train->global_count},
       {"data_fingerprint", fingerprint.text()},
       {"restarted_from", resume ? nlohmann::json(resume->path) : nlohmann::json(nullptr)}});
  return RunSession::exit_status(result);
}

}  // namespace cdmf::run
