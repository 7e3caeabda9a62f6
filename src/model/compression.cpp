#include "cdmf/model/compression.hpp"

#include <algorithm>
#include <cmath>

#include "cdmf/core/error.hpp"
#include "cdmf/linalg/truncated_svd.hpp"
#include "cdmf/model/structured_init.hpp"

namespace cdmf {

namespace {
void validate(const Chain& deep, std::int64_t rank, double init_scale) {
  const std::int64_t m = deep.rows(), n = deep.cols(), h = deep.width();
  fail_if(rank < 1, "--rank must be at least 1 for the compressed model (got {})", rank);
  fail_if(2 * rank > std::min(m, n),
          "--rank {}: the compressed width 2*rank = {} exceeds min(rows, cols) = {}", rank,
          2 * rank, std::min(m, n));
  fail_if(rank > std::min(h, n), "--rank {} exceeds the deep width {} it is compressed from", rank, h);
  fail_if(!(init_scale > 0.0), "--init-scale must be positive (got {})", init_scale);
}
}  // namespace

DistMatrix compression_basis(const Chain& deep, Strategy& strategy, std::int64_t rank,
                             double init_scale) {
  validate(deep, rank, init_scale);
  const DistMatrix g = strategy.first_factor_gradient(deep);  // h x n
  // Only the top `rank` pairs are needed: the Gram-matrix method, not the full PDGESVD (which
  // cost 1.6 s of a 1000 x 1000 run). When G's top-`rank` subspace is not determined (G of
  // rank < `rank`, e.g. a fully observed target of lower rank, or G = 0) any completion is as
  // good as another; PDGESVD supplies one, as before, rather than failing such a run.
  const TruncatedSvd top = top_singular_vectors(g, rank, UnresolvedSubspace::kUseFullSvd);
  const ProcessGrid& grid = g.grid();
  const int block = g.block();
  const std::int64_t n = g.cols();
  // [V_G, W_1(0)^T U_G / eps], then orthonormalised.
  DistMatrix basis(grid, n, 2 * rank, block);
  copy_block(top.v, 0, 0, n, rank, basis, 0, 0);
  DistMatrix lifted(grid, n, rank, block);
  gemm('T', 'N', 1.0 / init_scale, deep.factors.front(), top.u, 0.0, lifted);
  copy_block(lifted, 0, 0, n, rank, basis, 0, rank);
  orthonormalize_columns(basis);
  return basis;
}

Chain compress_chain(const Chain& deep, Strategy& strategy, const CompressionConfig& config) {
  fail_if(!(config.gamma >= 0.0) || !std::isfinite(config.gamma),
          "--gamma must be non-negative and finite (got {})", config.gamma);
  DistMatrix v = compression_basis(deep, strategy, config.rank, config.init_scale);
  const ProcessGrid& grid = v.grid();
  const int block = v.block();
  const std::int64_t k = v.cols();
  // U = W_L ... W_1 V / eps^L, formed thin (never the m x n product).
  DistMatrix u = v;
  for (const DistMatrix& w : deep.factors) {
    DistMatrix next(grid, w.rows(), k, block);
    gemm('N', 'N', 1.0, w, u, 0.0, next);
    u = std::move(next);
  }
  const double scale = std::pow(config.init_scale, -static_cast<double>(deep.depth()));
  for (double& x : u.local()) x *= scale;
  return compressed_chain(std::move(v), std::move(u), deep.depth(), config);
}

}  // namespace cdmf
