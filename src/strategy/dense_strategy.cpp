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
  // Forward: partial[l] = W_l ... W_1 (partial[0] = W_1), X = partial[K-1].
  std::vector<DistMatrix> partial;
  partial.reserve(static_cast<size_t>(depth));
  partial.push_back(chain.factors[0]);
  for (int l = 1; l < depth; ++l) {
    const DistMatrix& w = chain.factors[static_cast<size_t>(l)];
    DistMatrix next(w.grid(), w.rows(), partial.back().cols(), w.block());
    gemm('N', 'N', 1.0, w, partial.back(), 0.0, next);
    partial.push_back(std::move(next));
  }
  const DistMatrix& x = partial.back();
  MPI_Comm comm = x.grid().comm();

  Evaluation result;
  std::optional<DistMatrix> s;
  if (gradient) s.emplace(x.grid(), x.rows(), x.cols(), x.block());
  result.train_sse = allreduce_sum(local_sse(x, train_, s ? &*s : nullptr, 1.0 / normalization_), comm);
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

  // Backward: upstream = (W_K...W_{l+1})^T S; dF/dW_l = upstream * partial[l-1]^T.
  gradient->clear();
  gradient->reserve(static_cast<size_t>(depth));
  for (const DistMatrix& w : chain.factors) gradient->emplace_back(w.grid(), w.rows(), w.cols(), w.block());
  DistMatrix upstream = std::move(*s);
  for (int l = depth - 1; l >= 0; --l) {
    DistMatrix& g = (*gradient)[static_cast<size_t>(l)];
    if (l == 0) {
      g = std::move(upstream);
      break;
    }
    gemm('N', 'T', 1.0, upstream, partial[static_cast<size_t>(l - 1)], 0.0, g);
    const DistMatrix& w = chain.factors[static_cast<size_t>(l)];
    DistMatrix next(w.grid(), w.cols(), upstream.cols(), w.block());
    gemm('T', 'N', 1.0, w, upstream, 0.0, next);
    upstream = std::move(next);
  }
  return result;
}

DistMatrix truth_matrix_from_factors(const DistMatrix& u, const DistMatrix& v) {
  DistMatrix phi(u.grid(), u.rows(), v.rows(), u.block());
  gemm('N', 'T', 1.0, u, v, 0.0, phi);
  return phi;
}

}  // namespace cdmf
