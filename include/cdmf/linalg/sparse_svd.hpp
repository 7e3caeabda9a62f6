#pragma once
/// The leading singular triplets of a sparse matrix distributed over the 2-D grid as the
/// observations are (DESIGN.md section 1, "Large problems": S0 = dF/dX at init, nonzero on
/// Omega only), without any dense m x n array.
///
/// Method: PARPACK's implicitly restarted Lanczos (pdsaupd/pdseupd, reverse communication)
/// on the Gram operator of the smaller side, C = A^T A (n <= m) or A A^T, for its count + 1
/// largest eigenpairs. PARPACK keeps its Krylov basis in our layout: each rank holds a slice
/// of the local columns (rows) its grid column (row) shares. One application of C is two
/// sparse passes, A x then A^T y, each followed by a sum over the row (column) communicator:
/// O(|Omega| / P) flops and O(m / Pr + n / Pc) words per rank. Then, for the converged v_i,
/// s_i = ||A v_i|| (not sqrt(lambda_i): exact to rounding relative to s_1, also for small
/// s_i), u_i = A v_i / s_i.
///
/// Accuracy: PARPACK stops when ||C v - lambda v|| <= tol lambda, i.e. the residual
/// ||A^T u_i - s_i v_i|| <= tol s_i (u_i from v_i makes ||A v_i - s_i u_i|| zero); the result
/// reports these residuals relative to s_1. The subspace is determined when the count-th gap
/// (s_count - s_{count+1}) / s_1 is clear of zero; below kMinRelativeGap, when a residual
/// exceeds kMaxResidual s_1, when PARPACK reached its iteration limit, or when A has rank
/// below `count` (null directions: u_i completed by seeded random vectors orthogonalised
/// against the others), `warning` says so in one sentence.
///
/// Signs: each v_i has its entry of largest magnitude (the first on a tie) positive.
///
/// Passes: `passes` counts sweeps over the entries (one per product, or one per fused Gram
/// application on grids whose rows are one process wide).
#include <mpi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cdmf/grid/process_grid.hpp"
#include "cdmf/linalg/dist_matrix.hpp"

namespace cdmf {

/// This rank's entries of an m x n sparse matrix whose entry (i, j) lives on grid process
/// (row_dim.owner(i), col_dim.owner(j)) (block-cyclic, the observations' rule); entries are
/// kept by local row and column. The grid must outlive the matrix.
class DistSparseMatrix {
 public:
  /// Entries of this rank in global indices (any order; duplicates are summed). `Index`:
  /// std::int32_t (observations) or std::int64_t.
  template <typename Index>
  DistSparseMatrix(const ProcessGrid& grid, std::int64_t m, std::int64_t n, int block,
                   const std::vector<Index>& rows, const std::vector<Index>& cols,
                   const std::vector<double>& values);
  /// The same with entry e's value given by `value(e)`, computed straight into the matrix
  /// (no second array of values: at 1e8 entries that is 8 bytes an entry at the peak).
  template <typename Index>
  DistSparseMatrix(const ProcessGrid& grid, std::int64_t m, std::int64_t n, int block,
                   const std::vector<Index>& rows, const std::vector<Index>& cols,
                   const std::function<double(size_t)>& value);

  const ProcessGrid& grid() const { return *grid_; }
  std::int64_t rows() const { return row_dim_.size; }
  std::int64_t cols() const { return col_dim_.size; }
  const CyclicDim& row_dim() const { return row_dim_; }
  const CyclicDim& col_dim() const { return col_dim_; }
  std::int64_t local_entries() const { return static_cast<std::int64_t>(value_.size()); }
  /// Sum of squares of this rank's entries.
  double local_squared_norm() const;

  /// Collective: Y = A X for X (local columns x k) and Y (local rows x k), column-major,
  /// summed over the row communicator (every rank of a grid row gets the same Y).
  void multiply(const double* x, std::int64_t k, double* y) const;
  /// Collective: X = A^T Y, summed over the column communicator.
  void multiply_transposed(const double* y, std::int64_t k, double* x) const;
  /// Collective: Z = A^T A x for one vector x (local columns), summed as multiply_transposed's
  /// result is. When a grid row has one process (the tall grids of tall matrices), each local
  /// row is complete here and both products are one sweep over the entries: the row's dot
  /// product, then its scatter while the row is in cache. Returns the sweeps over the entries.
  int gram(const double* x, double* z) const;

 private:
  const ProcessGrid* grid_;
  CyclicDim row_dim_, col_dim_;
  // Compressed rows: the entries of local row r are row_start_[r] .. row_start_[r + 1] - 1,
  // by ascending local column (12 bytes an entry, read in order by every product).
  std::vector<std::int64_t> row_start_;
  std::vector<std::int32_t> col_;
  std::vector<double> value_;
};

constexpr double kMinRelativeGap = 1e-8;
constexpr double kMaxResidual = 1e-10;

struct SparseSvdOptions {
  double tolerance = 1e-14;   // PARPACK's relative residual tolerance on the Gram operator
  int max_iterations = 1000;  // PARPACK restarts
  std::uint64_t seed = 0;     // the start vector and the completion of null directions
  bool progress = false;      // rank 0 prints progress lines when the iteration runs long
};

struct SparseSvd {
  std::vector<double> s;          // s_1 >= ... >= s_count, on every rank
  std::vector<double> u;          // m x count, column-major, on every rank
  std::vector<double> v;          // n x count, column-major, on every rank
  std::vector<double> residuals;  // ||A^T u_i - s_i v_i|| / s_1 (or the transposed pair)
  double next_value = 0.0;        // estimate of s_{count+1} (0 when count = min(m, n))
  std::int64_t passes = 0;        // sparse passes (products with A or A^T)
  int iterations = 0;             // PARPACK's restarts
  std::int64_t rank_found = 0;    // singular values above 1e-12 s_1 among the count
  std::string warning;            // empty when the triplets are accurate (see above)
};

/// Collective over a.grid(): the `count` largest singular triplets of A. Throws cdmf::Error
/// (on every rank alike) unless 1 <= count < min(m, n).
SparseSvd sparse_truncated_svd(const DistSparseMatrix& a, std::int64_t count,
                               const SparseSvdOptions& options = {});

}  // namespace cdmf
