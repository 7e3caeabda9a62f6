#pragma once
/// The factored recipe of synthetic.hpp, private to the data layer.
#include "cdmf/data/synthetic.hpp"

namespace cdmf {

/// Collective over grid.comm(); `spec` is validated and resolved to the factored recipe.
SyntheticProblem make_factored_problem(const ProcessGrid& grid, const SyntheticSpec& spec);

/// Rows of the fixed blocks entries are drawn in: at most kMaxRowBlocks blocks, so their
/// per-block bookkeeping stays small, whatever the number of ranks.
struct RowBlocks {
  std::int64_t rows = 0, rows_per_block = 1, count = 0;
  explicit RowBlocks(std::int64_t m);
  std::int64_t first(std::int64_t b) const { return b * rows_per_block; }
  std::int64_t size(std::int64_t b) const;
};
constexpr std::int64_t kMaxRowBlocks = 65536;

}  // namespace cdmf
