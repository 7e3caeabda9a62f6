// The sparse strategy against the dense one on the same thin chains (shallow, narrow,
// compressed shapes), rectangular m != n, on every grid shape: loss, gradients, test loss and
// recovery error agree to 1e-12 relative.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "cdmf/random/counter_rng.hpp"
#include "cdmf/strategy/dense_strategy.hpp"
#include "cdmf/strategy/fused_pass.hpp"
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
  // Block 3: the thin dimensions spread over several processes (gradients summed to all of
  // them); block 8: each on one process (summed to it alone, written in place).
  for (int block : {3, 8}) {
    for (GridShape shape : test::available_shapes()) {
      test::on_grid(shape, [&](const ProcessGrid& grid) {
        SCOPED_TRACE("block " + std::to_string(block));
        IndexLayout layout(m, n, choose_block_size(m, n, grid, block), 8);
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

// The fused pass alone, against a plain scalar loop written here: residuals, loss and both
// accumulations, for widths that take the compile-time kernels (stride <= 64), the runtime one
// (wider, or forced), rows with 0..9 entries (the 4-entry blocks and the remainder), and
// entries given in any order.
struct PassProblem {
  std::int64_t rows, cols, width, stride;
  std::vector<std::int32_t> row, col;
  std::vector<double> value, p, bt, a;  // panels padded to `stride` with zeros
};

PassProblem make_pass_problem(std::int64_t width, std::uint64_t seed) {
  PassProblem q{23, 19, width, padded_stride(width), {}, {}, {}, {}, {}, {}};
  for (std::int64_t i = 0; i < q.rows; ++i)
    for (std::int64_t j = 0; j < q.cols; ++j)
      if (uniform_open(seed, 1, static_cast<std::uint64_t>(i * q.cols + j)) < 0.02 * static_cast<double>(i % 11 + 1) * 2) {
        q.row.push_back(static_cast<std::int32_t>(i));
        q.col.push_back(static_cast<std::int32_t>(j));
        q.value.push_back(gaussian(seed, 2, static_cast<std::uint64_t>(i * q.cols + j)));
      }
  const auto panel = [&](std::int64_t rows, std::uint32_t stream) {
    std::vector<double> x(static_cast<size_t>(rows * q.stride), 0.0);
    for (std::int64_t i = 0; i < rows; ++i)
      for (std::int64_t c = 0; c < width; ++c)
        x[static_cast<size_t>(i * q.stride + c)] = gaussian(seed, stream, static_cast<std::uint64_t>(i * width + c));
    return x;
  };
  q.p = panel(q.rows, 3);
  q.bt = panel(q.cols, 4);
  q.a = panel(q.rows, 5);
  return q;
}

struct PassResult {
  double sse = 0.0;
  std::vector<double> y, z;
};

PassResult scalar_pass(const PassProblem& q, double inv_n) {
  PassResult out{0.0, std::vector<double>(q.p.size(), 0.0), std::vector<double>(q.bt.size(), 0.0)};
  for (size_t e = 0; e < q.value.size(); ++e) {
    const std::int64_t i = q.row[e], j = q.col[e];
    double x = 0.0;
    for (std::int64_t c = 0; c < q.width; ++c) x += q.p[i * q.stride + c] * q.bt[j * q.stride + c];
    const double r = x - q.value[e];
    out.sse += r * r;
    for (std::int64_t c = 0; c < q.width; ++c) {
      out.y[i * q.stride + c] += r * inv_n * q.bt[j * q.stride + c];
      out.z[j * q.stride + c] += r * inv_n * q.a[i * q.stride + c];
    }
  }
  return out;
}

PassResult kernel_pass(const PassProblem& q, const RowGroupedEntries& entries, double inv_n, bool runtime_width,
                       FusedPassTarget target = FusedPassTarget::automatic) {
  PassResult out{0.0, std::vector<double>(q.p.size(), 0.0), std::vector<double>(q.bt.size(), 0.0)};
  const FusedPassPanels panels{q.p.data(), q.bt.data(), q.a.data(), q.stride};
  out.sse = fused_pass(entries, panels, inv_n, out.y.data(), out.z.data(), runtime_width, target);
  // The loss alone is the same sum (up to where the compiler fuses multiply-adds).
  EXPECT_NEAR(fused_pass(entries, panels, 0.0, nullptr, nullptr, runtime_width, target), out.sse, 1e-14 * out.sse);
  return out;
}

double relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0.0, norm = 0.0;
  for (size_t e = 0; e < a.size(); ++e) {
    diff += (a[e] - b[e]) * (a[e] - b[e]);
    norm += b[e] * b[e];
  }
  return std::sqrt(diff / norm);
}

TEST(FusedPass, MatchesAScalarLoopForEveryKernel) {
  for (std::int64_t width : {1, 3, 4, 5, 10, 13, 40, 64, 65, 70}) {
    SCOPED_TRACE("width " + std::to_string(width));
    const PassProblem q = make_pass_problem(width, 40 + static_cast<std::uint64_t>(width));
    const RowGroupedEntries entries = group_by_row(q.row, q.col, q.value, q.rows);
    const double inv_n = 1.0 / 437.0;
    const PassResult expected = scalar_pass(q, inv_n);
    // Every compilation of the kernels this CPU runs (the build's own, and AVX2+FMA).
    for (FusedPassTarget target : {FusedPassTarget::generic, FusedPassTarget::avx2}) {
      if (!fused_pass_target_available(target)) continue;
      SCOPED_TRACE(fused_pass_target_name(target));
      const PassResult fixed = kernel_pass(q, entries, inv_n, false, target);
      const PassResult runtime = kernel_pass(q, entries, inv_n, true, target);
      EXPECT_NEAR(fixed.sse, expected.sse, 1e-13 * expected.sse);
      EXPECT_LT(relative_difference(fixed.y, expected.y), 1e-13);
      EXPECT_LT(relative_difference(fixed.z, expected.z), 1e-13);
      EXPECT_NEAR(runtime.sse, expected.sse, 1e-13 * expected.sse);
      EXPECT_LT(relative_difference(runtime.y, expected.y), 1e-13);
      EXPECT_LT(relative_difference(runtime.z, expected.z), 1e-13);
    }
  }
}

TEST(FusedPass, RunTimeChoiceIsTheBestKernelThisCpuRuns) {
  // The automatic choice is AVX2+FMA wherever the CPU has both, whatever the build's flags.
  const bool avx2 = fused_pass_target_available(FusedPassTarget::avx2);
  EXPECT_STREQ(fused_pass_target_name(), avx2 ? "avx2+fma" : "generic");
  const PassProblem q = make_pass_problem(10, 3);
  const RowGroupedEntries entries = group_by_row(q.row, q.col, q.value, q.rows);
  const PassResult automatic = kernel_pass(q, entries, 0.01, false);
  const PassResult chosen = kernel_pass(q, entries, 0.01, false, avx2 ? FusedPassTarget::avx2 : FusedPassTarget::generic);
  EXPECT_EQ(automatic.sse, chosen.sse);
  EXPECT_EQ(automatic.y, chosen.y);
  EXPECT_EQ(automatic.z, chosen.z);
}

TEST(FusedPass, GroupingIsIndependentOfInputOrder) {
  const PassProblem q = make_pass_problem(10, 7);
  const RowGroupedEntries sorted = group_by_row(q.row, q.col, q.value, q.rows);
  // Row counts from 0 up: both the 4-entry blocks and the remainder loop run.
  std::int64_t empty_rows = 0, short_rows = 0;
  for (std::int64_t i = 0; i < q.rows; ++i) {
    const std::int64_t count = sorted.row_start[i + 1] - sorted.row_start[i];
    empty_rows += count == 0;
    short_rows += count > 0 && count % 4 != 0;
  }
  EXPECT_GT(empty_rows, 0);
  EXPECT_GT(short_rows, 0);
  std::vector<size_t> order(q.value.size());
  std::iota(order.begin(), order.end(), 0);
  std::reverse(order.begin(), order.end());
  std::rotate(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(order.size() / 3), order.end());
  std::vector<std::int32_t> rows, cols;
  std::vector<double> values;
  for (size_t e : order) {
    rows.push_back(q.row[e]);
    cols.push_back(q.col[e]);
    values.push_back(q.value[e]);
  }
  const RowGroupedEntries shuffled = group_by_row(rows, cols, values, q.rows);
  EXPECT_EQ(shuffled.row_start, sorted.row_start);
  EXPECT_EQ(shuffled.col, sorted.col);
  EXPECT_EQ(shuffled.value, sorted.value);
  for (std::int64_t i = 0; i < q.rows; ++i)
    EXPECT_TRUE(std::is_sorted(sorted.col.begin() + sorted.row_start[i], sorted.col.begin() + sorted.row_start[i + 1]));
}

}  // namespace
}  // namespace cdmf
