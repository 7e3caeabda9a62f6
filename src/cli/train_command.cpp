// cdmf train: load data, build (or restore from a checkpoint) the model, train it with
// checkpoints, stop cleanly on signals and at the wall-time limit, write metrics, summary and
// factors.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <regex>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "cdmf/data/readers.hpp"
#include "cdmf/io/checkpoint.hpp"
#include "cdmf/io/factor_file.hpp"
#include "cdmf/io/output_files.hpp"
#include "cdmf/io/run_outputs.hpp"
#include "cdmf/model/chain.hpp"
#include "cdmf/model/compression.hpp"
#include "cdmf/model/diagnostics.hpp"
#include "cdmf/optim/optimizer.hpp"
#include "cdmf/strategy/dense_strategy.hpp"
#include "cdmf/strategy/sparse_strategy.hpp"
#include "cdmf/train/stop_signals.hpp"
#include "cdmf/train/trainer.hpp"
#include "commands.hpp"

namespace cdmf::cli {

namespace {

struct TrainOptions {
  std::string data, test, truth, format = "auto", model = "deep", optimizer = "gd";
  std::string init, metrics, summary, output, grid, normalization = "mn", strategy = "auto";
  std::int64_t rows = 0, cols = 0, width = 0, rank = 0, iters = 10000, log_every = 100;
  std::int64_t patience = 0;
  int index_base = 0, depth = 3, block_size = 0;
  double init_scale = 1e-3, lr = 0.0, gamma = 0.01, tol = 0.0, momentum = 0.9;
  double beta1 = 0.9, beta2 = 0.999;
  std::uint64_t seed = 0;
  bool no_permute = false, quiet = false, diagnostics = false;
  // Checkpoints and restarts (DESIGN.md section 3), signals and wall time (section 5).
  std::string checkpoint_dir, restart, max_walltime;
  std::int64_t checkpoint_every = 0;
  double checkpoint_every_seconds = 0.0;
  int keep_checkpoints = 3;

  nlohmann::json to_json() const {
    return {{"data", data},
            {"test", test},
            {"truth", truth},
            {"format", format},
            {"index_base", index_base},
            {"rows", rows},
            {"cols", cols},
            {"model", model},
            {"depth", depth},
            {"width", width},
            {"rank", rank},
            {"init_scale", init_scale},
            {"lr", lr},
            {"gamma", gamma},
            {"optimizer", optimizer},
            {"momentum", momentum},
            {"beta1", beta1},
            {"beta2", beta2},
            {"iters", iters},
            {"tol", tol},
            {"seed", seed},
            {"init", init},
            {"metrics", metrics},
            {"summary", summary},
            {"output", output},
            {"grid", grid},
            {"block_size", block_size},
            {"loss_normalization", normalization},
            {"log_every", log_every},
            {"patience", patience},
            {"permute", !no_permute},
            {"strategy", strategy},
            {"diagnostics", diagnostics},
            {"checkpoint_dir", checkpoint_dir},
            {"checkpoint_every", checkpoint_every},
            {"checkpoint_every_seconds", checkpoint_every_seconds},
            {"keep_checkpoints", keep_checkpoints},
            {"restart", restart},
            {"max_walltime", max_walltime}};
  }
};

struct ChainGeometry {
  int depth;
  std::int64_t width;
};

/// Depth and width of the chain built at init for `kind` (for `compressed`, the deep chain it
/// is compressed from); validates rank for the thin models.
ChainGeometry model_geometry(const TrainOptions& o, ModelKind kind, std::int64_t m,
                             std::int64_t n) {
  if (kind == ModelKind::kDeep || kind == ModelKind::kCompressed) {
    fail_if(o.depth < 2, "--depth must be at least 2 (got {})", o.depth);
    return {o.depth, o.width > 0 ? o.width : std::max(m, n)};
  }
  fail_if(o.rank < 1, "--model {} needs --rank (the rank estimate rhat >= 1)", o.model);
  fail_if(2 * o.rank > std::min(m, n),
          "--rank {}: 2*rank = {} exceeds min(rows, cols) = {} of the {} x {} matrix", o.rank,
          2 * o.rank, std::min(m, n), m, n);
  const int depth = kind == ModelKind::kShallow ? 2 : o.depth;
  fail_if(depth < 2, "--depth must be at least 2 (got {})", depth);
  return {depth, 2 * o.rank};
}

/// The evaluation strategy for `chain`: `auto` takes the sparse one for thin chains (cost
/// O(|Omega| k), no m x n array) unless the truth is only known as a dense matrix.
std::unique_ptr<Strategy> make_strategy(const std::string& name, const Chain& chain,
                                        const Observations& train, const Observations* test,
                                        Truth truth, double normalization) {
  fail_if(name != "auto" && name != "dense" && name != "sparse",
          "--strategy must be auto, dense or sparse (got '{}')", name);
  const bool sparse = name == "sparse" || (name == "auto" && is_thin_chain(chain) && !truth.matrix);
  if (sparse) {
    fail_if(truth.matrix.has_value(),
            "--strategy sparse needs the truth as factors /U, /V (a dense /matrix needs --strategy "
            "dense)");
    return std::make_unique<SparseStrategy>(train, test, std::move(truth.u), std::move(truth.v),
                                            normalization);
  }
  std::optional<DistMatrix> phi;
  if (truth.matrix) phi = std::move(*truth.matrix);
  if (truth.u) phi = truth_matrix_from_factors(*truth.u, *truth.v);
  return std::make_unique<DenseStrategy>(train, test, std::move(phi), normalization);
}

/// Seconds of "[D-]HH:MM:SS" (--max-walltime, Slurm's notation); 0 for an empty text.
double parse_walltime(const std::string& text) {
  if (text.empty()) return 0.0;
  static const std::regex format(R"((?:(\d+)-)?(\d+):([0-5]\d):([0-5]\d))");
  std::smatch match;
  fail_if(!std::regex_match(text, match, format),
          "--max-walltime '{}' is not HH:MM:SS (or D-HH:MM:SS)", text);
  const double days = match[1].matched ? std::stod(match[1].str()) : 0.0;
  const double seconds =
      ((days * 24.0 + std::stod(match[2].str())) * 60.0 + std::stod(match[3].str())) * 60.0 +
      std::stod(match[4].str());
  fail_if(seconds <= 0.0, "--max-walltime must be positive (got '{}')", text);
  return seconds;
}

/// Options that define the trajectory: a restart continues the run only with the values its
/// checkpoint was written with (everything else, e.g. --iters, --tol, --grid, may change).
constexpr const char* kRunDefiningOptions[] = {
    "model",    "depth", "width", "rank", "init_scale",         "lr",     "gamma", "optimizer",
    "momentum", "beta1", "beta2", "seed", "loss_normalization", "permute"};

/// The dimensions of the problem: explicit --rows/--cols, else the largest the data, truth,
/// init file or checkpoint implies.
FactorShape problem_shape(const TrainOptions& o, MPI_Comm comm, const LoadedData& data,
                          const std::optional<FactorFileInfo>& init,
                          const std::optional<FactorFileInfo>& restart) {
  FactorShape shape{o.rows > 0 ? o.rows : data.rows, o.cols > 0 ? o.cols : data.cols};
  const auto widen = [&](std::int64_t rows, std::int64_t cols) {
    if (o.rows == 0) shape.rows = std::max(shape.rows, rows);
    if (o.cols == 0) shape.cols = std::max(shape.cols, cols);
  };
  if (!o.truth.empty()) {
    const FactorShape truth = truth_dimensions(comm, o.truth);
    widen(truth.rows, truth.cols);
  }
  if (init) widen(init->rows, init->cols);
  if (restart) widen(restart->rows, restart->cols);
  return shape;
}

/// Throws unless checkpoint `info` continues this run: same model, shape, data set, optimizer
/// and run-defining options.
void check_continues_this_run(const CheckpointInfo& info, const TrainOptions& o,
                              const nlohmann::json& config, FactorShape shape,
                              const DataFingerprint& data) {
  const FactorFileInfo& f = info.factors;
  fail_if(f.model != o.model, "{}: holds a '{}' model, not '{}'", f.path, f.model, o.model);
  fail_if(f.rows != shape.rows || f.cols != shape.cols,
          "{}: the checkpoint is for a {} x {} matrix but this problem is {} x {}", f.path, f.rows,
          f.cols, shape.rows, shape.cols);
  fail_if(!(info.data == data),
          "{}: the checkpoint was written for another data set ({} training entries, fingerprint "
          "{}) than {} ({} entries, fingerprint {})",
          f.path, info.data.entries, info.data.text(), o.data, data.entries, data.text());
  fail_if(info.optimizer != o.optimizer, "{}: holds the state of optimizer '{}', not '{}'", f.path,
          info.optimizer, o.optimizer);
  nlohmann::json stored;
  try {
    stored = nlohmann::json::parse(f.config_json);
  } catch (const nlohmann::json::exception&) {
    fail("{}: attribute 'config' is not valid JSON", f.path);
  }
  for (const char* key : kRunDefiningOptions) {
    if (!stored.contains(key)) continue;
    std::string flag = std::string("--") + key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    fail_if(stored[key] != config[key],
            "{}: the checkpoint was written with {} {} but this run has {} (a restart continues "
            "the same run: keep the options that define it)",
            f.path, flag, stored[key].dump(), config[key].dump());
  }
}

/// The checkpoint a run continues from, read and checked.
struct Resume {
  std::string path;
  CheckpointInfo info;
  LoadedCheckpoint loaded;
  IndexLayout layout;
  double read_seconds;
};

/// Collective: finds and reads the checkpoint of --restart. For `auto`, the newest readable one
/// in --checkpoint-dir (a damaged one is skipped with a warning; none at all: a fresh start,
/// nullopt). A checkpoint of another run is an error, never skipped.
std::optional<Resume> find_restart(const ProcessGrid& grid, const TrainOptions& o,
                                   const nlohmann::json& config, const LoadedData& data,
                                   const DataFingerprint& fingerprint,
                                   const std::optional<FactorFileInfo>& init_info) {
  if (o.restart.empty()) return std::nullopt;
  const bool automatic = o.restart == "auto";
  const std::vector<std::string> candidates = automatic
                                                  ? list_checkpoints(grid.comm(), o.checkpoint_dir)
                                                  : std::vector<std::string>{o.restart};
  const auto warn = [&](const std::string& message) {
    if (grid.is_root()) fmt::print(stderr, "cdmf: warning: {}\n", message);
  };
  for (const std::string& path : candidates) {
    const double begin = MPI_Wtime();
    CheckpointInfo info;
    try {
      info = read_checkpoint_info(grid.comm(), path);
      fail_if(!info.restartable,
              "{}: a factor file without the restart state (no /optimizer, /trainer, ...): use "
              "it with --init, not --restart",
              path);
    } catch (const Error& e) {
      if (!automatic) throw;
      warn(fmt::format("skipping {}", e.what()));
      continue;
    }
    const FactorShape shape = problem_shape(o, grid.comm(), data, init_info, info.factors);
    check_continues_this_run(info, o, config, shape, fingerprint);
    const int block = choose_block_size(shape.rows, shape.cols, grid, o.block_size);
    IndexLayout layout(shape.rows, shape.cols, block, o.seed, !o.no_permute);
    LoadedCheckpoint loaded;
    try {
      loaded = load_checkpoint(grid, layout, info, block);
    } catch (const Error& e) {
      if (!automatic) throw;
      warn(fmt::format("skipping {}", e.what()));
      continue;
    }
    fail_if(loaded.row_permutation != layout.row_permutation() ||
                loaded.col_permutation != layout.col_permutation(),
            "{}: the stored row/column permutations differ from those of --seed {} (written by "
            "another cdmf version?)",
            path, o.seed);
    return Resume{path, std::move(info), std::move(loaded), std::move(layout), MPI_Wtime() - begin};
  }
  fail_if(!candidates.empty(),
          "--restart auto: none of the {} checkpoints in {} can be read (see the warnings above); "
          "move them away to start afresh",
          candidates.size(), o.checkpoint_dir);
  if (grid.is_root())
    fmt::print("restart: no checkpoint in {}: starting from iteration 0\n", o.checkpoint_dir);
  return std::nullopt;
}

/// "12.3 MB" or "45.6 kB" for progress lines.
std::string file_size_text(const std::string& path) {
  std::error_code code;
  const auto bytes = static_cast<double>(std::filesystem::file_size(path, code));
  if (code) return "size unknown";
  return bytes >= 1e6 ? fmt::format("{:.1f} MB", bytes / 1e6)
                      : fmt::format("{:.1f} kB", bytes / 1e3);
}

int run_train(const TrainOptions& o) {
  // Stop signals only set a flag since main() started (StopSignals there): one that came
  // during start-up or the data load stops the run at its first iteration boundary.
  const double started = MPI_Wtime();
  ProcessGrid grid = o.grid.empty() ? ProcessGrid(MPI_COMM_WORLD) : [&] {
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    return ProcessGrid(MPI_COMM_WORLD, parse_grid_shape(o.grid, size));
  }();
  const std::string grid_text = fmt::format("{}x{}", grid.rows(), grid.cols());
  const ModelKind kind = parse_model_kind(o.model);
  fail_if(!(o.lr > 0.0), "--lr must be positive (got {})", o.lr);
  fail_if(!(o.init_scale > 0.0), "--init-scale must be positive (got {})", o.init_scale);
  fail_if(o.normalization != "mn" && o.normalization != "observed",
          "--loss-normalization must be 'mn' or 'observed' (got '{}')", o.normalization);
  fail_if(o.rows < 0 || o.cols < 0, "--rows and --cols must be positive");
  fail_if(o.restart == "auto" && o.checkpoint_dir.empty(),
          "--restart auto needs --checkpoint-dir (the directory to look in)");
  fail_if(
      (o.checkpoint_every != 0 || o.checkpoint_every_seconds != 0.0) && o.checkpoint_dir.empty(),
      "--checkpoint-every and --checkpoint-every-seconds need --checkpoint-dir");
  const double max_walltime = parse_walltime(o.max_walltime);
  nlohmann::json config = o.to_json();
  if (grid.is_root())
    fmt::print("cdmf {} train on {} ranks (grid {})\nconfiguration: {}\n", CDMF_VERSION,
               grid.size(), grid_text, config.dump());

  // The checkpoint directory and the output paths are checked before any work: a typo fails
  // at once, not after the run. The directory first, since it creates itself and outputs may
  // go into it.
  std::optional<CheckpointDirectory> checkpoints;
  if (!o.checkpoint_dir.empty()) {
    checkpoints.emplace(grid.comm(), o.checkpoint_dir, o.keep_checkpoints);
    if (grid.is_root())
      for (const std::string& path : checkpoints->removed_temporaries())
        fmt::print("checkpoint: removed {}, the temporary of an interrupted write\n", path);
  }
  check_output_files(grid.comm(),
                     {{"--output", o.output}, {"--metrics", o.metrics}, {"--summary", o.summary}});

  ReadOptions read_options{parse_data_format(o.format), o.index_base};
  // Not const: distribute() below takes the entries and frees them once packed for sending.
  LoadedData data = read_data(grid.comm(), o.data, o.test, read_options);
  const DataFingerprint fingerprint = fingerprint_entries(grid.comm(), data.train);
  std::optional<FactorFileInfo> init_info;
  if (!o.init.empty()) init_info = read_factor_file_info(grid.comm(), o.init);
  std::optional<Resume> resume = find_restart(grid, o, config, data, fingerprint, init_info);

  const FactorShape shape = resume
                                ? FactorShape{resume->info.factors.rows, resume->info.factors.cols}
                                : problem_shape(o, grid.comm(), data, init_info, std::nullopt);
  const std::int64_t m = shape.rows, n = shape.cols;
  const int block = choose_block_size(m, n, grid, o.block_size);
  const IndexLayout layout =
      resume ? resume->layout : IndexLayout(m, n, block, o.seed, !o.no_permute);
  const Observations train = distribute(grid, std::move(data.train), layout);
  std::optional<Observations> test;
  if (!o.test.empty()) test = distribute(grid, std::move(data.test), layout);
  Truth truth;
  if (!o.truth.empty()) truth = read_truth(grid, layout, o.truth, block);
  const double normalization = o.normalization == "mn"
                                   ? static_cast<double>(m) * static_cast<double>(n)
                                   : static_cast<double>(train.global_count);

  Chain chain;
  TrainerState start;
  if (resume) {
    chain = std::move(resume->loaded.chain);
    start = std::move(resume->loaded.state);
    if (grid.is_root())
      fmt::print(
          "restart: continuing from {} at iteration {} ({:.2f} s of training so far, "
          "written on {} ranks, grid {}; read in {:.2f} s)\n",
          resume->path, start.iteration, start.seconds, resume->info.ranks, resume->info.grid,
          resume->read_seconds);
  } else if (init_info) {
    fail_if(init_info->rows != m || init_info->cols != n,
            "{}: the init factors are {} x {} but the data is {} x {}", o.init, init_info->rows,
            init_info->cols, m, n);
    chain.kind = parse_model_kind(init_info->model);
    chain.factors = read_factors(grid, layout, *init_info, block);
    chain.lr_multipliers = init_info->lr_multipliers;
  } else {
    const ChainGeometry geometry = model_geometry(o, kind, m, n);
    chain = make_deep_chain(grid, layout, geometry.depth, geometry.width, o.init_scale, o.seed,
                            kind == ModelKind::kCompressed ? ModelKind::kDeep : kind);
  }
  // A compressed model starts from a deep init (built or read), compressed here with the
  // first gradient of the deep chain (dense: the deep chain is h x n).
  if (kind == ModelKind::kCompressed && chain.kind != ModelKind::kCompressed) {
    DenseStrategy deep_loss(train, nullptr, std::nullopt, normalization);
    chain = compress_chain(chain, deep_loss, {o.rank, o.gamma, o.init_scale});
  }
  const std::unique_ptr<Strategy> strategy = make_strategy(
      o.strategy, chain, train, test ? &*test : nullptr, std::move(truth), normalization);
  fail_if(chain.kind != kind, "{}: holds a '{}' model, not '{}'", o.init, model_name(chain.kind),
          o.model);
  OptimizerConfig optimizer_config{parse_optimizer_kind(o.optimizer), o.lr, o.momentum, o.beta1,
                                   o.beta2};
  Optimizer optimizer(optimizer_config, chain);
  if (resume) restore_optimizer(resume->loaded, optimizer, resume->path);
  if (grid.is_root())
    fmt::print(
        "data: {} x {}, {} training entries{}; model {}: {} factors, width {}, {} strategy\n", m, n,
        train.global_count, test ? fmt::format(", {} test entries", test->global_count) : "",
        o.model, chain.depth(), chain.width(),
        dynamic_cast<const SparseStrategy*>(strategy.get()) ? "sparse" : "dense");

  // Diagnostics measure W_l(t) - W_l(0): a restart takes W_l(0) from the checkpoint.
  std::optional<Chain> initial;
  if (o.diagnostics) {
    initial.emplace(chain);
    if (resume) {
      fail_if(!resume->loaded.diagnostics_initial,
              "{}: --diagnostics needs W_l(0), which this checkpoint lacks (the run was started "
              "without --diagnostics)",
              resume->path);
      initial->factors = std::move(*resume->loaded.diagnostics_initial);
    }
  } else {
    for (MetricsRow& row : start.history) row.extra.clear();  // columns of diagnostics now off
  }
  std::optional<CompressibilityProbe> probe;
  if (initial) probe.emplace(*initial, 5);
  const std::vector<std::string> extra_columns =
      probe ? probe->column_names() : std::vector<std::string>{};
  if (resume && probe)
    fail_if(resume->loaded.extra_metric_columns != extra_columns,
            "{}: the stored metrics columns differ from those of --diagnostics", resume->path);

  // Only rank 0 opens the metrics file: agree on its failure, or the other ranks would wait in
  // the training collectives forever. A restart rewrites it with the history so far, so the
  // file continues exactly as the uninterrupted run's would.
  std::optional<MetricsCsv> metrics_csv;
  run_agreed(grid.comm(), [&] {
    metrics_csv.emplace(o.metrics, grid.is_root(), false, extra_columns);
    for (const MetricsRow& row : start.history) metrics_csv->write(row);
  });
  MetricsCsv& metrics = *metrics_csv;

  // Wall time counts from the start of this process: loading the data used some of it.
  const double budget =
      max_walltime > 0.0 ? std::max(max_walltime - (MPI_Wtime() - started), 1e-9) : 0.0;
  TrainerConfig trainer_config{
      o.iters, o.tol, o.log_every, o.patience, o.checkpoint_every, o.checkpoint_every_seconds,
      budget};
  Trainer trainer(
      trainer_config,
      [&](const MetricsRow& row) {
        metrics.write(row);
        if (grid.is_root() && !o.quiet) {
          fmt::print("{}\n", progress_line(row, extra_columns));
          std::fflush(stdout);
        }
      },
      [] { return StopSignals::received(); },
      probe ? Trainer::Probe([&](const Chain& c) { return probe->measure(c); }) : Trainer::Probe());

  std::string last_checkpoint;
  if (checkpoints) {
    CheckpointMeta meta{config.dump(), fingerprint,   &data.row_ids,
                        &data.col_ids, extra_columns, initial ? &initial->factors : nullptr};
    trainer.set_checkpoint_hook(
        [&, meta](const Chain& c, const Optimizer& opt, const TrainerState& state) {
          const std::string path = checkpoints->file_for(state.iteration);
          const double begin = MPI_Wtime();
          write_checkpoint(grid, layout, path, c, opt, state, meta);
          const double seconds = MPI_Wtime() - begin;
          const std::vector<std::string> failures = checkpoints->prune(grid.comm());
          last_checkpoint = path;
          if (!grid.is_root()) return;
          // Printed even with --quiet: rare, and what a job log needs to show.
          fmt::print("checkpoint: iteration {} -> {} ({} in {:.3f} s)\n", state.iteration, path,
                     file_size_text(path), seconds);
          for (const std::string& failure : failures)
            fmt::print(stderr, "cdmf: warning: {}\n", failure);
          std::fflush(stdout);
        });
  }

  const TrainResult result = trainer.run(chain, *strategy, optimizer, std::move(start));
  if (grid.is_root()) {
    fmt::print("stopped ({}) after {} iterations in {:.2f} s: train loss {:.4e}\n",
               result.stop_reason, result.iterations, result.seconds, result.final.train_loss);
    if (result.interrupted()) {
      const std::string why = result.stop_reason == "signal"
                                  ? "received " + StopSignals::name(result.stop_signal)
                                  : "--max-walltime " + o.max_walltime + " reached";
      const std::string next =
          checkpoints
              ? fmt::format("checkpoint {} written; continue with --restart auto", last_checkpoint)
              : std::string("no --checkpoint-dir, so nothing to continue from");
      fmt::print("cdmf: interrupted at iteration {} ({}): {} (exit status {})\n", result.iterations,
                 why, next, kExitInterrupted);
    }
    std::fflush(stdout);
  }
  if (!o.output.empty())
    write_factor_file(grid, layout, o.output, chain, {result.iterations, config.dump()},
                      data.row_ids, data.col_ids);
  if (!o.summary.empty())
    run_agreed(grid.comm(), [&] {  // written by rank 0; every rank exits non-zero if it fails
      if (grid.is_root()) {
        nlohmann::json extra = {
            {"rows", m},
            {"cols", n},
            {"train_entries", train.global_count},
            {"data_fingerprint", fingerprint.text()},
            {"restarted_from", resume ? nlohmann::json(resume->path) : nullptr},
            {"checkpoint",
             last_checkpoint.empty() ? nlohmann::json(nullptr) : nlohmann::json(last_checkpoint)},
            {"config", config}};
        if (result.stop_signal != 0) extra["stop_signal"] = StopSignals::name(result.stop_signal);
        write_json_file(o.summary, make_summary(o.model, result, grid.size(), grid_text, extra));
      }
    });
  return result.interrupted() ? kExitInterrupted : 0;
}

/// Applies a TOML/INI config file to the options of `sub` that were not given on the command
/// line (flags override the file). CLI11 2.1 only reads a config file declared on the top-level
/// app, so a subcommand's --config is handled here. Keys are option names without the leading
/// dashes, at the top level or in a [train] section; an unknown key is an error.
void apply_config_file(CLI::App& sub, const std::string& path) {
  if (path.empty()) return;
  fail_if(!std::filesystem::is_regular_file(path), "{}: cannot open config file", path);
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_file(path);
  } catch (const CLI::Error& e) {
    fail("{}: cannot read config file ({})", path, e.what());
  }
  for (const CLI::ConfigItem& item : items) {
    if (item.name == "++" || item.name == "--") continue;  // section markers
    fail_if(
        !(item.parents.empty() || (item.parents.size() == 1 && item.parents[0] == sub.get_name())),
        "{}: unknown option '{}' (not a '{}' option)", path, item.fullname(), sub.get_name());
    CLI::Option* option = sub.get_option_no_throw("--" + item.name);
    fail_if(option == nullptr || item.name == "config" || item.name == "help",
            "{}: unknown option '{}'", path, item.fullname());
    if (option->count() > 0) continue;  // given on the command line
    try {
      if (option->get_expected_min() == 0)
        option->add_result(option->get_flag_value(item.name, CLI::ConfigTOML().to_flag(item)));
      else
        option->add_result(item.inputs);
      option->run_callback();
    } catch (const CLI::Error& e) {
      fail("{}: option '{}': {}", path, item.fullname(), e.what());
    }
  }
}

}  // namespace

Command add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  CLI::App* sub = app.add_subcommand("train", "Train a model on observed entries");
  auto config_path = std::make_shared<std::string>();
  sub->add_option("--config", *config_path,
                  "read options from a TOML/INI file (keys: option names; flags override it)");
  // --data and --lr are required, but may come from the config file: checked after reading it.
  sub->add_option("--data", o->data,
                  "training entries (triplets, MovieLens CSV, .mtx or .h5) (required)");
  sub->add_option("--test", o->test, "held-out entries, same format");
  sub->add_option("--truth", o->truth,
                  "ground truth HDF5 (/U,/V or /matrix) for the recovery error");
  sub->add_option("--rows", o->rows, "m (default: implied by data, truth or init file)");
  sub->add_option("--cols", o->cols, "n (default: implied by data, truth or init file)");
  sub->add_option("--format", o->format, "auto|triplets|movielens|mtx|hdf5")->capture_default_str();
  sub->add_option("--index-base", o->index_base, "0 or 1, for triplet files")
      ->capture_default_str();
  sub->add_option("--model", o->model, "deep|compressed|narrow|shallow")->capture_default_str();
  sub->add_option("--depth", o->depth, "number of factors L")->capture_default_str();
  sub->add_option("--width", o->width, "width h of the deep model (default max(m, n))");
  sub->add_option("--rank", o->rank, "rank estimate rhat (narrow/shallow/compressed width 2*rhat)");
  sub->add_option("--init-scale", o->init_scale, "eps of the orthogonal init")
      ->capture_default_str();
  sub->add_option("--lr", o->lr, "learning rate (required)");
  sub->add_option("--gamma", o->gamma, "lr multiplier of the outer factors (compressed)")
      ->capture_default_str();
  sub->add_option("--optimizer", o->optimizer, "gd|momentum|nesterov|adam")->capture_default_str();
  sub->add_option("--momentum", o->momentum, "momentum (momentum/nesterov)")->capture_default_str();
  sub->add_option("--beta1", o->beta1, "Adam beta1")->capture_default_str();
  sub->add_option("--beta2", o->beta2, "Adam beta2")->capture_default_str();
  sub->add_option("--iters", o->iters, "maximum iterations")->capture_default_str();
  sub->add_option("--tol", o->tol, "stop when train loss < tol")->capture_default_str();
  sub->add_option("--patience", o->patience, "early stopping: log steps without test improvement");
  sub->add_option("--seed", o->seed, "seed of the init and the index permutation")
      ->capture_default_str();
  sub->add_option("--init", o->init, "start from the factors of this HDF5 file");
  sub->add_option("--output", o->output, "write the final factors to this HDF5 file");
  sub->add_option("--metrics", o->metrics, "metrics CSV, one row per log step");
  sub->add_option("--summary", o->summary, "JSON summary of the run");
  sub->add_option("--log-every", o->log_every, "iterations between log rows")
      ->capture_default_str();
  sub->add_option("--grid", o->grid, "process grid PrxPc (default near-square)");
  sub->add_option("--block-size", o->block_size,
                  "ScaLAPACK block size (default: at most min(64, m/Pr, n/Pc), the one within a factor of "
                  "two of that which spreads rows and columns most evenly)");
  sub->add_option("--loss-normalization", o->normalization,
                  "N of the loss: mn (m*n, the reference) or observed (|Omega|)")
      ->capture_default_str();
  sub->add_option("--strategy", o->strategy,
                  "auto|dense|sparse: loss evaluation (auto: sparse for thin chains)")
      ->capture_default_str();
  sub->add_flag("--diagnostics", o->diagnostics,
                "log the numerical rank of W_l(t) - W_l(0) per factor and the top singular values "
                "of the end-to-end matrix at each log step (PDGESVD: moderate sizes)");
  sub->add_option(
      "--checkpoint-dir", o->checkpoint_dir,
      "write checkpoints DIR/checkpoint-<iteration>.h5 here (one whenever the run stops)");
  sub->add_option("--checkpoint-every", o->checkpoint_every,
                  "also checkpoint at every K-th iteration (0: off)");
  sub->add_option("--checkpoint-every-seconds", o->checkpoint_every_seconds,
                  "also checkpoint when S seconds of wall time passed since the last one (0: off)");
  sub->add_option("--keep-checkpoints", o->keep_checkpoints, "keep the newest N checkpoints")
      ->capture_default_str();
  sub->add_option("--restart", o->restart,
                  "continue from checkpoint FILE, or 'auto': the newest in --checkpoint-dir (a "
                  "fresh start when there is none)");
  sub->add_option("--max-walltime", o->max_walltime,
                  "[D-]HH:MM:SS: checkpoint and stop (exit status 75) before this much wall time");
  sub->add_flag("--no-permute", o->no_permute, "do not permute rows/columns before distributing");
  sub->add_flag("--quiet", o->quiet, "no progress lines");
  return {sub, [o, sub, config_path] {
            apply_config_file(*sub, *config_path);
            for (const char* name : {"--data", "--lr"})
              fail_if(sub->get_option(name)->count() == 0,
                      "{} is required (on the command line or in --config)", name);
            return run_train(*o);
          }};
}

}  // namespace cdmf::cli
