#include "cdmf/strategy/sparse_strategy.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

#include "cdmf/core/error.hpp"
#include "cdmf/linalg/scalapack.hpp"

namespace cdmf {

namespace {

/// A small dense matrix, row-major (rows of thin panels are contiguous k-vectors).
struct Panel {
  std::int64_t rows = 0, cols = 0;
  std::vector<double> data;
  Panel() = default;
  Panel(std::int64_t r, std::int64_t c) : rows(r), cols(c), data(static_cast<size_t>(r * c), 0.0) {}
  double* row(std::int64_t i) { return data.data() + i * cols; }
  const double* row(std::int64_t i) const { return data.data() + i * cols; }
  double& operator()(std::int64_t i, std::int64_t j) { return data[i * cols + j]; }
  double operator()(std::int64_t i, std::int64_t j) const { return data[i * cols + j]; }
};

/// C = op(A) op(B) for row-major panels (BLAS on the column-major view of the transposes).
Panel multiply(const Panel& a, bool trans_a, const Panel& b, bool trans_b) {
  const std::int64_t m = trans_a ? a.cols : a.rows, k = trans_a ? a.rows : a.cols;
  const std::int64_t n = trans_b ? b.rows : b.cols;
  Panel c(m, n);
  if (m == 0 || n == 0) return c;
  if (k == 0) return c;
  // Row-major C = op(A) op(B)  <=>  column-major C^T = op(B)^T op(A)^T.
  const char ta = trans_b ? 'T' : 'N', tb = trans_a ? 'T' : 'N';
  const int im = static_cast<int>(n), in = static_cast<int>(m), ik = static_cast<int>(k);
  const int lda = static_cast<int>(std::max<std::int64_t>(1, b.cols));
  const int ldb = static_cast<int>(std::max<std::int64_t>(1, a.cols));
  const int ldc = static_cast<int>(std::max<std::int64_t>(1, c.cols));
  const double one = 1.0, zero = 0.0;
  dgemm_(&ta, &tb, &im, &in, &ik, &one, b.data.data(), &lda, a.data.data(), &ldb, &zero,
         c.data.data(), &ldc, 1, 1);
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

/// The local rows of `a` (block-cyclic over grid rows) with all of their columns, gathered over
/// the row communicator: row-major local_rows x cols, the same on every process of a grid row.
Panel row_panel(const DistMatrix& a) {
  const ProcessGrid& g = a.grid();
  const std::int64_t lr = a.local_rows(), lc = a.local_cols();
  std::vector<double> mine(static_cast<size_t>(lr * lc));
  for (std::int64_t lj = 0; lj < lc; ++lj)
    for (std::int64_t li = 0; li < lr; ++li) mine[li * lc + lj] = a.at_local(li, lj);
  std::vector<int> counts(g.cols()), offsets(g.cols());
  for (int q = 0; q < g.cols(); ++q) counts[q] = static_cast<int>(lr * a.col_dim().count(q));
  for (int q = 1; q < g.cols(); ++q) offsets[q] = offsets[q - 1] + counts[q - 1];
  std::vector<double> all(static_cast<size_t>(offsets.back() + counts.back()));
  check_mpi(MPI_Allgatherv(mine.data(), static_cast<int>(mine.size()), MPI_DOUBLE, all.data(),
                           counts.data(), offsets.data(), MPI_DOUBLE, g.row_comm()),
            "MPI_Allgatherv");
  Panel panel(lr, a.cols());
  for (int q = 0; q < g.cols(); ++q) {
    const std::int64_t qc = a.col_dim().count(q);
    for (std::int64_t lj = 0; lj < qc; ++lj) {
      const std::int64_t gj = a.col_dim().global(lj, q);
      for (std::int64_t li = 0; li < lr; ++li) panel(li, gj) = all[offsets[q] + li * qc + lj];
    }
  }
  return panel;
}

/// The local columns of `b` (k x n, block-cyclic over grid columns) with all of their rows,
/// gathered over the column communicator, as a row-major local_cols x k panel (B^T rows).
Panel column_panel(const DistMatrix& b) {
  const ProcessGrid& g = b.grid();
  const std::int64_t lr = b.local_rows(), lc = b.local_cols();
  std::vector<double> mine(static_cast<size_t>(lr * lc));
  for (std::int64_t lj = 0; lj < lc; ++lj)
    for (std::int64_t li = 0; li < lr; ++li) mine[lj * lr + li] = b.at_local(li, lj);
  std::vector<int> counts(g.rows()), offsets(g.rows());
  for (int p = 0; p < g.rows(); ++p) counts[p] = static_cast<int>(lc * b.row_dim().count(p));
  for (int p = 1; p < g.rows(); ++p) offsets[p] = offsets[p - 1] + counts[p - 1];
  std::vector<double> all(static_cast<size_t>(offsets.back() + counts.back()));
  check_mpi(MPI_Allgatherv(mine.data(), static_cast<int>(mine.size()), MPI_DOUBLE, all.data(),
                           counts.data(), offsets.data(), MPI_DOUBLE, g.col_comm()),
            "MPI_Allgatherv");
  Panel panel(lc, b.rows());
  for (int p = 0; p < g.rows(); ++p) {
    const std::int64_t pr = b.row_dim().count(p);
    for (std::int64_t lj = 0; lj < lc; ++lj)
      for (std::int64_t li = 0; li < pr; ++li)
        panel(lj, b.row_dim().global(li, p)) = all[offsets[p] + lj * pr + li];
  }
  return panel;
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

/// One sweep over observations: the residual r_e = P_i . B_j - value and, when `y` is
/// given, the accumulations Y_i += s B_j and Z_j += s A_i with s = r * inv_n.
struct PassData {
  const std::int32_t* rows;  // local panel row of each observation
  const std::int32_t* cols;  // local panel column
  const double* values;
  size_t count;
  const double* p;   // local rows x k_in (P = A M)
  const double* bt;  // local columns x k_in (B^T)
  const double* a;   // local rows x k_out
  std::int64_t k_in, k_out;
};

/// The pass for k_in = k_out = K known at compile time: the short loops unroll and
/// vectorise (SIMD reduction for the dot product, restrict-qualified rows for the updates);
/// the runtime-k loop compiles to scalar code and ran ~3x slower.
template <int K>
double fixed_width_pass(const PassData& d, double inv_n, double* y, double* z) {
  const std::int32_t* __restrict rows = d.rows;
  const std::int32_t* __restrict cols = d.cols;
  const double* __restrict values = d.values;
  const double* __restrict p = d.p;
  const double* __restrict bt = d.bt;
  const double* __restrict a = d.a;
  const size_t count = d.count;
  double sse = 0.0;
  for (size_t e = 0; e < count; ++e) {
    const double* __restrict pi = p + static_cast<std::int64_t>(rows[e]) * K;
    const double* __restrict bj = bt + static_cast<std::int64_t>(cols[e]) * K;
    double x = 0.0;
#pragma omp simd reduction(+ : x)
    for (int c = 0; c < K; ++c) x += pi[c] * bj[c];
    const double r = x - values[e];
    sse += r * r;
    if (y == nullptr) continue;
    const double s = r * inv_n;
    double* __restrict yi = y + static_cast<std::int64_t>(rows[e]) * K;
    double* __restrict zj = z + static_cast<std::int64_t>(cols[e]) * K;
    const double* __restrict ai = a + static_cast<std::int64_t>(rows[e]) * K;
#pragma omp simd
    for (int c = 0; c < K; ++c) yi[c] += s * bj[c];
#pragma omp simd
    for (int c = 0; c < K; ++c) zj[c] += s * ai[c];
  }
  return sse;
}

double any_width_pass(const PassData& d, double inv_n, double* y, double* z) {
  double sse = 0.0;
  for (size_t e = 0; e < d.count; ++e) {
    const double* pi = d.p + static_cast<std::int64_t>(d.rows[e]) * d.k_in;
    const double* bj = d.bt + static_cast<std::int64_t>(d.cols[e]) * d.k_in;
    double x = 0.0;
    for (std::int64_t c = 0; c < d.k_in; ++c) x += pi[c] * bj[c];
    const double r = x - d.values[e];
    sse += r * r;
    if (y == nullptr) continue;
    const double s = r * inv_n;
    double* yi = y + static_cast<std::int64_t>(d.rows[e]) * d.k_in;
    for (std::int64_t c = 0; c < d.k_in; ++c) yi[c] += s * bj[c];
    const double* ai = d.a + static_cast<std::int64_t>(d.rows[e]) * d.k_out;
    double* zj = z + static_cast<std::int64_t>(d.cols[e]) * d.k_out;
    for (std::int64_t c = 0; c < d.k_out; ++c) zj[c] += s * ai[c];
  }
  return sse;
}

constexpr int kMaxFixedWidth = 64;

template <int... Widths>
constexpr auto make_pass_table(std::integer_sequence<int, Widths...>) {
  using Pass = double (*)(const PassData&, double, double*, double*);
  return std::array<Pass, sizeof...(Widths)>{&fixed_width_pass<Widths + 1>...};
}

/// Sum of squared residuals of the pass (dispatching to the compile-time width when it can).
double fused_pass(const PassData& d, double inv_n, double* y, double* z) {
  static constexpr auto table = make_pass_table(std::make_integer_sequence<int, kMaxFixedWidth>{});
  if (d.k_in == d.k_out && d.k_in >= 1 && d.k_in <= kMaxFixedWidth)
    return table[static_cast<size_t>(d.k_in - 1)](d, inv_n, y, z);
  return any_width_pass(d, inv_n, y, z);
}

/// Writes this rank's block-cyclic part of `out` from `value(global_row, global_col)`.
template <typename Value>
void scatter_local(DistMatrix& out, Value value) {
  for (std::int64_t lj = 0; lj < out.local_cols(); ++lj)
    for (std::int64_t li = 0; li < out.local_rows(); ++li)
      out.at_local(li, lj) = value(li, out.row_dim().global(li), out.col_dim().global(lj));
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

SparseStrategy::SparseStrategy(const Observations& train, const Observations* test,
                               std::optional<DistMatrix> truth_u, std::optional<DistMatrix> truth_v,
                               double normalization)
    : train_(train), test_(test), normalization_(normalization) {
  fail_if(!(normalization > 0.0), "loss normalization must be positive");
  fail_if(truth_u.has_value() != truth_v.has_value(), "sparse strategy: truth needs both U and V");
  if (truth_u) {
    truth_u_ = std::move(truth_u);
    truth_v_ = transposed(*truth_v);  // r x n: columns follow the column blocks, like W_1
    const Panel u = row_panel(*truth_u_);
    const Panel vt = column_panel(*truth_v_);
    Panel uu = multiply(u, true, u, false);
    Panel vv = multiply(vt, true, vt, false);
    allreduce_in_place(uu.data, truth_u_->grid().col_comm());
    allreduce_in_place(vv.data, truth_u_->grid().row_comm());
    double norm = 0.0;
    for (size_t e = 0; e < uu.data.size(); ++e) norm += uu.data[e] * vv.data[e];
    truth_norm_sq_ = norm;
  }
}

const SparseStrategy::LocalIndex& SparseStrategy::local_index(const Observations& set,
                                                              LocalIndex& cache,
                                                              const CyclicDim& rows,
                                                              const CyclicDim& cols) {
  if (cache.row.size() == set.size() && indexed_block_ == rows.block) return cache;
  cache.row.resize(set.size());
  cache.col.resize(set.size());
  for (size_t e = 0; e < set.size(); ++e) {
    cache.row[e] = static_cast<std::int32_t>(rows.local(set.rows[e]));
    cache.col[e] = static_cast<std::int32_t>(cols.local(set.cols[e]));
  }
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

  const Panel a = row_panel(a_dist);     // local rows of A, all k_out columns
  const Panel bt = column_panel(b_dist);  // local columns of B as rows, all k_in entries
  // Inner factors W_2..W_{K-1}; prefix[l] = W_{l+1} ... W_2 (prefix[0] = I), M = prefix.back().
  std::vector<const DistMatrix*> inner_factors;
  for (int l = 1; l + 1 < depth; ++l) inner_factors.push_back(&chain.factors[static_cast<size_t>(l)]);
  const std::vector<Panel> inner = replicated(inner_factors, grid.comm());
  std::vector<Panel> prefix{identity(k_in)};
  for (const Panel& w : inner) prefix.push_back(multiply(w, false, prefix.back(), false));
  const Panel& m_inner = prefix.back();                 // k_out x k_in
  const Panel p = multiply(a, false, m_inner, false);  // P = A M, local rows x k_in

  const CyclicDim& rows_dim = a_dist.row_dim();
  const CyclicDim& cols_dim = b_dist.col_dim();
  fail_if(rows_dim.block != cols_dim.block, "sparse strategy: factors with different block sizes");
  const LocalIndex& train_local = local_index(train_, train_index_, rows_dim, cols_dim);
  const LocalIndex* test_local =
      with_metrics && test_ ? &local_index(*test_, test_index_, rows_dim, cols_dim) : nullptr;
  indexed_block_ = rows_dim.block;
  const double inv_n = 1.0 / normalization_;
  const std::int64_t k = k_in;
  Panel y, z;
  if (gradient) {
    y = Panel(a.rows, k_in);   // S B^T, local rows
    z = Panel(bt.rows, k_out);  // (A^T S)^T, local columns
  }
  // The fused pass: residual, then both accumulations, one sweep over the observations.
  const PassData pass{train_local.row.data(), train_local.col.data(), train_.values.data(),
                      train_.size(), p.data.data(), bt.data.data(), a.data.data(), k, k_out};
  const double sse = gradient ? fused_pass(pass, inv_n, y.data.data(), z.data.data())
                              : fused_pass(pass, 0.0, nullptr, nullptr);
  Evaluation result;
  std::vector<double> sums{sse, 0.0};
  if (test_local)
    sums[1] = fused_pass({test_local->row.data(), test_local->col.data(), test_->values.data(),
                          test_->size(), p.data.data(), bt.data.data(), a.data.data(), k, k_out},
                         0.0, nullptr, nullptr);
  allreduce_in_place(sums, grid.comm());
  result.train_sse = sums[0];
  result.train_count = train_.global_count;
  if (with_metrics && test_) {
    result.test_sse = sums[1];
    result.test_count = test_->global_count;
  }
  if (with_metrics && truth_u_) {
    // ||X - Phi||_F = ||R_C R_D^T||_F for X - Phi = C D, C = [P, -U_t], D = [B; V_t^T].
    const Panel u = row_panel(*truth_u_);
    const Panel vt = column_panel(*truth_v_);
    Panel c(p.rows, k + u.cols), d(bt.rows, k + vt.cols);
    for (std::int64_t i = 0; i < p.rows; ++i) {
      std::copy_n(p.row(i), k, c.row(i));
      for (std::int64_t t = 0; t < u.cols; ++t) c(i, k + t) = -u(i, t);
    }
    for (std::int64_t j = 0; j < bt.rows; ++j) {
      std::copy_n(bt.row(j), k, d.row(j));
      std::copy_n(vt.row(j), vt.cols, d.row(j) + k);
    }
    // Rows of C are replicated across a grid row: reduce over grid rows (column communicator).
    const Panel rc = tall_skinny_r(c, grid.col_comm());
    const Panel rd = tall_skinny_r(d, grid.row_comm());
    result.truth_sse = frobenius_squared(multiply(rc, false, rd, true));
    result.truth_norm_sq = truth_norm_sq_;
  }
  if (!gradient) return result;

  allreduce_in_place(y.data, grid.row_comm());
  allreduce_in_place(z.data, grid.col_comm());
  gradient->clear();
  for (const DistMatrix& w : chain.factors) gradient->emplace_back(w.grid(), w.rows(), w.cols(), w.block());
  // dF/dA = Y M^T, dF/dB = M^T Z  (Z stored transposed: z = (A^T S)^T, so dF/dB^T = z M).
  const Panel grad_a = multiply(y, false, m_inner, true);  // local rows x k_out
  const Panel grad_bt = multiply(z, false, m_inner, false);  // local cols x k_in
  scatter_local(gradient->back(), [&](std::int64_t li, std::int64_t, std::int64_t gj) { return grad_a(li, gj); });
  scatter_local(gradient->front(), [&](std::int64_t, std::int64_t gi, std::int64_t gj) {
    return grad_bt(cols_dim.local(gj), gi);
  });
  if (depth > 2) {
    // A^T Y (k_out x k_in), then dF/dW_l = (W_{K-1}..W_{l+1})^T (A^T Y) (W_{l-1}..W_2)^T.
    Panel core = multiply(a, true, y, false);
    allreduce_in_place(core.data, grid.col_comm());
    Panel suffix = identity(k_out);  // W_{K-1} ... W_{l+1}
    for (int l = depth - 2; l >= 1; --l) {
      const Panel left = multiply(suffix, true, core, false);
      const Panel g = multiply(left, false, prefix[static_cast<size_t>(l - 1)], true);
      scatter_local((*gradient)[static_cast<size_t>(l)],
                    [&](std::int64_t, std::int64_t gi, std::int64_t gj) { return g(gi, gj); });
      suffix = multiply(suffix, false, inner[static_cast<size_t>(l - 1)], false);
    }
  }
  return result;
}

}  // namespace cdmf
