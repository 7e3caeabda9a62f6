#include "cdmf/linalg/sparse_svd.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "cdmf/core/progress.hpp"
#include "cdmf/random/counter_rng.hpp"

// PARPACK's ISO C bindings (arpack-ng ICB, Debian libparpack2): a_int is int (LP64).
extern "C" {
void pdsaupd_c(MPI_Fint comm, int* ido, const char* bmat, int n, const char* which, int nev,
               double tol, double* resid, int ncv, double* v, int ldv, int* iparam, int* ipntr,
               double* workd, double* workl, int lworkl, int* info);
void pdseupd_c(MPI_Fint comm, bool rvec, const char* howmny, const int* select, double* d,
               double* z, int ldz, double sigma, const char* bmat, int n, const char* which,
               int nev, double tol, double* resid, int ncv, double* v, int ldv, int* iparam,
               int* ipntr, double* workd, double* workl, int lworkl, int* info);
}

namespace cdmf {

namespace {
CyclicDim cyclic(std::int64_t size, int block, int procs, int me) {
  CyclicDim dim;
  dim.size = size;
  dim.block = block;
  dim.procs = procs;
  dim.me = me;
  return dim;
}

int comm_size(MPI_Comm comm) {
  int size = 1;
  check_mpi(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  return size;
}
int comm_rank(MPI_Comm comm) {
  int rank = 0;
  check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  return rank;
}

void sum_over(MPI_Comm comm, double* data, std::int64_t count) {
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_DOUBLE, MPI_SUM, comm),
            "MPI_Allreduce");
}
}  // namespace

template <typename Index>
DistSparseMatrix::DistSparseMatrix(const ProcessGrid& grid, std::int64_t m, std::int64_t n, int block,
                                   const std::vector<Index>& rows, const std::vector<Index>& cols,
                                   const std::vector<double>& values)
    : DistSparseMatrix(grid, m, n, block, rows, cols, [&](size_t e) { return values[e]; }) {
  fail_if(values.size() != rows.size(), "sparse matrix: {} values for {} entries", values.size(), rows.size());
}

template <typename Index>
DistSparseMatrix::DistSparseMatrix(const ProcessGrid& grid, std::int64_t m, std::int64_t n, int block,
                                   const std::vector<Index>& rows, const std::vector<Index>& cols,
                                   const std::function<double(size_t)>& value)
    : grid_(&grid), row_dim_(cyclic(m, block, grid.rows(), grid.my_row())),
      col_dim_(cyclic(n, block, grid.cols(), grid.my_col())) {
  std::string message;
  bool sorted = true;
  const size_t count = rows.size();
  if (cols.size() != count) message = fmt::format("sparse matrix: {} rows for {} columns", count, cols.size());
  for (size_t e = 0; e < count && message.empty(); ++e) {
    if (rows[e] < 0 || rows[e] >= m || cols[e] < 0 || cols[e] >= n ||
        row_dim_.owner(rows[e]) != grid.my_row() || col_dim_.owner(cols[e]) != grid.my_col())
      message = fmt::format("sparse matrix: entry ({}, {}) is not this rank's", rows[e], cols[e]);
    if (e > 0 && (rows[e] < rows[e - 1] || (rows[e] == rows[e - 1] && cols[e] < cols[e - 1])))
      sorted = false;
  }
  agree_on_error(grid.comm(), message);
  // Observations arrive sorted by (row, column); other callers' entries are sorted here.
  std::vector<size_t> order;
  if (!sorted) {
    order.resize(count);
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return rows[a] != rows[b] ? rows[a] < rows[b] : cols[a] < cols[b];
    });
  }
  row_start_.assign(static_cast<size_t>(row_dim_.count()) + 1, 0);
  col_.resize(count);
  value_.resize(count);
  for (size_t k = 0; k < count; ++k) {
    const size_t e = sorted ? k : order[k];
    ++row_start_[static_cast<size_t>(row_dim_.local(rows[e])) + 1];
    col_[k] = static_cast<std::int32_t>(col_dim_.local(cols[e]));
    value_[k] = value(e);
  }
  for (size_t r = 1; r < row_start_.size(); ++r) row_start_[r] += row_start_[r - 1];
}

template DistSparseMatrix::DistSparseMatrix(const ProcessGrid&, std::int64_t, std::int64_t, int,
                                            const std::vector<std::int32_t>&, const std::vector<std::int32_t>&,
                                            const std::vector<double>&);
template DistSparseMatrix::DistSparseMatrix(const ProcessGrid&, std::int64_t, std::int64_t, int,
                                            const std::vector<std::int64_t>&, const std::vector<std::int64_t>&,
                                            const std::vector<double>&);
template DistSparseMatrix::DistSparseMatrix(const ProcessGrid&, std::int64_t, std::int64_t, int,
                                            const std::vector<std::int32_t>&, const std::vector<std::int32_t>&,
                                            const std::function<double(size_t)>&);
template DistSparseMatrix::DistSparseMatrix(const ProcessGrid&, std::int64_t, std::int64_t, int,
                                            const std::vector<std::int64_t>&, const std::vector<std::int64_t>&,
                                            const std::function<double(size_t)>&);

double DistSparseMatrix::local_squared_norm() const {
  double sum = 0.0;
  for (double v : value_) sum += v * v;
  return sum;
}

void DistSparseMatrix::multiply(const double* x, std::int64_t k, double* y) const {
  const std::int64_t lr = row_dim_.count(), lc = col_dim_.count();
  for (std::int64_t c = 0; c < k; ++c) {
    const double* xc = x + c * lc;
    double* yc = y + c * lr;
    for (std::int64_t r = 0; r < lr; ++r) {
      double sum = 0.0;
      for (std::int64_t e = row_start_[r]; e < row_start_[r + 1]; ++e) sum += value_[e] * xc[col_[e]];
      yc[r] = sum;
    }
  }
  sum_over(grid_->row_comm(), y, lr * k);
}

void DistSparseMatrix::multiply_transposed(const double* y, std::int64_t k, double* x) const {
  const std::int64_t lr = row_dim_.count(), lc = col_dim_.count();
  std::fill(x, x + lc * k, 0.0);
  for (std::int64_t c = 0; c < k; ++c) {
    const double* yc = y + c * lr;
    double* xc = x + c * lc;
    for (std::int64_t r = 0; r < lr; ++r)
      for (std::int64_t e = row_start_[r]; e < row_start_[r + 1]; ++e) xc[col_[e]] += value_[e] * yc[r];
  }
  sum_over(grid_->col_comm(), x, lc * k);
}

int DistSparseMatrix::gram(const double* x, double* z) const {
  const std::int64_t lr = row_dim_.count(), lc = col_dim_.count();
  if (comm_size(grid_->row_comm()) > 1) {
    std::vector<double> y(static_cast<size_t>(lr));
    multiply(x, 1, y.data());
    multiply_transposed(y.data(), 1, z);
    return 2;
  }
  std::fill(z, z + lc, 0.0);
  for (std::int64_t r = 0; r < lr; ++r) {
    const std::int64_t begin = row_start_[r], end = row_start_[r + 1];
    double sum = 0.0;
    for (std::int64_t e = begin; e < end; ++e) sum += value_[e] * x[col_[e]];
    for (std::int64_t e = begin; e < end; ++e) z[col_[e]] += value_[e] * sum;
  }
  sum_over(grid_->col_comm(), z, lc);
  return 1;
}

namespace {

/// One side of A (its columns when the Gram operator is A^T A, else its rows): the local
/// indices, the communicator of the ranks that share them (and split them into PARPACK
/// slices), and the one across which the other grid positions hold the rest of the side.
struct Side {
  const CyclicDim* dim;
  MPI_Comm share;   // ranks holding the same local indices
  MPI_Comm across;  // ranks holding the other blocks of this side
  std::int64_t local() const { return dim->count(); }
};

/// The slice [first, first + count) of the side's local indices this rank gives PARPACK.
struct Slice {
  std::int64_t first = 0, count = 0;
  std::vector<int> counts, displs;  // every sharer's, for the all-gather
};

Slice make_slice(const Side& side) {
  const int sharers = comm_size(side.share), me = comm_rank(side.share);
  const std::int64_t local = side.local();
  Slice slice;
  for (int p = 0; p < sharers; ++p) {
    const std::int64_t first = local * p / sharers, end = local * (p + 1) / sharers;
    slice.counts.push_back(static_cast<int>(end - first));
    slice.displs.push_back(static_cast<int>(first));
  }
  slice.first = slice.displs[me];
  slice.count = slice.counts[me];
  return slice;
}

/// The local vector of a side from every sharer's slice.
void gather_slices(const Side& side, const Slice& slice, const double* mine, double* local) {
  check_mpi(MPI_Allgatherv(mine, static_cast<int>(slice.count), MPI_DOUBLE, local, slice.counts.data(),
                           slice.displs.data(), MPI_DOUBLE, side.share),
            "MPI_Allgatherv");
}

/// The whole side (global x k, column-major, every rank) from each rank's local part.
std::vector<double> replicate(const Side& side, const std::vector<double>& local, std::int64_t k) {
  const int procs = comm_size(side.across);
  const std::int64_t mine = side.local();
  std::vector<int> counts(static_cast<size_t>(procs)), displs(static_cast<size_t>(procs), 0);
  const int count = static_cast<int>(mine * k);
  check_mpi(MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, side.across), "MPI_Allgather");
  for (int p = 1; p < procs; ++p) displs[p] = displs[p - 1] + counts[p - 1];
  std::vector<double> all(static_cast<size_t>(displs.back() + counts.back()));
  check_mpi(MPI_Allgatherv(local.data(), count, MPI_DOUBLE, all.data(), counts.data(), displs.data(),
                           MPI_DOUBLE, side.across),
            "MPI_Allgatherv");
  const std::int64_t global = side.dim->size;
  std::vector<double> full(static_cast<size_t>(global * k), 0.0);
  for (int p = 0; p < procs; ++p) {
    const std::int64_t rows = counts[p] / std::max<std::int64_t>(k, 1);
    for (std::int64_t c = 0; c < k; ++c)
      for (std::int64_t l = 0; l < rows; ++l)
        full[side.dim->global(l, p) + c * global] = all[displs[p] + l + c * rows];
  }
  return full;
}

/// Sum of squares of column c of a local side vector over the whole side.
double side_norm_sq(const Side& side, const double* local) {
  double sum = 0.0;
  for (std::int64_t l = 0; l < side.local(); ++l) sum += local[l] * local[l];
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, &sum, 1, MPI_DOUBLE, MPI_SUM, side.across), "MPI_Allreduce");
  return sum;
}

}  // namespace

SparseSvd sparse_truncated_svd(const DistSparseMatrix& a, std::int64_t count,
                               const SparseSvdOptions& options) {
  const ProcessGrid& grid = a.grid();
  const std::int64_t m = a.rows(), n = a.cols(), small = std::min(m, n);
  run_agreed(grid.comm(), [&] {
    fail_if(count < 1 || count >= small,
            "truncated SVD: {} singular triplets of a {} x {} matrix (need 1 <= count < {})", count,
            m, n, small);
  });
  // The Gram operator of the smaller side: its vectors are "inner", the other side "outer".
  const bool by_cols = n <= m;
  const Side cols{&a.col_dim(), grid.col_comm(), grid.row_comm()};
  const Side rows{&a.row_dim(), grid.row_comm(), grid.col_comm()};
  const Side& inner = by_cols ? cols : rows;
  const Side& outer = by_cols ? rows : cols;
  SparseSvd result;
  const auto to_outer = [&](const double* x, std::int64_t k, double* y) {
    ++result.passes;
    if (by_cols)
      a.multiply(x, k, y);
    else
      a.multiply_transposed(x, k, y);
  };
  const auto to_inner = [&](const double* y, std::int64_t k, double* x) {
    ++result.passes;
    if (by_cols)
      a.multiply_transposed(y, k, x);
    else
      a.multiply(y, k, x);
  };

  const Slice slice = make_slice(inner);
  const int nloc = static_cast<int>(slice.count);
  const int nev = static_cast<int>(std::min<std::int64_t>(count + 1, small - 1));
  const int ncv = static_cast<int>(std::min<std::int64_t>(small, std::max(2 * nev + 1, nev + 20)));
  const int ldv = std::max(nloc, 1);
  const int lworkl = ncv * (ncv + 8);
  std::vector<double> resid(static_cast<size_t>(ldv)), basis(static_cast<size_t>(ldv) * ncv);
  std::vector<double> workd(static_cast<size_t>(3 * ldv)), workl(static_cast<size_t>(lworkl));
  // The start vector from the counter-based generator by global index: the same Krylov space
  // on every grid (PARPACK's own start vector depends on the rank).
  for (int l = 0; l < nloc; ++l)
    resid[l] = gaussian(options.seed, static_cast<std::uint32_t>(Stream::kFactorInit) + 90,
                        static_cast<std::uint64_t>(inner.dim->global(slice.first + l)));
  int iparam[11] = {1, 0, options.max_iterations, 1, 0, 0, 1, 0, 0, 0, 0};
  int ipntr[11] = {0};
  int ido = 0, info = 1;  // info = 1: resid holds the start vector
  const MPI_Fint fcomm = MPI_Comm_c2f(grid.comm());
  std::vector<double> x_local(static_cast<size_t>(inner.local())), y_local(static_cast<size_t>(outer.local()));
  std::vector<double> z_local(x_local.size());
  // PARPACK's convergence test floors |lambda| at eps^(2/3) (dsconv): a Gram operator with
  // eigenvalues far below that (S0 = residual / N has entries ~1e-10 at Netflix's size) is
  // handed to it scaled to ||A||_F = 1.
  double frobenius_sq = a.local_squared_norm();
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, &frobenius_sq, 1, MPI_DOUBLE, MPI_SUM, grid.comm()), "MPI_Allreduce");
  const double gram_scale = frobenius_sq > 0.0 ? 1.0 / frobenius_sq : 1.0;
  ProgressLine progress("compression: Lanczos (PARPACK) on the sparse S0", 0.0, "sweeps over the entries",
                        options.progress && grid.is_root());
  while (true) {
    progress.update(static_cast<double>(result.passes));
    pdsaupd_c(fcomm, &ido, "I", nloc, "LA", nev, options.tolerance, resid.data(), ncv, basis.data(),
              ldv, iparam, ipntr, workd.data(), workl.data(), lworkl, &info);
    if (ido != 1 && ido != -1) break;
    // workd[ipntr[1]] = C workd[ipntr[0]] (1-based offsets).
    gather_slices(inner, slice, workd.data() + ipntr[0] - 1, x_local.data());
    if (by_cols) {
      result.passes += a.gram(x_local.data(), z_local.data());
    } else {
      to_outer(x_local.data(), 1, y_local.data());
      to_inner(y_local.data(), 1, z_local.data());
    }
    for (int l = 0; l < nloc; ++l) workd[ipntr[1] - 1 + l] = gram_scale * z_local[slice.first + l];
  }
  run_agreed(grid.comm(), [&] {
    fail_if(info < 0, "truncated SVD: PARPACK pdsaupd failed (info {})", info);
  });
  result.iterations = iparam[2];
  const bool stopped_early = info == 1;
  std::vector<int> select(static_cast<size_t>(ncv), 1);
  std::vector<double> values(static_cast<size_t>(nev)), vectors(static_cast<size_t>(ldv) * nev);
  pdseupd_c(fcomm, true, "A", select.data(), values.data(), vectors.data(), ldv, 0.0, "I", nloc, "LA",
            nev, options.tolerance, resid.data(), ncv, basis.data(), ldv, iparam, ipntr, workd.data(),
            workl.data(), lworkl, &info);
  run_agreed(grid.comm(), [&] {
    fail_if(info != 0, "truncated SVD: PARPACK pdseupd failed (info {})", info);
  });
  const int converged = iparam[4];

  // Largest first (pdseupd returns them ascending).
  std::vector<int> order(static_cast<size_t>(nev));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int p, int q) { return values[p] > values[q]; });
  const std::int64_t k = count;
  std::vector<double> inner_local(static_cast<size_t>(inner.local() * k));
  for (std::int64_t c = 0; c < k; ++c)
    gather_slices(inner, slice, vectors.data() + static_cast<std::int64_t>(order[c]) * ldv,
                  inner_local.data() + c * inner.local());
  std::vector<double> outer_local(static_cast<size_t>(outer.local() * k));
  to_outer(inner_local.data(), k, outer_local.data());
  result.s.resize(static_cast<size_t>(k));
  for (std::int64_t c = 0; c < k; ++c)
    result.s[c] = std::sqrt(side_norm_sq(outer, outer_local.data() + c * outer.local()));
  result.next_value = nev > k ? std::sqrt(std::max(values[order[k]], 0.0) / gram_scale) : 0.0;
  const double s1 = result.s[0];
  for (std::int64_t c = 0; c < k; ++c) {
    if (result.s[c] > 1e-12 * s1) ++result.rank_found;
    const double scale = result.s[c] > 1e-12 * s1 ? 1.0 / result.s[c] : 0.0;
    for (std::int64_t l = 0; l < outer.local(); ++l) outer_local[l + c * outer.local()] *= scale;
  }
  // Residuals on the inner side: A^T u_i - s_i v_i (or A v_i - s_i u_i).
  std::vector<double> back(static_cast<size_t>(inner.local() * k));
  to_inner(outer_local.data(), k, back.data());
  for (std::int64_t c = 0; c < k; ++c) {
    for (std::int64_t l = 0; l < inner.local(); ++l)
      back[l + c * inner.local()] -= result.s[c] * inner_local[l + c * inner.local()];
    const double r = std::sqrt(side_norm_sq(inner, back.data() + c * inner.local()));
    result.residuals.push_back(s1 > 0.0 ? r / s1 : r);
  }

  std::vector<double> inner_full = replicate(inner, inner_local, k);
  std::vector<double> outer_full = replicate(outer, outer_local, k);
  const std::int64_t outer_size = outer.dim->size;
  // Null directions: seeded random vectors, orthogonalised against the others (twice).
  for (std::int64_t c = result.rank_found; c < k; ++c) {
    double* u = outer_full.data() + c * outer_size;
    for (std::int64_t i = 0; i < outer_size; ++i)
      u[i] = gaussian(options.seed, static_cast<std::uint32_t>(Stream::kFactorInit) + 91,
                      static_cast<std::uint64_t>(c * outer_size + i));
    for (int pass = 0; pass < 2; ++pass)
      for (std::int64_t d = 0; d < c; ++d) {
        const double* w = outer_full.data() + d * outer_size;
        double dot = 0.0;
        for (std::int64_t i = 0; i < outer_size; ++i) dot += w[i] * u[i];
        for (std::int64_t i = 0; i < outer_size; ++i) u[i] -= dot * w[i];
      }
    double norm = 0.0;
    for (std::int64_t i = 0; i < outer_size; ++i) norm += u[i] * u[i];
    for (std::int64_t i = 0; i < outer_size; ++i) u[i] /= std::sqrt(norm);
  }
  result.u = by_cols ? std::move(outer_full) : std::move(inner_full);
  result.v = by_cols ? std::move(inner_full) : std::move(outer_full);
  // Signs: v_i's entry of largest magnitude positive.
  for (std::int64_t c = 0; c < k; ++c) {
    double* v = result.v.data() + c * n;
    const std::int64_t at = std::max_element(v, v + n, [](double p, double q) { return std::abs(p) < std::abs(q); }) - v;
    if (v[at] < 0.0) {
      for (std::int64_t j = 0; j < n; ++j) v[j] = -v[j];
      for (std::int64_t i = 0; i < m; ++i) result.u[i + c * m] = -result.u[i + c * m];
    }
  }

  // One sentence on what limits the accuracy, if anything.
  const double worst = *std::max_element(result.residuals.begin(), result.residuals.end());
  const double gap = s1 > 0.0 ? (result.s[k - 1] - result.next_value) / s1 : 0.0;
  if (result.rank_found < k) {
    result.warning = fmt::format(
        "the matrix has {} singular values above 1e-12 s_1 but {} were asked: the other {} "
        "directions are completed arbitrarily",
        result.rank_found, k, k - result.rank_found);
  } else if (stopped_early || converged < nev) {
    result.warning = fmt::format(
        "PARPACK converged {} of {} Ritz pairs in {} restarts; the largest residual is {:.1e} s_1",
        converged, nev, result.iterations, worst);
  } else if (nev > k && gap < kMinRelativeGap) {
    result.warning = fmt::format(
        "singular values {} and {} ({:.6e} and {:.6e}) differ by {:.1e} of s_1: the top-{} subspace "
        "is not determined to working accuracy",
        k, k + 1, result.s[k - 1], result.next_value, gap, k);
  } else if (worst > kMaxResidual) {
    result.warning = fmt::format("the largest residual is {:.1e} s_1 (above {:.0e})", worst, kMaxResidual);
  }
  progress.update(static_cast<double>(result.passes));  // the closing line counts every sweep
  return result;
}

}  // namespace cdmf
