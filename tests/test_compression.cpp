// Compression of the deep init (DESIGN.md section 1) against a serial construction with
// LAPACK in the test: the basis V spans the same subspace, and the compressed chain's
// end-to-end matrix at init is W_{L:1}(0) V V^T, on every grid shape.
#include <gtest/gtest.h>

#include <cmath>

#include "cdmf/core/error.hpp"
#include "cdmf/linalg/scalapack.hpp"
#include "cdmf/model/compression.hpp"
#include "cdmf/random/counter_rng.hpp"
#include "cdmf/strategy/dense_strategy.hpp"
#include "support/serial_reference.hpp"
#include "support/test_support.hpp"

namespace cdmf {
namespace {

using test::SerialMatrix;

using test::projector;
using test::serial_orth;
using test::serial_top_singular_vectors;

/// `scale` times the columns of a, then b, side by side.
SerialMatrix side_by_side(const SerialMatrix& a, const SerialMatrix& b, double scale) {
  SerialMatrix both = a;
  for (double x : b.data) both.data.push_back(x * scale);
  both.cols = a.cols + b.cols;
  return both;
}

TEST(Compression, BasisAndInitMatchSerialConstruction) {
  // Wide and square: V = orth([V_G, W1^T U_G / eps]) and U = Q V. Tall (m > n): the transposed
  // construction U = orth([U_S0, Q V_S0]) and V = Q^T U, with U_S0 = W_{L:2} U_G / eps^(L-1).
  const std::int64_t rank = 2;
  const double eps = 1e-2;
  for (auto [m, n] : {std::pair<std::int64_t, std::int64_t>{18, 14}, {14, 18}, {16, 16}}) {
    SCOPED_TRACE(std::to_string(m) + " x " + std::to_string(n));
    const std::int64_t h = std::max(m, n);
    SerialMatrix a{m, 3, {}}, b{3, n, {}};
    for (std::int64_t e = 0; e < 3 * m; ++e) a.data.push_back(gaussian(12, 1, e));
    for (std::int64_t e = 0; e < 3 * n; ++e) b.data.push_back(gaussian(12, 2, e));
    const SerialMatrix truth = test::multiply(a, b);
    const EntryList entries = test::random_entries(m, n, 0.4, 4, truth);
    for (GridShape shape : test::available_shapes()) {
      test::on_grid(shape, [&](const ProcessGrid& grid) {
        IndexLayout layout(m, n, choose_block_size(m, n, grid, 3), 13);
        const Chain deep = make_deep_chain(grid, layout, 3, h, eps, 17);
        const Observations obs = test::owned_observations(grid, layout, entries);
        DenseStrategy strategy(obs, nullptr, std::nullopt, double(m * n));
        const CompressionFactors factors = compression_factors(deep, strategy, rank, eps);
        const SerialMatrix v = test::gather_original(factors.v, layout, Space::kCols, Space::kInner);
        const SerialMatrix u = test::gather_original(factors.u, layout, Space::kRows, Space::kInner);
        const Chain compressed = compress_chain(deep, strategy, {rank, 0.01, eps});
        const SerialMatrix x0 = test::gather_original(end_to_end(compressed), layout, Space::kRows, Space::kCols);
        const auto serial_deep = test::gather_chain(deep, layout);
        if (!grid.is_root()) return;
        // Serial reference: G, its top singular vectors, the basis of the built side.
        std::vector<SerialMatrix> gradient;
        test::serial_loss(serial_deep, entries, double(m * n), &gradient);
        SerialMatrix u_g, v_g;
        serial_top_singular_vectors(gradient[0], rank, u_g, v_g);
        const SerialMatrix q = test::serial_end_to_end(serial_deep);  // eps^3 Q
        const double eps3 = eps * eps * eps;
        if (m <= n) {
          const SerialMatrix v_ref =
              serial_orth(side_by_side(v_g, test::multiply(serial_deep[0], u_g, true, false), 1.0 / eps));
          EXPECT_LT(test::relative_error(projector(v).data, projector(v_ref).data), 1e-10);
          // U = Q V; end to end at init: W_{L:1}(0) V V^T.
          SerialMatrix qv = test::multiply(q, v);
          for (double& x : qv.data) x /= eps3;
          EXPECT_LT(test::relative_error(u.data, qv.data), 1e-10);
          const SerialMatrix expected = test::multiply(q, projector(v_ref));
          EXPECT_LT(test::relative_error(x0.data, expected.data), 1e-10);
        } else {
          const SerialMatrix u_s = test::multiply(serial_deep[2], test::multiply(serial_deep[1], u_g));
          const SerialMatrix qv = test::multiply(q, v_g);
          SerialMatrix stacked = u_s;
          for (double& x : stacked.data) x /= eps * eps;
          stacked = serial_orth(side_by_side(stacked, qv, 1.0 / eps3));
          EXPECT_LT(test::relative_error(projector(u).data, projector(stacked).data), 1e-10);
          // The update's column space U_S0 is in U's span (it was not with U = Q V).
          const SerialMatrix left = test::multiply(projector(u), u_s);
          EXPECT_LT(test::relative_error(left.data, u_s.data), 1e-10);
          // V = Q^T U.
          SerialMatrix qtu = test::multiply(q, u, true, false);
          for (double& x : qtu.data) x /= eps3;
          EXPECT_LT(test::relative_error(v.data, qtu.data), 1e-10);
          // End to end at init: U U^T W_{L:1}(0).
          const SerialMatrix expected = test::multiply(projector(stacked), q);
          EXPECT_LT(test::relative_error(x0.data, expected.data), 1e-10);
        }
        // Shapes and multipliers of [V^T, eps I x 3, U].
        ASSERT_EQ(compressed.depth(), 5);
        EXPECT_EQ(compressed.lr_multipliers, (std::vector<double>{0.01, 1, 1, 1, 0.01}));
        EXPECT_EQ(compressed.factors[0].rows(), 2 * rank);
        EXPECT_EQ(compressed.factors[4].rows(), m);
        EXPECT_EQ(compressed.factors[4].cols(), 2 * rank);
      });
    }
  }
}

TEST(Compression, RejectsImpossibleRanks) {
  test::on_grid({1, 1}, [](const ProcessGrid& grid) {
    IndexLayout layout(6, 5, 2, 1);
    const Chain deep = make_deep_chain(grid, layout, 3, 6, 1e-3, 1);
    EntryList none;
    const Observations obs = test::owned_observations(grid, layout, none);
    DenseStrategy strategy(obs, nullptr, std::nullopt, 30.0);
    EXPECT_THROW(compress_chain(deep, strategy, {0, 0.01, 1e-3}), Error);
    EXPECT_THROW(compress_chain(deep, strategy, {3, 0.01, 1e-3}), Error);  // 2*3 > min(6, 5)
    EXPECT_THROW(compress_chain(deep, strategy, {2, -1.0, 1e-3}), Error);
  });
}

}  // namespace
}  // namespace cdmf
