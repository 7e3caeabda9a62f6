#pragma once
/// The spectrum of a chain's end-to-end matrix X = W_K ... W_1, for `cdmf inspect` and tests.
#include <vector>

#include "cdmf/model/chain.hpp"

namespace cdmf {

/// Collective: the min(m, n) singular values of X, descending, on every rank.
///
/// A thin chain (W_K is m x k with k <= m, W_1 is k' x n with k' <= n) never forms X: with the
/// QR factorizations W_K = Q_A R_A and W_1^T = Q_B R_B,
///     X = Q_A (R_A M R_B^T) Q_B^T,   M = W_{K-1} ... W_2  (the identity when K = 2),
/// so the singular values of X are those of the k x k' core R_A M R_B^T, followed by
/// min(m, n) - min(k, k') zeros. Cost O((m + n) k^2 + K k^3). Other chains (the deep model,
/// whose width exceeds m or n) form X with PDGEMM and take its PDGESVD, O(m n h).
std::vector<double> end_to_end_singular_values(const Chain& chain);

}  // namespace cdmf
