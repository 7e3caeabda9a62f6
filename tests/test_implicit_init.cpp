// The implicit structured orthogonal init and the compression from it (model/structured_init.hpp)
// against the explicit path with the same Q made dense: the same compression subspace and the
// same training trajectory, on square and rectangular problems and every grid shape.
#include <gtest/gtest.h>

#include <cmath>

#include "cdmf/core/error.hpp"
#include "cdmf/model/compression.hpp"
#include "cdmf/model/structured_init.hpp"
#include "cdmf/optim/optimizer.hpp"
#include "cdmf/random/counter_rng.hpp"
#include "cdmf/strategy/dense_strategy.hpp"
#include "cdmf/strategy/sparse_strategy.hpp"
#include "support/serial_reference.hpp"
#include "support/test_support.hpp"

namespace cdmf {
namespace {

using test::SerialMatrix;

SerialMatrix low_rank_truth(std::int64_t m, std::int64_t n, std::int64_t r, std::uint64_t seed) {
  SerialMatrix a{m, r, {}}, b{r, n, {}};
  for (std::int64_t e = 0; e < m * r; ++e) a.data.push_back(gaussian(seed, 1, e));
  for (std::int64_t e = 0; e < r * n; ++e) b.data.push_back(gaussian(seed, 2, e));
  return test::multiply(a, b);
}

/// ||P_a - P_b||_F for the column spaces of a and b (orthonormal columns), formed.
double projector_difference(const SerialMatrix& a, const SerialMatrix& b) {
  const SerialMatrix pa = test::multiply(a, a, false, true), pb = test::multiply(b, b, false, true);
  double sum = 0.0;
  for (size_t e = 0; e < pa.data.size(); ++e) sum += (pa.data[e] - pb.data[e]) * (pa.data[e] - pb.data[e]);
  return std::sqrt(sum);
}

/// The train loss after `iterations` GD steps of `chain` on the sparse strategy.
double train_loss_after(Chain chain, const Observations& obs, double normalization, int iterations, double lr) {
  SparseStrategy strategy(obs, nullptr, std::nullopt, std::nullopt, normalization);
  Optimizer optimizer({OptimizerKind::kGd, lr}, chain);
  std::vector<DistMatrix> gradient;
  for (int t = 0; t < iterations; ++t) {
    strategy.evaluate(chain, &gradient, false);
    optimizer.step(chain, gradient);
  }
  return strategy.evaluate(chain, nullptr, false).train_sse / (2.0 * normalization);
}

TEST(StructuredInit, DenseFactorsMultiplyToQ) {
  for (auto [m, n] : {std::pair<std::int64_t, std::int64_t>{7, 5}, {5, 7}, {6, 6}}) {
    const StructuredInit init(m, n, 3, std::max(m, n) + 1, 4);
    test::on_world_grid([&](const ProcessGrid& grid) {
      const IndexLayout layout(m, n, 2, 9);
      const Chain deep = init.dense_chain(grid, layout, 0.5);
      const std::vector<double> x = end_to_end(deep).gather();
      if (!grid.is_root()) return;
      for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t j = 0; j < n; ++j) EXPECT_EQ(x[i + j * m], 0.125 * init.q(i, j)) << i << ", " << j;
    });
    // Q^T and Q as operators agree with the entries.
    std::vector<double> y(static_cast<size_t>(m * 2)), x(static_cast<size_t>(n * 2));
    for (size_t e = 0; e < y.size(); ++e) y[e] = gaussian(1, 1, e);
    for (size_t e = 0; e < x.size(); ++e) x[e] = gaussian(1, 2, e);
    const std::vector<double> qty = init.apply_transposed(y, 2), qx = init.apply(x, 2);
    for (std::int64_t c = 0; c < 2; ++c) {
      for (std::int64_t j = 0; j < n; ++j) {
        double expected = 0.0;
        for (std::int64_t i = 0; i < m; ++i) expected += init.q(i, j) * y[i + c * m];
        EXPECT_EQ(qty[j + c * n], expected);
      }
      for (std::int64_t i = 0; i < m; ++i) {
        double expected = 0.0;
        for (std::int64_t j = 0; j < n; ++j) expected += init.q(i, j) * x[j + c * n];
        EXPECT_EQ(qx[i + c * m], expected);
      }
    }
  }
}

TEST(StructuredInit, ImplicitCompressionMatchesTheDenseOne) {
  const std::int64_t rank = 2;
  const double eps = 0.1;  // a short plateau: the runs leave it within the 1,000 iterations
  for (auto [m, n] : {std::pair<std::int64_t, std::int64_t>{30, 30}, {36, 24}, {24, 36}}) {
    SCOPED_TRACE(std::to_string(m) + " x " + std::to_string(n));
    const SerialMatrix truth = low_rank_truth(m, n, rank, 21);
    const EntryList entries = test::random_entries(m, n, 0.5, 5, truth);
    const StructuredInit init(m, n, 3, std::max(m, n), 17);
    for (GridShape shape : test::available_shapes()) {
      test::on_grid(shape, [&](const ProcessGrid& grid) {
        const IndexLayout layout(m, n, choose_block_size(m, n, grid, 4), 13);
        const Observations obs = test::owned_observations(grid, layout, entries);
        const double normalization = double(m * n);
        const CompressionConfig config{rank, 0.01, eps};
        // Explicit: the deep chain with the same Q made dense, compressed as before.
        const Chain deep = init.dense_chain(grid, layout, eps);
        DenseStrategy dense(obs, nullptr, std::nullopt, normalization);
        const Chain explicit_chain = compress_chain(deep, dense, config);
        ImplicitCompressionReport report;
        const Chain implicit_chain = compress_implicit(grid, layout, obs, normalization, init, config, &report);
        EXPECT_EQ(report.svd.warning, "");
        const SerialMatrix v_explicit =
            test::gather_original(transposed(explicit_chain.factors.front()), layout, Space::kCols, Space::kInner);
        const SerialMatrix v_implicit =
            test::gather_original(transposed(implicit_chain.factors.front()), layout, Space::kCols, Space::kInner);
        const SerialMatrix x_explicit = test::gather_original(end_to_end(explicit_chain), layout, Space::kRows, Space::kCols);
        const SerialMatrix x_implicit = test::gather_original(end_to_end(implicit_chain), layout, Space::kRows, Space::kCols);
        // Trajectories end to end: GD is equivariant under a change of basis of the inner space.
        const double lr = 5.0;
        const double loss_explicit = train_loss_after(explicit_chain, obs, normalization, 1000, lr);
        const double loss_implicit = train_loss_after(implicit_chain, obs, normalization, 1000, lr);
        EXPECT_NEAR(loss_implicit, loss_explicit, 1e-8 * loss_explicit);
        const double loss_start = train_loss_after(explicit_chain, obs, normalization, 0, lr);
        EXPECT_LT(loss_explicit, 0.5 * loss_start);  // the runs do move
        if (!grid.is_root()) return;
        EXPECT_LT(projector_difference(v_implicit, v_explicit), 1e-8);
        EXPECT_LT(test::relative_error(x_implicit.data, x_explicit.data), 1e-8);
      });
    }
  }
}

TEST(StructuredInit, RejectsWhatTheDensePathRejects) {
  test::on_world_grid([](const ProcessGrid& grid) {
    const IndexLayout layout(8, 6, 2, 1);
    const StructuredInit init(8, 6, 3, 8, 1);
    EntryList none;
    const Observations obs = test::owned_observations(grid, layout, none);
    test::expect_error(grid.comm(), "--rank 4", "exceeds", [&] {
      compress_implicit(grid, layout, obs, 48.0, init, {4, 0.01, 1e-3});
    });
    test::expect_error(grid.comm(), "--gamma", "non-negative", [&] {
      compress_implicit(grid, layout, obs, 48.0, init, {1, -1.0, 1e-3});
    });
    EXPECT_THROW(StructuredInit(8, 6, 3, 7, 1), Error);  // h < max(m, n)
  });
}

}  // namespace
}  // namespace cdmf
