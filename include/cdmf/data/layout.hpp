#pragma once
/// The index space of a problem: m x n, the block size of the 2-D block-cyclic layout, and the
/// seeded row/column permutations applied before distribution so that skewed real data
/// (power-law users/items) balance. Everything distributed (observations, the end-to-end
/// matrix, the first factor's columns, the last factor's rows) is indexed by *permuted*
/// indices; files always hold *original* indices.
#include <cstdint>
#include <vector>

#include "cdmf/grid/process_grid.hpp"

namespace cdmf {

/// The largest number of rows or columns of a problem: ScaLAPACK's descriptors and BLACS
/// hold dimensions in 32-bit ints. Readers refuse an index at or beyond it before anything is
/// sized by it, so an index near INT64_MAX is named as such instead of wrapping around.
inline constexpr std::int64_t kMaxDimension = 2147483647;

class IndexLayout {
 public:
  /// `seed` drives the permutations (identity when `permute` is false).
  IndexLayout(std::int64_t rows, std::int64_t cols, int block, std::uint64_t seed,
              bool permute = true);

  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  int block() const { return block_; }
  std::uint64_t seed() const { return seed_; }
  bool permuted() const { return permute_; }
  /// original -> permuted
  std::int64_t permuted_row(std::int64_t i) const { return row_perm_[i]; }
  std::int64_t permuted_col(std::int64_t j) const { return col_perm_[j]; }
  /// permuted -> original
  std::int64_t original_row(std::int64_t p) const { return row_inverse_[p]; }
  std::int64_t original_col(std::int64_t q) const { return col_inverse_[q]; }
  const std::vector<std::int64_t>& row_permutation() const { return row_perm_; }
  const std::vector<std::int64_t>& col_permutation() const { return col_perm_; }
  const std::vector<std::int64_t>& row_inverse() const { return row_inverse_; }
  const std::vector<std::int64_t>& col_inverse() const { return col_inverse_; }

  /// Rank (in grid.comm()) owning permuted entry (p, q): block-cyclic, RSRC = CSRC = 0.
  int owner(const ProcessGrid& grid, std::int64_t p, std::int64_t q) const {
    return grid.rank_of(static_cast<int>((p / block_) % grid.rows()),
                        static_cast<int>((q / block_) % grid.cols()));
  }

 private:
  std::int64_t rows_, cols_;
  int block_;
  std::uint64_t seed_;
  bool permute_;
  std::vector<std::int64_t> row_perm_, col_perm_, row_inverse_, col_inverse_;
};

/// Default block size: at most 64, reduced so every grid row and column holds at least one
/// block, and within a factor of two of that the one that spreads rows and columns most evenly.
/// Throws Error when the grid has more process rows than m or columns than n
/// ("more ranks than the data can use"), when m or n exceeds kMaxDimension, and when
/// `requested` (--block-size, 0: choose) is negative or larger than max(m, n).
int choose_block_size(std::int64_t rows, std::int64_t cols, const ProcessGrid& grid,
                      int requested = 0);

}  // namespace cdmf
