// Adaptation (DESIGN.md section 1, "Adaptation"): the three adapters under both measurements
// against the serial dense reference (loss and every factor gradient, dense and factored
// bases) and finite differences; deep-compressed against a serial construction of the
// compression; and, with an orthogonal measurement (X = c I), the compressed adapter on the
// overparameterized adapter's end-to-end trajectory. On every grid shape that fits.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <optional>

#include "cdmf/core/error.hpp"
#include "cdmf/io/adapt_inputs.hpp"
#include "cdmf/model/adapter.hpp"
#include "cdmf/model/base.hpp"
#include "cdmf/model/compression.hpp"
#include "cdmf/optim/optimizer.hpp"
#include "cdmf/random/counter_rng.hpp"
#include "cdmf/strategy/dense_strategy.hpp"
#include "cdmf/strategy/linear_strategy.hpp"
#include "cdmf/strategy/sparse_strategy.hpp"
#include "support/serial_reference.hpp"
#include "support/test_support.hpp"

namespace cdmf {
namespace {

using test::SerialMatrix;

SerialMatrix random_matrix(std::int64_t rows, std::int64_t cols, std::uint32_t stream,
                           double scale = 1.0) {
  SerialMatrix a{rows, cols, {}};
  for (std::int64_t e = 0; e < rows * cols; ++e) a.data.push_back(scale * gaussian(31, stream, e));
  return a;
}

/// A serial (original-order) matrix at its permuted block-cyclic places.
DistMatrix distributed(const ProcessGrid& grid, const IndexLayout& layout, const SerialMatrix& a,
                       Space row_space, Space col_space) {
  DistMatrix d(grid, a.rows, a.cols, layout.block());
  d.fill([&](std::int64_t i, std::int64_t j) {
    return a(original_index(layout, row_space, i), original_index(layout, col_space, j));
  });
  return d;
}

Space row_space_of(int l, int depth) { return l == depth - 1 ? Space::kRows : Space::kInner; }
Space col_space_of(int l) { return l == 0 ? Space::kCols : Space::kInner; }

std::vector<SerialMatrix> gather_gradient(const std::vector<DistMatrix>& gradient,
                                          const IndexLayout& layout) {
  std::vector<SerialMatrix> out;
  const int depth = static_cast<int>(gradient.size());
  for (int l = 0; l < depth; ++l)
    out.push_back(test::gather_original(gradient[l], layout, row_space_of(l, depth), col_space_of(l)));
  return out;
}

/// A thin factored base W0 = W_2 W_1 (rank 3) and the same base dense.
struct Bases {
  std::vector<SerialMatrix> factors;
  SerialMatrix dense;
};
Bases make_bases(std::int64_t m, std::int64_t n) {
  Bases b;
  b.factors = {random_matrix(3, n, 2, 0.5), random_matrix(m, 3, 3, 0.5)};
  b.dense = test::serial_end_to_end(b.factors);
  return b;
}

Base distributed_base(const ProcessGrid& grid, const IndexLayout& layout, const Bases& b,
                      bool factored) {
  Base base;
  if (!factored) {
    base.dense = distributed(grid, layout, b.dense, Space::kRows, Space::kCols);
    return base;
  }
  Chain chain;
  chain.kind = ModelKind::kShallow;
  chain.factors.push_back(distributed(grid, layout, b.factors[0], Space::kInner, Space::kCols));
  chain.factors.push_back(distributed(grid, layout, b.factors[1], Space::kRows, Space::kInner));
  chain.lr_multipliers = {1.0, 1.0};
  base.factored = std::move(chain);
  return base;
}

/// The linear-layer loss of samples (x, y) on `base`: B0 = W0 X - Y.
LinearStrategy linear_measurement(const ProcessGrid& grid, const IndexLayout& layout,
                                  const Base& base, const SerialMatrix& x, const SerialMatrix& y) {
  DistMatrix xd = distributed(grid, layout, x, Space::kCols, Space::kInner);
  DistMatrix b0 = apply_base(base, xd);
  axpy(-1.0, distributed(grid, layout, y, Space::kRows, Space::kInner), b0);
  return LinearStrategy(std::move(xd), std::move(b0));
}

/// A few Adam steps, so that every factor (LoRA's B too) is away from its init.
void move_away_from_init(Chain& chain, Strategy& strategy) {
  Optimizer adam({OptimizerKind::kAdam, 0.05}, chain);
  std::vector<DistMatrix> gradient;
  for (int t = 0; t < 3; ++t) {
    strategy.evaluate(chain, &gradient, false);
    adam.step(chain, gradient);
  }
}

void expect_matches(double loss, const std::vector<SerialMatrix>& gradient, double serial_loss,
                    const std::vector<SerialMatrix>& serial_gradient, const std::string& what) {
  EXPECT_NEAR(loss, serial_loss, 1e-12 * std::abs(serial_loss)) << what;
  ASSERT_EQ(gradient.size(), serial_gradient.size()) << what;
  for (size_t l = 0; l < gradient.size(); ++l)
    EXPECT_LT(test::relative_error(gradient[l].data, serial_gradient[l].data), 1e-10)
        << what << ", factor W" << l + 1;
}

const AdapterKind kAdapters[] = {AdapterKind::kLora, AdapterKind::kDeep, AdapterKind::kDeepCompressed};

TEST(Adapt, LinearMeasurementMatchesSerial) {
  const std::int64_t m = 12, n = 10, s = 7;
  const Bases bases = make_bases(m, n);
  const SerialMatrix x = random_matrix(n, s, 4), y = random_matrix(m, s, 5);
  for (GridShape shape : test::available_shapes())
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      IndexLayout layout(m, n, choose_block_size(m, n, grid, 3), 13);
      for (bool factored : {false, true})
        for (AdapterKind kind : kAdapters) {
          const Base base = distributed_base(grid, layout, bases, factored);
          LinearStrategy loss = linear_measurement(grid, layout, base, x, y);
          Chain chain = make_adapter(grid, layout, {kind, 4, 3, 0.1, 0.5, 2.0, 0, 7}, &loss);
          move_away_from_init(chain, loss);
          std::vector<DistMatrix> gradient;
          const double f = loss.evaluate(chain, &gradient, false).train_sse / (2.0 * s);
          const auto serial_chain = test::gather_chain(chain, layout);
          const auto g = gather_gradient(gradient, layout);
          if (!grid.is_root()) continue;
          std::vector<SerialMatrix> serial_gradient;
          const double serial_f = test::serial_linear_loss(serial_chain, bases.dense, x, y, &serial_gradient);
          expect_matches(f, g, serial_f, serial_gradient,
                         adapter_name(kind) + (factored ? ", factored base" : ", dense base"));
        }
    });
}

TEST(Adapt, EntriesMeasurementMatchesSerial) {
  const std::int64_t m = 40, n = 36;
  const Bases bases = make_bases(m, n);
  const SerialMatrix truth = random_matrix(m, n, 6);
  const EntryList entries = test::random_entries(m, n, 0.4, 8, truth);
  EntryList offset = entries;  // y - W0_ij, what the update fits
  for (size_t e = 0; e < offset.size(); ++e)
    offset.values[e] -= bases.dense(offset.rows[e], offset.cols[e]);
  for (GridShape shape : test::available_shapes())
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      IndexLayout layout(m, n, choose_block_size(m, n, grid, 5), 17);
      for (bool factored : {false, true}) {
        const Base base = distributed_base(grid, layout, bases, factored);
        Observations obs = test::owned_observations(grid, layout, entries);
        subtract_base(base, obs);
        for (AdapterKind kind : kAdapters) {
          DenseStrategy dense(obs, nullptr, std::nullopt, double(m * n));
          SparseStrategy sparse(obs, nullptr, std::nullopt, std::nullopt, double(m * n));
          Chain chain = make_adapter(grid, layout, {kind, 4, 3, 0.1, 0.5, 0.0, 0, 9}, &dense);
          ASSERT_TRUE(is_thin_chain(chain));
          move_away_from_init(chain, sparse);
          std::vector<DistMatrix> gradient, dense_gradient;
          const double f = sparse.evaluate(chain, &gradient, false).train_sse / (2.0 * m * n);
          const double f_dense = dense.evaluate(chain, &dense_gradient, false).train_sse / (2.0 * m * n);
          const auto serial_chain = test::gather_chain(chain, layout);
          const auto g = gather_gradient(gradient, layout);
          const auto g_dense = gather_gradient(dense_gradient, layout);
          if (!grid.is_root()) continue;
          std::vector<SerialMatrix> serial_gradient;
          const double serial_f = test::serial_loss(serial_chain, offset, double(m * n), &serial_gradient);
          const std::string what = adapter_name(kind) + (factored ? ", factored base" : ", dense base");
          expect_matches(f, g, serial_f, serial_gradient, what + ", sparse");
          expect_matches(f_dense, g_dense, serial_f, serial_gradient, what + ", dense");
        }
      }
    });
}

TEST(Adapt, BaseWithBiasesAddsThemAtEntries) {
  // A ratings model (chain + mu + b_i + c_j): the offsets of the entries measurement hold the
  // biases, so the update fits y - W0_ij - mu - b_i - c_j; the linear layer refuses such a base.
  const std::int64_t m = 30, n = 22;
  const Bases bases = make_bases(m, n);
  const EntryList entries = test::random_entries(m, n, 0.4, 8, random_matrix(m, n, 6));
  std::vector<double> row_bias, col_bias;
  for (std::int64_t i = 0; i < m; ++i) row_bias.push_back(0.3 * gaussian(31, 40, i));
  for (std::int64_t j = 0; j < n; ++j) col_bias.push_back(0.3 * gaussian(31, 41, j));
  const double mu = 3.5;
  EntryList offset = entries;
  std::map<std::pair<std::int64_t, std::int64_t>, double> expected;
  for (size_t e = 0; e < offset.size(); ++e) {
    offset.values[e] -= bases.dense(offset.rows[e], offset.cols[e]) + mu + row_bias[offset.rows[e]] +
                        col_bias[offset.cols[e]];
    expected[{offset.rows[e], offset.cols[e]}] = offset.values[e];
  }
  for (GridShape shape : test::available_shapes())
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      IndexLayout layout(m, n, choose_block_size(m, n, grid, 5), 17);
      Base base = distributed_base(grid, layout, bases, true);
      const std::string plain = base_fingerprint(base, layout);
      base.biases = Biases::from_original(layout, mu, row_bias, col_bias);
      EXPECT_NE(base_fingerprint(base, layout), plain) << "the biases are part of the base";
      Observations obs = test::owned_observations(grid, layout, entries);
      subtract_base(base, obs);
      for (size_t e = 0; e < obs.size(); ++e) {
        const std::int64_t i = original_index(layout, Space::kRows, obs.rows[e]);
        const std::int64_t j = original_index(layout, Space::kCols, obs.cols[e]);
        const double want = expected.at({i, j});
        EXPECT_NEAR(obs.values[e], want, 1e-12 * (1.0 + std::abs(want)));
      }
      SparseStrategy sparse(obs, nullptr, std::nullopt, std::nullopt, double(m * n));
      Chain chain = make_adapter(grid, layout, {AdapterKind::kLora, 4, 3, 0.1, 0.5, 0.0, 0, 9});
      move_away_from_init(chain, sparse);
      std::vector<DistMatrix> gradient;
      const double f = sparse.evaluate(chain, &gradient, false).train_sse / (2.0 * m * n);
      const auto serial_chain = test::gather_chain(chain, layout);
      const auto g = gather_gradient(gradient, layout);
      DistMatrix x(grid, n, 3, layout.block());
      test::expect_error(grid.comm(), "", "no linear-layer form", [&] { apply_base(base, x); });
      if (!grid.is_root()) return;
      std::vector<SerialMatrix> serial_gradient;
      const double serial_f = test::serial_loss(serial_chain, offset, double(m * n), &serial_gradient);
      expect_matches(f, g, serial_f, serial_gradient, "lora on a base with biases");
    });
}

/// Central differences of f along single entries of every factor against the gradient.
void check_finite_differences(Chain chain, Strategy& strategy, double normalization) {
  std::vector<DistMatrix> gradient;
  strategy.evaluate(chain, &gradient, false);
  const double h = 1e-6;
  for (int l = 0; l < chain.depth(); ++l)
    for (std::int64_t pick = 0; pick < 3; ++pick) {
      DistMatrix& w = chain.factors[l];
      const std::int64_t i = (pick * 5 + l) % w.rows(), j = (pick * 3 + 1) % w.cols();
      const double w0 = w.entry(i, j);
      w.set_entry(i, j, w0 + h);
      const double up = strategy.evaluate(chain, nullptr, false).train_sse / (2.0 * normalization);
      w.set_entry(i, j, w0 - h);
      const double down = strategy.evaluate(chain, nullptr, false).train_sse / (2.0 * normalization);
      w.set_entry(i, j, w0);
      const double expected = gradient[l].entry(i, j);
      EXPECT_NEAR((up - down) / (2.0 * h), expected, 1e-6 * std::max(1.0, std::abs(expected)))
          << "W" << l + 1 << "(" << i << ", " << j << ")";
    }
}

TEST(Adapt, GradientsMatchFiniteDifferences) {
  const std::int64_t m = 40, n = 36, s = 9;
  const Bases bases = make_bases(m, n);
  const SerialMatrix x = random_matrix(n, s, 4), y = random_matrix(m, s, 5);
  const EntryList entries = test::random_entries(m, n, 0.4, 8, random_matrix(m, n, 6));
  test::on_world_grid([&](const ProcessGrid& grid) {
    IndexLayout layout(m, n, choose_block_size(m, n, grid, 5), 19);
    const Base base = distributed_base(grid, layout, bases, true);
    LinearStrategy linear = linear_measurement(grid, layout, base, x, y);
    Observations obs = test::owned_observations(grid, layout, entries);
    subtract_base(base, obs);
    SparseStrategy sparse(obs, nullptr, std::nullopt, std::nullopt, double(obs.global_count));
    for (AdapterKind kind : kAdapters) {
      Chain chain = make_adapter(grid, layout, {kind, 4, 3, 0.1, 0.5, 0.0, 0, 3}, &linear);
      move_away_from_init(chain, linear);
      SCOPED_TRACE(adapter_name(kind));
      check_finite_differences(chain, linear, double(s));
      check_finite_differences(chain, sparse, double(obs.global_count));
    }
  });
}

TEST(Adapt, DeepCompressedMatchesSerialConstruction) {
  const std::int64_t s = 9, r = 4;
  const double eps = 1e-2;
  for (auto [m, n] : {std::pair<std::int64_t, std::int64_t>{14, 12}, {12, 14}}) {
    SCOPED_TRACE(std::to_string(m) + " x " + std::to_string(n));
    const Bases bases = make_bases(m, n);
    const SerialMatrix x = random_matrix(n, s, 4), y = random_matrix(m, s, 5);
    for (GridShape shape : test::available_shapes())
      test::on_grid(shape, [&](const ProcessGrid& grid) {
        IndexLayout layout(m, n, choose_block_size(m, n, grid, 3), 23);
        const Base base = distributed_base(grid, layout, bases, false);
        LinearStrategy loss = linear_measurement(grid, layout, base, x, y);
        const AdapterConfig config{AdapterKind::kDeepCompressed, r, 3, eps, 0.25, 0.0, 0, 29};
        const Chain deep = overparameterized_adapter(grid, layout, config);
        const Chain adapter = make_adapter(grid, layout, config, &loss);
        const auto serial_deep = test::gather_chain(deep, layout);
        const SerialMatrix vt = test::gather_original(adapter.factors.front(), layout, Space::kInner, Space::kCols);
        const SerialMatrix u = test::gather_original(adapter.factors.back(), layout, Space::kRows, Space::kInner);
        const SerialMatrix x0 = test::gather_original(end_to_end(adapter), layout, Space::kRows, Space::kCols);
        if (!grid.is_root()) return;
        EXPECT_EQ(adapter.lr_multipliers, (std::vector<double>{0.25, 1, 1, 1, 0.25}));
        EXPECT_EQ(adapter.width(), r);
        std::vector<SerialMatrix> gradient;
        test::serial_linear_loss(serial_deep, bases.dense, x, y, &gradient);
        SerialMatrix u_g, v_g;
        test::serial_top_singular_vectors(gradient[0], r / 2, u_g, v_g);
        const SerialMatrix q = test::serial_end_to_end(serial_deep);  // eps^3 Q
        const double eps3 = eps * eps * eps;
        // The orthonormal basis of the side it is built on (n when m <= n, else m), serially.
        SerialMatrix stacked;
        if (m <= n) {
          stacked = v_g;
          for (double value : test::multiply(serial_deep[0], u_g, true, false).data)
            stacked.data.push_back(value / eps);
        } else {
          stacked = test::multiply(serial_deep[2], test::multiply(serial_deep[1], u_g));
          for (double& value : stacked.data) value /= eps * eps;
          for (double value : test::multiply(q, v_g).data) stacked.data.push_back(value / eps3);
        }
        stacked.cols = r;
        const SerialMatrix basis = test::serial_orth(stacked);
        // Both bases are orthonormal and r wide: B^T P_ref = B^T iff they span one subspace.
        if (m <= n) {
          const SerialMatrix projected = test::multiply(vt, test::projector(basis));
          EXPECT_LT(test::relative_error(projected.data, vt.data), 1e-10);
          const SerialMatrix expected = test::multiply(q, test::projector(basis));
          EXPECT_LT(test::relative_error(x0.data, expected.data), 1e-10);
        } else {
          const SerialMatrix projected = test::multiply(test::projector(basis), u);
          EXPECT_LT(test::relative_error(projected.data, u.data), 1e-10);
          const SerialMatrix expected = test::multiply(test::projector(basis), q);
          EXPECT_LT(test::relative_error(x0.data, expected.data), 1e-10);
        }
      });
  }
}

/// Returns the largest end-to-end gap relative to ||DeltaW*||.
double orthogonal_measurement_gap(std::int64_t m, std::int64_t n) {
  // X = c I (s = n samples): f = c^2/(2n) ||W0 + DeltaW - W*||^2, the whitened case in which
  // the theory makes the compressed chain (gamma = 0) follow the deep one exactly under GD.
  // Singular values 1 and 0.9 so both directions escape the small init within a few thousand
  // steps.
  const std::int64_t r = 4;
  const double c = std::sqrt(double(n)), eps = 1e-3;
  const Bases bases = make_bases(m, n);
  SerialMatrix left = test::serial_orth(random_matrix(m, r / 2, 7));
  const SerialMatrix right = test::serial_orth(random_matrix(n, r / 2, 8));
  for (std::int64_t i = 0; i < m; ++i) left(i, 1) *= 0.9;
  const SerialMatrix update = test::multiply(left, right, false, true);
  SerialMatrix x{n, n, std::vector<double>(n * n, 0.0)};
  for (std::int64_t i = 0; i < n; ++i) x(i, i) = c;
  SerialMatrix target = bases.dense;
  for (size_t e = 0; e < target.data.size(); ++e) target.data[e] += update.data[e];
  const SerialMatrix y = test::multiply(target, x);
  const double update_norm = std::sqrt(std::inner_product(update.data.begin(), update.data.end(),
                                                          update.data.begin(), 0.0));
  double result = 0.0;
  test::on_grid(near_square_shape(test::world_size()), [&](const ProcessGrid& grid) {
    IndexLayout layout(m, n, choose_block_size(m, n, grid), 3);
    const Base base = distributed_base(grid, layout, bases, false);
    LinearStrategy loss = linear_measurement(grid, layout, base, x, y);
    const AdapterConfig config{AdapterKind::kDeepCompressed, r, 3, eps, 0.0, 0.0, 0, 11};
    Chain deep = overparameterized_adapter(grid, layout, config);
    Chain compressed = make_adapter(grid, layout, config, &loss);
    const double lr = 0.5;
    Optimizer deep_gd({OptimizerKind::kGd, lr}, deep), compressed_gd({OptimizerKind::kGd, lr}, compressed);
    std::vector<DistMatrix> deep_gradient, compressed_gradient;
    double worst = 0.0, f = 1.0;
    std::int64_t t = 0;
    for (; t < 10000 && f > 1e-16; ++t) {
      f = loss.evaluate(deep, &deep_gradient, false).train_sse / (2.0 * n);
      loss.evaluate(compressed, &compressed_gradient, false);
      DistMatrix gap = end_to_end(deep);
      axpy(-1.0, end_to_end(compressed), gap);
      worst = std::max(worst, std::sqrt(gap.squared_norm()) / update_norm);
      deep_gd.step(deep, deep_gradient);
      compressed_gd.step(compressed, compressed_gradient);
    }
    EXPECT_LT(f, 1e-16) << "the overparameterized adapter must fit the update";
    EXPECT_GT(t, 100) << "the escape from the small init must be part of the trajectory";
    result = worst;
    if (grid.is_root())
      std::printf("orthogonal measurement %lld x %lld: %lld iterations, max end-to-end gap %.3e ||DeltaW*||\n",
                  static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(t), worst);
  });
  return result;
}

TEST(Adapt, CompressedFollowsOverparameterizedTrajectoryForOrthogonalMeasurement) {
  // Square: every O_l is orthogonal, the theory's exact case (measured 1.5e-9).
  EXPECT_LT(orthogonal_measurement_gap(8, 8), 1e-8);
  // m != n is outside it: the boundary factor of the width-max(m, n) adapter (O_1 h x n when
  // m > n, O_L m x h when m < n) is a partial isometry, so span([V_S0, Q^T U_S0]) is not
  // invariant (Q^T Q V_S0 or Q Q^T U_S0 leave it) and width 2 rhat only follows closely:
  // measured 1.9e-3 (8 x 6) and 8.2e-5 (6 x 8); the third block Q^T Q V_S0 (wide) or
  // Q Q^T U_S0 (tall), width 3 rhat, closes the subspace and gave 1.1e-9 in both (not built:
  // docs/adaptation.md). Before the tall side was built from U_S0 the 8 x 6 gap was 0.74.
  EXPECT_LT(orthogonal_measurement_gap(8, 6), 1e-2);
  EXPECT_LT(orthogonal_measurement_gap(6, 8), 1e-3);
}

/// Frobenius norm of A A^T - B B^T (orthonormal A, B: zero iff they span one subspace).
double projector_difference(const SerialMatrix& a, const SerialMatrix& b) {
  const SerialMatrix pa = test::projector(a), pb = test::projector(b);
  double sum = 0.0;
  for (size_t e = 0; e < pa.data.size(); ++e) sum += (pa.data[e] - pb.data[e]) * (pa.data[e] - pb.data[e]);
  return std::sqrt(sum);
}

/// `steps` GD steps of `chain` on `loss`; returns the end-to-end matrix (original order, rank 0)
/// and the loss before and after.
SerialMatrix trajectory_end(Chain chain, Strategy& loss, const IndexLayout& layout, int steps,
                            double lr, double& before, double& after) {
  Optimizer gd({OptimizerKind::kGd, lr}, chain);
  std::vector<DistMatrix> gradient;
  before = loss.evaluate(chain, nullptr, false).train_sse;
  for (int t = 0; t < steps; ++t) {
    loss.evaluate(chain, &gradient, false);
    gd.step(chain, gradient);
  }
  after = loss.evaluate(chain, nullptr, false).train_sse;
  return test::gather_original(end_to_end(chain), layout, Space::kRows, Space::kCols);
}

TEST(Adapt, ImplicitInitMatchesDenseWithTheSameStructuredInit) {
  // deep-compressed from the structured init: compress_chain on its dense factors (h x n,
  // h x h) against the implicit construction (PARPACK on the sparse S0 for entries, thin QR
  // and a small SVD for the linear layer): the same subspace, init and GD trajectory.
  const std::int64_t r = 4, s = 9;
  const double eps = 0.1;
  for (auto [m, n] : {std::pair<std::int64_t, std::int64_t>{30, 30}, {36, 24}, {24, 36}}) {
    SCOPED_TRACE(std::to_string(m) + " x " + std::to_string(n));
    const Bases bases = make_bases(m, n);
    const SerialMatrix x = random_matrix(n, s, 4), y = random_matrix(m, s, 5);
    const EntryList entries = test::random_entries(m, n, 0.5, 8, random_matrix(m, n, 6));
    for (GridShape shape : test::available_shapes())
      test::on_grid(shape, [&](const ProcessGrid& grid) {
        IndexLayout layout(m, n, choose_block_size(m, n, grid, 4), 13);
        const Base base = distributed_base(grid, layout, bases, true);
        const AdapterConfig config{AdapterKind::kDeepCompressed, r, 3, eps, 0.5, 0.0, 0, 17};
        const Chain deep = structured_adapter_init(layout, config).dense_chain(grid, layout, eps);
        for (bool linear : {true, false}) {
          SCOPED_TRACE(linear ? "linear layer" : "entries");
          std::optional<LinearStrategy> samples;
          std::optional<Observations> obs;
          std::unique_ptr<Strategy> loss;
          Chain explicit_chain, implicit_chain;
          if (linear) {
            samples.emplace(linear_measurement(grid, layout, base, x, y));
            explicit_chain = compress_chain(deep, *samples, {r / 2, config.gamma, eps});
            implicit_chain = make_implicit_adapter(grid, layout, config, *samples);
          } else {
            obs = test::owned_observations(grid, layout, entries);
            subtract_base(base, *obs);
            const double normalization = double(obs->global_count);
            DenseStrategy dense(*obs, nullptr, std::nullopt, normalization);
            explicit_chain = compress_chain(deep, dense, {r / 2, config.gamma, eps});
            ImplicitCompressionReport report;
            implicit_chain = make_implicit_adapter(grid, layout, config, *obs, normalization, &report);
            EXPECT_EQ(report.svd.warning, "");
            loss = std::make_unique<SparseStrategy>(*obs, nullptr, std::nullopt, std::nullopt, normalization);
          }
          Strategy& measurement = linear ? static_cast<Strategy&>(*samples) : *loss;
          // The orthonormal side: V (n) when m <= n, U (m) when m > n.
          const bool tall = m > n;
          const auto built = [&](const Chain& c) {
            return tall ? test::gather_original(c.factors.back(), layout, Space::kRows, Space::kInner)
                        : test::gather_original(transposed(c.factors.front()), layout, Space::kCols, Space::kInner);
          };
          const SerialMatrix basis_explicit = built(explicit_chain), basis_implicit = built(implicit_chain);
          const SerialMatrix x0_explicit = test::gather_original(end_to_end(explicit_chain), layout, Space::kRows, Space::kCols);
          const SerialMatrix x0_implicit = test::gather_original(end_to_end(implicit_chain), layout, Space::kRows, Space::kCols);
          double before = 0, after = 0, before_i = 0, after_i = 0;
          const double lr = linear ? 0.005 : 3.0;  // stable; random targets: a rank-4 fit stops near 0.55
          const SerialMatrix end_explicit = trajectory_end(explicit_chain, measurement, layout, 300, lr, before, after);
          const SerialMatrix end_implicit = trajectory_end(implicit_chain, measurement, layout, 300, lr, before_i, after_i);
          if (!grid.is_root()) continue;
          EXPECT_LT(after, 0.7 * before) << "the runs move";
          EXPECT_LT(projector_difference(basis_implicit, basis_explicit), 1e-8);
          EXPECT_LT(test::relative_error(x0_implicit.data, x0_explicit.data), 1e-8);
          EXPECT_LT(test::relative_error(end_implicit.data, end_explicit.data), 1e-8);
          EXPECT_NEAR(after_i, after, 1e-8 * after);
        }
      });
  }
}

TEST(Adapt, ImplicitInitRefusesTooFewSamples) {
  const std::int64_t m = 12, n = 10;
  const Bases bases = make_bases(m, n);
  const SerialMatrix x = random_matrix(n, 1, 4), y = random_matrix(m, 1, 5);
  test::on_world_grid([&](const ProcessGrid& grid) {
    IndexLayout layout(m, n, choose_block_size(m, n, grid, 3), 13);
    const Base base = distributed_base(grid, layout, bases, false);
    LinearStrategy samples = linear_measurement(grid, layout, base, x, y);
    test::expect_error(grid.comm(), "", "1 samples cannot determine the top 2 singular directions", [&] {
      make_implicit_adapter(grid, layout, {AdapterKind::kDeepCompressed, 4, 3, 0.1, 0.5, 0.0, 0, 17}, samples);
    });
  });
}

TEST(Adapt, WeightDecayIsDecoupled) {
  test::on_world_grid([&](const ProcessGrid& grid) {
    IndexLayout layout(8, 6, choose_block_size(8, 6, grid), 1);
    Chain chain = make_deep_chain(grid, layout, 2, 3, 1.0, 5, ModelKind::kShallow);
    chain.lr_multipliers = {0.5, 1.0};
    const Chain before = chain;
    std::vector<DistMatrix> zero;
    for (const DistMatrix& w : chain.factors) zero.emplace_back(grid, w.rows(), w.cols(), w.block());
    OptimizerConfig config{OptimizerKind::kAdam, 0.1};
    config.weight_decay = 0.3;
    Optimizer adamw(config, chain);
    adamw.step(chain, zero);  // a zero gradient moves nothing but the decay
    for (int l = 0; l < 2; ++l)
      for (size_t e = 0; e < chain.factors[l].local().size(); ++e)
        EXPECT_DOUBLE_EQ(chain.factors[l].local()[e],
                         before.factors[l].local()[e] * (1.0 - 0.1 * before.lr_multipliers[l] * 0.3));
    config.weight_decay = -1.0;
    test::expect_error(grid.comm(), "", "--weight-decay", [&] { Optimizer bad(config, chain); });
  });
}

TEST(Adapt, RejectsImpossibleAdapters) {
  test::on_world_grid([&](const ProcessGrid& grid) {
    test::expect_error(grid.comm(), "", "is odd", [] {
      validate_adapter({AdapterKind::kDeepCompressed, 5}, 20, 20);
    });
    test::expect_error(grid.comm(), "", "exceeds min(rows, cols) = 12", [] {
      validate_adapter({AdapterKind::kLora, 13}, 20, 12);
    });
    test::expect_error(grid.comm(), "", "unknown adapter", [] { parse_adapter_kind("loha"); });
  });
}

}  // namespace
}  // namespace cdmf
