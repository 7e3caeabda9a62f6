// The deep model on the dense strategy against the serial reference in tests/support:
// trajectories, finite-difference gradients, and agreement across process-grid shapes.
#include <gtest/gtest.h>

#include <fmt/core.h>

#include <cmath>

#include "cdmf/data/layout.hpp"
#include "cdmf/model/chain.hpp"
#include "cdmf/optim/optimizer.hpp"
#include "cdmf/random/counter_rng.hpp"
#include "cdmf/strategy/dense_strategy.hpp"
#include "support/serial_reference.hpp"
#include "support/test_support.hpp"

namespace cdmf {
namespace {

using test::SerialMatrix;

// A rank-2 m x n target with entries of order one.
SerialMatrix low_rank_target(std::int64_t m, std::int64_t n) {
  SerialMatrix a{m, 2, {}}, b{2, n, {}};
  for (std::int64_t e = 0; e < 2 * m; ++e) a.data.push_back(gaussian(11, 1, e));
  for (std::int64_t e = 0; e < 2 * n; ++e) b.data.push_back(gaussian(11, 2, e));
  return test::multiply(a, b);
}

struct SmallProblem {
  std::int64_t m = 14, n = 10, width = 12;
  SerialMatrix truth = low_rank_target(14, 10);
  EntryList entries = test::random_entries(14, 10, 0.45, 3, truth);
  double normalization = 140.0;
};

double max_relative_difference(const std::vector<SerialMatrix>& a, const std::vector<SerialMatrix>& b) {
  double worst = 0.0;
  for (size_t l = 0; l < a.size(); ++l) worst = std::max(worst, test::relative_error(a[l].data, b[l].data));
  return worst;
}

TEST(DenseModel, GradientDescentMatchesSerialReferenceOnEveryGrid) {
  const SmallProblem p;
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      IndexLayout layout(p.m, p.n, choose_block_size(p.m, p.n, grid, 3), 5);
      Chain chain = make_deep_chain(grid, layout, 3, p.width, 0.6, 21);
      const Observations obs = test::owned_observations(grid, layout, p.entries);
      DenseStrategy strategy(obs, nullptr, std::nullopt, p.normalization);
      Optimizer optimizer({OptimizerKind::kGd, 2.0}, chain);
      auto serial = test::gather_chain(chain, layout);
      double first_loss = 0.0, last_loss = 0.0;
      std::vector<DistMatrix> gradient;
      for (int t = 0; t < 50; ++t) {
        const Evaluation ev = strategy.evaluate(chain, &gradient, false);
        const double loss = ev.train_sse / (2.0 * p.normalization);
        if (grid.is_root()) {
          std::vector<SerialMatrix> serial_gradient;
          const double serial_value = test::serial_loss(serial, p.entries, p.normalization, &serial_gradient);
          EXPECT_NEAR(loss, serial_value, 1e-12 * serial_value);
          for (size_t l = 0; l < serial.size(); ++l)
            for (size_t e = 0; e < serial[l].data.size(); ++e) serial[l].data[e] -= 2.0 * serial_gradient[l].data[e];
          if (t == 0) first_loss = loss;
          last_loss = loss;
        }
        optimizer.step(chain, gradient);
      }
      const auto distributed = test::gather_chain(chain, layout);
      if (!grid.is_root()) return;
      EXPECT_LT(max_relative_difference(distributed, serial), 1e-12);
      EXPECT_LT(test::relative_error(test::serial_end_to_end(distributed).data,
                                     test::serial_end_to_end(serial).data),
                1e-12);
      EXPECT_LT(last_loss, 0.5 * first_loss) << "the trajectory must move for the test to mean something";
    });
  }
}

void check_gradient_by_finite_differences(int depth) {
  const SmallProblem p;
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      IndexLayout layout(p.m, p.n, choose_block_size(p.m, p.n, grid, 4), 6);
      Chain chain = make_deep_chain(grid, layout, depth, p.width, 0.8, 31);
      // Move off the orthogonal init so no gradient term vanishes by symmetry.
      for (size_t l = 0; l < chain.factors.size(); ++l)
        chain.factors[l].fill([l](std::int64_t i, std::int64_t j) {
          return 0.4 * gaussian(8, static_cast<std::uint32_t>(50 + l), static_cast<std::uint64_t>(i * 1000 + j));
        });
      const Observations obs = test::owned_observations(grid, layout, p.entries);
      DenseStrategy strategy(obs, nullptr, std::nullopt, p.normalization);
      std::vector<DistMatrix> gradient;
      strategy.evaluate(chain, &gradient, false);
      const double h = 1e-6;
      for (int l = 0; l < depth; ++l) {
        DistMatrix& w = chain.factors[static_cast<size_t>(l)];
        for (int sample = 0; sample < 8; ++sample) {
          const std::int64_t i = random_word(4, l, sample) % w.rows();
          const std::int64_t j = random_word(5, l, sample) % w.cols();
          const double original = w.entry(i, j);
          w.set_entry(i, j, original + h);
          const double plus = strategy.evaluate(chain, nullptr, false).train_sse;
          w.set_entry(i, j, original - h);
          const double minus = strategy.evaluate(chain, nullptr, false).train_sse;
          w.set_entry(i, j, original);
          const double numeric = (plus - minus) / (2.0 * h) / (2.0 * p.normalization);
          const double analytic = gradient[static_cast<size_t>(l)].entry(i, j);
          EXPECT_NEAR(analytic, numeric, 1e-7 * std::max(1.0, std::abs(numeric)))
              << "factor W" << l + 1 << " entry (" << i << ", " << j << ")";
        }
      }
    });
  }
}

TEST(DenseModel, GradientMatchesFiniteDifferencesDepth3) { check_gradient_by_finite_differences(3); }
TEST(DenseModel, GradientMatchesFiniteDifferencesDepth4) { check_gradient_by_finite_differences(4); }

TEST(DenseModel, SameSeedGivesSameRunOnEveryGrid) {
  const SmallProblem p;
  std::vector<double> reference_draws, reference_end;
  std::vector<SerialMatrix> reference_init;
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      IndexLayout layout(p.m, p.n, choose_block_size(p.m, p.n, grid, 2), 9);
      const auto draws = test::gather_original(
          gaussian_matrix(grid, layout, {p.m, p.width}, 42, 100, Space::kRows, Space::kInner), layout,
          Space::kRows, Space::kInner);
      Chain chain = make_deep_chain(grid, layout, 3, p.width, 0.6, 42);
      const auto init = test::gather_chain(chain, layout);
      const Observations obs = test::owned_observations(grid, layout, p.entries);
      DenseStrategy strategy(obs, nullptr, std::nullopt, p.normalization);
      Optimizer optimizer({OptimizerKind::kGd, 2.0}, chain);
      std::vector<DistMatrix> gradient;
      for (int t = 0; t < 200; ++t) {
        strategy.evaluate(chain, &gradient, false);
        optimizer.step(chain, gradient);
      }
      const auto end = test::gather_original(end_to_end(chain), layout, Space::kRows, Space::kCols);
      if (!grid.is_root()) return;
      if (reference_draws.empty()) {
        reference_draws = draws.data;
        reference_init = init;
        reference_end = end.data;
        return;
      }
      EXPECT_EQ(draws.data, reference_draws) << "Gaussian draws must be bitwise equal";
      EXPECT_LT(max_relative_difference(init, reference_init), 1e-14);
      EXPECT_LT(test::relative_error(end.data, reference_end), 1e-10);
    });
  }
}

TEST(DenseModel, FirstFactorGradientIsTheFullEvaluationsBitForBit) {
  const SmallProblem p;
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      for (const int depth : {1, 2, 3, 4}) {
        SCOPED_TRACE(fmt::format("grid {}x{}, depth {}", shape.rows, shape.cols, depth));
        IndexLayout layout(p.m, p.n, choose_block_size(p.m, p.n, grid, 3), 7);
        const Chain chain = make_deep_chain(grid, layout, depth, p.width, 0.7, 17);
        const Observations obs = test::owned_observations(grid, layout, p.entries);
        DenseStrategy full(obs, nullptr, std::nullopt, p.normalization);
        std::vector<DistMatrix> gradient;
        full.evaluate(chain, &gradient, false);
        DenseStrategy first(obs, nullptr, std::nullopt, p.normalization);
        const DistMatrix g = first.first_factor_gradient(chain);
        ASSERT_TRUE(g.same_layout(gradient.front()));
        EXPECT_EQ(g.local(), gradient.front().local());
        // Its buffers released, the strategy evaluates as before.
        std::vector<DistMatrix> again;
        first.evaluate(chain, &again, false);
        for (size_t l = 0; l < gradient.size(); ++l) EXPECT_EQ(again[l].local(), gradient[l].local());
      }
    });
  }
}

TEST(Random, PhiloxMatchesTheKnownAnswerOfRandom123) {
  // Random123's kat_vectors: philox4x32-10, counter and key all zero.
  std::uint32_t words[4];
  philox4x32(0, 0, 0, words);
  EXPECT_EQ(std::vector<std::uint32_t>(words, words + 4),
            (std::vector<std::uint32_t>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
}

TEST(Random, BatchedGaussiansAreTheSingleDrawsBitForBit) {
  std::vector<std::uint64_t> index;
  for (std::uint64_t k = 0; k < 1000; ++k) index.push_back(k * 7919 + (k % 3 == 0 ? k << 33 : 0));
  std::vector<double> batch(index.size());
  for (const size_t count : {size_t{0}, size_t{5}, size_t{16}, size_t{17}, size_t{1000}}) {
    gaussians(9, 123, index.data(), count, batch.data());
    for (size_t k = 0; k < count; ++k)
      ASSERT_EQ(batch[k], gaussian(9, 123, index[k])) << "draw " << k << " of " << count;
  }
  // Gaussian matrices: entry (i, j) is draw oi * cols + oj, oi/oj its original indices.
  const std::int64_t m = 37, n = 23;
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      const IndexLayout layout(m, n, 4, 3);
      const DistMatrix g = gaussian_matrix(grid, layout, {m, n}, 5, 6, Space::kRows, Space::kCols);
      DistMatrix expected(grid, m, n, 4);
      expected.fill([&](std::int64_t i, std::int64_t j) {
        return gaussian(5, 6, static_cast<std::uint64_t>(layout.original_row(i) * n + layout.original_col(j)));
      });
      EXPECT_EQ(g.local(), expected.local());
    });
  }
}

}  // namespace
}  // namespace cdmf
