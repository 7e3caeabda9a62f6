#pragma once
/// The dense strategy: forms X = W_K ... W_1 block-cyclically with PDGEMM (its layout matches
/// the observation layout, so each rank reads the residual of its own observations), then
/// back-propagates S with PDGEMM. Cost O(m n h) per evaluation; right for the `deep` model.
#include <optional>

#include "cdmf/strategy/strategy.hpp"

namespace cdmf {

class DenseStrategy : public Strategy {
 public:
  /// `truth` (m x n, permuted space, same block) is optional; observation sets are kept by
  /// reference and must outlive the strategy. `normalization` is N (m*n by default).
  DenseStrategy(const Observations& train, const Observations* test,
                std::optional<DistMatrix> truth, double normalization);

  Evaluation evaluate(const Chain& chain, std::vector<DistMatrix>* gradient,
                      bool with_metrics) override;
  double normalization() const override { return normalization_; }

 private:
  const Observations& train_;
  const Observations* test_;
  std::optional<DistMatrix> truth_;
  std::optional<double> truth_norm_sq_;
  double normalization_;
  /// Buffers kept across evaluations: the partial products W_l...W_1 (l >= 1), the residual S
  /// and the back-propagated products (W_K...W_{l+1})^T S.
  std::vector<std::optional<DistMatrix>> products_, upstream_;
  std::optional<DistMatrix> residual_;
};

/// Phi = U V^T as a dense m x n DistMatrix (for the dense strategy's recovery error).
DistMatrix truth_matrix_from_factors(const DistMatrix& u, const DistMatrix& v);

}  // namespace cdmf
