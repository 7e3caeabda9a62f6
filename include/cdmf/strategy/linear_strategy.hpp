#pragma once
/// The linear-layer measurement of an adaptation (DESIGN.md section 1, "Adaptation"): samples
/// (x_t, y_t), X (n x s) and Y (m x s), and the update DeltaW = W_K ... W_1 of a frozen base W0:
///
///   f = 1/(2s) ||R||_F^2,   R = B0 + DeltaW X,   B0 = W0 X - Y (formed once, by the caller)
///
/// Forward Z_0 = X, Z_l = W_l Z_{l-1} (w_l x s); backward D_K = R / s, D_{l-1} = W_l^T D_l and
/// dF/dW_l = D_l Z_{l-1}^T. Every intermediate is (width x s): no m x n matrix exists when
/// DeltaW is thin, and the cost is O(s * sum_l w_l w_{l-1}).
///
/// Metrics: the train sums are ||R||^2 over m*s scalars. The test set has its own sample
/// count s_test, while the trainer divides every loss by one normalization (s): the test sums
/// are reported scaled by s / s_test (and the count to m*s), so the test loss is
/// 1/(2 s_test) ||R_test||^2 and the test RMSE the root mean square over its m*s_test scalars.
#include <optional>
#include <vector>

#include "cdmf/strategy/strategy.hpp"

namespace cdmf {

class LinearStrategy : public Strategy {
 public:
  /// `x`: n x s inputs (rows in the permuted column space), `b0`: m x s, W0 X - Y (rows in
  /// the permuted row space); the test pair likewise (both or none).
  LinearStrategy(DistMatrix x, DistMatrix b0, std::optional<DistMatrix> test_x = std::nullopt,
                 std::optional<DistMatrix> test_b0 = std::nullopt);

  Evaluation evaluate(const Chain& chain, std::vector<DistMatrix>* gradient,
                      bool with_metrics) override;
  double normalization() const override { return static_cast<double>(x_.cols()); }

  std::int64_t samples() const { return x_.cols(); }
  /// X (n x s) and B0 = W0 X - Y (m x s): the implicit compression reads them.
  const DistMatrix& inputs() const { return x_; }
  const DistMatrix& base_residual() const { return b0_; }

 private:
  DistMatrix x_, b0_;
  std::optional<DistMatrix> test_x_, test_b0_;
  // Work space of evaluate, kept between calls: Z_1..Z_{K-1}, D_1..D_{K-1} (w_l x s) and R.
  std::vector<DistMatrix> forward_, backward_;
  std::optional<DistMatrix> residual_;
};

/// Collective: R = b0 + (W_K ... W_1) x, by thin products (exposed for predictions and tests).
DistMatrix linear_residual(const Chain& chain, const DistMatrix& x, const DistMatrix& b0);

}  // namespace cdmf
