#pragma once
/// Biases and centering (issue 11): the model of ratings is
///
///   X = mu 1 1^T + b 1^T + 1 c^T + W_K ... W_1
///
/// with a global mean mu, a bias b_i per row (user) and c_j per column (item). They are fitted
/// first, by regularized alternating sweeps on the training entries,
///
///   mu  = mean of the training values,
///   b_i = sum_{j in Omega_i} (Phi_ij - mu - c_j) / (|Omega_i| + lambda),
///   c_j = sum_{i in Omega^j} (Phi_ij - mu - b_i) / (|Omega^j| + lambda),
///
/// (each sweep minimizes sum (mu + b_i + c_j - Phi_ij)^2 + lambda (|b|^2 + |c|^2) over b, then
/// over c), then held while the chain trains on the residual: each observation's offset is
/// mu + b_i + c_j (Observations::offsets), so both strategies, compression and the optimizers
/// run unchanged. A row or column without training entries has bias 0: its prediction is mu
/// plus the other side's bias (cold start).
///
/// b and c are replicated on every rank in the permuted index spaces: O(m + n) words, like the
/// permutations of the IndexLayout. The sums of a sweep are over each rank's own entries,
/// combined by one allreduce of m + n words.
#include <cstdint>
#include <vector>

#include "cdmf/data/layout.hpp"
#include "cdmf/data/observations.hpp"
#include "cdmf/grid/process_grid.hpp"

namespace cdmf {

struct Biases {
  double mu = 0.0;
  std::vector<double> rows;  // b, indexed by permuted row (size m)
  std::vector<double> cols;  // c, indexed by permuted column (size n)
  bool empty() const { return rows.empty(); }
  /// mu + b_i + c_j for permuted (i, j); a negative index (an id never seen) adds no bias.
  double at(std::int64_t i, std::int64_t j) const {
    return mu + (i >= 0 ? rows[static_cast<size_t>(i)] : 0.0) +
           (j >= 0 ? cols[static_cast<size_t>(j)] : 0.0);
  }
  /// The same vectors in original order (what files hold), and back.
  std::vector<double> rows_original(const IndexLayout& layout) const;
  std::vector<double> cols_original(const IndexLayout& layout) const;
  static Biases from_original(const IndexLayout& layout, double mu,
                              const std::vector<double>& rows_original,
                              const std::vector<double>& cols_original);
};

struct BiasFit {
  double regularization = 5.0;  // lambda (>= 0)
  int sweeps = 10;              // alternating sweeps (>= 1)
};

/// Collective over grid.comm(): fits mu, b, c to `train` (which holds its permuted indices) as
/// described above. The same numbers on any grid up to the rounding of the sums.
Biases fit_biases(const ProcessGrid& grid, const Observations& train, std::int64_t rows,
                  std::int64_t cols, const BiasFit& fit);

/// Sets obs.offsets[e] = mu + b_i + c_j for every local observation.
void set_bias_offsets(Observations& obs, const Biases& biases);

}  // namespace cdmf
