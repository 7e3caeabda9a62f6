// The truncated SVD of a distributed sparse matrix (linalg/sparse_svd.hpp, PARPACK) against
// LAPACK's SVD of the same matrix made dense: separated, close and repeated singular values,
// a rank-deficient matrix and the warning paths, tall and wide, on every grid shape.
#include <gtest/gtest.h>

#include <cmath>

#include "cdmf/linalg/scalapack.hpp"
#include "cdmf/linalg/sparse_svd.hpp"
#include "cdmf/random/counter_rng.hpp"
#include "support/serial_reference.hpp"
#include "support/test_support.hpp"

namespace cdmf {
namespace {

using test::SerialMatrix;

SerialMatrix orthonormal(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  SerialMatrix a{rows, cols, {}};
  for (std::int64_t e = 0; e < rows * cols; ++e) a.data.push_back(gaussian(seed, 7, e));
  const int m = static_cast<int>(rows), n = static_cast<int>(cols);
  std::vector<double> tau(static_cast<size_t>(n)), work(static_cast<size_t>(64 * n));
  int lwork = static_cast<int>(work.size()), info = 0;
  dgeqrf_(&m, &n, a.data.data(), &m, tau.data(), work.data(), &lwork, &info);
  dorgqr_(&m, &n, &n, a.data.data(), &m, tau.data(), work.data(), &lwork, &info);
  return a;
}

/// U diag(s) V^T with random orthonormal U, V (s padded with zeros).
SerialMatrix with_spectrum(std::int64_t m, std::int64_t n, std::vector<double> s, std::uint64_t seed) {
  const std::int64_t r = static_cast<std::int64_t>(s.size());
  SerialMatrix u = orthonormal(m, r, seed), v = orthonormal(n, r, seed + 1);
  for (std::int64_t c = 0; c < r; ++c)
    for (std::int64_t i = 0; i < m; ++i) u(i, c) *= s[c];
  return test::multiply(u, v, false, true);
}

struct Reference {
  std::vector<double> s;
  SerialMatrix u, v;
};

Reference lapack_svd(SerialMatrix a) {
  const int m = static_cast<int>(a.rows), n = static_cast<int>(a.cols), k = std::min(m, n);
  Reference ref{std::vector<double>(static_cast<size_t>(k)), {a.rows, k, std::vector<double>(static_cast<size_t>(m) * k)},
                {a.cols, k, {}}};
  std::vector<double> vt(static_cast<size_t>(k) * n), work(static_cast<size_t>(10 * (m + n) * 8));
  int lwork = static_cast<int>(work.size()), info = 0;
  dgesvd_("S", "S", &m, &n, a.data.data(), &m, ref.s.data(), ref.u.data.data(), &m, vt.data(), &k,
          work.data(), &lwork, &info, 1, 1);
  ref.v.data.resize(static_cast<size_t>(n) * k);
  for (int c = 0; c < k; ++c)
    for (int j = 0; j < n; ++j) ref.v(j, c) = vt[c + static_cast<size_t>(j) * k];
  return ref;
}

/// ||P_a - P_b||_F for the projectors on the first `count` columns of a and b, formed (the
/// shortcut sqrt(2k - 2 ||a^T b||^2) loses half the digits).
double projector_difference(const std::vector<double>& a, const SerialMatrix& b, std::int64_t count) {
  const std::int64_t rows = b.rows;
  SerialMatrix x{rows, count, {a.begin(), a.begin() + rows * count}};
  SerialMatrix y{rows, count, {b.data.begin(), b.data.begin() + rows * count}};
  const SerialMatrix px = test::multiply(x, x, false, true), py = test::multiply(y, y, false, true);
  double sum = 0.0;
  for (size_t e = 0; e < px.data.size(); ++e) sum += (px.data[e] - py.data[e]) * (px.data[e] - py.data[e]);
  return std::sqrt(sum);
}

/// Runs the truncated SVD of `a` (every entry, or those with a random keep below `density`)
/// on every grid shape and compares with LAPACK.
void check_against_lapack(const SerialMatrix& dense, std::int64_t count, double density,
                          const std::string& warning_phrase, std::int64_t subspace_columns) {
  SerialMatrix a = dense;
  for (std::int64_t e = 0; e < a.rows * a.cols; ++e)
    if (uniform_open(99, 5, e) > density) a.data[e] = 0.0;
  const Reference ref = lapack_svd(a);
  for (GridShape shape : test::available_shapes()) {
    SCOPED_TRACE(std::to_string(shape.rows) + "x" + std::to_string(shape.cols));
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      const int block = 3;
      CyclicDim rows{a.rows, block, grid.rows(), grid.my_row()}, cols{a.cols, block, grid.cols(), grid.my_col()};
      std::vector<std::int64_t> ri, ci;
      std::vector<double> values;
      for (std::int64_t j = 0; j < a.cols; ++j)
        for (std::int64_t i = 0; i < a.rows; ++i)
          if (a(i, j) != 0.0 && rows.owner(i) == grid.my_row() && cols.owner(j) == grid.my_col()) {
            ri.push_back(i);
            ci.push_back(j);
            values.push_back(a(i, j));
          }
      const DistSparseMatrix sparse(grid, a.rows, a.cols, block, ri, ci, values);
      const SparseSvd svd = sparse_truncated_svd(sparse, count);
      const double s1 = ref.s[0];
      for (std::int64_t c = 0; c < count; ++c) EXPECT_NEAR(svd.s[c], ref.s[c], 1e-12 * s1) << "s_" << c + 1;
      if (warning_phrase.empty()) {
        EXPECT_EQ(svd.warning, "");
        for (double r : svd.residuals) EXPECT_LT(r, kMaxResidual);
        EXPECT_EQ(svd.rank_found, count);
      } else {
        EXPECT_NE(svd.warning.find(warning_phrase), std::string::npos) << svd.warning;
      }
      EXPECT_LT(projector_difference(svd.v, ref.v, subspace_columns), 1e-8);
      EXPECT_LT(projector_difference(svd.u, ref.u, subspace_columns), 1e-8);
      // Orthonormal columns, also where the null directions were completed.
      for (const auto* side : {&svd.u, &svd.v}) {
        const std::int64_t length = static_cast<std::int64_t>(side->size()) / count;
        SerialMatrix x{length, count, *side};
        const SerialMatrix gram = test::multiply(x, x, true, false);
        for (std::int64_t p = 0; p < count; ++p)
          for (std::int64_t q = 0; q < count; ++q) EXPECT_NEAR(gram(p, q), p == q ? 1.0 : 0.0, 1e-12);
      }
      EXPECT_GT(svd.passes, 0);
    });
  }
}

TEST(SparseSvd, SeparatedSingularValues) {
  check_against_lapack(with_spectrum(40, 30, {10, 7, 5, 3, 2, 1, 0.5, 0.25}, 1), 3, 1.0, "", 3);
  check_against_lapack(with_spectrum(25, 44, {10, 7, 5, 3, 2, 1, 0.5, 0.25}, 2), 4, 1.0, "", 4);
}

TEST(SparseSvd, SparseRandomMatrixLikeAFirstGradient) {
  // A Gaussian low-rank matrix seen on 30% of its entries, as S0 is.
  check_against_lapack(with_spectrum(50, 36, {9, 8, 6, 1, 0.5}, 3), 3, 0.3, "", 3);
  check_against_lapack(with_spectrum(33, 52, {9, 8, 6, 1, 0.5}, 4), 3, 0.3, "", 3);
}

TEST(SparseSvd, CloseAndRepeatedSingularValues) {
  // s_3 and s_4 differ by 1e-6 s_1: still determined (the warning starts at 1e-8).
  check_against_lapack(with_spectrum(40, 30, {3, 2, 1 + 3e-6, 1, 0.5, 0.2}, 5), 3, 1.0, "", 3);
  // A repeated value inside the top 4 leaves the subspace determined.
  check_against_lapack(with_spectrum(40, 30, {5, 2, 2, 2, 1, 0.5}, 6), 4, 1.0, "", 4);
}

TEST(SparseSvd, RankDeficientMatrixIsCompletedWithAWarning) {
  check_against_lapack(with_spectrum(40, 30, {4, 2}, 7), 3, 1.0, "singular values above", 2);
}

TEST(SparseSvd, UndeterminedSubspaceWarns) {
  // s_3 = s_4: the top-3 subspace is not defined; the first two directions still are.
  check_against_lapack(with_spectrum(40, 30, {4, 2, 1, 1, 0.5}, 8), 3, 1.0, "not determined", 2);
}

TEST(SparseSvd, RejectsImpossibleCounts) {
  test::on_world_grid([](const ProcessGrid& grid) {
    const DistSparseMatrix empty(grid, 6, 5, 2, std::vector<std::int64_t>{}, std::vector<std::int64_t>{},
                                 std::vector<double>{});
    test::expect_error(grid.comm(), "truncated SVD", "need 1 <= count < 5", [&] { sparse_truncated_svd(empty, 5); });
    test::expect_error(grid.comm(), "truncated SVD", "need 1 <= count", [&] { sparse_truncated_svd(empty, 0); });
  });
}

}  // namespace
}  // namespace cdmf
