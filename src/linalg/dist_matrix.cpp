#include "cdmf/linalg/dist_matrix.hpp"

#include <algorithm>
#include <cmath>

#include "cdmf/core/error.hpp"
#include "cdmf/linalg/scalapack.hpp"
#include "pblas_topology_guard.hpp"

namespace cdmf {

namespace {
constexpr int kOne = 1;

int to_int(std::int64_t value, const char* what) {
  fail_if(value > 2147483647LL, "{} = {} exceeds ScaLAPACK's 32-bit index range", what, value);
  return static_cast<int>(value);
}
}  // namespace

std::int64_t CyclicDim::count(int p) const {
  const std::int64_t full_blocks = size / block;
  std::int64_t n = (full_blocks / procs) * block;
  const std::int64_t extra = full_blocks % procs;
  if (p < extra) {
    n += block;
  } else if (p == extra) {
    n += size % block;
  }
  return n;
}

DistMatrix::DistMatrix(const ProcessGrid& grid, std::int64_t rows, std::int64_t cols, int block)
    : grid_(&grid) {
  fail_if(rows < 0 || cols < 0 || block < 1, "invalid matrix shape {}x{} block {}", rows, cols,
          block);
  row_dim_ = {rows, block, grid.rows(), grid.my_row()};
  col_dim_ = {cols, block, grid.cols(), grid.my_col()};
  local_rows_ = row_dim_.count();
  local_cols_ = col_dim_.count();
  const int m = to_int(rows, "rows"), n = to_int(cols, "cols");
  const int lld = std::max<int>(1, static_cast<int>(local_rows_));
  const int zero = 0, context = grid.blacs_context();
  int info = 0;
  descinit_(desc_, &m, &n, &block, &block, &zero, &zero, &context, &lld, &info);
  fail_if(info != 0, "descinit failed (info {}) for {}x{} block {}", info, rows, cols, block);
  local_.assign(static_cast<size_t>(lld) * static_cast<size_t>(local_cols_), 0.0);
}

bool DistMatrix::same_layout(const DistMatrix& other) const {
  return grid_ == other.grid_ && rows() == other.rows() && cols() == other.cols() &&
         block() == other.block();
}

void DistMatrix::fill(const std::function<double(std::int64_t, std::int64_t)>& value) {
  const std::int64_t lr = local_rows(), lc = local_cols();
  for (std::int64_t lj = 0; lj < lc; ++lj) {
    const std::int64_t gj = col_dim_.global(lj);
    for (std::int64_t li = 0; li < lr; ++li) at_local(li, lj) = value(row_dim_.global(li), gj);
  }
}

void DistMatrix::set_zero() { std::fill(local_.begin(), local_.end(), 0.0); }

std::vector<double> DistMatrix::gather(int root) const {
  const ProcessGrid& g = grid();
  // Pack the local block densely (lld may exceed local_rows when local_rows is 0).
  const std::int64_t lr = local_rows(), lc = local_cols();
  std::vector<double> packed(static_cast<size_t>(lr * lc));
  for (std::int64_t lj = 0; lj < lc; ++lj)
    std::copy_n(&local_[lj * ld()], lr, &packed[lj * lr]);
  std::vector<int> counts(g.size()), offsets(g.size());
  for (int r = 0; r < g.size(); ++r)
    counts[r] = to_int(row_dim_.count(r / g.cols()) * col_dim_.count(r % g.cols()), "block");
  for (int r = 1; r < g.size(); ++r) offsets[r] = offsets[r - 1] + counts[r - 1];
  std::vector<double> all(g.rank() == root ? static_cast<size_t>(offsets.back() + counts.back()) : 0);
  check_mpi(MPI_Gatherv(packed.data(), static_cast<int>(packed.size()), MPI_DOUBLE, all.data(),
                        counts.data(), offsets.data(), MPI_DOUBLE, root, g.comm()),
            "MPI_Gatherv");
  std::vector<double> full;
  if (g.rank() != root) return full;
  full.assign(static_cast<size_t>(rows() * cols()), 0.0);
  for (int r = 0; r < g.size(); ++r) {
    const int pr = r / g.cols(), pc = r % g.cols();
    const std::int64_t rlr = row_dim_.count(pr), rlc = col_dim_.count(pc);
    const double* block = all.data() + offsets[r];
    for (std::int64_t lj = 0; lj < rlc; ++lj) {
      const std::int64_t gj = col_dim_.global(lj, pc);
      for (std::int64_t li = 0; li < rlr; ++li)
        full[row_dim_.global(li, pr) + gj * rows()] = block[li + lj * rlr];
    }
  }
  return full;
}

void DistMatrix::scatter(const std::vector<double>& full, int root) {
  const ProcessGrid& g = grid();
  std::vector<int> counts(g.size()), offsets(g.size());
  for (int r = 0; r < g.size(); ++r)
    counts[r] = to_int(row_dim_.count(r / g.cols()) * col_dim_.count(r % g.cols()), "block");
  for (int r = 1; r < g.size(); ++r) offsets[r] = offsets[r - 1] + counts[r - 1];
  std::vector<double> all;
  if (g.rank() == root) {
    fail_if(full.size() != static_cast<size_t>(rows() * cols()), "scatter: wrong full size");
    all.resize(static_cast<size_t>(offsets.back() + counts.back()));
    for (int r = 0; r < g.size(); ++r) {
      const int pr = r / g.cols(), pc = r % g.cols();
      const std::int64_t rlr = row_dim_.count(pr), rlc = col_dim_.count(pc);
      double* block = all.data() + offsets[r];
      for (std::int64_t lj = 0; lj < rlc; ++lj) {
        const std::int64_t gj = col_dim_.global(lj, pc);
        for (std::int64_t li = 0; li < rlr; ++li)
          block[li + lj * rlr] = full[row_dim_.global(li, pr) + gj * rows()];
      }
    }
  }
  const std::int64_t lr = local_rows(), lc = local_cols();
  std::vector<double> packed(static_cast<size_t>(lr * lc));
  check_mpi(MPI_Scatterv(all.data(), counts.data(), offsets.data(), MPI_DOUBLE, packed.data(),
                         static_cast<int>(packed.size()), MPI_DOUBLE, root, g.comm()),
            "MPI_Scatterv");
  for (std::int64_t lj = 0; lj < lc; ++lj)
    std::copy_n(&packed[lj * lr], lr, &local_[lj * ld()]);
}

double DistMatrix::entry(std::int64_t i, std::int64_t j) const {
  double value = 0.0;
  if (row_dim_.owner(i) == row_dim_.me && col_dim_.owner(j) == col_dim_.me)
    value = at_local(row_dim_.local(i), col_dim_.local(j));
  double result = 0.0;
  check_mpi(MPI_Allreduce(&value, &result, 1, MPI_DOUBLE, MPI_SUM, grid().comm()),
            "MPI_Allreduce");
  return result;
}

void DistMatrix::set_entry(std::int64_t i, std::int64_t j, double value) {
  if (row_dim_.owner(i) == row_dim_.me && col_dim_.owner(j) == col_dim_.me)
    at_local(row_dim_.local(i), col_dim_.local(j)) = value;
}

double DistMatrix::squared_norm() const {
  double local_sum = 0.0;
  const std::int64_t lr = local_rows(), lc = local_cols();
  for (std::int64_t lj = 0; lj < lc; ++lj)
    for (std::int64_t li = 0; li < lr; ++li) local_sum += at_local(li, lj) * at_local(li, lj);
  double total = 0.0;
  check_mpi(MPI_Allreduce(&local_sum, &total, 1, MPI_DOUBLE, MPI_SUM, grid().comm()),
            "MPI_Allreduce");
  return total;
}

template <typename Index>
std::vector<double> sample_entries(const DistMatrix& a, const std::vector<Index>& rows,
                                   const std::vector<Index>& cols) {
  const ProcessGrid& g = a.grid();
  const int size = g.size();
  std::vector<int> send_counts(size, 0), recv_counts(size), send_offsets(size), recv_offsets(size);
  std::vector<int> owner(rows.size());
  for (size_t e = 0; e < rows.size(); ++e) {
    owner[e] = g.rank_of(a.row_dim().owner(rows[e]), a.col_dim().owner(cols[e]));
    ++send_counts[owner[e]];
  }
  check_mpi(MPI_Alltoall(send_counts.data(), 1, MPI_INT, recv_counts.data(), 1, MPI_INT, g.comm()),
            "MPI_Alltoall");
  for (int r = 1; r < size; ++r) {
    send_offsets[r] = send_offsets[r - 1] + send_counts[r - 1];
    recv_offsets[r] = recv_offsets[r - 1] + recv_counts[r - 1];
  }
  const int received = recv_offsets.back() + recv_counts.back();
  // Requests as (row, col) pairs, grouped by owner; `slot` remembers where each answer goes.
  std::vector<std::int64_t> requests(2 * rows.size()), incoming(2 * static_cast<size_t>(received));
  std::vector<size_t> slot(rows.size());
  std::vector<int> fill = send_offsets;
  for (size_t e = 0; e < rows.size(); ++e) {
    const int position = fill[owner[e]]++;
    slot[e] = static_cast<size_t>(position);
    requests[2 * position] = rows[e];
    requests[2 * position + 1] = cols[e];
  }
  std::vector<int> send2(size), recv2(size), soff2(size), roff2(size);
  for (int r = 0; r < size; ++r) {
    send2[r] = 2 * send_counts[r];
    recv2[r] = 2 * recv_counts[r];
    soff2[r] = 2 * send_offsets[r];
    roff2[r] = 2 * recv_offsets[r];
  }
  check_mpi(MPI_Alltoallv(requests.data(), send2.data(), soff2.data(), MPI_INT64_T, incoming.data(),
                          recv2.data(), roff2.data(), MPI_INT64_T, g.comm()),
            "MPI_Alltoallv");
  std::vector<double> answers(static_cast<size_t>(received)), values(rows.size());
  for (int q = 0; q < received; ++q)
    answers[q] = a.at_local(a.row_dim().local(incoming[2 * q]), a.col_dim().local(incoming[2 * q + 1]));
  std::vector<double> returned(rows.size());
  check_mpi(MPI_Alltoallv(answers.data(), recv_counts.data(), recv_offsets.data(), MPI_DOUBLE,
                          returned.data(), send_counts.data(), send_offsets.data(), MPI_DOUBLE,
                          g.comm()),
            "MPI_Alltoallv");
  for (size_t e = 0; e < rows.size(); ++e) values[e] = returned[slot[e]];
  return values;
}
template std::vector<double> sample_entries(const DistMatrix&, const std::vector<std::int32_t>&,
                                            const std::vector<std::int32_t>&);
template std::vector<double> sample_entries(const DistMatrix&, const std::vector<std::int64_t>&,
                                            const std::vector<std::int64_t>&);

void gemm(char trans_a, char trans_b, double alpha, const DistMatrix& a, const DistMatrix& b,
          double beta, DistMatrix& c) {
  const int m = static_cast<int>(c.rows()), n = static_cast<int>(c.cols());
  const int k = static_cast<int>(trans_a == 'N' ? a.cols() : a.rows());
  const std::int64_t a_rows = trans_a == 'N' ? a.rows() : a.cols();
  const std::int64_t b_rows = trans_b == 'N' ? b.rows() : b.cols();
  const std::int64_t b_cols = trans_b == 'N' ? b.cols() : b.rows();
  fail_if(a_rows != m || b_rows != k || b_cols != n, "gemm: shapes do not conform");
  if (m == 0 || n == 0) return;
  if (c.grid().size() == 1) {
    // One process holds every matrix whole (column-major, leading dimension desc[8]): call
    // DGEMM directly. PDGEMM's transposed forms ran at half DGEMM speed here.
    const int lda = a.ld(), ldb = b.ld(), ldc = c.ld();
    dgemm_(&trans_a, &trans_b, &m, &n, &k, &alpha, a.data(), &lda, b.data(), &ldb, &beta, c.data(),
           &ldc, 1, 1);
    return;
  }
  pdgemm_(&trans_a, &trans_b, &m, &n, &k, &alpha, a.data(), &kOne, &kOne, a.desc(), b.data(),
          &kOne, &kOne, b.desc(), &beta, c.data(), &kOne, &kOne, c.desc());
}

void copy_block(const DistMatrix& src, std::int64_t src_row, std::int64_t src_col, std::int64_t rows,
                std::int64_t cols, DistMatrix& dst, std::int64_t dst_row, std::int64_t dst_col) {
  fail_if(src_row + rows > src.rows() || src_col + cols > src.cols() ||
              dst_row + rows > dst.rows() || dst_col + cols > dst.cols(),
          "copy_block: block outside a matrix");
  if (rows == 0 || cols == 0) return;
  const int m = static_cast<int>(rows), n = static_cast<int>(cols);
  const int ia = static_cast<int>(src_row) + 1, ja = static_cast<int>(src_col) + 1;
  const int ib = static_cast<int>(dst_row) + 1, jb = static_cast<int>(dst_col) + 1;
  const int context = src.grid().blacs_context();
  pdgemr2d_(&m, &n, src.data(), &ia, &ja, src.desc(), dst.data(), &ib, &jb, dst.desc(), &context);
}

DistMatrix scaled_identity(const ProcessGrid& grid, std::int64_t n, double scale, int block) {
  DistMatrix identity(grid, n, n, block);
  identity.fill([scale](std::int64_t i, std::int64_t j) { return i == j ? scale : 0.0; });
  return identity;
}

DistMatrix transposed(const DistMatrix& a) {
  DistMatrix t(a.grid(), a.cols(), a.rows(), a.block());
  const int m = static_cast<int>(t.rows()), n = static_cast<int>(t.cols());
  const double one = 1.0, zero = 0.0;
  if (m > 0 && n > 0)
    pdtran_(&m, &n, &one, a.data(), &kOne, &kOne, a.desc(), &zero, t.data(), &kOne, &kOne, t.desc());
  return t;
}

void axpy(double alpha, const DistMatrix& x, DistMatrix& y) {
  fail_if(!x.same_layout(y), "axpy: layouts differ");
  const std::int64_t lr = x.local_rows(), lc = x.local_cols();
  for (std::int64_t lj = 0; lj < lc; ++lj) {
    const double* xs = x.data() + lj * x.ld();
    double* ys = y.data() + lj * y.ld();
    for (std::int64_t li = 0; li < lr; ++li) ys[li] += alpha * xs[li];
  }
}

void orthonormalize_columns(DistMatrix& a) {
  const int m = static_cast<int>(a.rows()), n = static_cast<int>(a.cols());
  fail_if(m < n, "orthonormalize_columns needs rows >= cols ({}x{})", m, n);
  if (n == 0) return;
  const PblasTopologyGuard topology(a.grid().blacs_context());
  std::vector<double> tau(static_cast<size_t>(std::max<std::int64_t>(1, a.local_cols())));
  int info = 0, lwork = -1;
  double query = 0.0;
  pdgeqrf_(&m, &n, a.data(), &kOne, &kOne, a.desc(), tau.data(), &query, &lwork, &info);
  std::vector<double> work(static_cast<size_t>(query) + 1);
  lwork = static_cast<int>(work.size());
  pdgeqrf_(&m, &n, a.data(), &kOne, &kOne, a.desc(), tau.data(), work.data(), &lwork, &info);
  fail_if(info != 0, "pdgeqrf failed (info {})", info);
  // sign(diag R), replicated: owners contribute, everyone sums.
  std::vector<double> sign(static_cast<size_t>(n), 0.0);
  for (std::int64_t j = 0; j < n; ++j)
    if (a.row_dim().owner(j) == a.row_dim().me && a.col_dim().owner(j) == a.col_dim().me)
      sign[j] = a.at_local(a.row_dim().local(j), a.col_dim().local(j)) < 0.0 ? -1.0 : 1.0;
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, sign.data(), n, MPI_DOUBLE, MPI_SUM, a.grid().comm()),
            "MPI_Allreduce");
  lwork = -1;
  pdorgqr_(&m, &n, &n, a.data(), &kOne, &kOne, a.desc(), tau.data(), &query, &lwork, &info);
  work.assign(static_cast<size_t>(query) + 1, 0.0);
  lwork = static_cast<int>(work.size());
  pdorgqr_(&m, &n, &n, a.data(), &kOne, &kOne, a.desc(), tau.data(), work.data(), &lwork, &info);
  fail_if(info != 0, "pdorgqr failed (info {})", info);
  for (std::int64_t lj = 0; lj < a.local_cols(); ++lj) {
    const double s = sign[a.col_dim().global(lj)];
    for (std::int64_t li = 0; li < a.local_rows(); ++li) a.at_local(li, lj) *= s;
  }
}

namespace {
Svd run_pdgesvd(const DistMatrix& a, bool vectors) {
  DistMatrix work_copy = a;  // pdgesvd destroys its input
  const int m = static_cast<int>(a.rows()), n = static_cast<int>(a.cols());
  const int k = std::min(m, n);
  Svd result{DistMatrix(a.grid(), vectors ? m : 0, vectors ? k : 0, a.block()),
              std::vector<double>(static_cast<size_t>(k)),
              DistMatrix(a.grid(), vectors ? k : 0, vectors ? n : 0, a.block())};
  if (k == 0) return result;
  const PblasTopologyGuard topology(a.grid().blacs_context());
  const char job = vectors ? 'V' : 'N';
  int info = 0, lwork = -1;
  double query = 0.0;
  pdgesvd_(&job, &job, &m, &n, work_copy.data(), &kOne, &kOne, work_copy.desc(), result.s.data(),
           result.u.data(), &kOne, &kOne, result.u.desc(), result.vt.data(), &kOne, &kOne,
           result.vt.desc(), &query, &lwork, &info, 1, 1);
  std::vector<double> work(static_cast<size_t>(query) + 1);
  lwork = static_cast<int>(work.size());
  pdgesvd_(&job, &job, &m, &n, work_copy.data(), &kOne, &kOne, work_copy.desc(), result.s.data(),
           result.u.data(), &kOne, &kOne, result.u.desc(), result.vt.data(), &kOne, &kOne,
           result.vt.desc(), work.data(), &lwork, &info, 1, 1);
  fail_if(info != 0, "pdgesvd failed (info {})", info);
  return result;
}
}  // namespace

std::vector<double> singular_values(const DistMatrix& a) { return run_pdgesvd(a, false).s; }

Svd svd(const DistMatrix& a) { return run_pdgesvd(a, true); }

}  // namespace cdmf
