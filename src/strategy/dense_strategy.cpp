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
    const double r = x.at_local(li, lj) - obs.target(e);
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

const DistMatrix& DenseStrategy::forward(const Chain& chain) {
  // partial(l) = W_l ... W_1 (partial(0) = W_1), X = partial(K-1). PDGEMM with beta = 0
  // overwrites its output, so the buffers need no clearing.
  const int depth = chain.depth();
  products_.resize(static_cast<size_t>(depth));
  for (int l = 1; l < depth; ++l) {
    const DistMatrix& w = chain.factors[static_cast<size_t>(l)];
    const DistMatrix& previous = partial(chain, l - 1);
    DistMatrix& next = reuse(products_[static_cast<size_t>(l)], w.grid(), w.rows(), previous.cols(), w.block());
    gemm('N', 'N', 1.0, w, previous, 0.0, next);
  }
  return partial(chain, depth - 1);
}

const DistMatrix& DenseStrategy::partial(const Chain& chain, int l) const {
  return l == 0 ? chain.factors[0] : *products_[static_cast<size_t>(l)];
}

DistMatrix& DenseStrategy::residual(const DistMatrix& x) {
  // The residual S is non-zero only at observed entries, which every evaluation overwrites:
  // the rest stays zero from the allocation.
  return reuse(residual_, x.grid(), x.rows(), x.cols(), x.block());
}

std::optional<DistMatrix>& DenseStrategy::backward(const Chain& chain,
                                                   std::vector<DistMatrix>* gradient) {
  // upstream(l) = (W_K...W_{l+1})^T S; dF/dW_l = upstream(l) partial(l-1)^T.
  const int depth = chain.depth();
  upstream_.resize(static_cast<size_t>(depth));
  std::optional<DistMatrix>* upstream = &residual_;
  for (int l = depth - 1; l >= 1; --l) {
    if (gradient)
      gemm('N', 'T', 1.0, **upstream, partial(chain, l - 1), 0.0, (*gradient)[static_cast<size_t>(l)]);
    const DistMatrix& w = chain.factors[static_cast<size_t>(l)];
    std::optional<DistMatrix>& next = upstream_[static_cast<size_t>(l - 1)];
    gemm('T', 'N', 1.0, w, **upstream, 0.0, reuse(next, w.grid(), w.cols(), (*upstream)->cols(), w.block()));
    upstream = &next;
  }
  return *upstream;
}

Evaluation DenseStrategy::evaluate(const Chain& chain, std::vector<DistMatrix>* gradient,
                                   bool with_metrics) {
  const DistMatrix& x = forward(chain);
  MPI_Comm comm = x.grid().comm();

  Evaluation result;
  DistMatrix* s = gradient ? &residual(x) : nullptr;
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

  shape_like_factors(chain, *gradient);
  (*gradient)[0].local() = backward(chain, gradient)->local();  // dF/dW_1 = upstream(0)
  return result;
}

DistMatrix DenseStrategy::first_factor_gradient(const Chain& chain) {
  // Used once (to compress a deep init): each buffer goes back to the allocator as soon as it
  // is done with, for the next one and the SVD of G to reuse; an evaluation would allocate
  // them again.
  const DistMatrix& x = forward(chain);
  local_sse(x, train_, &residual(x), 1.0 / normalization_);  // only S; the loss is not asked
  products_.clear();  // X and the partial products: only the other gradients need them
  DistMatrix g = std::move(*backward(chain, nullptr));  // handed over, not copied
  upstream_.clear();
  residual_.reset();
  return g;
}

DistMatrix truth_matrix_from_factors(const DistMatrix& u, const DistMatrix& v) {
  DistMatrix phi(u.grid(), u.rows(), v.rows(), u.block());
  gemm('N', 'T', 1.0, u, v, 0.0, phi);
  return phi;
}

}  // namespace cdmf
