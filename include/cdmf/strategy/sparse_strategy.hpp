#pragma once
/// The sparse strategy (DESIGN.md section 2, layer 4) for thin chains X = A M B with
/// A = W_K (m x k), B = W_1 (k x n) and M = W_{K-1} ... W_2 (k x k; the identity when K = 2):
///
///   1. replicate the layout: the rows of A in the row blocks of grid row p are gathered on
///      every process of grid row p (row communicator), the columns of B in the column blocks
///      of grid column q on every process of grid column q (column communicator), the inner
///      factors everywhere; P = A M (m x k rows, local);
///   2. one fused pass over the local observations (i, j): r = P_i . B_j - Phi_ij, s = r / N,
///      Y_i += s B_j (Y = S B^T), Z_j += s A_i (Z = A^T S, by columns);
///   3. sum Y over the row communicator and Z over the column communicator, each to the one
///      process that owns A's (B's) entries there when there is one (the usual case: thin
///      factors fit in one block), to every process otherwise; then dF/dA = Y M^T and
///      dF/dB = M^T Z where A and B live, and for inner factor W_l (2 <= l <= K-1)
///      dF/dW_l = (W_{K-1}..W_{l+1})^T (A^T Y) (W_{l-1}..W_2)^T, with A^T Y (k x k) summed
///      over all processes in the same allreduce as the losses.
///
/// Cost per evaluation O(|Omega| k + (m/Pr + n/Pc) k^2 + K k^3); communication
/// O((m/Pr + n/Pc) k) words. No m x n array exists. The recovery error against a truth
/// given as factors (Phi = U_t V_t^T, rank r) uses ||X - Phi||^2 = ||X||^2 - 2<X, Phi> + ||Phi||^2
/// with k x k and k x r Gram matrices, also without forming m x n arrays.
#include <memory>
#include <optional>

#include "cdmf/strategy/fused_pass.hpp"
#include "cdmf/strategy/strategy.hpp"

namespace cdmf {

class SparseStrategy : public Strategy {
 public:
  /// `truth_u` (m x r) and `truth_v` (n x r) in the permuted spaces (optional, both or none).
  SparseStrategy(const Observations& train, const Observations* test,
                 std::optional<DistMatrix> truth_u, std::optional<DistMatrix> truth_v,
                 double normalization);
  ~SparseStrategy() override;

  Evaluation evaluate(const Chain& chain, std::vector<DistMatrix>* gradient,
                      bool with_metrics) override;
  double normalization() const override { return normalization_; }

 private:
  /// An observation set grouped by local panel row, computed once per block size (the
  /// divisions of the index arithmetic would otherwise dominate the fused pass).
  const RowGroupedEntries& grouped(const Observations& set, RowGroupedEntries& cache,
                                   const CyclicDim& rows, const CyclicDim& cols);

  /// Panels and buffers kept across evaluations (allocating them each iteration cost more
  /// than filling them).
  struct Workspace;
  std::unique_ptr<Workspace> work_;
  const Observations& train_;
  const Observations* test_;
  RowGroupedEntries train_grouped_, test_grouped_;
  int grouped_block_ = 0;
  /// The truth's panels (U_t rows of this grid row, V_t rows of this grid column) and ||Phi||^2.
  std::vector<double> truth_u_rows_, truth_v_rows_;
  std::int64_t truth_rank_ = 0;
  std::optional<double> truth_norm_sq_;
  double normalization_;
};

/// Whether the sparse strategy can evaluate `chain` (thin: inner dimensions small relative
/// to m and n). `auto` picks sparse for such chains and dense for the deep model.
bool is_thin_chain(const Chain& chain);

}  // namespace cdmf
