// DistMatrix, the truncated SVD and the orthogonal init against serial references, on every
// grid shape.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "cdmf/core/error.hpp"
#include "cdmf/data/layout.hpp"
#include "cdmf/linalg/dist_matrix.hpp"
#include "cdmf/linalg/scalapack.hpp"
#include "cdmf/linalg/truncated_svd.hpp"
#include "cdmf/model/chain.hpp"
#include "cdmf/random/counter_rng.hpp"
#include "support/serial_reference.hpp"
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

// ---------------------------------------------------------------------------------------
// top_singular_vectors against LAPACK dgesvd in the test

using test::SerialMatrix;

/// Q of the QR of an m x r Gaussian matrix (LAPACK dgeqrf + dorgqr): orthonormal columns.
SerialMatrix random_orthonormal(std::int64_t m, std::int64_t r, std::uint32_t stream) {
  SerialMatrix q{m, r, {}};
  for (std::int64_t e = 0; e < m * r; ++e) q.data.push_back(gaussian(41, stream, e));
  const int rows = static_cast<int>(m), cols = static_cast<int>(r);
  std::vector<double> tau(static_cast<size_t>(r)), work(static_cast<size_t>(64 * (m + r)));
  int lwork = static_cast<int>(work.size()), info = 0;
  dgeqrf_(&rows, &cols, q.data.data(), &rows, tau.data(), work.data(), &lwork, &info);
  dorgqr_(&rows, &cols, &cols, q.data.data(), &rows, tau.data(), work.data(), &lwork, &info);
  return q;
}

/// P diag(spectrum) Q^T, m x n, with random orthonormal P and Q: singular values `spectrum`.
SerialMatrix with_spectrum(std::int64_t m, std::int64_t n, const std::vector<double>& spectrum) {
  const std::int64_t r = static_cast<std::int64_t>(spectrum.size());
  SerialMatrix p = random_orthonormal(m, r, 1);
  const SerialMatrix q = random_orthonormal(n, r, 2);
  for (std::int64_t j = 0; j < r; ++j)
    for (std::int64_t i = 0; i < m; ++i) p(i, j) *= spectrum[j];
  return test::multiply(p, q, false, true);
}

struct SerialSvd {
  SerialMatrix u, v;  // leading `count` columns
  std::vector<double> s;
};

SerialSvd serial_svd(SerialMatrix a, std::int64_t count) {
  const int m = static_cast<int>(a.rows), n = static_cast<int>(a.cols), k = std::min(m, n);
  std::vector<double> s(static_cast<size_t>(k)), u(static_cast<size_t>(m) * k),
      vt(static_cast<size_t>(k) * n);
  std::vector<double> work(static_cast<size_t>(64 * (m + n)));
  int lwork = static_cast<int>(work.size()), info = 0;
  dgesvd_("S", "S", &m, &n, a.data.data(), &m, s.data(), u.data(), &m, vt.data(), &k, work.data(),
          &lwork, &info, 1, 1);
  SerialSvd out{{a.rows, count, {}}, {a.cols, count, {}}, {}};
  for (std::int64_t c = 0; c < count; ++c) {
    out.s.push_back(s[c]);
    for (std::int64_t i = 0; i < a.rows; ++i) out.u.data.push_back(u[i + c * m]);
  }
  for (std::int64_t c = 0; c < count; ++c)
    for (std::int64_t j = 0; j < a.cols; ++j) out.v.data.push_back(vt[c + j * k]);
  return out;
}

SerialMatrix leading_columns(const SerialMatrix& x, std::int64_t count) {
  return {x.rows, count, std::vector<double>(x.data.begin(), x.data.begin() + x.rows * count)};
}

/// ||X X^T - Y Y^T||_F / ||Y Y^T||_F: the distance of the column spaces of X and Y.
double projector_difference(const SerialMatrix& x, const SerialMatrix& y) {
  return test::relative_error(test::multiply(x, x, false, true).data,
                              test::multiply(y, y, false, true).data);
}

/// max |X^T X - I|.
double orthonormality_error(const SerialMatrix& x) {
  const SerialMatrix g = test::multiply(x, x, true, false);
  double worst = 0.0;
  for (std::int64_t j = 0; j < g.cols; ++j)
    for (std::int64_t i = 0; i < g.rows; ++i) worst = std::max(worst, std::abs(g(i, j) - (i == j)));
  return worst;
}

struct SpectrumCase {
  std::string name;
  std::vector<double> spectrum;  // all min(m, n) singular values, descending
  std::int64_t count;
  bool vectors_unique;  // distinct top singular values: compare vectors across grids too
};

std::vector<SpectrumCase> spectrum_cases(std::int64_t r) {
  std::vector<double> separated, cluster, cut_gap, whole;
  for (std::int64_t i = 0; i < r; ++i) separated.push_back(10.0 * std::pow(0.8, double(i)));
  // All r asked: s_r / s_1 must stay resolvable by the Gram matrix (0.97^99 = 0.05).
  for (std::int64_t i = 0; i < r; ++i) whole.push_back(10.0 * std::pow(0.97, double(i)));
  // Three top values 1e-9 apart: only their span is defined.
  cluster = {10.0, 10.0 * (1 - 1e-9), 10.0 * (1 - 2e-9)};
  for (std::int64_t i = 3; i < r; ++i) cluster.push_back(4.0 * std::pow(0.9, double(i)));
  // s_4 and s_5 1e-4 apart (relative): (s_4^2 - s_5^2) / s_1^2 = 5e-5, just above what the
  // Gram path accepts (3.6e-5).
  cut_gap = {10.0, 8.0, 6.5, 5.0, 5.0 * (1 - 1e-4)};
  for (std::int64_t i = 5; i < r; ++i) cut_gap.push_back(4.0 * std::pow(0.9, double(i)));
  return {{"separated", separated, 4, true},
          {"close top values", cluster, 3, false},
          {"small gap after s_count", cut_gap, 4, true},
          {"count = min(m, n)", whole, r, true}};
}

TEST(TruncatedSvd, MatchesLapackOnKnownSpectraOnEveryGrid) {
  struct Shape {
    std::int64_t m, n;
    int block;
  };
  // Tall and wide (the Gram matrix of either side), and blocks of 32 with few vectors asked
  // of a 100 x 100 Gram matrix: the case where PDSYEVR returns wrong vectors with INFO = 0.
  for (const Shape& shape_case : {Shape{37, 23, 4}, Shape{23, 37, 4}, Shape{150, 100, 32}}) {
    const std::int64_t m = shape_case.m, n = shape_case.n;
    for (const SpectrumCase& c : spectrum_cases(std::min(m, n))) {
      SCOPED_TRACE(std::to_string(m) + "x" + std::to_string(n) + ", " + c.name);
      const SerialMatrix full = with_spectrum(m, n, c.spectrum);
      const SerialSvd reference = serial_svd(full, c.count);
      std::vector<double> first_u, first_v;  // the first grid's vectors
      for (GridShape shape : test::available_shapes()) {
        test::on_grid(shape, [&](const ProcessGrid& grid) {
          SCOPED_TRACE("grid " + std::to_string(shape.rows) + "x" + std::to_string(shape.cols));
          DistMatrix a(grid, m, n, shape_case.block);
          a.scatter(full.data);
          // An exception must not escape on_grid (the other grids' ranks would wait forever);
          // the routine throws on every rank of the grid or on none.
          std::optional<TruncatedSvd> result;
          EXPECT_NO_THROW(result.emplace(top_singular_vectors(a, c.count)));
          if (!result) return;
          const TruncatedSvd& top = *result;
          EXPECT_FALSE(top.from_full_svd);
          ASSERT_EQ(top.u.rows(), m);
          ASSERT_EQ(top.u.cols(), c.count);
          ASSERT_EQ(top.v.rows(), n);
          ASSERT_EQ(top.v.cols(), c.count);
          ASSERT_EQ(top.s.size(), static_cast<size_t>(c.count));
          const SerialMatrix u{m, c.count, top.u.gather()}, v{n, c.count, top.v.gather()};
          if (!grid.is_root()) return;
          for (std::int64_t i = 0; i < c.count; ++i) {
            EXPECT_NEAR(top.s[i], reference.s[i], 1e-12 * reference.s[i]) << "s_" << i + 1;
            EXPECT_NEAR(top.s[i], c.spectrum[i], 1e-12 * c.spectrum[i]) << "s_" << i + 1;
          }
          EXPECT_LT(projector_difference(u, reference.u), 1e-10);
          EXPECT_LT(projector_difference(v, reference.v), 1e-10);
          EXPECT_LT(orthonormality_error(u), 1e-14);
          EXPECT_LT(orthonormality_error(v), 1e-14);
          // A V = U diag(s).
          SerialMatrix us = u;
          for (std::int64_t j = 0; j < c.count; ++j)
            for (std::int64_t i = 0; i < m; ++i) us(i, j) *= top.s[j];
          EXPECT_LT(test::relative_error(test::multiply(full, v).data, us.data), 1e-12);
          if (!c.vectors_unique) return;
          // Same vectors, signs included, on every grid (the sign convention).
          if (first_u.empty()) {
            first_u = u.data;
            first_v = v.data;
          }
          EXPECT_LT(test::relative_error(u.data, first_u), 1e-12);
          EXPECT_LT(test::relative_error(v.data, first_v), 1e-12);
        });
      }
    }
  }
}

TEST(TruncatedSvd, RejectsImpossibleCountsAndUndefinedSubspaces) {
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      const std::int64_t m = 19, n = 13;
      DistMatrix a(grid, m, n, 3);
      a.scatter(with_spectrum(m, n, std::vector<double>(13, 1.0)).data);
      EXPECT_THROW(top_singular_vectors(a, 0), Error);
      EXPECT_THROW(top_singular_vectors(a, 14), Error);  // > min(m, n)
      DistMatrix bad = a;
      bad.set_entry(5, 7, std::numeric_limits<double>::quiet_NaN());
      EXPECT_THROW(top_singular_vectors(bad, 2), Error);

      // Rank 2, three vectors asked: s_3 = s_4 = 0, the third direction is undefined.
      std::vector<double> rank_two(13, 0.0);
      rank_two[0] = 3.0;
      rank_two[1] = 2.0;
      const SerialMatrix full = with_spectrum(m, n, rank_two);
      DistMatrix low(grid, m, n, 3);
      low.scatter(full.data);
      std::string message;
      try {
        top_singular_vectors(low, 3);
      } catch (const Error& e) {
        message = e.what();
      }
      EXPECT_NE(message.find("top-3 singular subspace of the 19x13 matrix is undefined"),
                std::string::npos)
          << message;
      // The fallback: PDGESVD's leading columns, the defined part right. (No exception may
      // escape on_grid: the ranks of other grids would wait forever.)
      std::optional<TruncatedSvd> fallback_result, zero_result;
      constexpr UnresolvedSubspace kUseFullSvd = UnresolvedSubspace::kUseFullSvd;
      EXPECT_NO_THROW(fallback_result.emplace(top_singular_vectors(low, 3, kUseFullSvd)));
      DistMatrix zero(grid, m, n, 3);
      EXPECT_THROW(top_singular_vectors(zero, 1), Error);
      EXPECT_NO_THROW(zero_result.emplace(top_singular_vectors(zero, 2, kUseFullSvd)));
      if (!fallback_result || !zero_result) return;
      const TruncatedSvd& fallback = *fallback_result;
      const TruncatedSvd& from_zero = *zero_result;
      EXPECT_TRUE(fallback.from_full_svd);
      EXPECT_TRUE(from_zero.from_full_svd);
      const SerialMatrix u{m, 3, fallback.u.gather()}, v{n, 3, fallback.v.gather()};
      const SerialMatrix zu{m, 2, from_zero.u.gather()}, zv{n, 2, from_zero.v.gather()};
      if (!grid.is_root()) return;
      const SerialSvd reference = serial_svd(full, 2);
      EXPECT_NEAR(fallback.s[0], 3.0, 1e-13);
      EXPECT_NEAR(fallback.s[1], 2.0, 1e-13);
      EXPECT_NEAR(fallback.s[2], 0.0, 1e-13);
      EXPECT_LT(projector_difference(leading_columns(u, 2), reference.u), 1e-12);
      EXPECT_LT(projector_difference(leading_columns(v, 2), reference.v), 1e-12);
      EXPECT_LT(orthonormality_error(u), 1e-14);
      EXPECT_LT(orthonormality_error(v), 1e-14);
      EXPECT_EQ(from_zero.s, (std::vector<double>{0.0, 0.0}));
      EXPECT_LT(orthonormality_error(zu), 1e-14);
      EXPECT_LT(orthonormality_error(zv), 1e-14);
    });
  }
}

/// ScaLAPACK's QR, SVD, reduction and back-transformation routines (PDGEQRF/PDORGQR, PDGESVD,
/// PDSYNTRD, PDORMTR) change PBLAS's broadcast topologies, which decide how later PDGEMMs
/// accumulate: a restarted process (no QR or SVD at init) would drift from one never stopped.
/// Every routine that calls them must leave the topologies as it found them.
TEST(Determinism, ScalapackRoutinesLeavePblasTopologiesAsTheyFoundThem) {
  test::on_world_grid([&](const ProcessGrid& grid) {
    int context = grid.blacs_context();
    const auto topologies = [&] {
      std::string all;
      for (const char* op : {"B", "C"})
        for (const char* scope : {"R", "C", "A"}) all += *PB_Ctop(&context, op, scope, "!");
      return all;
    };
    // From the library's initial state (earlier tests may have left another one behind).
    for (const char* op : {"B", "C"})
      for (const char* scope : {"R", "C", "A"}) PB_Ctop(&context, op, scope, " ");
    const std::string before = topologies();
    DistMatrix q(grid, 20, 6, 4);
    q.fill([](std::int64_t i, std::int64_t j) { return gaussian(3, 1, i * 6 + j); });
    orthonormalize_columns(q);
    EXPECT_EQ(topologies(), before) << "after orthonormalize_columns";
    singular_values(q);
    svd(q);
    EXPECT_EQ(topologies(), before) << "after the SVDs";
    for (const auto& [m, n] : {std::pair<std::int64_t, std::int64_t>{20, 12}, {12, 20}}) {
      DistMatrix a(grid, m, n, 4);
      a.fill([](std::int64_t i, std::int64_t j) { return gaussian(3, 2, i * 100 + j); });
      top_singular_vectors(a, 3);
      EXPECT_EQ(topologies(), before) << "after top_singular_vectors, " << m << "x" << n;
    }
  });
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

namespace cdmf {
namespace {

TEST(ProcessGridShape, DefaultShapeFollowsTheMatrix) {
  // A tall matrix splits its rows, a wide one its columns, a square one stays near-square.
  EXPECT_EQ(shape_for_matrix(2, 480189, 17770).rows, 2);
  EXPECT_EQ(shape_for_matrix(2, 17770, 480189).rows, 1);
  EXPECT_EQ(shape_for_matrix(2, 1000, 1000).rows, near_square_shape(2).rows);
  EXPECT_EQ(shape_for_matrix(4, 1000, 1000).rows, 2);
  const GridShape netflix8 = shape_for_matrix(8, 480189, 17770);
  EXPECT_EQ(netflix8.rows, 8);  // 480189/8 + 17770 beats 480189/4 + 17770/2
  EXPECT_EQ(shape_for_matrix(16, 480189, 17770).rows, 16);
  EXPECT_EQ(shape_for_matrix(6, 3000, 1000).rows, 2);  // 3x2 saves only 18% against 2x3
  EXPECT_EQ(shape_for_matrix(2, 30, 24).rows, 1);      // mildly rectangular: near-square kept
  // No more process rows than rows.
  EXPECT_LE(shape_for_matrix(4, 2, 1000).rows, 2);
}

}  // namespace
}  // namespace cdmf
