#include "cdmf/data/layout.hpp"

#include <algorithm>
#include <numeric>

#include "cdmf/core/error.hpp"
#include "cdmf/linalg/dist_matrix.hpp"
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
  fail_if(rows > kMaxDimension || cols > kMaxDimension,
          "a {} x {} matrix exceeds the largest supported dimension, {} (ScaLAPACK's 32-bit "
          "descriptors)",
          rows, cols, kMaxDimension);
  fail_if(requested < 0, "--block-size must be positive (got {})", requested);
  // A block beyond the matrix holds nothing more; its size would only size workspaces.
  fail_if(requested > std::max(rows, cols),
          "--block-size {} exceeds the larger dimension of the {} x {} matrix", requested, rows,
          cols);
  fail_if(grid.rows() > rows || grid.cols() > cols,
          "more ranks than the data can use: a {}x{} process grid for a {} x {} matrix "
          "(each grid row needs a matrix row and each grid column a matrix column)",
          grid.rows(), grid.cols(), rows, cols);
  if (requested > 0) return requested;
  const std::int64_t per_row = (rows + grid.rows() - 1) / grid.rows();
  const std::int64_t per_col = (cols + grid.cols() - 1) / grid.cols();
  const std::int64_t largest = std::max<std::int64_t>(1, std::min<std::int64_t>({64, per_row, per_col}));
  // Among blocks from half the largest up to it, the one that leaves the busiest process the
  // fewest rows and columns (process 0 holds the most): 1000 columns on two processes get
  // 500 each with block 50, against 512 and 488 with 64. Ties go to the larger block.
  const auto busiest = [](std::int64_t size, std::int64_t block, int procs) {
    return CyclicDim{size, static_cast<int>(block), procs, 0}.count(0);
  };
  std::int64_t best = largest, best_load = -1;
  for (std::int64_t block = largest; block >= std::max<std::int64_t>(1, largest / 2); --block) {
    const std::int64_t load = busiest(rows, block, grid.rows()) * busiest(cols, block, grid.cols());
    if (best_load < 0 || load < best_load) {
      best = block;
      best_load = load;
    }
  }
  return static_cast<int>(best);
}

}  // namespace cdmf
