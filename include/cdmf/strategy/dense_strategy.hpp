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
  /// Back-propagates to W_1 only: the gradients of the other factors cost two products of
  /// the size of X each and are not formed. Releases the evaluation buffers.
  DistMatrix first_factor_gradient(const Chain& chain) override;
  double normalization() const override { return normalization_; }

 private:
  /// X = W_K ... W_1, the partial products kept in products_.
  const DistMatrix& forward(const Chain& chain);
  /// partial(l) = W_{l+1} ... W_1 of the last forward pass (W_1 itself for l = 0).
  const DistMatrix& partial(const Chain& chain, int l) const;
  /// The residual buffer S, shaped like `x`.
  DistMatrix& residual(const DistMatrix& x);
  /// Back-propagates S (in residual_): writes dF/dW_l into (*gradient)[l] for l >= 1 when
  /// `gradient` is given; returns the buffer holding dF/dW_1 (upstream(0), S itself for one
  /// factor).
  std::optional<DistMatrix>& backward(const Chain& chain, std::vector<DistMatrix>* gradient);

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
