#include "cdmf/data/layout.hpp"

#include <algorithm>
#include <numeric>

#include "cdmf/core/error.hpp"
#include "cdmf/random/counter_rng.hpp"

namespace cdmf {

namespace {
std::vector<std::int64_t> invert(const std::vector<std::int64_t>& perm) {
  std::vector<std::int64_t> inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inverse[static_cast<size_t>(perm[i])] = static_cast<std::int64_t>(i);
  return inverse;
}

std::vector<std::int64_t> identity(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}
}  // namespace

IndexLayout::IndexLayout(std::int64_t rows, std::int64_t cols, int block, std::uint64_t seed,
                         bool permute)
    : rows_(rows), cols_(cols), block_(block), seed_(seed), permute_(permute) {
  fail_if(rows < 1 || cols < 1, "matrix dimensions must be positive (got {} x {})", rows, cols);
  fail_if(block < 1, "block size must be positive (got {})", block);
  row_perm_ = permute ? random_permutation(rows, seed, static_cast<std::uint32_t>(Stream::kRowPermutation))
                      : identity(rows);
  col_perm_ = permute ? random_permutation(cols, seed, static_cast<std::uint32_t>(Stream::kColPermutation))
                      : identity(cols);
  row_inverse_ = invert(row_perm_);
  col_inverse_ = invert(col_perm_);
}

int choose_block_size(std::int64_t rows, std::int64_t cols, const ProcessGrid& grid,
                      int requested) {
  fail_if(grid.rows() > rows || grid.cols() > cols,
          "more ranks than the data can use: a {}x{} process grid for a {} x {} matrix "
          "(each grid row needs a matrix row and each grid column a matrix column)",
          grid.rows(), grid.cols(), rows, cols);
  if (requested > 0) return requested;
  const std::int64_t per_row = (rows + grid.rows() - 1) / grid.rows();
  const std::int64_t per_col = (cols + grid.cols() - 1) / grid.cols();
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>({64, per_row, per_col})));
}

}  // namespace cdmf
