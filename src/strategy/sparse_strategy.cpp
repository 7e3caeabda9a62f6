#include "cdmf/strategy/sparse_strategy.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <utility>

#include "cdmf/core/error.hpp"
#include "cdmf/linalg/scalapack.hpp"
#include "cdmf/strategy/fused_pass.hpp"

namespace cdmf {

namespace {

/// A small dense matrix, row-major (rows of thin panels are contiguous k-vectors), rows
/// `stride` >= cols doubles apart with zeros beyond `cols`: the panels the fused pass reads
/// are built padded, so no copy stands between them and the pass.
struct Panel {
  std::int64_t rows = 0, cols = 0, stride = 0;
  std::vector<double> data;
  Panel() = default;
  Panel(std::int64_t r, std::int64_t c) : Panel(r, c, c) {}
  Panel(std::int64_t r, std::int64_t c, std::int64_t s)
      : rows(r), cols(c), stride(s), data(static_cast<size_t>(r * s), 0.0) {}
  double* row(std::int64_t i) { return data.data() + i * stride; }
  const double* row(std::int64_t i) const { return data.data() + i * stride; }
  /// Gives the panel this shape, keeping its buffer (and contents) when it already has it.
  void reshape(std::int64_t r, std::int64_t c, std::int64_t s) {
    if (rows != r || cols != c || stride != s) *this = Panel(r, c, s);
  }
  double& operator()(std::int64_t i, std::int64_t j) { return data[i * stride + j]; }
  double operator()(std::int64_t i, std::int64_t j) const { return data[i * stride + j]; }
};

/// Column-major C (m x n, leading dimension ldc) = op(A) op(B) by BLAS.
void blas_multiply(char trans_a, char trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                   const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double* c,
                   std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  const int im = static_cast<int>(m), in = static_cast<int>(n), ik = static_cast<int>(k);
  const int ia = static_cast<int>(std::max<std::int64_t>(1, lda));
  const int ib = static_cast<int>(std::max<std::int64_t>(1, ldb));
  const int ic = static_cast<int>(std::max<std::int64_t>(1, ldc));
  const double one = 1.0, zero = 0.0;
  if (k == 0) {
    for (std::int64_t j = 0; j < n; ++j) std::fill_n(c + j * ldc, m, 0.0);
    return;
  }
  dgemm_(&trans_a, &trans_b, &im, &in, &ik, &one, a, &ia, b, &ib, &zero, c, &ic, 1, 1);
}

/// C = op(A) op(B) for row-major panels (BLAS on the column-major view of the transposes).
Panel multiply(const Panel& a, bool trans_a, const Panel& b, bool trans_b) {
  const std::int64_t m = trans_a ? a.cols : a.rows, k = trans_a ? a.rows : a.cols;
  const std::int64_t n = trans_b ? b.rows : b.cols;
  Panel c(m, n);
  // Row-major C = op(A) op(B)  <=>  column-major C^T = op(B)^T op(A)^T.
  blas_multiply(trans_b ? 'T' : 'N', trans_a ? 'T' : 'N', n, m, k, b.data.data(), b.stride, a.data.data(),
                a.stride, c.data.data(), c.stride);
  return c;
}

Panel identity(std::int64_t k) {
  Panel p(k, k);
  for (std::int64_t i = 0; i < k; ++i) p(i, i) = 1.0;
  return p;
}

void allreduce_in_place(std::vector<double>& data, MPI_Comm comm) {
  if (data.empty()) return;
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, data.data(), static_cast<int>(data.size()), MPI_DOUBLE,
                          MPI_SUM, comm),
            "MPI_Allreduce");
}

/// The local part of `a` along one dimension with all of the other, gathered over the
/// processes that share it, into `panel` (reshaped when needed, its buffer reused): for kRows,
/// the local rows of `a` (block-cyclic over grid rows) with all columns, gathered over the row
/// communicator (local_rows x cols, the same on every process of a grid row); for kCols, the
/// local columns with all rows, gathered over the column communicator, as a local_cols x rows
/// panel (rows of the transpose). Every process sends its column-major local array as it is.
enum class Along { kRows, kCols };
void gather_panel(const DistMatrix& a, Along along, std::int64_t stride, Panel& panel,
                  std::vector<double>& received) {
  const bool by_rows = along == Along::kRows;
  const CyclicDim& kept = by_rows ? a.row_dim() : a.col_dim();
  const CyclicDim& spread = by_rows ? a.col_dim() : a.row_dim();
  const std::int64_t nk = kept.count();
  const std::int64_t width = std::max(stride, spread.size);
  panel.reshape(nk, spread.size, width);
  // Process q's block holds its count(q) spread indices t for each kept index k, column-major
  // as stored: entry (k, t) at k + t * nk (kRows) or t + k * count(q) (kCols).
  const auto unpack = [&](const double* block, int q) {
    const std::int64_t nq = spread.count(q);
    for (std::int64_t t = 0; t < nq; ++t) {
      const std::int64_t g = spread.global(t, q);
      for (std::int64_t k = 0; k < nk; ++k) panel(k, g) = block[by_rows ? k + t * nk : t + k * nq];
    }
  };
  const std::int64_t mine = nk * spread.count();
  fail_if(a.ld() != std::max<std::int64_t>(1, a.local_rows()), "sparse strategy: unexpected local layout");
  if (spread.procs == 1) {  // nothing to gather: all of the other dimension is local
    unpack(a.data(), 0);
    return;
  }
  std::vector<int> counts(spread.procs), offsets(spread.procs);
  for (int q = 0; q < spread.procs; ++q) counts[q] = static_cast<int>(nk * spread.count(q));
  for (int q = 1; q < spread.procs; ++q) offsets[q] = offsets[q - 1] + counts[q - 1];
  received.resize(static_cast<size_t>(offsets.back() + counts.back()));
  check_mpi(MPI_Allgatherv(a.data(), static_cast<int>(mine), MPI_DOUBLE, received.data(), counts.data(),
                           offsets.data(), MPI_DOUBLE, by_rows ? a.grid().row_comm() : a.grid().col_comm()),
            "MPI_Allgatherv");
  for (int q = 0; q < spread.procs; ++q) unpack(received.data() + offsets[q], q);
}

Panel local_panel(const DistMatrix& a, Along along) {
  Panel panel;
  std::vector<double> received;
  gather_panel(a, along, 0, panel, received);
  return panel;
}

/// The one process of `dim` (a dimension spread over a communicator) that owns indices, or -1
/// when several do.
int sole_owner(const CyclicDim& dim) {
  int owner = -1;
  for (int q = 0; q < dim.procs; ++q) {
    if (dim.count(q) == 0) continue;
    if (owner >= 0) return -1;
    owner = q;
  }
  return owner;
}

/// Sums `data` over `comm` where process `root` needs the sum (root -1: every process does),
/// `gathered` being scratch space. Returns whether this process holds the sum. On a few
/// processes one of them gathers the parts and adds them itself (then broadcasts the sum when
/// every process needs it): Open MPI's MPI_Reduce of a 100 KB panel took 65-75 us on two
/// ranks here, MPI_Allreduce 30-35 us, a gather and the additions 10-12 us.
bool sum_to(std::vector<double>& data, MPI_Comm comm, int root, std::vector<double>& gathered) {
  int size = 1, me = 0;
  MPI_Comm_size(comm, &size);
  MPI_Comm_rank(comm, &me);
  if (size == 1 || data.empty()) return true;
  const int count = static_cast<int>(data.size());
  constexpr int kMaxGatheringProcesses = 4;
  if (size > kMaxGatheringProcesses) {
    if (root < 0) {
      allreduce_in_place(data, comm);
      return true;
    }
    check_mpi(MPI_Reduce(me == root ? MPI_IN_PLACE : data.data(), data.data(), count, MPI_DOUBLE, MPI_SUM,
                         root, comm),
              "MPI_Reduce");
    return me == root;
  }
  const int gatherer = std::max(root, 0);  // for every process: sum on process 0, then broadcast
  if (me == gatherer) gathered.resize(static_cast<size_t>(size) * data.size());
  check_mpi(MPI_Gather(data.data(), count, MPI_DOUBLE, gathered.data(), count, MPI_DOUBLE, gatherer, comm),
            "MPI_Gather");
  if (me == gatherer) {
    // In process order, whichever the root.
    std::copy_n(gathered.begin(), count, data.begin());
    for (int q = 1; q < size; ++q) {
      const double* part = gathered.data() + static_cast<size_t>(q) * data.size();
      for (int e = 0; e < count; ++e) data[static_cast<size_t>(e)] += part[e];
    }
  }
  if (root >= 0) return me == root;
  check_mpi(MPI_Bcast(data.data(), count, MPI_DOUBLE, gatherer, comm), "MPI_Bcast");
  return true;
}

/// Small matrices replicated on every rank: each owner contributes its entries to one
/// packed buffer, summed in a single allreduce (latency, not volume, is the cost here).
std::vector<Panel> replicated(const std::vector<const DistMatrix*>& factors, MPI_Comm comm) {
  std::vector<double> packed;
  for (const DistMatrix* w : factors) {
    const size_t offset = packed.size();
    packed.resize(offset + static_cast<size_t>(w->rows() * w->cols()), 0.0);
    for (std::int64_t lj = 0; lj < w->local_cols(); ++lj)
      for (std::int64_t li = 0; li < w->local_rows(); ++li)
        packed[offset + w->row_dim().global(li) * w->cols() + w->col_dim().global(lj)] = w->at_local(li, lj);
  }
  allreduce_in_place(packed, comm);
  std::vector<Panel> panels;
  size_t offset = 0;
  for (const DistMatrix* w : factors) {
    Panel p(w->rows(), w->cols());
    std::copy_n(packed.begin() + static_cast<std::ptrdiff_t>(offset), p.data.size(), p.data.begin());
    offset += p.data.size();
    panels.push_back(std::move(p));
  }
  return panels;
}

/// Writes this rank's block-cyclic part of `out` from
/// `value(local_row, local_col, global_row, global_col)`.
template <typename Value>
void scatter_local(DistMatrix& out, Value value) {
  const std::int64_t lr = out.local_rows(), lc = out.local_cols();
  for (std::int64_t lj = 0; lj < lc; ++lj) {
    const std::int64_t gj = out.col_dim().global(lj);
    for (std::int64_t li = 0; li < lr; ++li) out.at_local(li, lj) = value(li, lj, out.row_dim().global(li), gj);
  }
}

/// R of the thin QR of the matrix whose rows are the panels of all processes in `comm`
/// (TSQR: local Householder QR, then QR of the stacked R factors). Accurate where the Gram
/// matrix would lose half the digits.
Panel tall_skinny_r(const Panel& rows, MPI_Comm comm) {
  const std::int64_t c = rows.cols;
  const auto local_r = [c](const Panel& panel) {
    // LAPACK is column-major: the row-major panel is its transpose, so copy.
    const int m = static_cast<int>(panel.rows), n = static_cast<int>(c);
    Panel r(c, c);
    if (m == 0 || n == 0) return r;
    std::vector<double> a(static_cast<size_t>(m) * n);
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) a[i + static_cast<size_t>(j) * m] = panel(i, j);
    std::vector<double> tau(static_cast<size_t>(std::min(m, n)));
    int lwork = -1, info = 0;
    double query = 0.0;
    dgeqrf_(&m, &n, a.data(), &m, tau.data(), &query, &lwork, &info);
    std::vector<double> work(static_cast<size_t>(query) + 1);
    lwork = static_cast<int>(work.size());
    dgeqrf_(&m, &n, a.data(), &m, tau.data(), work.data(), &lwork, &info);
    for (int i = 0; i < std::min(m, n); ++i)
      for (int j = i; j < n; ++j) r(i, j) = a[i + static_cast<size_t>(j) * m];
    return r;
  };
  const Panel mine = local_r(rows);
  int size = 1;
  MPI_Comm_size(comm, &size);
  Panel stacked(c * size, c);
  check_mpi(MPI_Allgather(mine.data.data(), static_cast<int>(c * c), MPI_DOUBLE,
                          stacked.data.data(), static_cast<int>(c * c), MPI_DOUBLE, comm),
            "MPI_Allgather");
  return local_r(stacked);
}

double frobenius_squared(const Panel& p) {
  double s = 0.0;
  for (double x : p.data) s += x * x;
  return s;
}

}  // namespace

bool is_thin_chain(const Chain& chain) {
  const std::int64_t k = std::max(chain.factors.front().rows(), chain.factors.back().cols());
  return chain.depth() >= 2 && 4 * k <= std::min(chain.rows(), chain.cols());
}

struct SparseStrategy::Workspace {
  Panel a, bt, p, y, z;  // padded panels the fused pass reads and writes
  std::vector<double> received;
};

SparseStrategy::SparseStrategy(const Observations& train, const Observations* test,
                               std::optional<DistMatrix> truth_u, std::optional<DistMatrix> truth_v,
                               double normalization)
    : work_(std::make_unique<Workspace>()), train_(train), test_(test), normalization_(normalization) {
  fail_if(!(normalization > 0.0), "loss normalization must be positive");
  fail_if(truth_u.has_value() != truth_v.has_value(), "sparse strategy: truth needs both U and V");
  if (truth_u) {
    const Panel u = local_panel(*truth_u, Along::kRows);
    const Panel vt = local_panel(transposed(*truth_v), Along::kCols);  // V_t^T: columns like W_1
    Panel uu = multiply(u, true, u, false);
    Panel vv = multiply(vt, true, vt, false);
    allreduce_in_place(uu.data, truth_u->grid().col_comm());
    allreduce_in_place(vv.data, truth_u->grid().row_comm());
    double norm = 0.0;
    for (size_t e = 0; e < uu.data.size(); ++e) norm += uu.data[e] * vv.data[e];
    truth_norm_sq_ = norm;
    truth_rank_ = u.cols;
    truth_u_rows_ = u.data;
    truth_v_rows_ = vt.data;
  }
}

SparseStrategy::~SparseStrategy() = default;

const RowGroupedEntries& SparseStrategy::grouped(const Observations& set, RowGroupedEntries& cache,
                                                 const CyclicDim& rows, const CyclicDim& cols) {
  if (cache.size() == set.size() && cache.local_rows() == rows.count() && grouped_block_ == rows.block)
    return cache;
  cache = RowGroupedEntries{};
  // Observations come sorted by (row, column), which the local indices keep: the grouping is
  // then filled in one pass, with no temporaries (at 1e8 entries they were 16 bytes an entry
  // on top of the observations and the grouping).
  if (in_row_order(set.rows, set.cols)) {
    cache.row_start.assign(static_cast<size_t>(rows.count()) + 1, 0);
    cache.col.resize(set.size());
    cache.value.resize(set.size());
    for (size_t e = 0; e < set.size(); ++e) {
      ++cache.row_start[static_cast<size_t>(rows.local(set.rows[e])) + 1];
      cache.col[e] = static_cast<std::int32_t>(cols.local(set.cols[e]));
      cache.value[e] = set.target(e);
    }
    std::partial_sum(cache.row_start.begin(), cache.row_start.end(), cache.row_start.begin());
    return cache;
  }
  std::vector<std::int32_t> local_rows(set.size()), local_cols(set.size());
  for (size_t e = 0; e < set.size(); ++e) {
    local_rows[e] = static_cast<std::int32_t>(rows.local(set.rows[e]));
    local_cols[e] = static_cast<std::int32_t>(cols.local(set.cols[e]));
  }
  cache = group_by_row(local_rows, local_cols, set.targets(), rows.count());
  return cache;
}

Evaluation SparseStrategy::evaluate(const Chain& chain, std::vector<DistMatrix>* gradient,
                                    bool with_metrics) {
  const int depth = chain.depth();
  fail_if(depth < 2, "the sparse strategy needs a chain of at least two factors");
  const DistMatrix& a_dist = chain.factors.back();   // m x k_out
  const DistMatrix& b_dist = chain.factors.front();  // k_in x n
  const ProcessGrid& grid = a_dist.grid();
  const std::int64_t k_out = a_dist.cols(), k_in = b_dist.rows();
  Workspace& work = *work_;

  // Panels the fused pass reads have rows padded to one stride (zeros beyond k_in in P and
  // B^T, beyond k_out in A, Y and Z).
  const std::int64_t stride = padded_stride(std::max(k_in, k_out));
  gather_panel(a_dist, Along::kRows, stride, work.a, work.received);   // local rows of A, all k_out columns
  gather_panel(b_dist, Along::kCols, stride, work.bt, work.received);  // local columns of B as rows
  const Panel& a = work.a;
  const Panel& bt = work.bt;
  // Inner factors W_2..W_{K-1}; prefix[l] = W_{l+1} ... W_2 (prefix[0] = I), M = prefix.back().
  std::vector<const DistMatrix*> inner_factors;
  for (int l = 1; l + 1 < depth; ++l) inner_factors.push_back(&chain.factors[static_cast<size_t>(l)]);
  const std::vector<Panel> inner = replicated(inner_factors, grid.comm());
  std::vector<Panel> prefix{identity(k_in)};
  for (const Panel& w : inner) prefix.push_back(multiply(w, false, prefix.back(), false));
  const Panel& m_inner = prefix.back();                 // k_out x k_in
  // P = A M (local rows x k_in; the padding beyond k_in stays zero): row-major P is
  // column-major P^T = M^T A^T, and row-major M and A are column-major M^T and A^T.
  Panel& p = work.p;
  p.reshape(a.rows, k_in, stride);
  blas_multiply('N', 'N', k_in, a.rows, k_out, m_inner.data.data(), m_inner.stride, a.data.data(), a.stride,
                p.data.data(), p.stride);

  const CyclicDim& rows_dim = a_dist.row_dim();
  const CyclicDim& cols_dim = b_dist.col_dim();
  fail_if(rows_dim.block != cols_dim.block, "sparse strategy: factors with different block sizes");
  const RowGroupedEntries& train_local = grouped(train_, train_grouped_, rows_dim, cols_dim);
  const RowGroupedEntries* test_local =
      with_metrics && test_ ? &grouped(*test_, test_grouped_, rows_dim, cols_dim) : nullptr;
  grouped_block_ = rows_dim.block;

  // The fused pass: residual, then both accumulations, one sweep over the observations.
  Panel& y = work.y;  // S B^T, local rows
  Panel& z = work.z;  // (A^T S)^T, local columns
  if (gradient) {
    y.reshape(a.rows, k_in, stride);
    z.reshape(bt.rows, k_out, stride);
    std::fill(y.data.begin(), y.data.end(), 0.0);
    std::fill(z.data.begin(), z.data.end(), 0.0);
  }
  const FusedPassPanels panels{p.data.data(), bt.data.data(), a.data.data(), stride};
  const double inv_n = 1.0 / normalization_;
  const double sse = gradient ? fused_pass(train_local, panels, inv_n, y.data.data(), z.data.data())
                              : fused_pass(train_local, panels, 0.0, nullptr, nullptr);
  const double test_sse = test_local ? fused_pass(*test_local, panels, 0.0, nullptr, nullptr) : 0.0;

  // Y and Z go to where A's and B's entries live; there, A^T Y (summed over the grid with the
  // losses: processes without A's entries add zeros) gives the inner factors' gradients.
  const int a_owner = sole_owner(a_dist.col_dim());  // in the row communicator, or -1
  bool holds_y = false, holds_z = false;
  if (gradient) {
    holds_y = sum_to(y.data, grid.row_comm(), a_owner, work.received) &&
              a_dist.local_cols() > 0;
    holds_z = sum_to(z.data, grid.col_comm(), sole_owner(b_dist.row_dim()), work.received) &&
              b_dist.local_rows() > 0;
  }
  // sums = [train sse, test sse, A^T Y (k_out x k_in, with inner factors)]
  std::vector<double> sums{sse, test_sse};
  const bool with_core = gradient && depth > 2;
  if (with_core) {
    sums.resize(2 + static_cast<size_t>(k_out * k_in), 0.0);
    // Each row of A is counted once: by the process of its grid row that holds Y (with
    // several holders, the one in grid column 0).
    if (holds_y && (a_owner >= 0 || grid.my_col() == 0)) {
      const Panel core = multiply(a, true, y, false);
      for (std::int64_t r = 0; r < k_out; ++r)
        std::copy_n(core.row(r), k_in, sums.begin() + 2 + r * k_in);
    }
  }
  allreduce_in_place(sums, grid.comm());
  Evaluation result;
  result.train_sse = sums[0];
  result.train_count = train_.global_count;
  if (with_metrics && test_) {
    result.test_sse = sums[1];
    result.test_count = test_->global_count;
  }
  if (with_metrics && truth_norm_sq_) {
    // ||X - Phi||_F = ||R_C R_D^T||_F for X - Phi = C D, C = [P, -U_t], D = [B; V_t^T].
    const std::int64_t k = k_in, r = truth_rank_;
    Panel c(p.rows, k + r), d(bt.rows, k + r);
    for (std::int64_t i = 0; i < p.rows; ++i) {
      std::copy_n(p.row(i), k, c.row(i));
      for (std::int64_t t = 0; t < r; ++t) c(i, k + t) = -truth_u_rows_[static_cast<size_t>(i * r + t)];
    }
    for (std::int64_t j = 0; j < bt.rows; ++j) {
      std::copy_n(bt.row(j), k, d.row(j));
      std::copy_n(truth_v_rows_.data() + j * r, r, d.row(j) + k);
    }
    // Rows of C are replicated across a grid row: reduce over grid rows (column communicator).
    const Panel rc = tall_skinny_r(c, grid.col_comm());
    const Panel rd = tall_skinny_r(d, grid.row_comm());
    result.truth_sse = frobenius_squared(multiply(rc, false, rd, true));
    result.truth_norm_sq = truth_norm_sq_;
  }
  if (!gradient) return result;

  shape_like_factors(chain, *gradient);
  // dF/dA = Y M^T, dF/dB = M^T Z  (Z stored transposed: z = (A^T S)^T, so dF/dB^T = z M).
  // Where a process holds all of the thin dimension (the usual case), its local columns of
  // dF/dA (rows of dF/dB) are the global ones in order: BLAS writes them in place.
  DistMatrix& grad_a_dist = gradient->back();
  DistMatrix& grad_b_dist = gradient->front();
  const int ld_a = grad_a_dist.ld(), ld_b = grad_b_dist.ld();
  if (holds_y && grad_a_dist.local_cols() == k_out) {
    // Column-major dF/dA = Y M^T = (Y^T)^T (M^T): row-major Y is column-major Y^T, and M is M^T.
    blas_multiply('T', 'N', a.rows, k_out, k_in, y.data.data(), stride, m_inner.data.data(), m_inner.stride,
                  grad_a_dist.data(), ld_a);
  } else if (holds_y) {
    const Panel grad_a = multiply(y, false, m_inner, true);  // local rows x k_out
    scatter_local(grad_a_dist,
                  [&](std::int64_t li, std::int64_t, std::int64_t, std::int64_t gj) { return grad_a(li, gj); });
  }
  if (holds_z && grad_b_dist.local_rows() == k_in) {
    // Column-major dF/dB = M^T Z^T: row-major M is M^T, row-major z (= Z^T) is Z.
    blas_multiply('N', 'N', k_in, bt.rows, k_out, m_inner.data.data(), m_inner.stride, z.data.data(), stride,
                  grad_b_dist.data(), ld_b);
  } else if (holds_z) {
    const Panel grad_bt = multiply(z, false, m_inner, false);  // local cols x k_in
    // Local column lj of B is row lj of the column panel.
    scatter_local(grad_b_dist,
                  [&](std::int64_t, std::int64_t lj, std::int64_t gi, std::int64_t) { return grad_bt(lj, gi); });
  }
  if (with_core) {
    // dF/dW_l = (W_{K-1}..W_{l+1})^T (A^T Y) (W_{l-1}..W_2)^T.
    Panel core(k_out, k_in);
    for (std::int64_t r = 0; r < k_out; ++r) std::copy_n(sums.begin() + 2 + r * k_in, k_in, core.row(r));
    Panel suffix = identity(k_out);  // W_{K-1} ... W_{l+1}
    for (int l = depth - 2; l >= 1; --l) {
      const Panel left = multiply(suffix, true, core, false);
      const Panel g = multiply(left, false, prefix[static_cast<size_t>(l - 1)], true);
      scatter_local((*gradient)[static_cast<size_t>(l)],
                    [&](std::int64_t, std::int64_t, std::int64_t gi, std::int64_t gj) { return g(gi, gj); });
      suffix = multiply(suffix, false, inner[static_cast<size_t>(l - 1)], false);
    }
  }
  return result;
}

}  // namespace cdmf
