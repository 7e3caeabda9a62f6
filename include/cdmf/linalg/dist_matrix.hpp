#pragma once
/// DistMatrix: a dense block-cyclic ScaLAPACK matrix (descriptor + local column-major
/// storage) on a ProcessGrid, with the operations the solver needs. Global indices are
/// 0-based; block (bi, bj) lives on grid process (bi mod Pr, bj mod Pc) (RSRC = CSRC = 0),
/// the same rule the observation store uses, so X(i, j) and observation (i, j) share a rank.
#include <cstdint>
#include <functional>
#include <vector>

#include "cdmf/grid/process_grid.hpp"

namespace cdmf {

/// Block-cyclic index arithmetic of one dimension.
struct CyclicDim {
  std::int64_t size = 0;  // global extent
  int block = 1;
  int procs = 1;
  int me = 0;

  /// Process owning global index g.
  int owner(std::int64_t g) const { return static_cast<int>((g / block) % procs); }
  /// Local index of global g on its owner.
  std::int64_t local(std::int64_t g) const { return (g / (std::int64_t(block) * procs)) * block + g % block; }
  /// Global index of local l on process p.
  std::int64_t global(std::int64_t l, int p) const {
    return (l / block) * std::int64_t(block) * procs + std::int64_t(p) * block + l % block;
  }
  std::int64_t global(std::int64_t l) const { return global(l, me); }
  /// Number of local indices on process p.
  std::int64_t count(int p) const;
  std::int64_t count() const { return count(me); }
};

class DistMatrix {
 public:
  /// Collective-free: allocates this rank's local block, zero-filled.
  DistMatrix(const ProcessGrid& grid, std::int64_t rows, std::int64_t cols, int block);

  const ProcessGrid& grid() const { return *grid_; }
  std::int64_t rows() const { return row_dim_.size; }
  std::int64_t cols() const { return col_dim_.size; }
  int block() const { return row_dim_.block; }
  const CyclicDim& row_dim() const { return row_dim_; }
  const CyclicDim& col_dim() const { return col_dim_; }
  std::int64_t local_rows() const { return local_rows_; }
  std::int64_t local_cols() const { return local_cols_; }
  int ld() const { return desc_[8]; }
  const int* desc() const { return desc_; }
  double* data() { return local_.data(); }
  const double* data() const { return local_.data(); }
  std::vector<double>& local() { return local_; }
  const std::vector<double>& local() const { return local_; }
  double& at_local(std::int64_t li, std::int64_t lj) { return local_[li + lj * ld()]; }
  double at_local(std::int64_t li, std::int64_t lj) const { return local_[li + lj * ld()]; }
  bool same_layout(const DistMatrix& other) const;

  /// Sets every local entry to value(global_row, global_col).
  void fill(const std::function<double(std::int64_t, std::int64_t)>& value);
  void set_zero();

  /// Collective: the full matrix, column-major, on `root` (empty elsewhere). Small outputs only.
  std::vector<double> gather(int root = 0) const;
  /// Collective: fills from a column-major full matrix held on `root`.
  void scatter(const std::vector<double>& full, int root = 0);
  /// Collective: entry (i, j) on every rank.
  double entry(std::int64_t i, std::int64_t j) const;
  /// Sets entry (i, j) (every rank calls; only the owner stores).
  void set_entry(std::int64_t i, std::int64_t j, double value);
  /// Collective: sum of squares of all entries.
  double squared_norm() const;

 private:
  const ProcessGrid* grid_;
  CyclicDim row_dim_;
  CyclicDim col_dim_;
  // The local extents, kept: loops over local entries test them at every step.
  std::int64_t local_rows_ = 0, local_cols_ = 0;
  int desc_[9];
  std::vector<double> local_;
};

/// Collective: A(rows[e], cols[e]) for every requested entry of this rank, in request order
/// (requests go to the owners and the values come back, two all-to-alls).
/// `Index`: std::int32_t (observations) or std::int64_t.
template <typename Index>
std::vector<double> sample_entries(const DistMatrix& a, const std::vector<Index>& rows,
                                   const std::vector<Index>& cols);

/// Copies the rows x cols block of `src` at (src_row, src_col) into `dst` at (dst_row, dst_col)
/// (PDGEMR2D; any alignment). Collective.
void copy_block(const DistMatrix& src, std::int64_t src_row, std::int64_t src_col, std::int64_t rows,
                std::int64_t cols, DistMatrix& dst, std::int64_t dst_row, std::int64_t dst_col);
/// The identity times `scale`, n x n.
DistMatrix scaled_identity(const ProcessGrid& grid, std::int64_t n, double scale, int block);

/// C = alpha * op(A) op(B) + beta * C  (PDGEMM), op = 'N' or 'T'.
void gemm(char trans_a, char trans_b, double alpha, const DistMatrix& a, const DistMatrix& b,
          double beta, DistMatrix& c);
/// A^T as a new matrix on the same grid (PDTRAN).
DistMatrix transposed(const DistMatrix& a);
/// y += alpha * x (same layout; local, no communication).
void axpy(double alpha, const DistMatrix& x, DistMatrix& y);
/// Replaces A (m x k, m >= k) by the Q factor of its QR decomposition with the signs fixed so
/// that R has a non-negative diagonal (PDGEQRF + PDORGQR): Q = A R^{-1}, unique.
void orthonormalize_columns(DistMatrix& a);
/// Singular values of A, descending, on every rank (PDGESVD, no vectors).
std::vector<double> singular_values(const DistMatrix& a);

/// Thin SVD A = U diag(s) VT on the same grid (PDGESVD).
struct Svd {
  DistMatrix u;   // m x min(m,n)
  std::vector<double> s;
  DistMatrix vt;  // min(m,n) x n
};
Svd svd(const DistMatrix& a);

}  // namespace cdmf
