#pragma once
/// Synthetic low-rank completion problems, by one of two recipes:
/// - dense (the published experiments' own): a Gaussian m x n matrix truncated to rank r by SVD
///   (Phi = U_r S_r V_r^T), a uniformly random set of round(observed * m * n) entries for
///   training, and the rest (or a random round(test_observed * m * n) of the rest) for testing.
///   Its cost is an m x n SVD and m x n sort keys on rank 0: it is for small problems.
/// - factored (any size, DESIGN.md section 4 "Scale"): U = orth(G_U) S, V = orth(G_V) from
///   Gaussian m x r and n x r matrices, with every s_k = sqrt(m) + sqrt(n), the edge of the
///   Marchenko-Pastur law where the top singular values of the published m x n Gaussian lie;
///   entries are drawn per block of rows (fixed blocks, not ranks) without duplicates, each rank
///   drawing its own blocks' entries. No m x n array exists; the same seed gives the same
///   problem on any number of ranks (bit for bit: every sum runs in a fixed order).
/// `auto` picks dense when m * n * min(m, n) <= kDenseRecipeLimit and neither entry count is
/// given, so the published instances (1000 x 1000, 100 x 100) keep their recipe and step sizes.
#include <cstdint>
#include <string>
#include <vector>

#include "cdmf/core/memory_plan.hpp"

#include "cdmf/data/observations.hpp"
#include "cdmf/grid/process_grid.hpp"

namespace cdmf {

enum class TruthRecipe { kAuto, kDense, kFactored };
/// "auto", "dense", "factored"; throws Error otherwise.
TruthRecipe parse_truth_recipe(const std::string& name);

/// The dense recipe's size limit on m * n * min(m, n) (its SVD: about 11 s at 2000^3 on 2 ranks).
constexpr double kDenseRecipeLimit = 8e9;

struct SyntheticSpec {
  std::int64_t rows = 100;
  std::int64_t cols = 100;
  std::int64_t rank = 5;
  double observed = 0.2;
  double test_observed = -1.0;  // < 0: every unobserved entry (dense), 10% of training (factored)
  std::uint64_t seed = 0;
  std::int64_t observed_entries = -1;  // >= 0: the training count (instead of `observed`)
  std::int64_t test_entries = -1;      // >= 0: the test count (instead of `test_observed`)
  TruthRecipe recipe = TruthRecipe::kAuto;
};

/// Whether `spec` is made by the dense recipe (resolving kAuto).
bool uses_dense_recipe(const SyntheticSpec& spec);
/// The training and test entry counts `spec` asks for.
std::int64_t train_entry_count(const SyntheticSpec& spec);
std::int64_t test_entry_count(const SyntheticSpec& spec);

struct SyntheticProblem {
  /// Ground truth Phi = U V^T: U = U_r S_r (m x r), V = V_r (n x r). This rank holds rows
  /// [u_first, u_first + u.size() / r) of U and [v_first, ...) of V, column-major; the ranks
  /// hold consecutive rows in rank order (dense recipe: rank 0 holds all).
  std::vector<double> u;
  std::vector<double> v;
  std::int64_t u_first = 0;
  std::int64_t v_first = 0;
  /// This rank's entries, in original indices, sorted row-major, and in rank order across the
  /// ranks (dense recipe: all on rank 0); lines are 1-based positions in the whole set.
  EntryList train;
  EntryList test;
};

/// Throws Error unless make_synthetic_problem can make `spec` on `grid`. The same on every rank,
/// no communication: `cdmf generate` checks its options with it before creating any output.
void validate_synthetic_spec(const SyntheticSpec& spec, const ProcessGrid& grid);

/// What making `spec` allocates (for MemoryPlan::check before anything is allocated):
/// `text` adds the formatting buffer of the text output.
MemoryPlan synthetic_memory_plan(const SyntheticSpec& spec, bool text);

/// Collective over grid.comm(). Dense recipe: the Gaussian matrix and its SVD are distributed
/// (PDGESVD); sampling and entry values are computed on rank 0. Factored recipe: as described
/// above. Validates the spec (Error otherwise).
SyntheticProblem make_synthetic_problem(const ProcessGrid& grid, const SyntheticSpec& spec);

}  // namespace cdmf
