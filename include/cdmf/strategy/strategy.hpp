#pragma once
/// Evaluation strategies (DESIGN.md section 2, layer 4): given a chain, the loss
///   f = 1/(2N) sum_{(i,j) in Omega} (X_ij - Phi_ij)^2,   X = W_K ... W_1,
/// its gradient dF/dW_l = (W_K...W_{l+1})^T S (W_{l-1}...W_1)^T with S = dF/dX (the residual on
/// Omega divided by N, zero elsewhere), and the metrics on the test set and the ground truth.
#include <cstdint>
#include <optional>
#include <vector>

#include "cdmf/data/observations.hpp"
#include "cdmf/linalg/dist_matrix.hpp"
#include "cdmf/model/chain.hpp"

namespace cdmf {

/// Sums over all ranks at one point of the trajectory; the trainer turns them into metrics.
struct Evaluation {
  double train_sse = 0.0;        // sum of squared residuals on Omega
  std::int64_t train_count = 0;
  double test_sse = 0.0;         // on Omega_test (0 when there is none)
  std::int64_t test_count = 0;
  std::optional<double> truth_sse;      // ||X - Phi||_F^2 when the truth is known
  std::optional<double> truth_norm_sq;  // ||Phi||_F^2
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  /// Collective: evaluates at `chain`. When `gradient` is non-null it receives dF/dW_l for
  /// every factor (resized to the factor layouts). Test and truth sums only when
  /// `with_metrics` (they cost extra passes).
  virtual Evaluation evaluate(const Chain& chain, std::vector<DistMatrix>* gradient,
                              bool with_metrics) = 0;
  /// Collective: dF/dW_1 alone at `chain`, what the compression of a deep init needs. By
  /// default the first gradient of a full evaluation; a strategy may skip the others.
  virtual DistMatrix first_factor_gradient(const Chain& chain);
  /// The N of the loss.
  virtual double normalization() const = 0;
};

/// Shapes `gradient` like the chain's factors, keeping its matrices when they already have the
/// factors' layouts (the usual case from the second iteration on): strategies overwrite every
/// local entry, so no clearing is needed.
void shape_like_factors(const Chain& chain, std::vector<DistMatrix>& gradient);

}  // namespace cdmf
