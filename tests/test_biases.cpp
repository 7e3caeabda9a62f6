// Biases and centering (model/biases.hpp), the validation split (data/split.hpp) and the best
// model kept by the trainer: against the serial reference (tests/support/serial_reference.*),
// on every grid shape of 1, 2 and 4 ranks, both strategies.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <utility>

#include "cdmf/core/error.hpp"
#include "cdmf/data/split.hpp"
#include "cdmf/io/checkpoint.hpp"
#include "cdmf/io/factor_file.hpp"
#include "cdmf/model/biases.hpp"
#include "cdmf/random/counter_rng.hpp"
#include "cdmf/strategy/dense_strategy.hpp"
#include "cdmf/strategy/sparse_strategy.hpp"
#include "cdmf/train/trainer.hpp"
#include "support/serial_reference.hpp"
#include "support/test_support.hpp"

namespace cdmf {
namespace {

using test::SerialMatrix;

constexpr std::int64_t kRows = 19, kCols = 13;

/// Ratings-like values: 3 + row and column effects + a rank-2 part, about 40% observed (row
/// 0 and column 0 left unobserved: cold start).
EntryList rating_entries(double fraction, std::uint64_t seed) {
  SerialMatrix truth{kRows, kCols, std::vector<double>(kRows * kCols)};
  for (std::int64_t j = 0; j < kCols; ++j)
    for (std::int64_t i = 0; i < kRows; ++i)
      truth(i, j) = 3.0 + 0.5 * gaussian(41, 1, i) + 0.3 * gaussian(41, 2, j) +
                    0.4 * gaussian(41, 3, i) * gaussian(41, 4, j) +
                    0.2 * gaussian(41, 5, i) * gaussian(41, 6, j);
  EntryList all = test::random_entries(kRows, kCols, fraction, seed, truth);
  EntryList kept;
  for (size_t e = 0; e < all.size(); ++e) {
    if (all.rows[e] == 0 || all.cols[e] == 0) continue;
    kept.rows.push_back(all.rows[e]);
    kept.cols.push_back(all.cols[e]);
    kept.values.push_back(all.values[e]);
    kept.lines.push_back(all.lines[e]);
  }
  return kept;
}

Chain thin_chain(const ProcessGrid& grid, const IndexLayout& layout, int depth, std::int64_t k) {
  Chain chain;
  chain.kind = ModelKind::kNarrow;
  for (int l = 0; l < depth; ++l) {
    const std::int64_t rows = l == depth - 1 ? kRows : k, cols = l == 0 ? kCols : k;
    chain.factors.push_back(gaussian_matrix(grid, layout, {rows, cols}, 60 + l, 3,
                                            l == depth - 1 ? Space::kRows : Space::kInner,
                                            l == 0 ? Space::kCols : Space::kInner));
    for (double& x : chain.factors.back().local()) x *= 0.4;
    chain.lr_multipliers.push_back(1.0);
  }
  return chain;
}

double max_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0.0;
  for (size_t k = 0; k < a.size(); ++k) worst = std::max(worst, std::abs(a[k] - b[k]));
  return worst;
}

TEST(Biases, FitMatchesTheSerialSweepsOnEveryGrid) {
  const EntryList entries = rating_entries(0.4, 7);
  const test::SerialBiases reference = test::serial_fit_biases(entries, kRows, kCols, 2.5, 6);
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      IndexLayout layout(kRows, kCols, choose_block_size(kRows, kCols, grid, 3), 9);
      const Observations train = test::owned_observations(grid, layout, entries);
      const Biases biases = fit_biases(grid, train, kRows, kCols, {2.5, 6});
      EXPECT_NEAR(biases.mu, reference.mu, 1e-13);
      EXPECT_LT(max_difference(biases.rows_original(layout), reference.rows), 1e-12);
      EXPECT_LT(max_difference(biases.cols_original(layout), reference.cols), 1e-12);
      // Unobserved row 0 and column 0: no bias (cold start answers from mu and the other side).
      EXPECT_EQ(biases.rows_original(layout)[0], 0.0);
      EXPECT_EQ(biases.cols_original(layout)[0], 0.0);
      // The mapping to original order and back is exact.
      const Biases back = Biases::from_original(layout, biases.mu, biases.rows_original(layout),
                                                biases.cols_original(layout));
      EXPECT_EQ(back.rows, biases.rows);
      EXPECT_EQ(back.cols, biases.cols);
    });
  }
}

TEST(Biases, RegularizedFitBeatsTheMeanOnHeldOutEntries) {
  const EntryList train_entries = rating_entries(0.5, 7), held = rating_entries(0.3, 8);
  const test::SerialBiases biases = test::serial_fit_biases(train_entries, kRows, kCols, 2.0, 10);
  double mean_sse = 0.0, bias_sse = 0.0;
  for (size_t e = 0; e < held.size(); ++e) {
    const double v = held.values[e];
    mean_sse += (v - biases.mu) * (v - biases.mu);
    const double p = biases.mu + biases.rows[static_cast<size_t>(held.rows[e])] +
                     biases.cols[static_cast<size_t>(held.cols[e])];
    bias_sse += (v - p) * (v - p);
  }
  EXPECT_LT(bias_sse, 0.7 * mean_sse);
}

/// Loss and gradients with biases (as per-observation offsets) against the serial reference
/// with the biases in its prediction, on both strategies.
void expect_loss_with_biases(int depth, bool deep) {
  const EntryList entries = rating_entries(0.45, 3);
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      IndexLayout layout(kRows, kCols, choose_block_size(kRows, kCols, grid, 3), 4);
      Observations train = test::owned_observations(grid, layout, entries);
      const Biases biases = fit_biases(grid, train, kRows, kCols, {1.0, 4});
      set_bias_offsets(train, biases);
      const Chain chain = deep ? make_deep_chain(grid, layout, depth, 9, 0.5, 17)
                               : thin_chain(grid, layout, depth, 4);
      const std::vector<SerialMatrix> factors = test::gather_chain(chain, layout);
      const test::SerialBiases serial{biases.mu, biases.rows_original(layout),
                                      biases.cols_original(layout)};
      const double normalization = static_cast<double>(entries.size());
      std::vector<SerialMatrix> reference_gradient;
      double reference_loss = 0.0;
      if (grid.is_root())
        reference_loss =
            test::serial_loss(factors, entries, normalization, &reference_gradient, &serial);
      std::vector<std::unique_ptr<Strategy>> strategies;
      strategies.push_back(std::make_unique<DenseStrategy>(train, nullptr, std::nullopt, normalization));
      if (!deep)
        strategies.push_back(std::make_unique<SparseStrategy>(train, nullptr, std::nullopt,
                                                              std::nullopt, normalization));
      for (auto& strategy : strategies) {
        std::vector<DistMatrix> gradient;
        const Evaluation evaluation = strategy->evaluate(chain, &gradient, true);
        const double loss = evaluation.train_sse / (2.0 * normalization);
        for (size_t l = 0; l < gradient.size(); ++l) {
          const SerialMatrix g = test::gather_original(
              gradient[l], layout, l + 1 == gradient.size() ? Space::kRows : Space::kInner,
              l == 0 ? Space::kCols : Space::kInner);
          if (grid.is_root())
            EXPECT_LT(test::relative_error(g.data, reference_gradient[l].data), 1e-12)
                << "factor " << l + 1;
        }
        if (grid.is_root()) EXPECT_NEAR(loss, reference_loss, 1e-12 * reference_loss);
      }
    });
  }
}

TEST(Biases, LossAndGradientsMatchTheSerialReferenceOnThinChains) {
  expect_loss_with_biases(2, false);
  expect_loss_with_biases(3, false);
}

TEST(Biases, LossAndGradientsMatchTheSerialReferenceOnDeepChains) {
  expect_loss_with_biases(3, true);
}

TEST(Biases, FactorFilesAndCheckpointsKeepThemBitwise) {
  const EntryList entries = rating_entries(0.4, 5);
  const std::string dir = test::temp_dir("biases_files");
  test::on_world_grid([&](const ProcessGrid& grid) {
    IndexLayout layout(kRows, kCols, choose_block_size(kRows, kCols, grid, 3), 6);
    const Observations train = test::owned_observations(grid, layout, entries);
    const Biases biases = fit_biases(grid, train, kRows, kCols, {1.5, 3});
    Chain chain = thin_chain(grid, layout, 3, 4);
    write_factor_file(grid, layout, dir + "/factors.h5", chain, {7, "{}", &biases});
    // Read back on another permutation: the file holds original order.
    IndexLayout other(kRows, kCols, layout.block(), 99);
    const std::optional<Biases> read = read_biases(grid.comm(), dir + "/factors.h5", other);
    ASSERT_TRUE(read.has_value());
    EXPECT_EQ(std::memcmp(&read->mu, &biases.mu, sizeof biases.mu), 0);
    EXPECT_EQ(read->rows_original(other), biases.rows_original(layout));
    EXPECT_EQ(read->cols_original(other), biases.cols_original(layout));

    Optimizer optimizer({OptimizerKind::kGd, 0.1}, chain);
    TrainerState state;
    state.iteration = 4;
    state.best_iteration = 2;
    state.best_factors = chain.factors;
    for (double& x : state.best_factors[1].local()) x *= 2.0;
    CheckpointMeta meta;
    meta.biases = &biases;
    write_checkpoint(grid, layout, dir + "/checkpoint.h5", chain, optimizer, state, meta);
    const CheckpointInfo info = read_checkpoint_info(grid.comm(), dir + "/checkpoint.h5");
    const LoadedCheckpoint loaded = load_checkpoint(grid, layout, info, layout.block());
    ASSERT_TRUE(loaded.biases.has_value());
    EXPECT_EQ(loaded.biases->rows, biases.rows);
    EXPECT_EQ(loaded.biases->cols, biases.cols);
    EXPECT_EQ(loaded.state.best_iteration, 2);
    ASSERT_EQ(loaded.state.best_factors.size(), chain.factors.size());
    for (size_t l = 0; l < chain.factors.size(); ++l)
      EXPECT_EQ(loaded.state.best_factors[l].local(), state.best_factors[l].local());
    // A file without biases has none.
    write_factor_file(grid, layout, dir + "/plain.h5", chain, {0, "{}"});
    EXPECT_FALSE(read_biases(grid.comm(), dir + "/plain.h5", layout).has_value());
  });
}

TEST(ValidationSplit, SeededDisjointAndIndependentOfHowTheEntriesAreSplitAcrossRanks) {
  EntryList all;
  for (std::int64_t i = 0; i < 60; ++i)
    for (std::int64_t j = 0; j < 50; ++j) {
      all.rows.push_back(i);
      all.cols.push_back(j);
      all.values.push_back(static_cast<double>(i * 50 + j));
      all.lines.push_back(i * 50 + j + 1);
    }
  EntryList train = all;
  const EntryList held = split_off(train, 0.1, 42);
  EXPECT_EQ(train.size() + held.size(), all.size());
  EXPECT_NEAR(static_cast<double>(held.size()) / static_cast<double>(all.size()), 0.1, 0.02);
  std::set<double> held_values(held.values.begin(), held.values.end());
  for (double v : train.values) EXPECT_EQ(held_values.count(v), 0u);
  // Any partition (one piece per rank) and any order hold out the same entries.
  for (int pieces : {1, 2, 4, 7}) {
    std::set<double> union_held;
    for (int p = 0; p < pieces; ++p) {
      EntryList piece;
      for (size_t e = all.size(); e-- > 0;)  // reversed order
        if (static_cast<int>(e % static_cast<size_t>(pieces)) == p) {
          piece.rows.push_back(all.rows[e]);
          piece.cols.push_back(all.cols[e]);
          piece.values.push_back(all.values[e]);
          piece.lines.push_back(all.lines[e]);
        }
      const EntryList part = split_off(piece, 0.1, 42);
      union_held.insert(part.values.begin(), part.values.end());
    }
    EXPECT_EQ(union_held, held_values) << pieces << " pieces";
  }
  // Another seed, another split; fraction 0 holds nothing out.
  EntryList again = all;
  EXPECT_NE(split_off(again, 0.1, 43).values, held.values);
  EntryList none = all;
  EXPECT_EQ(split_off(none, 0.0, 42).size(), 0u);
  EXPECT_THROW(split_off(none, 1.0, 42), Error);
}

// A run whose validation loss falls, then rises (validation targets are half the training
// targets: the chain passes them on its way): the kept chain is the best logged iteration's,
// bitwise the chain of a run stopped there.
TEST(KeepBest, ARunWhoseValidationLossRisesEndsWithTheEarlierFactors) {
  const EntryList entries = rating_entries(0.5, 11);
  EntryList halves = rating_entries(0.3, 12);
  for (double& v : halves.values) v *= 0.5;
  test::on_world_grid([&](const ProcessGrid& grid) {
    IndexLayout layout(kRows, kCols, choose_block_size(kRows, kCols, grid, 3), 2);
    const Observations train = test::owned_observations(grid, layout, entries);
    const Observations validation = test::owned_observations(grid, layout, halves);
    const double n_train = static_cast<double>(entries.size());
    const auto run = [&](std::int64_t iters, std::int64_t patience, TrainResult* result) {
      Chain chain = make_deep_chain(grid, layout, 3, 4, 0.3, 8, ModelKind::kNarrow);
      SparseStrategy strategy(train, nullptr, std::nullopt, std::nullopt, n_train);
      SparseStrategy held(validation, nullptr, std::nullopt, std::nullopt,
                          static_cast<double>(halves.size()));
      Optimizer optimizer({OptimizerKind::kAdam, 0.02}, chain);
      TrainerConfig config{iters, 0.0, 5, patience};
      config.keep_best = true;
      Trainer trainer(config, {});
      trainer.set_validation(&held);
      *result = trainer.run(chain, strategy, optimizer);
      return chain;
    };
    TrainResult long_run, short_run;
    const Chain kept = run(400, 3, &long_run);
    ASSERT_GT(long_run.best_iteration, 0);
    ASSERT_LT(long_run.best_iteration, long_run.iterations) << "the validation loss must rise";
    EXPECT_EQ(long_run.stop_reason, "early_stopping");
    double best = 1e300;
    for (const MetricsRow& row : long_run.history) {
      ASSERT_EQ(row.extra.size(), 2u);
      EXPECT_EQ(row.extra[0], row.validation_loss);
      best = std::min(best, row.validation_loss);
    }
    EXPECT_EQ(long_run.best_loss, best);
    EXPECT_GT(long_run.final.validation_loss, best);
    const Chain reference = run(long_run.best_iteration, 0, &short_run);
    for (size_t l = 0; l < kept.factors.size(); ++l)
      EXPECT_EQ(kept.factors[l].local(), reference.factors[l].local()) << "factor " << l + 1;
  });
}

}  // namespace
}  // namespace cdmf
