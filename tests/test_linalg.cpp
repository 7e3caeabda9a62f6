// DistMatrix and the orthogonal init against serial references, on every grid shape.
#include <gtest/gtest.h>

#include <cmath>

#include "cdmf/data/layout.hpp"
#include "cdmf/linalg/dist_matrix.hpp"
#include "cdmf/model/chain.hpp"
#include "cdmf/random/counter_rng.hpp"
#include "support/test_support.hpp"

namespace cdmf {
namespace {

std::vector<double> serial_product(const std::vector<double>& a, const std::vector<double>& b,
                                   std::int64_t m, std::int64_t k, std::int64_t n) {
  std::vector<double> c(static_cast<size_t>(m * n), 0.0);
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t p = 0; p < k; ++p)
      for (std::int64_t i = 0; i < m; ++i) c[i + j * m] += a[i + p * m] * b[p + j * k];
  return c;
}

TEST(DistMatrix, GatherScatterRoundTripAndGemmMatchSerial) {
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      const std::int64_t m = 13, k = 7, n = 11;
      DistMatrix a(grid, m, k, 3), b(grid, k, n, 3), c(grid, m, n, 3);
      a.fill([](std::int64_t i, std::int64_t j) { return gaussian(1, 9, i * 100 + j); });
      b.fill([](std::int64_t i, std::int64_t j) { return gaussian(2, 9, i * 100 + j); });
      gemm('N', 'N', 1.0, a, b, 0.0, c);
      const auto fa = a.gather(), fb = b.gather(), fc = c.gather();
      DistMatrix a2(grid, m, k, 3);
      a2.scatter(fa);
      const auto fa2 = a2.gather();
      // transposed products
      DistMatrix ct(grid, n, m, 3);
      gemm('T', 'T', 1.0, b, a, 0.0, ct);
      const auto fct = ct.gather();
      const auto tr = transposed(c).gather();
      if (grid.is_root()) {
        EXPECT_EQ(fa, fa2);
        const auto ref = serial_product(fa, fb, m, k, n);
        EXPECT_LT(test::relative_error(fc, ref), 1e-14);
        EXPECT_LT(test::relative_error(fct, tr), 1e-14);
      }
      EXPECT_NEAR(c.entry(4, 5), c.entry(4, 5), 0.0);
    });
  }
}

TEST(DistMatrix, OrthonormalizeGivesQWithPositiveR) {
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      const std::int64_t m = 17, k = 5;
      DistMatrix a(grid, m, k, 4);
      a.fill([](std::int64_t i, std::int64_t j) { return gaussian(3, 1, i * k + j); });
      const auto original = a.gather();
      orthonormalize_columns(a);
      const auto q = a.gather();
      if (!grid.is_root()) return;
      // Q^T Q = I and R = Q^T A upper triangular with positive diagonal.
      for (std::int64_t i = 0; i < k; ++i)
        for (std::int64_t j = 0; j < k; ++j) {
          double qq = 0, qa = 0;
          for (std::int64_t r = 0; r < m; ++r) {
            qq += q[r + i * m] * q[r + j * m];
            qa += q[r + i * m] * original[r + j * m];
          }
          EXPECT_NEAR(qq, i == j ? 1.0 : 0.0, 1e-14);
          if (i > j) EXPECT_NEAR(qa, 0.0, 1e-13);
          if (i == j) EXPECT_GT(qa, 0.0);
        }
    });
  }
}

TEST(DistMatrix, SingularValuesOfKnownMatrix) {
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      // Diagonal 9x6 with entries 6..1 under a permutation of rows: singular values 6..1.
      DistMatrix a(grid, 9, 6, 2);
      a.fill([](std::int64_t i, std::int64_t j) { return (i == (j * 5) % 9) ? 6.0 - j : 0.0; });
      const auto s = singular_values(a);
      ASSERT_EQ(s.size(), 6u);
      for (int j = 0; j < 6; ++j) EXPECT_NEAR(s[j], 6.0 - j, 1e-13);
      const Svd full = svd(a);
      DistMatrix us(grid, 9, 6, 2);
      us = full.u;
      for (std::int64_t lj = 0; lj < us.local_cols(); ++lj)
        for (std::int64_t li = 0; li < us.local_rows(); ++li)
          us.at_local(li, lj) *= full.s[us.col_dim().global(lj)];
      DistMatrix back(grid, 9, 6, 2);
      gemm('N', 'N', 1.0, us, full.vt, 0.0, back);
      const auto fb = back.gather(), fa = a.gather();
      if (grid.is_root()) EXPECT_LT(test::relative_error(fb, fa), 1e-14);
    });
  }
}

TEST(OrthogonalInit, SameOnEveryGridAndOrthonormal) {
  // Reference: the 1x1 grid's factors; draws are keyed by original index.
  std::vector<double> reference_wide, reference_tall;
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      IndexLayout layout(23, 19, choose_block_size(23, 19, grid, 4), 77);
      const auto wide = orthogonal_factor(grid, layout, {8, 19}, 1e-3, 5, 100, Space::kInner, Space::kCols).gather();
      const auto tall = orthogonal_factor(grid, layout, {23, 8}, 1e-3, 5, 101, Space::kRows, Space::kInner).gather();
      if (!grid.is_root()) return;
      // Undo the permutation to compare in original order.
      std::vector<double> wide_orig(wide.size()), tall_orig(tall.size());
      for (std::int64_t j = 0; j < 19; ++j)
        for (std::int64_t i = 0; i < 8; ++i)
          wide_orig[i + layout.original_col(j) * 8] = wide[i + j * 8];
      for (std::int64_t j = 0; j < 8; ++j)
        for (std::int64_t i = 0; i < 23; ++i)
          tall_orig[layout.original_row(i) + j * 23] = tall[i + j * 23];
      if (reference_wide.empty()) {
        reference_wide = wide_orig;
        reference_tall = tall_orig;
      }
      EXPECT_LT(test::relative_error(wide_orig, reference_wide), 1e-14);
      EXPECT_LT(test::relative_error(tall_orig, reference_tall), 1e-14);
      for (int i = 0; i < 8; ++i)
        for (int j = 0; j < 8; ++j) {
          double rr = 0, cc = 0;
          for (int c = 0; c < 19; ++c) rr += wide[i + c * 8] * wide[j + c * 8];
          for (int r = 0; r < 23; ++r) cc += tall[r + i * 23] * tall[r + j * 23];
          EXPECT_NEAR(rr, i == j ? 1e-6 : 0.0, 1e-18);
          EXPECT_NEAR(cc, i == j ? 1e-6 : 0.0, 1e-18);
        }
    });
  }
}

}  // namespace
}  // namespace cdmf
