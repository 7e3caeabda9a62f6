// The sparse strategy against the dense one on the same thin chains (shallow, narrow,
// compressed shapes), rectangular m != n, on every grid shape: loss, gradients, test loss and
// recovery error agree to 1e-12 relative.
#include <gtest/gtest.h>

#include <cmath>

#include "cdmf/random/counter_rng.hpp"
#include "cdmf/strategy/dense_strategy.hpp"
#include "cdmf/strategy/sparse_strategy.hpp"
#include "support/serial_reference.hpp"
#include "support/test_support.hpp"

namespace cdmf {
namespace {

using test::SerialMatrix;

double max_relative_gradient_difference(const std::vector<DistMatrix>& a, const std::vector<DistMatrix>& b) {
  double worst = 0.0;
  for (size_t l = 0; l < a.size(); ++l) {
    double diff = 0.0, norm = 0.0;
    for (size_t e = 0; e < a[l].local().size(); ++e) {
      diff += (a[l].local()[e] - b[l].local()[e]) * (a[l].local()[e] - b[l].local()[e]);
      norm += b[l].local()[e] * b[l].local()[e];
    }
    double totals[2] = {diff, norm};
    MPI_Allreduce(MPI_IN_PLACE, totals, 2, MPI_DOUBLE, MPI_SUM, a[l].grid().comm());
    worst = std::max(worst, std::sqrt(totals[0] / totals[1]));
  }
  return worst;
}

void compare_strategies(int depth, std::int64_t k_in, std::int64_t k_out) {
  const std::int64_t m = 23, n = 17, r = 2;
  SerialMatrix ut{m, r, {}}, vt{n, r, {}};
  for (std::int64_t e = 0; e < m * r; ++e) ut.data.push_back(gaussian(21, 1, e));
  for (std::int64_t e = 0; e < n * r; ++e) vt.data.push_back(gaussian(21, 2, e));
  const SerialMatrix truth = test::multiply(ut, vt, false, true);
  const EntryList train = test::random_entries(m, n, 0.35, 5, truth);
  EntryList test_entries = test::random_entries(m, n, 0.3, 6, truth);
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      IndexLayout layout(m, n, choose_block_size(m, n, grid, 3), 8);
      // A thin chain with generic (non-orthogonal) factors.
      Chain chain;
      chain.kind = ModelKind::kNarrow;
      for (int l = 0; l < depth; ++l) {
        // W1: k_in x n; first inner factor k_out x k_in, later ones k_out x k_out; W_K: m x k_out.
        const std::int64_t rows = l == depth - 1 ? m : (l == 0 ? k_in : k_out);
        const std::int64_t cols = l == 0 ? n : (l == 1 ? k_in : k_out);
        chain.factors.push_back(gaussian_matrix(grid, layout, {rows, cols}, 30 + l, 7,
                                                l == depth - 1 ? Space::kRows : Space::kInner,
                                                l == 0 ? Space::kCols : Space::kInner));
        for (double& x : chain.factors.back().local()) x *= 0.5;
        chain.lr_multipliers.push_back(1.0);
      }
      const Observations obs = test::owned_observations(grid, layout, train);
      const Observations test_obs = test::owned_observations(grid, layout, test_entries);
      DistMatrix u(grid, m, r, layout.block()), v(grid, n, r, layout.block());
      u.fill([&](std::int64_t i, std::int64_t j) { return ut(layout.original_row(i), j); });
      v.fill([&](std::int64_t i, std::int64_t j) { return vt(layout.original_col(i), j); });
      DenseStrategy dense(obs, &test_obs, truth_matrix_from_factors(u, v), double(m * n));
      SparseStrategy sparse(obs, &test_obs, u, v, double(m * n));
      std::vector<DistMatrix> dense_gradient, sparse_gradient;
      const Evaluation de = dense.evaluate(chain, &dense_gradient, true);
      const Evaluation se = sparse.evaluate(chain, &sparse_gradient, true);
      EXPECT_NEAR(se.train_sse, de.train_sse, 1e-12 * de.train_sse);
      EXPECT_NEAR(se.test_sse, de.test_sse, 1e-12 * de.test_sse);
      EXPECT_EQ(se.train_count, de.train_count);
      ASSERT_TRUE(se.truth_sse && de.truth_sse);
      EXPECT_NEAR(*se.truth_sse, *de.truth_sse, 1e-12 * *de.truth_sse);
      EXPECT_NEAR(*se.truth_norm_sq, *de.truth_norm_sq, 1e-12 * *de.truth_norm_sq);
      ASSERT_EQ(sparse_gradient.size(), dense_gradient.size());
      EXPECT_LT(max_relative_gradient_difference(sparse_gradient, dense_gradient), 1e-12);
      // Without a gradient or metrics the loss is the same.
      EXPECT_NEAR(sparse.evaluate(chain, nullptr, false).train_sse, de.train_sse, 1e-12 * de.train_sse);
    });
  }
}

TEST(SparseStrategy, MatchesDenseForShallowChain) { compare_strategies(2, 4, 4); }
TEST(SparseStrategy, MatchesDenseForNarrowChain) { compare_strategies(3, 4, 4); }
TEST(SparseStrategy, MatchesDenseForCompressedShapeChain) { compare_strategies(5, 4, 4); }
// k_in != k_out takes the runtime-width kernel instead of the compile-time-width ones.
TEST(SparseStrategy, MatchesDenseForRectangularInnerFactor) { compare_strategies(4, 3, 5); }

TEST(SparseStrategy, RecoveryErrorIsAccurateNearTheTruth) {
  // X = Phi (1 + 1e-9 relative perturbation): the TSQR route keeps the digits a Gram
  // expansion would lose (it would floor near 1e-8).
  const std::int64_t m = 30, n = 20, r = 3;
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      IndexLayout layout(m, n, choose_block_size(m, n, grid, 4), 2);
      const DistMatrix u = gaussian_matrix(grid, layout, {m, r}, 1, 1, Space::kRows, Space::kInner);
      const DistMatrix v = gaussian_matrix(grid, layout, {n, r}, 1, 2, Space::kCols, Space::kInner);
      Chain chain;
      chain.kind = ModelKind::kShallow;
      chain.factors.push_back(transposed(v));
      DistMatrix a = u;
      for (double& x : a.local()) x *= 1.0 + 1e-9;
      chain.factors.push_back(a);
      chain.lr_multipliers = {1.0, 1.0};
      Observations none;
      SparseStrategy sparse(none, nullptr, u, v, double(m * n));
      const Evaluation ev = sparse.evaluate(chain, nullptr, true);
      EXPECT_NEAR(std::sqrt(*ev.truth_sse / *ev.truth_norm_sq), 1e-9, 1e-15);
    });
  }
}

}  // namespace
}  // namespace cdmf
