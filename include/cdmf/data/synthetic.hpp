#pragma once
/// Synthetic low-rank completion problems made as the published experiments make them:
/// a Gaussian m x n matrix truncated to rank r by SVD (Phi = U_r S_r V_r^T), a uniformly random
/// set of round(observed * m * n) entries for training, and the rest (or a random
/// round(test_observed * m * n) of the rest) for testing.
#include <cstdint>
#include <vector>

#include "cdmf/data/observations.hpp"
#include "cdmf/grid/process_grid.hpp"

namespace cdmf {

struct SyntheticSpec {
  std::int64_t rows = 100;
  std::int64_t cols = 100;
  std::int64_t rank = 5;
  double observed = 0.2;
  double test_observed = -1.0;  // < 0: every unobserved entry
  std::uint64_t seed = 0;
};

struct SyntheticProblem {
  /// Ground truth Phi = U V^T, on rank 0 only (column-major): U = U_r S_r (m x r), V = V_r (n x r).
  std::vector<double> u;
  std::vector<double> v;
  /// Entries on rank 0 only, in original indices, sorted row-major; lines are 1-based positions.
  EntryList train;
  EntryList test;
};

/// Throws Error unless make_synthetic_problem can make `spec` on `grid`. The same on every rank,
/// no communication: `cdmf generate` checks its options with it before creating any output.
void validate_synthetic_spec(const SyntheticSpec& spec, const ProcessGrid& grid);

/// Collective over grid.comm(): the Gaussian matrix and its SVD are distributed (PDGESVD);
/// sampling and entry values are computed on rank 0. Validates the spec (Error otherwise).
SyntheticProblem make_synthetic_problem(const ProcessGrid& grid, const SyntheticSpec& spec);

}  // namespace cdmf
