// Checkpoints and restarts (DESIGN.md section 3): the file round trip, bitwise continuation on
// the same grid, agreement to 1e-10 on another grid (4 -> 2 and 1 -> 4 ranks inside one
// 4-rank run), the trainer's cadence and agreed decisions, stop signals, the factored spectrum
// of `cdmf inspect`, and every damaged or unusable checkpoint failing with one clear error on
// every rank while the newest good checkpoint stays intact.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/resource.h>

#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>

#include "cdmf/core/error.hpp"
#include "cdmf/io/checkpoint.hpp"
#include "cdmf/io/hdf5.hpp"
#include "cdmf/linalg/scalapack.hpp"
#include "cdmf/model/spectrum.hpp"
#include "cdmf/random/counter_rng.hpp"
#include "cdmf/strategy/dense_strategy.hpp"
#include "cdmf/strategy/sparse_strategy.hpp"
#include "cdmf/train/stop_signals.hpp"
#include "support/serial_reference.hpp"
#include "support/test_support.hpp"

namespace cdmf {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kRows = 14, kCols = 11;
constexpr double kNormalization = kRows * kCols;

/// A rank-2 target and about half of its entries, the same on every rank.
struct Problem {
  test::SerialMatrix truth;
  EntryList entries;
};

Problem make_problem() {
  test::SerialMatrix a{kRows, 2, {}}, b{2, kCols, {}};
  for (std::int64_t e = 0; e < 2 * kRows; ++e) a.data.push_back(gaussian(11, 1, e));
  for (std::int64_t e = 0; e < 2 * kCols; ++e) b.data.push_back(gaussian(11, 2, e));
  Problem p{test::multiply(a, b), {}};
  p.entries = test::random_entries(kRows, kCols, 0.5, 3, p.truth);
  return p;
}

enum class Model { kDeep, kNarrow };

OptimizerConfig optimizer_config(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kGd:
      return {kind, 2.0};
    case OptimizerKind::kMomentum:
      return {kind, 0.5};
    case OptimizerKind::kNesterov:
      return {kind, 0.5};
    case OptimizerKind::kAdam:
      return {kind, 0.01};
  }
  return {};
}

/// Everything one training run needs on one grid: a deep chain on the dense strategy or a
/// narrow one on the sparse strategy. Not movable (the strategy keeps the observations).
struct RunSetup {
  RunSetup(const ProcessGrid& grid, Model model, OptimizerKind kind, const Problem& p)
      : layout(kRows, kCols, choose_block_size(kRows, kCols, grid, 3), 5),
        train(test::owned_observations(grid, layout, p.entries)),
        chain(model == Model::kDeep
                  ? make_deep_chain(grid, layout, 3, 12, 0.6, 21)
                  : make_deep_chain(grid, layout, 3, 4, 0.6, 21, ModelKind::kNarrow)),
        optimizer(optimizer_config(kind), chain) {
    if (model == Model::kDeep)
      strategy = std::make_unique<DenseStrategy>(train, nullptr, std::nullopt, kNormalization);
    else
      strategy = std::make_unique<SparseStrategy>(train, nullptr, std::nullopt, std::nullopt,
                                                  kNormalization);
  }
  RunSetup(const RunSetup&) = delete;

  /// Replaces the chain and optimizer state by those of checkpoint `path`.
  TrainerState restore(const ProcessGrid& grid, const std::string& path) {
    const CheckpointInfo info = read_checkpoint_info(grid.comm(), path);
    LoadedCheckpoint loaded = load_checkpoint(grid, layout, info, layout.block());
    chain = std::move(loaded.chain);
    restore_optimizer(loaded, optimizer, path);
    return std::move(loaded.state);
  }

  IndexLayout layout;
  Observations train;
  Chain chain;
  Optimizer optimizer;
  std::unique_ptr<Strategy> strategy;
};

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

/// Rows equal bit for bit in everything but the clock.
void expect_same_history(const std::vector<MetricsRow>& a, const std::vector<MetricsRow>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t r = 0; r < a.size(); ++r) {
    EXPECT_EQ(a[r].iteration, b[r].iteration) << "row " << r;
    EXPECT_TRUE(same_bits(a[r].train_loss, b[r].train_loss)) << "row " << r;
    EXPECT_TRUE(same_bits(a[r].test_loss, b[r].test_loss)) << "row " << r;
    EXPECT_TRUE(same_bits(a[r].train_rmse, b[r].train_rmse)) << "row " << r;
    EXPECT_TRUE(same_bits(a[r].test_rmse, b[r].test_rmse)) << "row " << r;
    EXPECT_EQ(a[r].recovery_error, b[r].recovery_error) << "row " << r;
    EXPECT_EQ(a[r].extra, b[r].extra) << "row " << r;
  }
}

std::string checkpoint_path(const std::string& dir, std::int64_t iteration) {
  return dir + "/checkpoint-" + std::to_string(iteration) + ".h5";
}

// ---------------------------------------------------------------------------------------
// The file

TEST(Checkpoint, RoundTripRestoresEveryPartBitwise) {
  const Problem p = make_problem();
  const std::string dir = test::temp_dir("checkpoint_round_trip");
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      RunSetup s(grid, Model::kDeep, OptimizerKind::kAdam, p);
      std::vector<DistMatrix> gradient;
      for (int t = 0; t < 3; ++t) {
        s.strategy->evaluate(s.chain, &gradient, false);
        s.optimizer.step(s.chain, gradient);
      }
      s.chain.lr_multipliers = {0.25, 1.0, 0.5};
      TrainerState state{3, 1.5, 0.125, 2, {}};
      for (std::int64_t t : {0, 1, 2}) {
        MetricsRow row;
        row.iteration = t;
        row.seconds = 0.5 * t;
        row.train_loss = 1.0 / (t + 1);
        row.test_loss = 2.0 / (t + 1);
        row.train_rmse = 3.0 / (t + 1);
        row.test_rmse = 4.0 / (t + 1);
        if (t != 1) row.recovery_error = 5.0 / (t + 1);
        row.extra = {double(t), -double(t)};
        state.history.push_back(row);
      }
      const DataFingerprint data = fingerprint_entries(grid.comm(), p.entries);
      const std::string path =
          dir + "/grid" + std::to_string(grid.rows()) + "x" + std::to_string(grid.cols()) + ".h5";
      const CheckpointMeta meta{R"({"lr": 0.01})", data,       nullptr,
                                nullptr,           {"x", "y"}, &s.chain.factors};
      write_checkpoint(grid, s.layout, path, s.chain, s.optimizer, state, meta);

      const CheckpointInfo info = read_checkpoint_info(grid.comm(), path);
      EXPECT_TRUE(info.restartable);
      EXPECT_EQ(info.factors.iteration, 3);
      EXPECT_EQ(info.factors.config_json, R"({"lr": 0.01})");
      EXPECT_TRUE(info.factors.checksums);
      EXPECT_EQ(info.optimizer, "adam");
      EXPECT_EQ(info.step_count, 3);
      EXPECT_TRUE(info.has_first_moments && info.has_second_moments && info.has_diagnostics);
      EXPECT_EQ(info.elapsed_seconds, 1.5);
      EXPECT_TRUE(info.data == data);
      EXPECT_EQ(info.permutation_seed, 5u);
      EXPECT_EQ(info.metric_rows, 3);
      EXPECT_EQ(info.ranks, grid.size());

      const LoadedCheckpoint loaded = load_checkpoint(grid, s.layout, info, s.layout.block());
      for (int l = 0; l < 3; ++l) {
        EXPECT_EQ(loaded.chain.factors[l].local(), s.chain.factors[l].local()) << "W" << l + 1;
        EXPECT_EQ(loaded.first_moments[l].local(), s.optimizer.first_moments()[l].local());
        EXPECT_EQ(loaded.second_moments[l].local(), s.optimizer.second_moments()[l].local());
        EXPECT_EQ((*loaded.diagnostics_initial)[l].local(), s.chain.factors[l].local());
      }
      EXPECT_EQ(loaded.chain.lr_multipliers, s.chain.lr_multipliers);
      EXPECT_EQ(loaded.chain.kind, ModelKind::kDeep);
      EXPECT_EQ(loaded.step_count, 3);
      EXPECT_EQ(loaded.row_permutation, s.layout.row_permutation());
      EXPECT_EQ(loaded.col_permutation, s.layout.col_permutation());
      EXPECT_EQ(loaded.state.iteration, 3);
      EXPECT_EQ(loaded.state.seconds, 1.5);
      EXPECT_EQ(loaded.state.best_test_loss, 0.125);
      EXPECT_EQ(loaded.state.stale_logs, 2);
      EXPECT_EQ(loaded.extra_metric_columns, (std::vector<std::string>{"x", "y"}));
      expect_same_history(loaded.state.history, state.history);
      for (size_t r = 0; r < 3; ++r) EXPECT_EQ(loaded.state.history[r].seconds, 0.5 * r);
    });
  }
}

TEST(Checkpoint, IsAFactorFileThatPlainHdf5Reads) {
  const Problem p = make_problem();
  const std::string path = test::temp_dir("checkpoint_plain") + "/ck.h5";
  test::on_world_grid([&](const ProcessGrid& grid) {
    RunSetup s(grid, Model::kNarrow, OptimizerKind::kMomentum, p);
    write_checkpoint(grid, s.layout, path, s.chain, s.optimizer, {}, {});
    // A checkpoint is a valid --init / predict input.
    const FactorFileInfo info = read_factor_file_info(grid.comm(), path);
    EXPECT_EQ(info.model, "narrow");
    EXPECT_EQ(read_factors(grid, s.layout, info, s.layout.block())[2].local(),
              s.chain.factors[2].local());
    test::on_root(grid.comm(), [&] {
      const h5::FileId file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
      ASSERT_TRUE(file.valid());
      for (const char* name :
           {"/factors/W1", "/optimizer/first_moment/W3", "/permutation/rows", "/permutation/cols",
            "/rng", "/trainer", "/metrics/iteration", "/metrics/recovery_error"})
        EXPECT_GT(H5Lexists(file.get(), name, H5P_DEFAULT), 0) << name;
      EXPECT_LE(H5Lexists(file.get(), "/optimizer/second_moment", H5P_DEFAULT), 0);
      // Metadata in the checksummed 1.8+ format (superblock version 2 or later).
      unsigned super = 0, freelist = 0, table = 0, shared = 0;
      const h5::PropertyListId creation(H5Fget_create_plist(file.get()));
      H5Pget_version(creation.get(), &super, &freelist, &table, &shared);
      EXPECT_GE(super, 2u);
    });
  });
}

TEST(Checkpoint, DataFingerprintIgnoresOrderAndSplitButNotValues) {
  const Problem p = make_problem();
  // Every rank holds a different, reversed share of the entries.
  EntryList mine;
  for (size_t e = p.entries.size(); e-- > 0;)
    if (static_cast<int>(e % 3) % test::world_size() == test::world_rank()) {
      mine.rows.push_back(p.entries.rows[e]);
      mine.cols.push_back(p.entries.cols[e]);
      mine.values.push_back(p.entries.values[e]);
      mine.lines.push_back(1);
    }
  const DataFingerprint whole = fingerprint_entries(MPI_COMM_SELF, p.entries);
  EXPECT_TRUE(fingerprint_entries(MPI_COMM_WORLD, mine) == whole);
  EXPECT_EQ(whole.entries, static_cast<std::int64_t>(p.entries.size()));
  EXPECT_EQ(whole.text().size(), 16u);
  EntryList changed = p.entries;
  changed.values[7] = std::nextafter(changed.values[7], 1e9);
  EXPECT_FALSE(fingerprint_entries(MPI_COMM_SELF, changed) == whole);
}

// ---------------------------------------------------------------------------------------
// Restarts

/// Uninterrupted run of 60 iterations vs one stopped by a signal at iteration 27 (seen by the
/// last rank only), checkpointed, and continued by fresh objects from the file.
void expect_bitwise_restart(const ProcessGrid& grid, Model model, OptimizerKind kind,
                            const Problem& p, const std::string& dir) {
  SCOPED_TRACE(std::string(model == Model::kDeep ? "deep/dense " : "narrow/sparse ") +
               optimizer_name(kind));
  const TrainerConfig config{60, 0.0, 10, 0};
  RunSetup a(grid, model, kind, p);
  const TrainResult full = Trainer(config, {}).run(a.chain, *a.strategy, a.optimizer);

  RunSetup b(grid, model, kind, p);
  std::int64_t boundary = 0;
  TrainerConfig polled_each_iteration{60, 0.0, 10, 0, 20};
  polled_each_iteration.agreement_seconds = 0.0;  // so that poll 27 is iteration 27
  Trainer first(polled_each_iteration, {},
                [&] { return boundary++ >= 27 && grid.rank() == grid.size() - 1 ? SIGUSR1 : 0; });
  std::vector<std::int64_t> written;
  first.set_checkpoint_hook([&](const Chain& c, const Optimizer& o, const TrainerState& state) {
    write_checkpoint(grid, b.layout, checkpoint_path(dir, state.iteration), c, o, state, {});
    written.push_back(state.iteration);
  });
  const TrainResult stopped = first.run(b.chain, *b.strategy, b.optimizer);
  EXPECT_EQ(stopped.stop_reason, "signal");
  EXPECT_EQ(stopped.stop_signal, SIGUSR1);
  EXPECT_TRUE(stopped.interrupted());
  EXPECT_EQ(stopped.iterations, 27);
  EXPECT_EQ(written, (std::vector<std::int64_t>{20, 27}));

  RunSetup c(grid, model, kind, p);
  TrainerState start = c.restore(grid, checkpoint_path(dir, 27));
  EXPECT_EQ(start.iteration, 27);
  EXPECT_EQ(start.history.size(), 3u);  // rows 0, 10, 20: the stop row at 27 is not history
  const TrainResult continued = Trainer(config, {}).run(c.chain, *c.strategy, c.optimizer, start);

  EXPECT_EQ(continued.stop_reason, "max_iters");
  EXPECT_EQ(continued.iterations, full.iterations);
  EXPECT_EQ(c.optimizer.step_count(), a.optimizer.step_count());
  expect_same_history(continued.history, full.history);
  for (int l = 0; l < 3; ++l) {
    EXPECT_EQ(c.chain.factors[l].local(), a.chain.factors[l].local()) << "W" << l + 1;
    for (size_t m = 0; m < a.optimizer.first_moments().size(); ++m)
      EXPECT_EQ(c.optimizer.first_moments()[m].local(), a.optimizer.first_moments()[m].local());
  }
}

TEST(Restart, ContinuesBitwiseOnTheSameGrid) {
  const Problem p = make_problem();
  const std::string dir = test::temp_dir("restart_bitwise");
  test::on_world_grid([&](const ProcessGrid& grid) {
    for (Model model : {Model::kDeep, Model::kNarrow})
      for (OptimizerKind kind :
           {OptimizerKind::kGd, OptimizerKind::kMomentum, OptimizerKind::kAdam})
        expect_bitwise_restart(grid, model, kind, p, dir);
  });
}

/// Stops on grid `from` at iteration 25 with a checkpoint, continues on grid `to` to 60, and
/// compares the end-to-end matrix and the losses with the uninterrupted run on `from`.
void expect_restart_across_grids(GridShape from, GridShape to, Model model) {
  const Problem p = make_problem();
  const std::string dir = test::temp_dir("restart_grids");
  const std::string path = checkpoint_path(dir, 25);
  test::SerialMatrix reference, continued;  // original order, world rank 0
  std::vector<MetricsRow> reference_rows, continued_rows;
  const auto end_to_end_original = [](const Chain& chain, const IndexLayout& layout) {
    return test::gather_original(end_to_end(chain), layout, Space::kRows, Space::kCols);
  };
  test::on_grid(from, [&](const ProcessGrid& grid) {
    RunSetup a(grid, model, OptimizerKind::kMomentum, p);
    reference_rows = Trainer({60, 0.0, 10, 0}, {}).run(a.chain, *a.strategy, a.optimizer).history;
    reference = end_to_end_original(a.chain, a.layout);
    RunSetup b(grid, model, OptimizerKind::kMomentum, p);
    Trainer first({25, 0.0, 10, 0}, {});
    first.set_checkpoint_hook([&](const Chain& c, const Optimizer& o, const TrainerState& state) {
      write_checkpoint(grid, b.layout, path, c, o, state, {});
    });
    first.run(b.chain, *b.strategy, b.optimizer);
  });
  test::on_grid(to, [&](const ProcessGrid& grid) {
    RunSetup c(grid, model, OptimizerKind::kMomentum, p);
    const TrainerState start = c.restore(grid, path);
    continued_rows =
        Trainer({60, 0.0, 10, 0}, {}).run(c.chain, *c.strategy, c.optimizer, start).history;
    continued = end_to_end_original(c.chain, c.layout);
  });
  if (test::world_rank() != 0) return;
  EXPECT_LT(test::relative_error(continued.data, reference.data), 1e-10);
  ASSERT_EQ(continued_rows.size(), reference_rows.size());
  for (size_t r = 0; r < reference_rows.size(); ++r) {
    EXPECT_EQ(continued_rows[r].iteration, reference_rows[r].iteration);
    EXPECT_NEAR(continued_rows[r].train_loss, reference_rows[r].train_loss,
                1e-10 * reference_rows[r].train_loss);
  }
  EXPECT_LT(reference_rows.back().train_loss, 0.5 * reference_rows.front().train_loss)
      << "the trajectory must move for the comparison to mean something";
}

TEST(Restart, FourRanksToTwoAgreesTo1e10) {
  if (test::world_size() < 4) GTEST_SKIP() << "needs 4 ranks";
  expect_restart_across_grids({2, 2}, {1, 2}, Model::kDeep);
  expect_restart_across_grids({2, 2}, {2, 1}, Model::kNarrow);
}

TEST(Restart, OneRankToFourAgreesTo1e10) {
  if (test::world_size() < 4) GTEST_SKIP() << "needs 4 ranks";
  expect_restart_across_grids({1, 1}, {2, 2}, Model::kDeep);
  expect_restart_across_grids({1, 1}, {2, 2}, Model::kNarrow);
}

TEST(Restart, AnotherGridShapeOnTwoRanksAgreesTo1e10) {
  if (test::world_size() < 2) GTEST_SKIP() << "needs 2 ranks";
  expect_restart_across_grids({1, 2}, {2, 1}, Model::kDeep);
  expect_restart_across_grids({1, 2}, {1, 1}, Model::kNarrow);
}

// ---------------------------------------------------------------------------------------
// The trainer's cadence and agreed decisions

TEST(Trainer, CheckpointsAtMultiplesOfKAndWhenItStops) {
  const Problem p = make_problem();
  test::on_world_grid([&](const ProcessGrid& grid) {
    RunSetup s(grid, Model::kNarrow, OptimizerKind::kGd, p);
    std::vector<TrainerState> states;
    Trainer trainer({60, 0.0, 10, 0, 25}, {});
    trainer.set_checkpoint_hook([&](const Chain&, const Optimizer&, const TrainerState& state) {
      states.push_back(state);
    });
    trainer.run(s.chain, *s.strategy, s.optimizer);
    ASSERT_EQ(states.size(), 3u);
    EXPECT_EQ(states[0].iteration, 25);
    EXPECT_EQ(states[1].iteration, 50);
    EXPECT_EQ(states[2].iteration, 60);
    EXPECT_EQ(states[0].history.size(), 3u);  // rows 0, 10, 20
    EXPECT_EQ(states[2].history.size(), 6u);  // rows 0..50: row 60 is logged after the boundary
    EXPECT_LE(states[0].seconds, states[1].seconds);

    // Resumed at 50: the first checkpoint is the next multiple, not the loaded one again.
    std::vector<std::int64_t> resumed;
    Trainer again({110, 0.0, 10, 0, 25}, {});
    again.set_checkpoint_hook([&](const Chain&, const Optimizer&, const TrainerState& state) {
      resumed.push_back(state.iteration);
    });
    const TrainResult result = again.run(s.chain, *s.strategy, s.optimizer, states[1]);
    EXPECT_EQ(resumed, (std::vector<std::int64_t>{75, 100, 110}));
    EXPECT_EQ(result.history.front().iteration, 0);  // the restored history comes first
    EXPECT_EQ(result.history.back().iteration, 110);
    EXPECT_GE(result.seconds, states[1].seconds);  // elapsed time continues
  });
}

TEST(Trainer, SecondsCadenceAndSignalsAreAgreedAcrossRanks) {
  const Problem p = make_problem();
  test::on_world_grid([&](const ProcessGrid& grid) {
    RunSetup s(grid, Model::kNarrow, OptimizerKind::kGd, p);
    std::vector<std::int64_t> at;
    TrainerConfig config{100, 0.0, 10, 0};
    config.checkpoint_every_seconds = 1e-12;  // due at every boundary after the start
    config.agreement_seconds = 0.0;           // agreed at every boundary
    std::int64_t boundary = 0;
    // A SIGTERM that only the last rank sees, at boundary 4: every rank stops there.
    Trainer trainer(config, {}, [&] {
      return boundary++ == 4 && grid.rank() == grid.size() - 1 ? SIGTERM : 0;
    });
    trainer.set_checkpoint_hook([&](const Chain&, const Optimizer&, const TrainerState& state) {
      at.push_back(state.iteration);
    });
    const TrainResult result = trainer.run(s.chain, *s.strategy, s.optimizer);
    EXPECT_EQ(result.stop_reason, "signal");
    EXPECT_EQ(result.stop_signal, SIGTERM);
    EXPECT_EQ(result.iterations, 4);
    EXPECT_EQ(at, (std::vector<std::int64_t>{1, 2, 3, 4}));
    EXPECT_EQ(result.history.back().iteration, 4);  // the final row is reported
  });
}

TEST(Trainer, DecisionsAreAgreedAtACadenceOfIterations) {
  const Problem p = make_problem();
  test::on_world_grid([&](const ProcessGrid& grid) {
    RunSetup s(grid, Model::kNarrow, OptimizerKind::kGd, p);
    TrainerConfig config{1000, 0.0, 10, 0};
    // Far more than any iteration takes: after the first iteration every rank proposes the
    // longest cadence, 256 iterations.
    config.agreement_seconds = 1e9;
    std::int64_t polls = 0;
    // The last rank sees a signal from its third poll on: at iteration 0 (nothing measured
    // yet: cadence 1), 1 (cadence 256 from then on) and 257.
    Trainer trainer(config, {}, [&] { return polls++ >= 2 && grid.rank() == grid.size() - 1 ? SIGTERM : 0; });
    const TrainResult result = trainer.run(s.chain, *s.strategy, s.optimizer);
    EXPECT_EQ(result.stop_reason, "signal");
    EXPECT_EQ(result.iterations, 257);
    EXPECT_EQ(polls, 3);
  });
}

TEST(Trainer, WalltimeBudgetStopsAtTheNextBoundaryWithACheckpoint) {
  const Problem p = make_problem();
  test::on_world_grid([&](const ProcessGrid& grid) {
    RunSetup s(grid, Model::kNarrow, OptimizerKind::kGd, p);
    TrainerConfig config{1000000, 0.0, 10, 0};
    config.walltime_budget = 0.2;
    std::vector<std::int64_t> at;
    Trainer trainer(config, {});
    trainer.set_checkpoint_hook([&](const Chain&, const Optimizer&, const TrainerState& state) {
      at.push_back(state.iteration);
    });
    const double begin = MPI_Wtime();
    const TrainResult result = trainer.run(s.chain, *s.strategy, s.optimizer);
    EXPECT_EQ(result.stop_reason, "walltime");
    EXPECT_TRUE(result.interrupted());
    EXPECT_LT(MPI_Wtime() - begin, 0.2 + 1.0);
    EXPECT_GT(result.iterations, 0);
    EXPECT_EQ(at, std::vector<std::int64_t>{result.iterations});
  });
}

TEST(StopSignals, RecordSignalsInsteadOfDyingAndRestoreTheHandlers) {
  static volatile std::sig_atomic_t previous_calls = 0;
  struct sigaction mine {
  }, old{};
  mine.sa_handler = [](int) { previous_calls = previous_calls + 1; };
  sigemptyset(&mine.sa_mask);
  sigaction(SIGUSR1, &mine, &old);
  {
    StopSignals signals;
    EXPECT_EQ(signals.received(), 0);
    std::raise(SIGUSR1);
    EXPECT_EQ(signals.received(), SIGUSR1);
    std::raise(SIGTERM);  // would kill the process without the handler
    EXPECT_EQ(signals.received(), SIGTERM);
    EXPECT_EQ(previous_calls, 0);
    EXPECT_THROW(StopSignals(), Error);  // one at a time
    EXPECT_EQ(StopSignals::name(SIGUSR1), "SIGUSR1");
  }
  std::raise(SIGUSR1);
  EXPECT_EQ(previous_calls, 1);
  sigaction(SIGUSR1, &old, nullptr);
}

// ---------------------------------------------------------------------------------------
// The spectrum of `cdmf inspect`

TEST(Spectrum, ThinChainsUseTheFactorsAndMatchTheDenseSvd) {
  const Problem p = make_problem();
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      for (int depth : {2, 3, 4}) {
        const IndexLayout layout(kRows, kCols, 3, 5);
        Chain chain = make_deep_chain(grid, layout, depth, 4, 0.9, 31, ModelKind::kNarrow);
        for (DistMatrix& w : chain.factors)  // not orthogonal any more: a general thin chain
          w.fill([&](std::int64_t i, std::int64_t j) { return gaussian(7, depth, i * 97 + j); });
        const std::vector<double> factored = end_to_end_singular_values(chain);
        const std::vector<double> dense = singular_values(end_to_end(chain));
        ASSERT_EQ(factored.size(), dense.size());
        for (size_t k = 0; k < dense.size(); ++k)
          EXPECT_NEAR(factored[k], dense[k], 1e-12 * dense[0])
              << "depth " << depth << " s" << k + 1;
        EXPECT_EQ(factored[5], 0.0);  // rank <= 4: exact zeros past the core
      }
      // The deep model (width above m and n) takes the dense route.
      const IndexLayout layout(kRows, kCols, 3, 5);
      const Chain deep = make_deep_chain(grid, layout, 3, 20, 0.9, 31);
      EXPECT_EQ(end_to_end_singular_values(deep), singular_values(end_to_end(deep)));
    });
  }
}

// ---------------------------------------------------------------------------------------
// Checkpoint directories

TEST(CheckpointDirectory, KeepsTheNewestAndRemovesStaleTemporaries) {
  const Problem p = make_problem();
  const std::string dir = test::temp_dir("checkpoint_directory");
  test::write_text_file(dir + "/.checkpoint-0000000007.h5.tmp.Ab12Cd", "half a file");
  test::write_text_file(dir + "/notes.txt", "not ours");
  test::on_world_grid([&](const ProcessGrid& grid) {
    const CheckpointDirectory directory(grid.comm(), dir, 2);
    if (grid.is_root())
      EXPECT_EQ(directory.removed_temporaries(),
                std::vector<std::string>{dir + "/.checkpoint-0000000007.h5.tmp.Ab12Cd"});
    EXPECT_EQ(directory.file_for(1200), dir + "/checkpoint-0000001200.h5");
    RunSetup s(grid, Model::kNarrow, OptimizerKind::kGd, p);
    for (std::int64_t iteration : {5, 40, 300, 1200}) {
      write_checkpoint(grid, s.layout, directory.file_for(iteration), s.chain, s.optimizer,
                       {iteration, 0.0, 0.0, 0, {}}, {});
      EXPECT_TRUE(directory.prune(grid.comm()).empty());
    }
    EXPECT_EQ(list_checkpoints(grid.comm(), dir),
              (std::vector<std::string>{dir + "/checkpoint-0000001200.h5",
                                        dir + "/checkpoint-0000000300.h5"}));
    EXPECT_TRUE(list_checkpoints(grid.comm(), dir + "/absent").empty());
  });
  test::on_root(MPI_COMM_WORLD, [&] { EXPECT_TRUE(fs::exists(dir + "/notes.txt")); });
}

// ---------------------------------------------------------------------------------------
// Bad checkpoints: one clear error on every rank, the newest good checkpoint untouched

/// An Adam checkpoint at iteration 12 in `dir` on the world grid; returns its path.
std::string write_good_checkpoint(const std::string& dir, const Problem& p) {
  const std::string path = checkpoint_path(dir, 12);
  test::on_world_grid([&](const ProcessGrid& grid) {
    RunSetup s(grid, Model::kDeep, OptimizerKind::kAdam, p);
    Trainer trainer({12, 0.0, 5, 0}, {});
    trainer.set_checkpoint_hook([&](const Chain& c, const Optimizer& o, const TrainerState& state) {
      write_checkpoint(grid, s.layout, path, c, o, state, {});
    });
    trainer.run(s.chain, *s.strategy, s.optimizer);
  });
  return path;
}

/// Reads all of checkpoint `path` on the world grid, as a restart does.
void load_on_world(const std::string& path, const Problem& p) {
  test::on_world_grid([&](const ProcessGrid& grid) {
    RunSetup s(grid, Model::kDeep, OptimizerKind::kAdam, p);
    s.restore(grid, path);
  });
}

/// Overwrites `count` bytes of `path` at `offset` with their complement.
void flip_bytes(const std::string& path, std::uint64_t offset, int count) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(static_cast<std::streamoff>(offset));
  std::string bytes(static_cast<size_t>(count), '\0');
  file.read(bytes.data(), count);
  for (char& b : bytes) b = static_cast<char>(~b);
  file.seekp(static_cast<std::streamoff>(offset));
  file.write(bytes.data(), count);
}

/// Where the data of dataset `name` start in the file (contiguous layout).
std::uint64_t data_offset(const std::string& path, const std::string& name) {
  const h5::FileId file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  const h5::DatasetId dataset(H5Dopen2(file.get(), name.c_str(), H5P_DEFAULT));
  return H5Dget_offset(dataset.get());
}

TEST(BadCheckpoint, DamagedOrForeignFilesFailOnEveryRankNamingTheFile) {
  const Problem p = make_problem();
  const std::string dir = test::temp_dir("checkpoint_bad");
  const std::string good = write_good_checkpoint(dir, p);
  std::string before;
  test::on_root(MPI_COMM_WORLD, [&] { before = test::file_bytes(good); });

  struct Case {
    const char* name;
    const char* phrase;
    std::function<void(const std::string&)> edit;
  };
  const auto with_hdf5 = [](const std::function<void(hid_t)>& edit) {
    return [edit](const std::string& path) {
      const h5::FileId file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
      edit(file.get());
    };
  };
  const std::vector<Case> cases = {
      {"truncated.h5", "cannot open (not an HDF5 file or truncated)",
       [](const std::string& path) { fs::resize_file(path, fs::file_size(path) / 2); }},
      {"data_corrupted.h5", "/factors/W2 is corrupted (checksum mismatch",
       [](const std::string& path) { flip_bytes(path, data_offset(path, "/factors/W2") + 40, 8); }},
      {"moment_corrupted.h5", "/optimizer/second_moment/W3 is corrupted (checksum mismatch",
       [](const std::string& path) {
         flip_bytes(path, data_offset(path, "/optimizer/second_moment/W3"), 3);
       }},
      {"history_corrupted.h5", "/metrics/train_loss is corrupted (checksum mismatch",
       [](const std::string& path) {
         flip_bytes(path, data_offset(path, "/metrics/train_loss") + 9, 1);
       }},
      {"header_corrupted.h5", "cannot open (not an HDF5 file or truncated)",
       [](const std::string& path) { flip_bytes(path, 0, 8); }},
      {"version2.h5", "format_version 2 is not supported", with_hdf5([](hid_t file) {
         const std::int64_t two = 2;
         const h5::AttributeId a(H5Aopen(file, "format_version", H5P_DEFAULT));
         H5Awrite(a.get(), H5T_NATIVE_INT64, &two);
       })},
      {"incomplete.h5", "an incomplete checkpoint (/trainer is missing)",
       with_hdf5([](hid_t file) { H5Ldelete(file, "/trainer", H5P_DEFAULT); })},
      {"no_moments.h5", "does not fit optimizer 'adam'",
       with_hdf5([](hid_t file) { H5Ldelete(file, "/optimizer/second_moment", H5P_DEFAULT); })},
      {"factor_file.h5", "a factor file without the restart state", with_hdf5([](hid_t file) {
         for (const char* group : {"/optimizer", "/trainer", "/permutation", "/metrics"})
           H5Ldelete(file, group, H5P_DEFAULT);
       })},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir + "/" + c.name;
    test::derive_file(good, path, c.edit);
    test::expect_error(MPI_COMM_WORLD, path, c.phrase, [&] { load_on_world(path, p); });
  }
  test::on_root(MPI_COMM_WORLD, [&] { EXPECT_EQ(test::file_bytes(good), before); });
  load_on_world(good, p);  // still loads
}

TEST(BadCheckpoint, UnwritableDirectoryFailsBeforeAnyWork) {
  const std::string dir = test::temp_dir("checkpoint_unwritable");
  // Root ignores permission bits: a file in the way and /proc stop even root.
  const std::string in_the_way = dir + "/plain_file";
  test::write_text_file(in_the_way, "x");
  test::on_world_grid([&](const ProcessGrid& grid) {
    test::expect_error(grid.comm(), in_the_way, "cannot be created",
                       [&] { CheckpointDirectory(grid.comm(), in_the_way, 3); });
    test::expect_error(grid.comm(), in_the_way + "/sub", "cannot be created",
                       [&] { CheckpointDirectory(grid.comm(), in_the_way + "/sub", 3); });
    test::expect_error(grid.comm(), "/proc", "checkpoint directory /proc is not writable",
                       [&] { CheckpointDirectory(grid.comm(), "/proc", 3); });
    test::expect_error(grid.comm(), "--keep-checkpoints", "at least 1",
                       [&] { CheckpointDirectory(grid.comm(), dir, 0); });
  });
}

TEST(BadCheckpoint, FullDiskFailsTheWriteAndKeepsTheNewestCheckpoint) {
  const Problem p = make_problem();
  const std::string dir = test::temp_dir("checkpoint_full_disk");
  const std::string good = write_good_checkpoint(dir, p);
  std::string before;
  std::uintmax_t size = 0;
  test::on_root(MPI_COMM_WORLD, [&] {
    before = test::file_bytes(good);
    size = fs::file_size(good);
  });
  MPI_Bcast(&size, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  // A file-size limit makes writes past it fail like a full disk (EFBIG instead of ENOSPC);
  // StopSignals ignores SIGXFSZ, as cdmf train does. Limits below the metadata, inside the
  // data, and just short of the end.
  const StopSignals signals;
  for (const rlim_t limit : {rlim_t(2048), rlim_t(size / 2), rlim_t(size - 64)}) {
    SCOPED_TRACE("file size limit " + std::to_string(limit));
    const std::string path = checkpoint_path(dir, 24);
    test::on_world_grid([&](const ProcessGrid& grid) {
      RunSetup s(grid, Model::kDeep, OptimizerKind::kAdam, p);
      rlimit old{}, small{};
      getrlimit(RLIMIT_FSIZE, &old);
      small = old;
      small.rlim_cur = limit;
      setrlimit(RLIMIT_FSIZE, &small);
      test::expect_error(grid.comm(), path, "not written", [&] {
        write_checkpoint(grid, s.layout, path, s.chain, s.optimizer, {24, 0.0, 0.0, 0, {}}, {});
      });
      setrlimit(RLIMIT_FSIZE, &old);
    });
    test::on_root(MPI_COMM_WORLD, [&] {
      EXPECT_FALSE(fs::exists(path));
      EXPECT_EQ(test::file_names_in(dir), std::vector<std::string>{"checkpoint-12.h5"})
          << "a temporary was left";
      EXPECT_EQ(test::file_bytes(good), before);
    });
  }
  load_on_world(good, p);
}

// A step size far too large: the run stops with stop_reason "diverged", names the step size,
// and hands the checkpoint hook only states whose loss it evaluated finite (with a checkpoint
// at every iteration, the poisoned states of the old loop replaced the good ones).
TEST(Divergence, StopsWithoutCheckpointingANonFiniteStateAndBlamesTheStepSize) {
  const Problem p = make_problem();
  test::on_world_grid([&](const ProcessGrid& grid) {
    RunSetup s(grid, Model::kDeep, OptimizerKind::kGd, p);
    Optimizer too_fast({OptimizerKind::kGd, 1e4}, s.chain);
    std::vector<double> hooked_losses;
    Trainer trainer({1000, 0.0, 1, 0, 1}, {});
    trainer.set_checkpoint_hook([&](const Chain& c, const Optimizer&, const TrainerState&) {
      const Evaluation e = s.strategy->evaluate(c, nullptr, false);
      hooked_losses.push_back(e.train_sse);
    });
    const TrainResult result = trainer.run(s.chain, *s.strategy, too_fast);
    EXPECT_TRUE(result.diverged()) << result.stop_reason;
    EXPECT_LT(result.iterations, 1000);
    EXPECT_FALSE(std::isfinite(result.final.train_loss));
    EXPECT_NE(result.diagnosis.find("try a smaller --lr"), std::string::npos) << result.diagnosis;
    EXPECT_EQ(hooked_losses.size(), static_cast<size_t>(result.iterations - 1));  // 1 .. t-1
    for (const double loss : hooked_losses) EXPECT_TRUE(std::isfinite(loss));
    EXPECT_EQ(diverged_factors(s.chain.factors).empty(), false)
        << "the diverged state itself is what inspect must report";
  });
}

// A model whose loss is not finite before any step is not helped by a smaller step.
TEST(Divergence, ANonFiniteInitIsNotBlamedOnTheStepSize) {
  const Problem p = make_problem();
  test::on_world_grid([&](const ProcessGrid& grid) {
    RunSetup s(grid, Model::kNarrow, OptimizerKind::kGd, p);
    DistMatrix& w2 = s.chain.factors[1];
    if (!w2.local().empty()) w2.local()[0] = std::numeric_limits<double>::infinity();
    EXPECT_EQ(diverged_factors(s.chain.factors).rfind("W2 holds ", 0), 0u);
    bool hooked = false;
    Trainer trainer({100, 0.0, 10, 0, 1}, {});
    trainer.set_checkpoint_hook([&](const Chain&, const Optimizer&, const TrainerState&) { hooked = true; });
    const TrainResult result = trainer.run(s.chain, *s.strategy, s.optimizer);
    EXPECT_TRUE(result.diverged());
    EXPECT_EQ(result.iterations, 0);
    EXPECT_FALSE(hooked);
    EXPECT_NE(result.diagnosis.find("before any step"), std::string::npos) << result.diagnosis;
    EXPECT_EQ(result.diagnosis.find("--lr"), std::string::npos) << result.diagnosis;
  });
}

// A checkpoint that holds a diverged state (an older version wrote them) is no restart point:
// load_checkpoint refuses it with one line on every rank, so --restart auto skips it, and
// inspect reports it instead of handing it to LAPACK.
TEST(Divergence, ACheckpointOfADivergedStateIsRefusedOnLoad) {
  const Problem p = make_problem();
  const std::string dir = test::temp_dir("diverged_checkpoint");
  const std::string path = checkpoint_path(dir, 7);
  test::on_world_grid([&](const ProcessGrid& grid) {
    RunSetup s(grid, Model::kNarrow, OptimizerKind::kGd, p);
    DistMatrix& w3 = s.chain.factors[2];
    if (!w3.local().empty()) w3.local()[0] = std::numeric_limits<double>::quiet_NaN();
    write_checkpoint(grid, s.layout, path, s.chain, s.optimizer, {7, 0.0, 0.0, 0, {}}, {});
    test::expect_error(grid.comm(), path, "W3 holds ", [&] { s.restore(grid, path); });
  });
}

// eps^L below the smallest normal double is refused for what it is, before any training.
TEST(Divergence, InitScaleAndDepthAreCheckedForUnderflow) {
  const auto message = [](int depth, std::int64_t width, double eps) {
    try {
      check_chain_options(depth, width, eps);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(message(3, 0, 1e-3), "");
  EXPECT_EQ(message(100, 0, 1e-3), "");  // 1e-300: small, but a normal double
  EXPECT_NE(message(1000, 0, 1e-3).find("eps^L = 1e-3000 underflows"), std::string::npos);
  EXPECT_NE(message(2000000000, 0, 1e-3).find("underflows"), std::string::npos);
  EXPECT_NE(message(400, 0, 10.0).find("overflows"), std::string::npos);
  EXPECT_NE(message(3, -5, 1e-3).find("--width must be positive, 0 (max(m, n)) or -1"),
            std::string::npos);
  EXPECT_EQ(message(3, -1, 1e-3), "");  // -1: min(m, n)
  EXPECT_NE(message(1, 0, 1e-3).find("--depth must be at least 2"), std::string::npos);
  for (const double eps : {std::numeric_limits<double>::infinity(),
                           std::numeric_limits<double>::quiet_NaN(), 0.0, -1.0})
    EXPECT_NE(message(3, 0, eps).find("--init-scale must be a positive number"), std::string::npos)
        << eps;
}

// A sink (the metrics file, written by rank 0 only) that fails on one rank fails the run on
// every rank, instead of leaving the others in the next collective.
TEST(Trainer, ASinkFailureOnOneRankStopsEveryRank) {
  const Problem p = make_problem();
  test::on_world_grid([&](const ProcessGrid& grid) {
    RunSetup s(grid, Model::kNarrow, OptimizerKind::kGd, p);
    Trainer trainer({100, 0.0, 10, 0}, [&](const MetricsRow& row) {
      fail_if(grid.is_root() && row.iteration == 30, "m.csv: write failed (No space left on device)");
    });
    test::expect_error(grid.comm(), "m.csv", "write failed",
                       [&] { trainer.run(s.chain, *s.strategy, s.optimizer); });
  });
}

}  // namespace
}  // namespace cdmf
