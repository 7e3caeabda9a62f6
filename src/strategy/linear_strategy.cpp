#include "cdmf/strategy/linear_strategy.hpp"

#include "cdmf/core/error.hpp"

namespace cdmf {

namespace {

void check_shapes(const Chain& chain, const DistMatrix& x, const DistMatrix& b0) {
  fail_if(chain.cols() != x.rows() || chain.rows() != b0.rows() || x.cols() != b0.cols(),
          "linear measurement: a {} x {} update does not fit inputs {} x {} and targets {} x {}",
          chain.rows(), chain.cols(), x.rows(), x.cols(), b0.rows(), b0.cols());
}

/// Makes `buffers` hold one matrix of rows[l] x cols each (reused when they already do).
void shape_buffers(std::vector<DistMatrix>& buffers, const std::vector<std::int64_t>& rows,
                   const DistMatrix& like) {
  bool same = buffers.size() == rows.size();
  for (size_t l = 0; same && l < rows.size(); ++l)
    same = buffers[l].rows() == rows[l] && buffers[l].cols() == like.cols() && buffers[l].block() == like.block();
  if (same) return;
  buffers.clear();
  for (std::int64_t r : rows) buffers.emplace_back(like.grid(), r, like.cols(), like.block());
}

}  // namespace

LinearStrategy::LinearStrategy(DistMatrix x, DistMatrix b0, std::optional<DistMatrix> test_x,
                               std::optional<DistMatrix> test_b0)
    : x_(std::move(x)), b0_(std::move(b0)), test_x_(std::move(test_x)), test_b0_(std::move(test_b0)) {
  fail_if(x_.cols() != b0_.cols() || x_.cols() < 1,
          "linear measurement: {} input samples but {} target samples", x_.cols(), b0_.cols());
  fail_if(test_x_.has_value() != test_b0_.has_value(), "linear measurement: test inputs without targets");
  if (test_x_)
    fail_if(test_x_->cols() != test_b0_->cols() || test_x_->rows() != x_.rows() ||
                test_b0_->rows() != b0_.rows(),
            "linear measurement: the test samples do not match the training samples' shape");
}

DistMatrix linear_residual(const Chain& chain, const DistMatrix& x, const DistMatrix& b0) {
  check_shapes(chain, x, b0);
  std::vector<DistMatrix> z;
  z.reserve(chain.factors.size());
  const DistMatrix* input = &x;  // never copied: X is as large as the residual
  for (size_t l = 0; l + 1 < chain.factors.size(); ++l) {
    z.emplace_back(x.grid(), chain.factors[l].rows(), x.cols(), x.block());
    gemm('N', 'N', 1.0, chain.factors[l], *input, 0.0, z.back());
    input = &z.back();
  }
  DistMatrix r = b0;
  gemm('N', 'N', 1.0, chain.factors.back(), *input, 1.0, r);
  return r;
}

Evaluation LinearStrategy::evaluate(const Chain& chain, std::vector<DistMatrix>* gradient,
                                    bool with_metrics) {
  check_shapes(chain, x_, b0_);
  const double s = normalization();
  const int depth = chain.depth();
  // The products are kept between calls: allocated anew, the m x s residual (and a copy of
  // X, as this once made) cost more in page faults and zero fills than the thin products
  // themselves (perf of lora r 8 at 20,000 x 1,024).
  std::vector<std::int64_t> forward_rows, backward_rows;
  for (int l = 0; l + 1 < depth; ++l) forward_rows.push_back(chain.factors[l].rows());
  for (int l = 1; l < depth; ++l) backward_rows.push_back(chain.factors[l].cols());
  shape_buffers(forward_, forward_rows, x_);
  shape_buffers(backward_, backward_rows, x_);
  if (!residual_ || !residual_->same_layout(b0_)) residual_.emplace(b0_.grid(), b0_.rows(), b0_.cols(), b0_.block());
  // Z_l = W_l Z_{l-1} (Z_0 = X), then R = B0 + W_K Z_{K-1} in place of a copy of B0.
  const DistMatrix* input = &x_;
  for (int l = 0; l + 1 < depth; ++l) {
    gemm('N', 'N', 1.0, chain.factors[l], *input, 0.0, forward_[l]);
    input = &forward_[l];
  }
  DistMatrix& r = *residual_;
  r.local() = b0_.local();
  gemm('N', 'N', 1.0, chain.factors.back(), *input, 1.0, r);
  Evaluation result;
  result.train_sse = r.squared_norm();
  result.train_count = chain.rows() * x_.cols();
  if (gradient) {
    // D_K = R / s, D_{l-1} = W_l^T D_l; the 1/s goes into each gradient's product instead of
    // a pass over R.
    shape_like_factors(chain, *gradient);
    const DistMatrix* d = &r;
    for (int l = depth - 1; l >= 0; --l) {
      gemm('N', 'T', 1.0 / s, *d, l == 0 ? x_ : forward_[l - 1], 0.0, (*gradient)[l]);  // D_l Z_{l-1}^T
      if (l == 0) break;
      gemm('T', 'N', 1.0, chain.factors[l], *d, 0.0, backward_[l - 1]);
      d = &backward_[l - 1];
    }
  }
  if (with_metrics && test_x_) {
    const DistMatrix test_r = linear_residual(chain, *test_x_, *test_b0_);
    const double per_sample = s / static_cast<double>(test_x_->cols());
    result.test_sse = test_r.squared_norm() * per_sample;
    result.test_count = result.train_count;
  }
  return result;
}

}  // namespace cdmf
