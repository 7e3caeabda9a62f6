#pragma once
/// An independent serial dense implementation of the deep factorization (plain loops, no
/// ScaLAPACK, no BLAS), in original indices, column-major: the loss, its gradients and the
/// GD step, to check the distributed solver against.
#include <cstdint>
#include <vector>

#include "cdmf/data/layout.hpp"
#include "cdmf/data/observations.hpp"
#include "cdmf/linalg/dist_matrix.hpp"
#include "cdmf/model/chain.hpp"

namespace cdmf::test {

struct SerialMatrix {
  std::int64_t rows = 0, cols = 0;
  std::vector<double> data;  // column-major
  double& operator()(std::int64_t i, std::int64_t j) { return data[i + j * rows]; }
  double operator()(std::int64_t i, std::int64_t j) const { return data[i + j * rows]; }
};

SerialMatrix multiply(const SerialMatrix& a, const SerialMatrix& b, bool trans_a = false,
                      bool trans_b = false);

/// mu + b_i + c_j in original indices (the biases of model/biases.hpp).
struct SerialBiases {
  double mu = 0.0;
  std::vector<double> rows, cols;
};

/// f = 1/(2N) sum (X_ij + [mu + b_i + c_j] - v)^2 over `entries` (the bracket when `biases`
/// is given); fills dF/dW_l when `gradient` is non-null.
double serial_loss(const std::vector<SerialMatrix>& factors, const EntryList& entries,
                   double normalization, std::vector<SerialMatrix>* gradient = nullptr,
                   const SerialBiases* biases = nullptr);

/// The regularized alternating sweeps of model/biases.hpp by plain loops over `entries`.
SerialBiases serial_fit_biases(const EntryList& entries, std::int64_t m, std::int64_t n,
                               double regularization, int sweeps);

SerialMatrix serial_end_to_end(const std::vector<SerialMatrix>& factors);

/// The linear-layer measurement of an adaptation, dense: with DeltaW = W_K ... W_1 formed,
/// R = (W0 + DeltaW) X - Y, f = ||R||_F^2 / (2s) (s = X.cols), dF/dDeltaW = R X^T / s and the
/// factor gradients from it as in serial_loss.
double serial_linear_loss(const std::vector<SerialMatrix>& factors, const SerialMatrix& base,
                          const SerialMatrix& inputs, const SerialMatrix& targets,
                          std::vector<SerialMatrix>* gradient = nullptr);

/// Columns [0, a.cols) of the orthonormal Q of a (LAPACK dgeqrf + dorgqr).
SerialMatrix serial_orth(SerialMatrix a);
/// Top-`rank` left and right singular vectors of g (LAPACK dgesvd).
void serial_top_singular_vectors(SerialMatrix g, std::int64_t rank, SerialMatrix& left,
                                 SerialMatrix& right);
/// V V^T.
SerialMatrix projector(const SerialMatrix& v);

/// Collective: every factor gathered to rank 0 in original index order (empty elsewhere).
std::vector<SerialMatrix> gather_chain(const Chain& chain, const IndexLayout& layout);
/// Collective: a distributed matrix in the permuted (rows: m space, cols: n space) layout,
/// gathered to rank 0 in original order.
SerialMatrix gather_original(const DistMatrix& x, const IndexLayout& layout, Space row_space,
                             Space col_space);

/// The entries of `all` (held identically on every rank) that this rank owns under `layout`,
/// built without cdmf::distribute so the tests do not depend on it.
Observations owned_observations(const ProcessGrid& grid, const IndexLayout& layout,
                                const EntryList& all);

/// A random EntryList of about `fraction` of an m x n matrix with values from `truth`.
EntryList random_entries(std::int64_t m, std::int64_t n, double fraction, std::uint64_t seed,
                         const SerialMatrix& truth);

}  // namespace cdmf::test
