#include "cdmf/strategy/linear_strategy.hpp"

#include "cdmf/core/error.hpp"

namespace cdmf {

namespace {

/// Z_0 = x and Z_l = W_l Z_{l-1}, l = 1..K (the forward pass, kept for the gradients).
std::vector<DistMatrix> forward(const Chain& chain, const DistMatrix& x) {
  std::vector<DistMatrix> z;
  z.reserve(chain.factors.size() + 1);
  z.push_back(x);
  for (const DistMatrix& w : chain.factors) {
    DistMatrix next(x.grid(), w.rows(), x.cols(), x.block());
    gemm('N', 'N', 1.0, w, z.back(), 0.0, next);
    z.push_back(std::move(next));
  }
  return z;
}

void check_shapes(const Chain& chain, const DistMatrix& x, const DistMatrix& b0) {
  fail_if(chain.cols() != x.rows() || chain.rows() != b0.rows() || x.cols() != b0.cols(),
          "linear measurement: a {} x {} update does not fit inputs {} x {} and targets {} x {}",
          chain.rows(), chain.cols(), x.rows(), x.cols(), b0.rows(), b0.cols());
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
  DistMatrix r = forward(chain, x).back();
  axpy(1.0, b0, r);
  return r;
}

Evaluation LinearStrategy::evaluate(const Chain& chain, std::vector<DistMatrix>* gradient,
                                    bool with_metrics) {
  check_shapes(chain, x_, b0_);
  const double s = normalization();
  Evaluation result;
  std::vector<DistMatrix> z = forward(chain, x_);
  DistMatrix d = std::move(z.back());  // R, then D_l
  z.pop_back();
  axpy(1.0, b0_, d);
  result.train_sse = d.squared_norm();
  result.train_count = chain.rows() * x_.cols();
  if (gradient) {
    shape_like_factors(chain, *gradient);
    for (double& v : d.local()) v /= s;
    for (int l = chain.depth() - 1; l >= 0; --l) {
      gemm('N', 'T', 1.0, d, z[l], 0.0, (*gradient)[l]);  // D_l Z_{l-1}^T
      if (l == 0) break;
      DistMatrix below(d.grid(), chain.factors[l].cols(), d.cols(), d.block());
      gemm('T', 'N', 1.0, chain.factors[l], d, 0.0, below);
      d = std::move(below);
    }
  }
  if (with_metrics && test_x_) {
    const DistMatrix r = linear_residual(chain, *test_x_, *test_b0_);
    const double per_sample = s / static_cast<double>(test_x_->cols());
    result.test_sse = r.squared_norm() * per_sample;
    result.test_count = result.train_count;
  }
  return result;
}

}  // namespace cdmf
