#pragma once
/// The implicit structured orthogonal deep init (DESIGN.md section 1, "Large problems") and
/// the compression from it without any m x n, h x n or h x h matrix.
///
/// Each O_l of the deep init W_l(0) = eps O_l (width h, depth L) is a signed permutation
/// P_l (h x h, P_l e_j = sigma_l(j) e_{pi_l(j)}, drawn from the seed) cut to its shape:
/// O_1 = P_1 [I_n; 0], O_l = P_l inside, O_L = [I_m 0] P_L. Their product Q = O_L ... O_1
/// (m x n) is the signed permutation P = P_L ... P_1 cut the same way: column j of Q is
/// sigma(j) e_{pi(j)} when pi(j) < m, else zero. Only pi and sigma are kept (O(h) words), and
/// Q, Q^T act on thin matrices in O((m + n) k). Indices are the chain's stored ones (the
/// layout's permuted row and column spaces), as for the dense factors.
///
/// Compression (compress_implicit), with the same mathematics as compress_chain: X(0) =
/// eps^L Q, S0 = dF/dX at X(0) (nonzero on Omega only), G = eps^(L-1) (O_L..O_2)^T S0, so
/// V_G = the top-rhat right singular vectors V_S0 of S0 and W_1(0)^T U_G / eps = Q^T U_S0;
/// V = orth([V_S0, Q^T U_S0]) and U = W_L...W_1 V / eps^L = Q V when m <= n; when m > n the
/// transposed construction U = orth([U_S0, Q V_S0]), V = Q^T U (compression_factors says why).
/// The truncated SVD of S0 is sparse_truncated_svd (PARPACK); the QR is PDGEQRF on
/// max(m, n) x 2 rhat.
#include <cstdint>
#include <vector>

#include "cdmf/data/layout.hpp"
#include "cdmf/data/observations.hpp"
#include "cdmf/linalg/sparse_svd.hpp"
#include "cdmf/model/chain.hpp"
#include "cdmf/model/compression.hpp"

namespace cdmf {

class StructuredInit {
 public:
  /// Draws P_1 .. P_L of width h >= max(m, n) from `seed` and keeps their product.
  StructuredInit(std::int64_t rows, std::int64_t cols, int depth, std::int64_t width,
                 std::uint64_t seed);

  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  int depth() const { return depth_; }
  std::int64_t width() const { return width_; }
  /// Q's entry in column j: row q_row(j) (-1: a zero column) with sign q_sign(j).
  std::int64_t q_row(std::int64_t j) const { return pi_[j] < rows_ ? pi_[j] : -1; }
  double q_sign(std::int64_t j) const { return sigma_[j]; }
  /// Q's entry (i, j).
  double q(std::int64_t i, std::int64_t j) const { return pi_[j] == i ? sigma_[j] : 0.0; }
  /// Q^T Y for Y (m x k, column-major): n x k. Q X for X (n x k): m x k.
  std::vector<double> apply_transposed(const std::vector<double>& y, std::int64_t k) const;
  std::vector<double> apply(const std::vector<double>& x, std::int64_t k) const;

  /// The same init as a dense deep chain (W_l(0) = eps O_l as DistMatrix): for small problems
  /// and the tests that compare the explicit path with the implicit one.
  Chain dense_chain(const ProcessGrid& grid, const IndexLayout& layout, double init_scale) const;

 private:
  /// P_l's permutation and signs (regenerated from the seed when needed).
  void factor(int l, std::vector<std::int64_t>& pi, std::vector<double>& sigma) const;

  std::int64_t rows_, cols_;
  int depth_;
  std::int64_t width_;
  std::uint64_t seed_;
  std::vector<std::int64_t> pi_;     // P's permutation (size h)
  std::vector<double> sigma_;        // P's signs (size h)
  std::vector<std::int64_t> inverse_;  // pi^-1 (size h)
};

/// What compress_implicit did, for the summary and the log.
struct ImplicitCompressionReport {
  SparseSvd svd;  // its u and v are released (only the figures are kept)
  double svd_seconds = 0.0;
};

/// Collective: the compressed chain from the structured init, given the training set on this
/// rank (`train`, permuted indices, owned as IndexLayout::owner says) and the loss's N.
/// Validates as compress_chain does. The SVD's warning, if any, is in the report.
Chain compress_implicit(const ProcessGrid& grid, const IndexLayout& layout, const Observations& train,
                        double normalization, const StructuredInit& init,
                        const CompressionConfig& config, ImplicitCompressionReport* report = nullptr);

/// Collective: the same for the linear-layer measurement of an adaptation (X, n x s, and
/// B0 = W0 X - Y, m x s, as LinearStrategy holds them): S0 = R X^T / s with R = B0 + eps^L Q X
/// is a product of thin matrices, so its top-rhat singular vectors come from the thin QR
/// X = Q_x R_x and the top singular vectors of M = R R_x^T (m x s; top_singular_vectors, the
/// Gram matrix of its s-wide side): U_S0 = U_M, V_S0 = Q_x V_M. Q X is formed a panel of 64
/// columns at a time. O((m + n) s^2) flops and O((m + n) s) words on the grid: no m x n, h x n
/// or h x h matrix. Needs min(s, n) >= rhat (one line otherwise).
Chain compress_implicit_samples(const ProcessGrid& grid, const IndexLayout& layout, const DistMatrix& x,
                                const DistMatrix& b0, const StructuredInit& init,
                                const CompressionConfig& config);

/// The compressed chain [V^T, eps I (L times), U] with multipliers gamma, 1, ..., 1, gamma
/// (shared by the explicit and the implicit paths).
Chain compressed_chain(DistMatrix v, DistMatrix u, int depth, const CompressionConfig& config);

}  // namespace cdmf
