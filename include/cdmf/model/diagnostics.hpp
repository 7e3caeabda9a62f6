#pragma once
/// Compressibility diagnostics (the paper's central observation, shown to the user): for each
/// factor, the numerical rank of W_l(t) - W_l(0) (singular values above 1e-6 of the largest),
/// and the top singular values of the end-to-end matrix. Each measurement runs PDGESVD on every
/// factor difference and on the m x n end-to-end matrix: meant for log steps of moderate-size
/// runs, not for every iteration.
#include <string>
#include <vector>

#include "cdmf/model/chain.hpp"

namespace cdmf {

class CompressibilityProbe {
 public:
  /// Keeps a copy of the factors at init; reports the `top` largest singular values of X.
  CompressibilityProbe(const Chain& initial, int top);

  /// Column names: rank_W1 .. rank_WK, sigma_1 .. sigma_top.
  std::vector<std::string> column_names() const;
  /// Collective: the values for `current`, in column order.
  std::vector<double> measure(const Chain& current) const;

  /// Number of singular values above `relative` times the largest (0 for a zero matrix).
  static int numerical_rank(const std::vector<double>& sigma, double relative = 1e-6);

 private:
  std::vector<DistMatrix> initial_;
  int top_;
};

}  // namespace cdmf
