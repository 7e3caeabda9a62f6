#pragma once
/// Compression of a deep chain (DESIGN.md section 1, "Compression"; Yaras et al. 2024):
/// from the deep init Theta(0) of depth L and width h,
///   G = dF/dW_1 at Theta(0);  U_G, V_G = top-rhat left/right singular vectors of G
///     (top_singular_vectors, from G's Gram matrix; PDGESVD when G's top-rhat subspace is
///     undetermined, e.g. rank(G) < rhat);
///   V = orth([V_G, W_1(0)^T U_G / eps])        (n x 2 rhat, by QR)
///   U = W_L(0) ... W_1(0) V / eps^L           (m x 2 rhat)
/// and the compressed chain [V^T, eps I, ..., eps I (L times), U] with lr multiplier gamma on
/// U and V^T and 1 on the inner factors. At init its end-to-end matrix is W_{L:1}(0) V V^T.
/// A tall problem (m > n, deep width h >= m) is compressed transposed: with Q = W_{L:1}(0) /
/// eps^L, U = orth([U_S0, Q V_S0]) and V = Q^T U, so that U spans U_S0 (U = Q V cannot: Q Q^T
/// has rank n < m); its end-to-end matrix at init is U U^T W_{L:1}(0).
#include <cstdint>

#include "cdmf/model/chain.hpp"
#include "cdmf/strategy/strategy.hpp"

namespace cdmf {

struct CompressionConfig {
  std::int64_t rank = 1;     // rhat; the compressed width is k = 2 rhat
  double gamma = 0.01;       // lr multiplier of the outer factors
  double init_scale = 1e-3;  // eps of the deep init (and of the inner factors)
};

/// Collective. `deep` must be the deep chain at init (orthogonal, scale eps) and `strategy`
/// the loss it is trained on (used once, for G). Validates 1 <= rhat, 2 rhat <= min(m, n),
/// rhat <= min(h, n), gamma >= 0.
Chain compress_chain(const Chain& deep, Strategy& strategy, const CompressionConfig& config);

/// V (n x 2 rhat) and U (m x 2 rhat) of the compressed chain [V^T, eps I, ..., U]: when
/// m <= n, V orthonormal and U = Q V; when m > n, U orthonormal and V = Q^T U (exposed for the
/// subspace tests).
struct CompressionFactors {
  DistMatrix v, u;
};
CompressionFactors compression_factors(const Chain& deep, Strategy& strategy, std::int64_t rank,
                                       double init_scale);

}  // namespace cdmf
