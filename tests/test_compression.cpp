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

TEST(Compression, BasisAndInitMatchSerialConstruction) {
  const std::int64_t m = 18, n = 14, h = 18, rank = 2;
  const double eps = 1e-2;
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
      const DistMatrix basis = compression_basis(deep, strategy, rank, eps);
      const SerialMatrix v = test::gather_original(basis, layout, Space::kCols, Space::kInner);
      const Chain compressed = compress_chain(deep, strategy, {rank, 0.01, eps});
      const SerialMatrix x0 = test::gather_original(end_to_end(compressed), layout, Space::kRows, Space::kCols);
      const auto serial_deep = test::gather_chain(deep, layout);
      if (!grid.is_root()) return;
      // Serial reference: G, its top singular vectors, V = orth([V_G, W1^T U_G / eps]).
      std::vector<SerialMatrix> gradient;
      test::serial_loss(serial_deep, entries, double(m * n), &gradient);
      SerialMatrix u_g, v_g;
      serial_top_singular_vectors(gradient[0], rank, u_g, v_g);
      SerialMatrix stacked = v_g;
      SerialMatrix lifted = test::multiply(serial_deep[0], u_g, true, false);
      for (double x : lifted.data) stacked.data.push_back(x / eps);
      stacked.cols = 2 * rank;
      const SerialMatrix v_ref = serial_orth(stacked);
      EXPECT_LT(test::relative_error(projector(v).data, projector(v_ref).data), 1e-10);
      // End-to-end at init: W_{L:1}(0) V V^T.
      const SerialMatrix expected = test::multiply(test::serial_end_to_end(serial_deep), projector(v_ref));
      EXPECT_LT(test::relative_error(x0.data, expected.data), 1e-10);
      // Shapes and multipliers of [V^T, eps I x 3, U].
      ASSERT_EQ(compressed.depth(), 5);
      EXPECT_EQ(compressed.lr_multipliers, (std::vector<double>{0.01, 1, 1, 1, 0.01}));
      EXPECT_EQ(compressed.factors[0].rows(), 2 * rank);
      EXPECT_EQ(compressed.factors[4].rows(), m);
    });
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
