#include "cdmf/model/spectrum.hpp"

#include <algorithm>

#include "cdmf/core/error.hpp"

namespace cdmf {

namespace {
/// R of the thin QR of a tall matrix (R = Q^T A with Q from the sign-fixed QR): k x k.
DistMatrix triangular_factor(const DistMatrix& a) {
  DistMatrix q = a;
  orthonormalize_columns(q);
  DistMatrix r(a.grid(), a.cols(), a.cols(), a.block());
  gemm('T', 'N', 1.0, q, a, 0.0, r);
  return r;
}
}  // namespace

std::vector<double> end_to_end_singular_values(const Chain& chain) {
  fail_if(chain.factors.empty(), "the chain has no factors");
  const DistMatrix& outer = chain.factors.back();   // W_K, m x k
  const DistMatrix& inner = chain.factors.front();  // W_1, k' x n
  const bool thin =
      chain.depth() >= 2 && outer.cols() <= outer.rows() && inner.rows() <= inner.cols();
  if (!thin) return singular_values(end_to_end(chain));

  // core = R_A W_{K-1} ... W_2 R_B^T, built right to left.
  const DistMatrix r_b = triangular_factor(transposed(inner));  // k' x k'
  DistMatrix core = transposed(r_b);
  for (int l = 1; l + 1 < chain.depth(); ++l) {
    const DistMatrix& w = chain.factors[static_cast<size_t>(l)];
    DistMatrix next(w.grid(), w.rows(), core.cols(), w.block());
    gemm('N', 'N', 1.0, w, core, 0.0, next);
    core = std::move(next);
  }
  const DistMatrix r_a = triangular_factor(outer);  // k x k
  DistMatrix x_core(r_a.grid(), r_a.rows(), core.cols(), r_a.block());
  gemm('N', 'N', 1.0, r_a, core, 0.0, x_core);
  std::vector<double> sigma = singular_values(x_core);
  sigma.resize(static_cast<size_t>(std::min(chain.rows(), chain.cols())), 0.0);
  return sigma;
}

}  // namespace cdmf
