// cdmf_bench: times one gradient-descent iteration of the deep model on the dense (ScaLAPACK)
// strategy — strategy.evaluate(chain, &gradient) + optimizer.step — for m = n = h problems,
// counts the PDGEMM flops from the factor shapes, and rates them against the single-core DGEMM
// peak measured in the same process (same OpenBLAS core type, same binding). Optionally runs
// the serial alternative a user would write without ScaLAPACK (plain dgemm_ on full matrices,
// rank 0 only) on the same problem and initial factors, and checks both reach the same loss.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cdmf/core/error.hpp"
#include "cdmf/data/layout.hpp"
#include "cdmf/data/observations.hpp"
#include "cdmf/grid/process_grid.hpp"
#include "cdmf/linalg/dist_matrix.hpp"
#include "cdmf/linalg/scalapack.hpp"
#include "cdmf/model/chain.hpp"
#include "cdmf/optim/optimizer.hpp"
#include "cdmf/random/counter_rng.hpp"
#include "cdmf/strategy/dense_strategy.hpp"

namespace cdmf {
namespace {

struct Options {
  std::vector<std::int64_t> sizes{500, 1000, 2000};
  int depth = 3;
  int iters = 5;
  int warmup = 1;
  int block = 0;
  double observed = 0.2;
  int truth_rank = 5;
  double lr = 5e3;
  double init_scale = 1e-3;
  std::uint64_t seed = 1;
  bool compare_serial = true;
  std::int64_t serial_max_size = 2000;
  int peak_size = 2000;
  int peak_runs = 5;
  bool gemm_breakdown = false;
  std::string grid;  // "PrxPc"; empty = near-square
  std::string csv;
};

/// Median and minimum of a set of timings.
struct Timing {
  double median = 0.0;
  double min = 0.0;
};

Timing summarize(std::vector<double> seconds) {
  std::sort(seconds.begin(), seconds.end());
  const size_t n = seconds.size();
  const double median = n % 2 ? seconds[n / 2] : 0.5 * (seconds[n / 2 - 1] + seconds[n / 2]);
  return {median, seconds.front()};
}

void plain_dgemm(char ta, char tb, int m, int n, int k, const double* a, int lda, const double* b,
                 int ldb, double* c, int ldc) {
  const double one = 1.0, zero = 0.0;
  dgemm_(&ta, &tb, &m, &n, &k, &one, a, &lda, b, &ldb, &zero, c, &ldc, 1, 1);
}

/// Best-of-`runs` DGEMM rate (GFLOP/s) for size x size, on the calling rank only.
double dgemm_peak_gflops(int size, int runs) {
  std::vector<double> a(static_cast<size_t>(size) * size), b(a.size()), c(a.size());
  for (size_t e = 0; e < a.size(); ++e) {
    a[e] = gaussian(7, 0, e);
    b[e] = gaussian(7, 1, e);
  }
  // The first call pays for page faults and OpenBLAS buffer setup; not part of the peak.
  plain_dgemm('N', 'N', size, size, size, a.data(), size, b.data(), size, c.data(), size);
  double best = 1e300;
  for (int r = 0; r < runs; ++r) {
    const double t0 = MPI_Wtime();
    plain_dgemm('N', 'N', size, size, size, a.data(), size, b.data(), size, c.data(), size);
    best = std::min(best, MPI_Wtime() - t0);
  }
  return 2.0 * size * double(size) * size / best / 1e9;
}

/// PDGEMM flops of one evaluate-with-gradient: forward W_{l+1} * (W_l...W_1) for l = 1..K-1,
/// backward for l = K..2 the gradient product (upstream * partial^T) and the transposed
/// product (W_l^T * upstream); each is 2 * rows_l * cols_l * n.
double flops_per_iteration(std::int64_t m, std::int64_t n, int depth, std::int64_t width) {
  const auto shapes = chain_shapes(m, n, depth, width);
  double flops = 0.0;
  for (int l = 1; l < depth; ++l) {
    const double product = 2.0 * double(shapes[l].rows) * double(shapes[l].cols) * double(n);
    flops += 3.0 * product;  // one forward, one gradient, one transposed
  }
  return flops;
}

/// The rank-r target value at original (i, j): (1/sqrt(r)) sum_k U_ik V_jk, U and V Gaussian.
struct LowRankTruth {
  std::int64_t m, n;
  int rank;
  std::vector<double> u, v;  // row-major m x r, n x r

  LowRankTruth(std::int64_t rows, std::int64_t cols, int r, std::uint64_t seed)
      : m(rows), n(cols), rank(r), u(static_cast<size_t>(rows * r)),
        v(static_cast<size_t>(cols * r)) {
    const auto stream = static_cast<std::uint32_t>(Stream::kTruthGaussian);
    for (size_t e = 0; e < u.size(); ++e) u[e] = gaussian(seed, stream, e);
    for (size_t e = 0; e < v.size(); ++e) v[e] = gaussian(seed, stream, u.size() + e);
  }
  double operator()(std::int64_t i, std::int64_t j) const {
    double sum = 0.0;
    for (int k = 0; k < rank; ++k) sum += u[i * rank + k] * v[j * rank + k];
    return sum / std::sqrt(double(rank));
  }
};

/// Whether original entry (i, j) is in the training set: a pure function of (seed, i, j), so
/// every rank (and the serial run) sees the same sample without communication.
bool is_observed(std::uint64_t seed, std::int64_t n, std::int64_t i, std::int64_t j,
                 double fraction) {
  return uniform_open(seed, static_cast<std::uint32_t>(Stream::kObservedSample),
                      static_cast<std::uint64_t>(i * n + j)) < fraction;
}

/// This rank's observations (permuted indices, sorted by (row, col)) and the global count.
Observations build_observations(const ProcessGrid& grid, const IndexLayout& layout,
                                const LowRankTruth& truth, const Options& opt) {
  Observations obs;
  const std::int64_t m = layout.rows(), n = layout.cols();
  struct Entry {
    std::int64_t p, q;
    double value;
  };
  std::vector<Entry> entries;
  for (std::int64_t i = 0; i < m; ++i) {
    const std::int64_t p = layout.permuted_row(i);
    if ((p / layout.block()) % grid.rows() != grid.my_row()) continue;  // cheap row filter first
    for (std::int64_t j = 0; j < n; ++j) {
      const std::int64_t q = layout.permuted_col(j);
      if (layout.owner(grid, p, q) != grid.rank()) continue;
      if (is_observed(opt.seed, n, i, j, opt.observed)) entries.push_back({p, q, truth(i, j)});
    }
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.p != b.p ? a.p < b.p : a.q < b.q; });
  for (const Entry& e : entries) {
    obs.rows.push_back(e.p);
    obs.cols.push_back(e.q);
    obs.values.push_back(e.value);
  }
  std::int64_t local = static_cast<std::int64_t>(obs.size());
  check_mpi(MPI_Allreduce(&local, &obs.global_count, 1, MPI_INT64_T, MPI_SUM, grid.comm()),
            "MPI_Allreduce");
  return obs;
}

/// The serial alternative: the same GD iteration with plain dgemm_ on full column-major
/// matrices, in the same permuted index space so it follows the distributed trajectory.
class SerialDeep {
 public:
  SerialDeep(std::vector<std::vector<double>> factors, std::vector<FactorShape> shapes,
             std::vector<std::int64_t> observed_index, std::vector<double> observed_value,
             double normalization, double lr)
      : w_(std::move(factors)), shapes_(std::move(shapes)), index_(std::move(observed_index)),
        value_(std::move(observed_value)), normalization_(normalization), lr_(lr) {
    const int depth = static_cast<int>(w_.size());
    n_ = shapes_.front().cols;
    m_ = shapes_.back().rows;
    for (int l = 1; l < depth; ++l)
      partial_.emplace_back(static_cast<size_t>(shapes_[l].rows * n_));
    for (int l = 0; l < depth; ++l) gradient_.emplace_back(w_[l].size());
    s_.resize(static_cast<size_t>(m_ * n_));
  }

  /// One evaluate-with-gradient + GD step; returns the train SSE before the step.
  double iterate() {
    const int depth = static_cast<int>(w_.size());
    const int n = static_cast<int>(n_);
    // Forward: partial[l-1] = W_{l+1} ... W_1 (0-based factor l).
    const double* previous = w_[0].data();
    for (int l = 1; l < depth; ++l) {
      const int r = static_cast<int>(shapes_[l].rows), c = static_cast<int>(shapes_[l].cols);
      plain_dgemm('N', 'N', r, n, c, w_[l].data(), r, previous, c, partial_[l - 1].data(), r);
      previous = partial_[l - 1].data();
    }
    const double* x = previous;
    std::fill(s_.begin(), s_.end(), 0.0);
    double sse = 0.0;
    for (size_t e = 0; e < index_.size(); ++e) {
      const double r = x[index_[e]] - value_[e];
      sse += r * r;
      s_[index_[e]] = r / normalization_;
    }
    // Backward: upstream = (W_K...W_{l+1})^T S; grad_l = upstream * (W_{l-1}...W_1)^T.
    std::vector<double> upstream = s_, next;
    for (int l = depth - 1; l >= 1; --l) {
      const int r = static_cast<int>(shapes_[l].rows), c = static_cast<int>(shapes_[l].cols);
      const double* below = l >= 2 ? partial_[l - 2].data() : w_[0].data();
      plain_dgemm('N', 'T', r, c, n, upstream.data(), r, below, c, gradient_[l].data(), r);
      next.resize(static_cast<size_t>(c) * n);
      plain_dgemm('T', 'N', c, n, r, w_[l].data(), r, upstream.data(), r, next.data(), c);
      upstream.swap(next);
    }
    gradient_[0].swap(upstream);
    for (int l = 0; l < depth; ++l)
      for (size_t e = 0; e < w_[l].size(); ++e) w_[l][e] -= lr_ * gradient_[l][e];
    return sse;
  }

 private:
  std::vector<std::vector<double>> w_;
  std::vector<FactorShape> shapes_;
  std::vector<std::int64_t> index_;  // p + q * m
  std::vector<double> value_;
  double normalization_, lr_;
  std::int64_t m_ = 0, n_ = 0;
  std::vector<std::vector<double>> partial_, gradient_;
  std::vector<double> s_;
};

struct Row {
  std::int64_t size = 0;
  int depth = 0, ranks = 0, block = 0, iters = 0;
  std::string grid;
  Timing dense;
  double gflop_per_iter = 0.0;
  double gflops_total = 0.0, gflops_per_rank = 0.0, peak = 0.0, efficiency = 0.0;
  bool has_serial = false;
  Timing serial;
  double train_loss = 0.0;     // f at the last timed evaluation (a sanity check: finite)
  double loss_rel_diff = 0.0;  // |sse_dense - sse_serial| / sse_dense after the same steps
};

const char* kCsvHeader =
    "size,depth,ranks,grid,block,iters,median_s,min_s,gflop_per_iter,gflops_total,"
    "gflops_per_rank,dgemm_peak_gflops,efficiency,serial_median_s,serial_min_s,"
    "serial_loss_rel_diff,corename,coretype_env";

std::string csv_line(const Row& r, const std::string& corename, const std::string& coretype) {
  return fmt::format(
      "{},{},{},{},{},{},{:.6f},{:.6f},{:.4f},{:.3f},{:.3f},{:.3f},{:.4f},{},{},{},{},{}", r.size,
      r.depth, r.ranks, r.grid, r.block, r.iters, r.dense.median, r.dense.min, r.gflop_per_iter,
      r.gflops_total, r.gflops_per_rank, r.peak, r.efficiency,
      r.has_serial ? fmt::format("{:.6f}", r.serial.median) : "",
      r.has_serial ? fmt::format("{:.6f}", r.serial.min) : "",
      r.has_serial ? fmt::format("{:.2e}", r.loss_rel_diff) : "", corename, coretype);
}

Row run_size(const ProcessGrid& grid, std::int64_t size, const Options& opt, double peak) {
  const std::int64_t m = size, n = size, h = size;
  const int block = choose_block_size(m, n, grid, opt.block);
  const IndexLayout layout(m, n, block, opt.seed);
  const LowRankTruth truth(m, n, opt.truth_rank, opt.seed);
  const Observations train = build_observations(grid, layout, truth, opt);
  const double normalization = double(m) * double(n);

  Chain chain = make_deep_chain(grid, layout, opt.depth, h, opt.init_scale, opt.seed);
  const bool serial = opt.compare_serial && size <= opt.serial_max_size;
  // The serial run starts from the same factors, so gather them before the chain moves.
  std::vector<std::vector<double>> initial;
  if (serial)
    for (const DistMatrix& w : chain.factors) initial.push_back(w.gather(0));

  DenseStrategy strategy(train, nullptr, std::nullopt, normalization);
  OptimizerConfig config;
  config.kind = OptimizerKind::kGd;
  config.lr = opt.lr;
  Optimizer optimizer(config, chain);
  std::vector<DistMatrix> gradient;

  std::vector<double> seconds;
  double dense_sse = 0.0;
  for (int it = 0; it < opt.warmup + opt.iters; ++it) {
    MPI_Barrier(grid.comm());
    const double t0 = MPI_Wtime();
    dense_sse = strategy.evaluate(chain, &gradient, false).train_sse;
    optimizer.step(chain, gradient);
    // The iteration ends when the slowest rank is done.
    MPI_Barrier(grid.comm());
    if (it >= opt.warmup) seconds.push_back(MPI_Wtime() - t0);
  }

  Row row;
  row.size = size;
  row.depth = opt.depth;
  row.ranks = grid.size();
  row.grid = fmt::format("{}x{}", grid.rows(), grid.cols());
  row.block = block;
  row.iters = opt.iters;
  row.dense = summarize(seconds);
  row.train_loss = dense_sse / (2.0 * normalization);
  const double flops = flops_per_iteration(m, n, opt.depth, h);
  row.gflop_per_iter = flops / 1e9;
  row.gflops_total = flops / row.dense.median / 1e9;
  row.gflops_per_rank = row.gflops_total / grid.size();
  row.peak = peak;
  row.efficiency = row.gflops_per_rank / peak;

  if (serial) {
    row.has_serial = true;
    // Rank 0 alone; the others wait at the barrier below, as a user's serial code would run.
    if (grid.is_root()) {
      std::vector<std::int64_t> index;
      std::vector<double> value;
      for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t j = 0; j < n; ++j)
          if (is_observed(opt.seed, n, i, j, opt.observed)) {
            index.push_back(layout.permuted_row(i) + layout.permuted_col(j) * m);
            value.push_back(truth(i, j));
          }
      SerialDeep model(std::move(initial), chain_shapes(m, n, opt.depth, h), std::move(index),
                       std::move(value), normalization, opt.lr);
      std::vector<double> serial_seconds;
      double serial_sse = 0.0;
      for (int it = 0; it < opt.warmup + opt.iters; ++it) {
        const double t0 = MPI_Wtime();
        serial_sse = model.iterate();
        if (it >= opt.warmup) serial_seconds.push_back(MPI_Wtime() - t0);
      }
      row.serial = summarize(serial_seconds);
      row.loss_rel_diff = std::abs(dense_sse - serial_sse) / std::max(dense_sse, 1e-300);
    }
    MPI_Barrier(grid.comm());
  }
  return row;
}

/// The rate of each PDGEMM form the iteration uses (NN forward, NT gradient, TN transposed),
/// size^3 on this grid and block, next to plain dgemm_ of the same form on rank 0: tells
/// whether a gap to the serial run comes from PBLAS itself or from the work around it.
void gemm_breakdown(const ProcessGrid& grid, std::int64_t size, int block) {
  const int n = static_cast<int>(size);
  const double flops = 2.0 * double(n) * n * n;
  DistMatrix a(grid, n, n, block), b(grid, n, n, block), c(grid, n, n, block);
  a.fill([n](std::int64_t i, std::int64_t j) { return gaussian(11, 0, std::uint64_t(i * n + j)); });
  b.fill([n](std::int64_t i, std::int64_t j) { return gaussian(11, 1, std::uint64_t(i * n + j)); });
  const char forms[3][2] = {{'N', 'N'}, {'N', 'T'}, {'T', 'N'}};
  double dist[3], serial[3] = {0.0, 0.0, 0.0};
  for (int f = 0; f < 3; ++f) {
    double best = 1e300;
    for (int r = 0; r < 3; ++r) {  // the first also pays for PBLAS buffers: best of 3
      MPI_Barrier(grid.comm());
      const double t0 = MPI_Wtime();
      gemm(forms[f][0], forms[f][1], 1.0, a, b, 0.0, c);
      MPI_Barrier(grid.comm());
      best = std::min(best, MPI_Wtime() - t0);
    }
    dist[f] = flops / best / 1e9;
  }
  if (grid.is_root()) {
    std::vector<double> x(static_cast<size_t>(n) * n), y(x.size()), z(x.size());
    for (size_t e = 0; e < x.size(); ++e) {
      x[e] = gaussian(11, 0, e);
      y[e] = gaussian(11, 1, e);
    }
    for (int f = 0; f < 3; ++f) {
      double best = 1e300;
      for (int r = 0; r < 3; ++r) {
        const double t0 = MPI_Wtime();
        plain_dgemm(forms[f][0], forms[f][1], n, n, n, x.data(), n, y.data(), n, z.data(), n);
        best = std::min(best, MPI_Wtime() - t0);
      }
      serial[f] = flops / best / 1e9;
    }
    std::printf("size %d gemm breakdown, GFLOP/s total (PDGEMM on %dx%d, block %d | dgemm_ on "
                "rank 0): NN %.1f | %.1f, NT %.1f | %.1f, TN %.1f | %.1f\n",
                n, grid.rows(), grid.cols(), block, dist[0], serial[0], dist[1], serial[1],
                dist[2], serial[2]);
    std::fflush(stdout);
  }
  MPI_Barrier(grid.comm());
}

void print_table(const std::vector<Row>& rows) {
  std::printf("\n%6s %5s %5s %5s %11s %11s %9s %11s %9s %13s %12s\n", "size", "ranks", "grid",
              "block", "s/iter(med)", "s/iter(min)", "GFLOP/s", "GFLOP/s/rk", "% peak",
              "serial s/iter", "serial/dense");
  for (const Row& r : rows) {
    const std::string serial = r.has_serial ? fmt::format("{:.4f}", r.serial.median) : "-";
    const std::string ratio =
        r.has_serial ? fmt::format("{:.2f}", r.serial.median / r.dense.median) : "-";
    std::printf("%6lld %5d %5s %5d %11.4f %11.4f %9.2f %11.2f %8.1f%% %13s %12s\n",
                static_cast<long long>(r.size), r.ranks, r.grid.c_str(), r.block, r.dense.median,
                r.dense.min, r.gflops_total, r.gflops_per_rank, 100.0 * r.efficiency,
                serial.c_str(), ratio.c_str());
  }
  std::fflush(stdout);
}

/// The first three fields of /proc/loadavg ("?" where unavailable).
std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  if (!(in >> a >> b >> c)) return "?";
  return a + " " + b + " " + c;
}

int run(const Options& opt) {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  ProcessGrid grid(MPI_COMM_WORLD, opt.grid.empty() ? near_square_shape(world)
                                                    : parse_grid_shape(opt.grid, world));
  fail_if(opt.iters < 1, "--iters must be at least 1 (got {})", opt.iters);
  fail_if(opt.warmup < 0, "--warmup must be non-negative (got {})", opt.warmup);
  fail_if(opt.depth < 2, "--depth must be at least 2 (got {})", opt.depth);
  fail_if(!(opt.observed > 0.0 && opt.observed <= 1.0), "--observed must be in (0, 1]");
  for (std::int64_t s : opt.sizes) fail_if(s < 1, "--sizes must be positive (got {})", s);

  const std::string corename = openblas_get_corename();
  const char* coretype_env = std::getenv("OPENBLAS_CORETYPE");
  const std::string coretype = coretype_env ? coretype_env : "";
  const char* threads_env = std::getenv("OPENBLAS_NUM_THREADS");

  // Peak on rank 0 alone, in this process's environment (binding, core type, threads).
  double peak = 0.0;
  if (grid.is_root()) peak = dgemm_peak_gflops(opt.peak_size, opt.peak_runs);
  MPI_Barrier(grid.comm());
  MPI_Bcast(&peak, 1, MPI_DOUBLE, 0, grid.comm());

  if (grid.is_root()) {
    std::printf("cdmf_bench: deep model (depth %d, m = n = h), dense strategy, GD step\n",
                opt.depth);
    std::printf("ranks %d, grid %dx%d\n", grid.size(), grid.rows(), grid.cols());
    std::printf("OpenBLAS core: %s; OPENBLAS_CORETYPE=%s; OPENBLAS_NUM_THREADS=%s; "
                "openblas_get_num_threads() = %d\n",
                corename.c_str(), coretype_env ? coretype_env : "(unset)",
                threads_env ? threads_env : "(unset)", openblas_get_num_threads());
    std::printf("single-core DGEMM peak (rank 0, %dx%d, best of %d): %.2f GFLOP/s\n",
                opt.peak_size, opt.peak_size, opt.peak_runs, peak);
    std::fflush(stdout);
  }

  std::vector<Row> rows;
  for (std::int64_t size : opt.sizes) {
    // Other jobs on the node show up as a load above the rank count: record it with the figures.
    if (grid.is_root())
      std::printf("load average before size %lld: %s\n", static_cast<long long>(size),
                  load_average().c_str());
    rows.push_back(run_size(grid, size, opt, peak));
    if (opt.gemm_breakdown) gemm_breakdown(grid, size, rows.back().block);
    if (grid.is_root()) {
      const Row& r = rows.back();
      std::printf("size %lld: %.4f s/iter median, %.2f GFLOP/s/rank, train loss %.3e%s\n",
                  static_cast<long long>(size), r.dense.median, r.gflops_per_rank, r.train_loss,
                  r.has_serial ? fmt::format("; serial {:.4f} s/iter, loss rel. diff {:.1e}",
                                             r.serial.median, r.loss_rel_diff).c_str()
                               : "");
      std::fflush(stdout);
    }
  }

  // The peak again after the sizes: a large change means the node was shared during the run.
  double peak_after = 0.0;
  if (grid.is_root()) peak_after = dgemm_peak_gflops(opt.peak_size, opt.peak_runs);
  MPI_Barrier(grid.comm());
  if (grid.is_root()) {
    // Best of both measurements: the conservative denominator for the efficiency.
    const double best_peak = std::max(peak, peak_after);
    for (Row& r : rows) {
      r.peak = best_peak;
      r.efficiency = r.gflops_per_rank / best_peak;
    }
    std::printf("single-core DGEMM peak after the sizes: %.2f GFLOP/s (before: %.2f); "
                "efficiency below uses the higher\n",
                peak_after, peak);
    print_table(rows);
    std::printf("\n%s\n", kCsvHeader);
    for (const Row& r : rows) std::printf("%s\n", csv_line(r, corename, coretype).c_str());
    if (!opt.csv.empty()) {
      std::ifstream existing(opt.csv);
      const bool fresh = !existing || existing.peek() == std::ifstream::traits_type::eof();
      existing.close();
      std::ofstream out(opt.csv, std::ios::app);
      fail_if(!out, "cannot open {} for appending", opt.csv);
      if (fresh) out << kCsvHeader << '\n';
      for (const Row& r : rows) out << csv_line(r, corename, coretype) << '\n';
    }
  }
  return 0;
}

}  // namespace
}  // namespace cdmf

int main(int argc, char** argv) {
  cdmf::Environment environment(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);

  cdmf::Options opt;
  CLI::App app{"cdmf_bench: GD iteration of the deep model on the dense (ScaLAPACK) strategy"};
  app.add_option("--sizes", opt.sizes, "m = n = h values")->delimiter(',')->capture_default_str();
  app.add_option("--depth", opt.depth, "number of factors L")->capture_default_str();
  app.add_option("--iters", opt.iters, "timed iterations per size")->capture_default_str();
  app.add_option("--warmup", opt.warmup, "untimed iterations first")->capture_default_str();
  app.add_option("--grid", opt.grid, "process grid PrxPc (default near-square)");
  app.add_option("--block-size", opt.block, "block-cyclic block (0 = default)")
      ->capture_default_str();
  app.add_option("--observed", opt.observed, "fraction of entries observed")->capture_default_str();
  app.add_option("--lr", opt.lr, "GD step")->capture_default_str();
  app.add_option("--seed", opt.seed, "problem and init seed")->capture_default_str();
  app.add_flag("--compare-serial,!--no-compare-serial", opt.compare_serial,
               "also time plain dgemm_ on rank 0 for sizes <= --serial-max-size (default on)");
  app.add_option("--serial-max-size", opt.serial_max_size, "largest size for the serial run")
      ->capture_default_str();
  app.add_option("--peak-size", opt.peak_size, "DGEMM size for the peak")->capture_default_str();
  app.add_option("--peak-runs", opt.peak_runs, "DGEMM runs for the peak (best taken)")
      ->capture_default_str();
  app.add_flag("--gemm-breakdown", opt.gemm_breakdown,
               "also time each PDGEMM form alone (and dgemm_ on rank 0) per size");
  app.add_option("--csv", opt.csv, "append result rows to this CSV file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (rank == 0) return app.exit(e);
    return e.get_exit_code();
  }
  try {
    return cdmf::run(opt);
  } catch (const std::exception& e) {
    // Library errors are agreed across ranks, so every rank gets here together.
    if (rank == 0) std::fprintf(stderr, "cdmf_bench: error: %s\n", e.what());
    return 1;
  }
}
