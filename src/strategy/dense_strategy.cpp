#include "cdmf/strategy/dense_strategy.hpp"

#include "cdmf/core/error.hpp"

namespace cdmf {

namespace {
/// Sum over local observations of (X_pq - value)^2, X in its block-cyclic layout; when
/// `residual` is given, also writes (X_pq - value) * scale into it at (p, q).
double local_sse(const DistMatrix& x, const Observations& obs, DistMatrix* residual, double scale) {
  const CyclicDim& rd = x.row_dim();
  const CyclicDim& cd = x.col_dim();
  double sum = 0.0;
  for (size_t e = 0; e < obs.size(); ++e) {
    const std::int64_t li = rd.local(obs.rows[e]), lj = cd.local(obs.cols[e]);
    const double r = x.at_local(li, lj) - obs.values[e];
    sum += r * r;
    if (residual) residual->at_local(li, lj) = r * scale;
  }
  return sum;
}

/// `slot` as a rows x cols matrix on `grid`, allocated only when missing or shaped otherwise:
/// the products and residual of the dense strategy are large (m x n), and allocating and
/// zero-filling them at every evaluation cost ~10% of an iteration.
DistMatrix& reuse(std::optional<DistMatrix>& slot, const ProcessGrid& grid, std::int64_t rows,
                  std::int64_t cols, int block) {
  if (!slot || &slot->grid() != &grid || slot->rows() != rows || slot->cols() != cols ||
      slot->block() != block)
    slot.emplace(grid, rows, cols, block);
  return *slot;
}

double allreduce_sum(double value, MPI_Comm comm) {
  double total = 0.0;
  check_mpi(MPI_Allreduce(&value, &total, 1, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  return total;
}
}  // namespace

DenseStrategy::DenseStrategy(const Observations& train, const Observations* test,
                             std::optional<DistMatrix> truth, double normalization)
    : train_(train), test_(test), truth_(std::move(truth)), normalization_(normalization) {
  fail_if(!(normalization > 0.0), "loss normalization must be positive");
  if (truth_) truth_norm_sq_ = truth_->squared_norm();
}

Evaluation DenseStrategy::evaluate(const Chain& chain, std::vector<DistMatrix>* gradient,
                                   bool with_metrics) {
  const int depth = chain.depth();
  // Forward: partial(l) = W_l ... W_1 (partial(0) = W_1), X = partial(K-1). PDGEMM with
  // beta = 0 overwrites its output, so the buffers need no clearing.
  products_.resize(static_cast<size_t>(depth));
  const auto partial = [&](int l) -> const DistMatrix& {
    return l == 0 ? chain.factors[0] : *products_[static_cast<size_t>(l)];
  };
  for (int l = 1; l < depth; ++l) {
    const DistMatrix& w = chain.factors[static_cast<size_t>(l)];
    DistMatrix& next = reuse(products_[static_cast<size_t>(l)], w.grid(), w.rows(), partial(l - 1).cols(), w.block());
    gemm('N', 'N', 1.0, w, partial(l - 1), 0.0, next);
  }
  const DistMatrix& x = partial(depth - 1);
  MPI_Comm comm = x.grid().comm();

  Evaluation result;
  // The residual S is non-zero only at observed entries, which every evaluation overwrites:
  // the rest stays zero from the allocation.
  DistMatrix* s = gradient ? &reuse(residual_, x.grid(), x.rows(), x.cols(), x.block()) : nullptr;
  result.train_sse = allreduce_sum(local_sse(x, train_, s, 1.0 / normalization_), comm);
  result.train_count = train_.global_count;
  if (with_metrics) {
    if (test_) {
      result.test_sse = allreduce_sum(local_sse(x, *test_, nullptr, 0.0), comm);
      result.test_count = test_->global_count;
    }
    if (truth_) {
      double local = 0.0;
      const auto& xs = x.local();
      const auto& ps = truth_->local();
      for (size_t e = 0; e < xs.size(); ++e) local += (xs[e] - ps[e]) * (xs[e] - ps[e]);
      result.truth_sse = allreduce_sum(local, comm);
      result.truth_norm_sq = truth_norm_sq_;
    }
  }
  if (!gradient) return result;

  // Backward: upstream(l) = (W_K...W_{l+1})^T S; dF/dW_l = upstream(l) partial(l-1)^T.
  shape_like_factors(chain, *gradient);
  upstream_.resize(static_cast<size_t>(depth));
  const DistMatrix* upstream = s;
  for (int l = depth - 1; l >= 1; --l) {
    gemm('N', 'T', 1.0, *upstream, partial(l - 1), 0.0, (*gradient)[static_cast<size_t>(l)]);
    const DistMatrix& w = chain.factors[static_cast<size_t>(l)];
    DistMatrix& next = reuse(upstream_[static_cast<size_t>(l - 1)], w.grid(), w.cols(), upstream->cols(), w.block());
    gemm('T', 'N', 1.0, w, *upstream, 0.0, next);
    upstream = &next;
  }
  (*gradient)[0].local() = upstream->local();  // dF/dW_1 = upstream(0)
  return result;
}

DistMatrix truth_matrix_from_factors(const DistMatrix& u, const DistMatrix& v) {
  DistMatrix phi(u.grid(), u.rows(), v.rows(), u.block());
  gemm('N', 'T', 1.0, u, v, 0.0, phi);
  return phi;
}

}  // namespace cdmf
