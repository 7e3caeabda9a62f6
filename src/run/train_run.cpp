// cdmf train as a library call (include/cdmf/run/train_run.hpp).
#include "cdmf/run/train_run.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <utility>

#include <fmt/core.h>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "cdmf/data/readers.hpp"
#include "cdmf/data/split.hpp"
#include "cdmf/io/checkpoint.hpp"
#include "cdmf/io/factor_file.hpp"
#include "cdmf/model/biases.hpp"
#include "cdmf/model/chain.hpp"
#include "cdmf/model/compression.hpp"
#include "cdmf/model/diagnostics.hpp"
#include "cdmf/model/structured_init.hpp"
#include "cdmf/optim/optimizer.hpp"
#include "cdmf/run/memory_estimates.hpp"
#include "cdmf/strategy/dense_strategy.hpp"
#include "cdmf/strategy/sparse_strategy.hpp"

namespace cdmf::run {

nlohmann::json TrainOptions::to_json() const {
  nlohmann::json json = run.to_json();
  json.update({{"data", data},
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
               {"seed", seed},
               {"init", init},
               {"block_size", block_size},
               {"loss_normalization", normalization},
               {"permute", !no_permute},
               {"strategy", strategy},
               {"diagnostics", diagnostics},
               {"init_structure", init_structure},
               {"preset", preset},
               {"biases", biases},
               {"bias_reg", bias_reg},
               {"bias_sweeps", bias_sweeps},
               {"validation", validation},
               {"clip", clip}});
  return json;
}

namespace {

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
    fail_if(o.width < -1, "--width must be positive, 0 (max(m, n)) or -1 (min(m, n)) (got {})",
            o.width);
    return {o.depth, o.width > 0 ? o.width : (o.width < 0 ? std::min(m, n) : std::max(m, n))};
  }
  fail_if(o.rank < 1, "--model {} needs --rank (the rank estimate rhat >= 1)", o.model);
  fail_if(2 * o.rank > std::min(m, n),
          "--rank {}: 2*rank = {} exceeds min(rows, cols) = {} of the {} x {} matrix", o.rank,
          2 * o.rank, std::min(m, n), m, n);
  const int depth = kind == ModelKind::kShallow ? 2 : o.depth;
  fail_if(depth < 2, "--depth must be at least 2 (got {})", depth);
  return {depth, 2 * o.rank};
}

/// Whether `auto` (or the named strategy) evaluates `kind` with the sparse strategy: thin
/// chains, unless the truth is only known as a dense matrix.
bool uses_sparse_strategy(const std::string& name, bool thin, bool dense_truth) {
  fail_if(name != "auto" && name != "dense" && name != "sparse",
          "--strategy must be auto, dense or sparse (got '{}')", name);
  return name == "sparse" || (name == "auto" && thin && !dense_truth);
}

/// The evaluation strategy for `chain`.
std::unique_ptr<Strategy> make_strategy(const std::string& name, const Chain& chain,
                                        const Observations& train, const Observations* test,
                                        Truth truth, double normalization) {
  if (uses_sparse_strategy(name, is_thin_chain(chain), truth.matrix.has_value())) {
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

/// Options that define the trajectory: a restart continues the run only with the values its
/// checkpoint was written with (everything else, e.g. --iters, --tol, --grid, may change).
const std::vector<std::string> kRunDefiningOptions = {
    "model",    "depth", "width", "rank", "init_scale",         "lr",     "gamma", "optimizer",
    "momentum", "beta1", "beta2", "seed", "loss_normalization", "permute", "biases", "bias_reg",
    "bias_sweeps", "validation"};

/// The dimensions of the problem: explicit --rows/--cols, else what the data implies (its
/// largest indices, or its header), widened only by the checkpoint of a restart (the same run,
/// whose data set the fingerprint checks). A truth or init file never widens the problem: one
/// of another shape is refused by check_same_shape.
FactorShape problem_shape(const TrainOptions& o, const LoadedData& data,
                          const std::optional<FactorFileInfo>& restart) {
  FactorShape shape{o.rows > 0 ? o.rows : data.rows, o.cols > 0 ? o.cols : data.cols};
  if (restart) {
    if (o.rows == 0) shape.rows = std::max(shape.rows, restart->rows);
    if (o.cols == 0) shape.cols = std::max(shape.cols, restart->cols);
  }
  return shape;
}

/// Throws unless the `what` file `path` (--truth, --init) is `rows` x `cols`, the problem's
/// shape. Larger is refused like smaller: it silently enlarged the problem (a 60 x 50 data
/// set became 1000 x 1000), where the user may have meant --rows/--cols.
void check_same_shape(const TrainOptions& o, const char* what, const std::string& path,
                      std::int64_t rows, std::int64_t cols, FactorShape shape) {
  if (rows == shape.rows && cols == shape.cols) return;
  const bool implied = o.rows == 0 || o.cols == 0;
  fail("{}: the {} is {} x {} but the problem is {} x {}{}", path, what, rows, cols, shape.rows,
       shape.cols,
       implied && rows >= shape.rows && cols >= shape.cols
           ? fmt::format(" (as the data implies; give --rows {} --cols {} if the matrix is that "
                         "large)",
                         rows, cols)
           : "");
}

/// Throws unless checkpoint `info` continues this run: same model, shape, data set, optimizer
/// and run-defining options.
void check_continues_this_run(const RunSession& session, const CheckpointInfo& info,
                              const TrainOptions& o, FactorShape shape,
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
  session.check_same_run(info, kRunDefiningOptions);
}

/// What a train checkpoint restores besides its metadata.
struct TrainRestart {
  LoadedCheckpoint checkpoint;
  std::optional<IndexLayout> layout;
};

/// Collective: [min, max] of the values of `set` over every rank (the range --clip keeps).
std::pair<double, double> value_range(MPI_Comm comm, const Observations& set) {
  double range[2] = {std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity()};
  for (double v : set.values) {
    range[0] = std::min(range[0], v);
    range[1] = std::min(range[1], -v);
  }
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, range, 2, MPI_DOUBLE, MPI_MIN, comm), "MPI_Allreduce");
  return {range[0], -range[1]};
}

/// Collective: the squared error summed over the cold-start test pairs of every rank and their
/// number. Each is predicted from what is known: mu plus the bias of its known side, or the
/// training mean without biases; clipped like every prediction.
std::pair<double, std::int64_t> cold_start_sse(MPI_Comm comm, const EntryList& cold,
                                               const IndexLayout& layout,
                                               const std::optional<Biases>& biases,
                                               const Observations& train,
                                               const std::optional<std::pair<double, double>>& clip) {
  double mean[2] = {0.0, static_cast<double>(train.global_count)};
  if (!biases) {
    for (double v : train.values) mean[0] += v;
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, mean, 1, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  }
  double sums[2] = {0.0, static_cast<double>(cold.size())};
  for (size_t e = 0; e < cold.size(); ++e) {
    const std::int64_t i = cold.rows[e] >= 0 ? layout.permuted_row(cold.rows[e]) : -1;
    const std::int64_t j = cold.cols[e] >= 0 ? layout.permuted_col(cold.cols[e]) : -1;
    double prediction = biases ? biases->at(i, j) : mean[0] / std::max(mean[1], 1.0);
    if (clip) prediction = std::clamp(prediction, clip->first, clip->second);
    sums[0] += (prediction - cold.values[e]) * (prediction - cold.values[e]);
  }
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  return {sums[0], static_cast<std::int64_t>(sums[1])};
}

/// The iteration whose factors a run ends with: the best logged one when it keeps the best
/// and finished, else the last.
std::int64_t kept_iteration(const TrainResult& result, bool keep_best) {
  return keep_best && !result.interrupted() && result.best_iteration >= 0 ? result.best_iteration
                                                                          : result.iterations;
}

/// The summary's record of the best logged iteration (the model --output holds).
nlohmann::json best_model_summary(const TrainResult& result) {
  const auto number = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); };
  nlohmann::json json = {{"best_iteration", result.best_iteration},
                         {"best_validation_loss", number(result.best_loss)}};
  for (const MetricsRow& row : result.history)
    if (row.iteration == result.best_iteration) {
      json["best_validation_rmse"] = number(row.validation_rmse);
      json["best_train_rmse"] = number(row.train_rmse);
      json["best_test_rmse"] = number(row.test_rmse);
    }
  return json;
}

/// The default grid when the options give the matrix's shape (--rows and --cols, or --truth):
/// the shape that follows the matrix (shape_for_matrix) when it differs from the near-square
/// one; empty otherwise (RunSession's near-square default, as before).
std::string default_grid(const TrainOptions& o) {
  if (!o.run.grid.empty()) return o.run.grid;
  FactorShape shape{o.rows, o.cols};
  if ((shape.rows <= 0 || shape.cols <= 0) && !o.truth.empty()) shape = truth_dimensions(MPI_COMM_WORLD, o.truth);
  if (shape.rows <= 0 || shape.cols <= 0) return "";
  int ranks = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  const GridShape chosen = shape_for_matrix(ranks, shape.rows, shape.cols);
  const GridShape square = near_square_shape(ranks);
  if (chosen.rows == square.rows) return "";
  return fmt::format("{}x{}", chosen.rows, chosen.cols);
}

/// "train --model deep (1000 x 1000, 200000 entries)" for the memory plan's message.
std::string run_description(const TrainOptions& o, std::int64_t m, std::int64_t n,
                            std::int64_t entries) {
  return fmt::format("train --model {} ({} x {}, {} entries)", o.model, m, n, entries);
}

}  // namespace

int run_train(const TrainOptions& options) {
  TrainOptions o = options;  // the preset's rank may be lowered to fit the data
  // Stop signals only set a flag since main() started (StopSignals there): one that came
  // during start-up or the data load stops the run at its first iteration boundary.
  const ModelKind kind = parse_model_kind(o.model);
  fail_if(!(o.lr > 0.0) || !std::isfinite(o.lr), "--lr must be a positive number (got {})", o.lr);
  // Depth, width and eps^L before anything is read or allocated (shallow has 2 factors).
  check_chain_options(kind == ModelKind::kShallow ? 2 : o.depth, o.width, o.init_scale);
  fail_if(o.rank < 0, "--rank must be positive (got {})", o.rank);
  fail_if(o.normalization != "mn" && o.normalization != "observed",
          "--loss-normalization must be 'mn' or 'observed' (got '{}')", o.normalization);
  fail_if(o.rows < 0 || o.cols < 0, "--rows and --cols must be positive");
  fail_if(!o.init.empty() && !o.run.restart.empty(),
          "--init and --restart cannot be combined: a restart continues from its checkpoint's "
          "factors, so one of them would be ignored (drop --init to continue, --restart to start "
          "from {})",
          o.init);
  fail_if(o.init_structure != "auto" && o.init_structure != "dense" && o.init_structure != "implicit",
          "--init-structure must be auto, dense or implicit (got '{}')", o.init_structure);
  RunOptions run_options = o.run;
  run_options.grid = default_grid(o);
  RunSession session("train", run_options, o.to_json(), {},
                     {{"--data", o.data}, {"--test", o.test}, {"--truth", o.truth},
                      {"--init", o.init}});
  const ProcessGrid& grid = session.grid();

  session.phases().enter("read");
  ReadOptions read_options{parse_data_format(o.format), o.index_base};
  // Not const: distribute() below takes the entries and frees them once packed for sending.
  LoadedData data = read_data(grid.comm(), o.data, o.test, read_options);
  const DataFingerprint fingerprint = fingerprint_entries(grid.comm(), data.train);
  // The validation entries leave the training set before anything is fitted to it (a bad
  // entry seen by one rank fails every rank).
  EntryList validation_entries;
  run_agreed(grid.comm(),
             [&] { validation_entries = split_off(data.train, o.validation, o.seed); });
  std::optional<FactorFileInfo> init_info;
  if (!o.init.empty()) init_info = read_factor_file_info(grid.comm(), o.init);
  const auto checkpoint_shape = [&](const CheckpointInfo& info) {
    return problem_shape(o, data, info.factors);
  };
  std::optional<Restart<TrainRestart>> resume = session.find_restart<TrainRestart>(
      [&](const CheckpointInfo& info) {
        check_continues_this_run(session, info, o, checkpoint_shape(info), fingerprint);
      },
      [&](const std::string&, const CheckpointInfo& info) {
        const FactorShape shape = checkpoint_shape(info);
        const int block = choose_block_size(shape.rows, shape.cols, grid, o.block_size);
        TrainRestart restart;
        restart.layout.emplace(shape.rows, shape.cols, block, o.seed, !o.no_permute);
        restart.checkpoint = load_checkpoint(grid, *restart.layout, info, block);
        return restart;
      });
  if (resume) {
    const IndexLayout& layout = *resume->loaded.layout;
    fail_if(resume->loaded.checkpoint.row_permutation != layout.row_permutation() ||
                resume->loaded.checkpoint.col_permutation != layout.col_permutation(),
            "{}: the stored row/column permutations differ from those of --seed {} (written by "
            "another cdmf version?)",
            resume->path, o.seed);
  }

  const FactorShape shape = resume
                                ? FactorShape{resume->info.factors.rows, resume->info.factors.cols}
                                : problem_shape(o, data, std::nullopt);
  if (!o.truth.empty()) {
    const FactorShape truth_shape = truth_dimensions(grid.comm(), o.truth);
    check_same_shape(o, "truth", o.truth, truth_shape.rows, truth_shape.cols, shape);
  }
  if (init_info)
    check_same_shape(o, "init factor file", o.init, init_info->rows, init_info->cols, shape);
  const std::int64_t m = shape.rows, n = shape.cols;
  const int block = choose_block_size(m, n, grid, o.block_size);
  // Test pairs whose user or item the training data never saw do not widen the problem: they
  // are cold-start pairs, scored apart from what is known (cold_start_sse).
  const EntryList cold_test = split_outside(data.test, m, n);
  // The preset's generous rank is an upper bound: on data too small for it, the largest that fits.
  if (o.rank_from_preset && 2 * o.rank > std::min(m, n)) {
    o.rank = std::max<std::int64_t>(1, std::min(m, n) / 2);
    if (session.is_root())
      fmt::print("preset: --rank lowered to {} (2*rank must not exceed min(rows, cols) = {})\n",
                 o.rank, std::min(m, n));
  }

  // Plan the memory of the run before the factors and the distributed entries exist; for a
  // compressed model built here, choose the deep init it starts from.
  const bool builds_compressed = kind == ModelKind::kCompressed && !resume && !init_info;
  fail_if(kind == ModelKind::kCompressed && init_info && o.init_structure == "implicit",
          "--init-structure implicit builds its own init; {} holds one to compress (use dense)", o.init);
  bool implicit_init = builds_compressed && o.init_structure == "implicit";
  {
    std::int64_t entries = static_cast<std::int64_t>(data.train.size() + data.test.size() +
                                                     validation_entries.size());
    MPI_Allreduce(MPI_IN_PLACE, &entries, 1, MPI_INT64_T, MPI_SUM, grid.comm());
    TrainFootprint footprint;
    footprint.rows = m;
    footprint.cols = n;
    footprint.entries = entries;
    const std::string optimizer = o.optimizer;
    footprint.optimizer_copies = optimizer == "adam" ? 2 : optimizer == "gd" ? 0 : 1;
    if (o.validation > 0.0) ++footprint.optimizer_copies;  // the best factors, kept
    footprint.diagnostics = o.diagnostics;
    if (resume) {
      footprint.depth = resume->info.factors.depth;
      footprint.width = resume->info.factors.width;
    } else if (init_info && kind != ModelKind::kCompressed) {
      footprint.depth = init_info->depth;
      footprint.width = init_info->width;
    } else {
      const ChainGeometry geometry = model_geometry(o, kind, m, n);
      footprint.depth = geometry.depth;
      footprint.width = geometry.width;
      if (kind == ModelKind::kCompressed) {
        footprint.deep_init_depth = init_info ? init_info->depth : geometry.depth;
        footprint.deep_init_width = init_info ? init_info->width : geometry.width;
        footprint.depth = footprint.deep_init_depth + 2;
        footprint.width = 2 * o.rank;
      }
    }
    const bool thin = kind != ModelKind::kDeep;
    footprint.dense_strategy = !uses_sparse_strategy(o.strategy, thin, false);
    // The structured init is defined for widths h >= max(m, n) (signed permutations cut to
    // shape); a narrower deep init (e.g. the ratings preset's min(m, n)) stays dense.
    if (builds_compressed && o.init_structure == "auto")
      implicit_init = footprint.deep_init_width >= std::max(m, n) &&
                      (std::max(m, n) > kImplicitInitSize ||
                       plan_train_memory("", footprint, grid).per_rank_bytes(grid.size()) >
                           session.budget().per_rank_bytes);
    if (implicit_init) {
      footprint.implicit_init = true;
      footprint.rank = o.rank;
      footprint.deep_init_depth = 0;
    }
    session.check_memory(plan_train_memory(run_description(o, m, n, entries), footprint, grid));
  }

  const IndexLayout layout =
      resume ? *resume->loaded.layout : IndexLayout(m, n, block, o.seed, !o.no_permute);
  Observations train = distribute(grid, std::move(data.train), layout);
  std::optional<Observations> test;
  if (!o.test.empty()) test = distribute(grid, std::move(data.test), layout);
  std::optional<Observations> validation;
  if (o.validation > 0.0) validation = distribute(grid, std::move(validation_entries), layout);
  // Biases: restored with the checkpoint (bitwise), else fitted. Every set then holds its
  // observations' offsets mu + b_i + c_j, so the chain fits the residual of the biases.
  std::optional<Biases> biases;
  if (resume) biases = std::move(resume->loaded.checkpoint.biases);
  if (resume)
    fail_if(o.biases != biases.has_value(), "{}: the checkpoint {} biases but this run {}",
            resume->path, biases ? "has" : "has no", o.biases ? "asks for them" : "does not");
  if (o.biases && !biases) biases = fit_biases(grid, train, m, n, {o.bias_reg, o.bias_sweeps});
  if (biases) {
    set_bias_offsets(train, *biases);
    if (test) set_bias_offsets(*test, *biases);
    if (validation) set_bias_offsets(*validation, *biases);
  }
  const std::optional<std::pair<double, double>> clip =
      o.clip ? std::optional(value_range(grid.comm(), train)) : std::nullopt;
  Truth truth;
  if (!o.truth.empty()) truth = read_truth(grid, layout, o.truth, block);
  const double normalization = o.normalization == "mn"
                                   ? static_cast<double>(m) * static_cast<double>(n)
                                   : static_cast<double>(train.global_count);

  session.phases().enter("init");
  Chain chain;
  TrainerState start;
  if (resume) {
    chain = std::move(resume->loaded.checkpoint.chain);
    start = std::move(resume->loaded.checkpoint.state);
    if (session.is_root())
      fmt::print(
          "restart: continuing from {} at iteration {} ({:.2f} s of training so far, "
          "written on {} ranks, grid {}; read in {:.2f} s)\n",
          resume->path, start.iteration, start.seconds, resume->info.ranks, resume->info.grid,
          resume->read_seconds);
  } else if (init_info) {
    chain.kind = parse_model_kind(init_info->model);
    chain.factors = read_factors(grid, layout, *init_info, block);
    chain.lr_multipliers = init_info->lr_multipliers;
    const std::string diverged = diverged_factors(chain.factors);
    fail_if(!diverged.empty(), "{}: {}: a diverged state is no init", o.init, diverged);
  } else if (implicit_init) {
    // The structured init, compressed by the truncated SVD of the sparse S0: no deep chain.
    const ChainGeometry geometry = model_geometry(o, kind, m, n);
    const StructuredInit init(m, n, geometry.depth, geometry.width, o.seed);
    session.phases().enter("compress");
    if (session.is_root()) {
      fmt::print("compress: implicit structured init (signed permutations, width {}) and the top {} "
                 "singular triplets of the sparse first gradient\n", geometry.width, o.rank);
      std::fflush(stdout);
    }
    ImplicitCompressionReport report;
    chain = compress_implicit(grid, layout, train, normalization, init,
                              {o.rank, o.gamma, o.init_scale}, &report);
    const SparseSvd& svd = report.svd;
    if (session.is_root()) {
      fmt::print("compress: implicit structured init done; PARPACK in {:.2f} s, {} passes over the "
                 "data, largest residual {:.1e} s_1\n",
                 report.svd_seconds, svd.passes,
                 *std::max_element(svd.residuals.begin(), svd.residuals.end()));
      if (!svd.warning.empty()) fmt::print(stderr, "cdmf: warning: compression: {}\n", svd.warning);
    }
  } else {
    const ChainGeometry geometry = model_geometry(o, kind, m, n);
    // A wide init takes a while: say what is being built before, and how long it took after.
    const double begin = MPI_Wtime();
    if (session.is_root()) {
      fmt::print("init: building a depth-{} chain of width {} for the {} x {} problem\n",
                 geometry.depth, geometry.width, m, n);
      std::fflush(stdout);
    }
    chain = make_deep_chain(grid, layout, geometry.depth, geometry.width, o.init_scale, o.seed,
                            kind == ModelKind::kCompressed ? ModelKind::kDeep : kind);
    if (session.is_root()) fmt::print("init: built in {:.2f} s\n", MPI_Wtime() - begin);
  }
  // A compressed model starts from a deep init (built or read), compressed here with the
  // first gradient of the deep chain (dense: the deep chain is h x n).
  if (kind == ModelKind::kCompressed && chain.kind != ModelKind::kCompressed) {
    session.phases().enter("compress");
    const double begin = MPI_Wtime();
    if (session.is_root()) {
      fmt::print("compress: first gradient of the width-{} chain and its top {} singular pairs\n",
                 chain.width(), o.rank);
      std::fflush(stdout);
    }
    DenseStrategy deep_loss(train, nullptr, std::nullopt, normalization);
    chain = compress_chain(chain, deep_loss, {o.rank, o.gamma, o.init_scale});
    if (session.is_root()) fmt::print("compress: done in {:.2f} s\n", MPI_Wtime() - begin);
  }
  session.phases().enter("init");
  const auto [cold_sse, cold_count] =
      cold_start_sse(grid.comm(), cold_test, layout, biases, train, clip);
  const std::unique_ptr<Strategy> strategy = make_strategy(
      o.strategy, chain, train, test ? &*test : nullptr, std::move(truth), normalization);
  // The validation loss has the training loss's formula (the same N) on the validation entries.
  const std::unique_ptr<Strategy> validation_strategy =
      validation ? make_strategy(o.strategy, chain, *validation, nullptr, {}, normalization)
                 : nullptr;
  fail_if(chain.kind != kind, "{}: holds a '{}' model, not '{}'", o.init, model_name(chain.kind),
          o.model);
  OptimizerConfig optimizer_config{parse_optimizer_kind(o.optimizer), o.lr, o.momentum, o.beta1,
                                   o.beta2};
  Optimizer optimizer(optimizer_config, chain);
  if (resume) restore_optimizer(resume->loaded.checkpoint, optimizer, resume->path);
  if (session.is_root())
    fmt::print(
        "data: {} x {}, {} training entries{}{}{}; model {}: {} factors, width {}, {} strategy\n",
        m, n, train.global_count,
        validation ? fmt::format(", {} validation entries", validation->global_count) : "",
        test ? fmt::format(", {} test entries{}", test->global_count,
                           cold_count > 0 ? fmt::format(" (and {} cold-start pairs, scored apart)",
                                                        cold_count)
                                          : "")
             : "",
        biases ? fmt::format("; biases fitted, mean {:.4f}", biases->mu) : "",
        o.model, chain.depth(), chain.width(),
        dynamic_cast<const SparseStrategy*>(strategy.get()) ? "sparse" : "dense");

  // Diagnostics measure W_l(t) - W_l(0): a restart takes W_l(0) from the checkpoint.
  std::optional<Chain> initial;
  if (o.diagnostics) {
    initial.emplace(chain);
    if (resume) {
      fail_if(!resume->loaded.checkpoint.diagnostics_initial,
              "{}: --diagnostics needs W_l(0), which this checkpoint lacks (the run was started "
              "without --diagnostics)",
              resume->path);
      initial->factors = std::move(*resume->loaded.checkpoint.diagnostics_initial);
    }
  } else {
    // Columns of diagnostics now off; the validation columns (first) stay.
    for (MetricsRow& row : start.history)
      row.extra.resize(validation ? std::min<size_t>(row.extra.size(), 2) : 0);
  }
  std::optional<CompressibilityProbe> probe;
  if (initial) probe.emplace(*initial, 5);
  RunSession::Training training;
  training.layout = &layout;
  if (validation) training.extra_columns = {"validation_loss", "validation_rmse"};
  if (probe)
    for (const std::string& name : probe->column_names()) training.extra_columns.push_back(name);
  training.validation = validation_strategy.get();
  training.keep_best = validation.has_value();
  if (resume && probe)
    fail_if(resume->loaded.checkpoint.extra_metric_columns != training.extra_columns,
            "{}: the stored metrics columns differ from those of --diagnostics", resume->path);
  if (probe) training.probe = [&](const Chain& c) { return probe->measure(c); };
  training.meta = CheckpointMeta{session.config().dump(), fingerprint,
                                 &data.row_ids,           &data.col_ids,
                                 training.extra_columns,  initial ? &initial->factors : nullptr,
                                 biases ? &*biases : nullptr, clip};

  const TrainResult result = session.train(chain, *strategy, optimizer, std::move(start), training);

  session.phases().enter("output");
  if (!o.run.output.empty() && !result.diverged())  // no factors of a diverged state
    write_factor_file(grid, layout, o.run.output, chain,
                      {kept_iteration(result, training.keep_best), session.config().dump(),
                       biases ? &*biases : nullptr, clip},
                      data.row_ids, data.col_ids);
  nlohmann::json extra = {
      {"rows", m},
      {"cols", n},
      {"train_entries", train.global_count},
      {"data_fingerprint", fingerprint.text()},
      {"init_structure", kind != ModelKind::kCompressed || resume || init_info
                             ? nlohmann::json(nullptr)
                             : nlohmann::json(implicit_init ? "implicit" : "dense")},
      {"restarted_from", resume ? nlohmann::json(resume->path) : nlohmann::json(nullptr)}};
  if (biases) extra["bias_mean"] = biases->mu;
  if (!o.test.empty()) {
    // test_loss and test_rmse are over the warm pairs, the ones the chain models.
    extra["cold_test_entries"] = cold_count;
    extra["cold_test_rmse"] =
        cold_count > 0 ? nlohmann::json(std::sqrt(cold_sse / static_cast<double>(cold_count)))
                       : nlohmann::json(nullptr);
  }
  if (validation) {
    extra["validation_entries"] = validation->global_count;
    extra.update(best_model_summary(result));
  }
  session.write_summary(o.model, result, extra);
  return RunSession::exit_status(result);
}

}  // namespace cdmf::run
