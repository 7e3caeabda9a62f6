// cdmf_bench_scale: the compressed method at scale on data written by `cdmf generate --format
// hdf5` (DIR/train.h5, DIR/truth.h5): read + distribute, the implicit structured init and its
// compression (PARPACK truncated SVD of the sparse S0), GD iterations of the compressed chain
// on the sparse strategy, and the peak memory per rank. The SVD is also run by the alternative
// not picked for the library, a randomized block Krylov iteration on the same distributed
// operator, for passes over the data, seconds and residuals.
//
//   mpirun -n P cdmf_bench_scale --data DIR [--rank 10] [--iters 5] [--lr 5e3] [--krylov-steps 6]
//
// Rank 0 prints one line per phase and a CSV line ("csv,...") for scripts.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "cdmf/core/error.hpp"
#include "cdmf/core/memory_plan.hpp"
#include "cdmf/data/layout.hpp"
#include "cdmf/data/observations.hpp"
#include "cdmf/data/readers.hpp"
#include "cdmf/io/factor_file.hpp"
#include "cdmf/linalg/scalapack.hpp"
#include "cdmf/linalg/sparse_svd.hpp"
#include "cdmf/model/structured_init.hpp"
#include "cdmf/optim/optimizer.hpp"
#include "cdmf/random/counter_rng.hpp"
#include "cdmf/strategy/fused_pass.hpp"
#include "cdmf/strategy/sparse_strategy.hpp"
#include "bench_support.hpp"

extern "C" void dsyev_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda,
                       double* w, double* work, const int* lwork, int* info, size_t jobz_len, size_t uplo_len);

namespace cdmf {
namespace {

double now() { return MPI_Wtime(); }

/// Seconds since `start`, the largest over the ranks.
double elapsed(MPI_Comm comm, double start) {
  double mine = now() - start, most = 0.0;
  MPI_Allreduce(&mine, &most, 1, MPI_DOUBLE, MPI_MAX, comm);
  return most;
}

/// The alternative: randomized block Krylov (Musco & Musco 2015) on the same operator, the
/// Krylov block [A^T A Omega, ..., (A^T A)^q Omega] of width b q on the columns side,
/// orthonormalised (CholeskyQR2 on the replicated thin block), then Rayleigh-Ritz:
/// the top singular triplets of A K from its b q x b q Gram matrix. Returns s and the
/// residuals ||A^T u_i - s_i v_i|| / s_1, and the passes over the data.
struct KrylovResult {
  std::vector<double> s, residuals;
  std::int64_t passes = 0;
};

/// Columns of x (rows x k, column-major, the same on every rank) made orthonormal (two
/// CholeskyQR steps; columns that vanish are dropped). Returns the new column count.
std::int64_t orthonormalize(std::vector<double>& x, std::int64_t rows, std::int64_t k) {
  for (int step = 0; step < 2; ++step) {
    std::vector<double> gram(static_cast<size_t>(k * k));
    const int ki = static_cast<int>(k), ri = static_cast<int>(rows);
    const double one = 1.0, zero = 0.0;
    dgemm_("T", "N", &ki, &ki, &ri, &one, x.data(), &ri, x.data(), &ri, &zero, gram.data(), &ki, 1, 1);
    // Cholesky with pivots dropped when they vanish (a rank-deficient block).
    std::vector<double> l(static_cast<size_t>(k * k), 0.0);
    std::vector<std::int64_t> kept;
    for (std::int64_t c = 0; c < k; ++c) {
      double d = gram[c + c * k];
      for (std::int64_t p : kept) d -= l[c + p * k] * l[c + p * k];
      if (!(d > 1e-13 * gram[c + c * k]) || !(d > 0.0)) continue;
      l[c + c * k] = std::sqrt(d);
      for (std::int64_t i = c + 1; i < k; ++i) {
        double e = gram[i + c * k];
        for (std::int64_t p : kept) e -= l[i + p * k] * l[c + p * k];
        l[i + c * k] = e / l[c + c * k];
      }
      kept.push_back(c);
    }
    std::vector<double> y(static_cast<size_t>(rows) * kept.size());
    for (std::int64_t i = 0; i < rows; ++i)
      for (size_t a = 0; a < kept.size(); ++a) {
        const std::int64_t c = kept[a];
        double e = x[i + c * rows];
        for (size_t b = 0; b < a; ++b) e -= l[c + kept[b] * k] * y[i + b * rows];
        y[i + a * rows] = e / l[c + c * k];
      }
    x = std::move(y);
    k = static_cast<std::int64_t>(kept.size());
  }
  return k;
}

KrylovResult block_krylov(const DistSparseMatrix& a, std::int64_t count, int steps, std::uint64_t seed) {
  const ProcessGrid& grid = a.grid();
  const std::int64_t n = a.cols(), lr = a.row_dim().count(), lc = a.col_dim().count();
  const std::int64_t b = count + 5;  // block width: the count and a few more
  KrylovResult result;
  // Full-length blocks on every rank (n x b: the columns side is the small one here).
  const auto local_of = [&](const std::vector<double>& full, std::int64_t k) {
    std::vector<double> local(static_cast<size_t>(lc * k));
    for (std::int64_t c = 0; c < k; ++c)
      for (std::int64_t l = 0; l < lc; ++l) local[l + c * lc] = full[a.col_dim().global(l) + c * n];
    return local;
  };
  const auto full_of = [&](const std::vector<double>& local, std::int64_t k) {
    // Each grid column's local columns are summed in once: only grid row 0 contributes.
    std::vector<double> full(static_cast<size_t>(n * k), 0.0);
    if (grid.my_row() == 0)
      for (std::int64_t c = 0; c < k; ++c)
        for (std::int64_t l = 0; l < lc; ++l) full[a.col_dim().global(l) + c * n] = local[l + c * lc];
    MPI_Allreduce(MPI_IN_PLACE, full.data(), static_cast<int>(n * k), MPI_DOUBLE, MPI_SUM, grid.comm());
    return full;
  };
  const auto gram_apply = [&](const std::vector<double>& full, std::int64_t k) {
    std::vector<double> x = local_of(full, k), y(static_cast<size_t>(lr * k)), z(static_cast<size_t>(lc * k));
    a.multiply(x.data(), k, y.data());
    a.multiply_transposed(y.data(), k, z.data());
    result.passes += 2;
    return full_of(z, k);
  };
  std::vector<double> block(static_cast<size_t>(n * b));
  for (std::int64_t e = 0; e < n * b; ++e) block[e] = gaussian(seed, 4242, static_cast<std::uint64_t>(e));
  std::vector<double> krylov;
  for (int q = 0; q < steps; ++q) {
    block = gram_apply(block, b);
    const std::int64_t kept = orthonormalize(block, n, b);
    block.resize(static_cast<size_t>(n * kept));
    krylov.insert(krylov.end(), block.begin(), block.end());
  }
  std::int64_t width = static_cast<std::int64_t>(krylov.size()) / n;
  width = orthonormalize(krylov, n, width);
  // Rayleigh-Ritz: eigenpairs of K^T A^T A K (width x width).
  const std::vector<double> ck = gram_apply(krylov, width);
  std::vector<double> small(static_cast<size_t>(width * width));
  const int wi = static_cast<int>(width), ni = static_cast<int>(n);
  const double one = 1.0, zero = 0.0;
  dgemm_("T", "N", &wi, &wi, &ni, &one, krylov.data(), &ni, ck.data(), &ni, &zero, small.data(), &wi, 1, 1);
  std::vector<double> eig(static_cast<size_t>(width)), work(static_cast<size_t>(8 * width + 64));
  int lwork = static_cast<int>(work.size()), info = 0;
  dsyev_("V", "U", &wi, small.data(), &wi, eig.data(), work.data(), &lwork, &info, 1, 1);
  // v_i = K x_i for the largest eigenvalues; s_i = ||A v_i||; residual of A^T u - s v.
  std::vector<double> v(static_cast<size_t>(n * count), 0.0);
  for (std::int64_t c = 0; c < count; ++c) {
    const std::int64_t e = width - 1 - c;
    for (std::int64_t w = 0; w < width; ++w)
      for (std::int64_t j = 0; j < n; ++j) v[j + c * n] += krylov[j + w * n] * small[w + e * width];
  }
  std::vector<double> x = local_of(v, count), y(static_cast<size_t>(lr * count)), z(static_cast<size_t>(lc * count));
  a.multiply(x.data(), count, y.data());
  result.passes += 1;
  result.s.resize(static_cast<size_t>(count));
  for (std::int64_t c = 0; c < count; ++c) {
    double sum = 0.0;
    for (std::int64_t l = 0; l < lr; ++l) sum += y[l + c * lr] * y[l + c * lr];
    MPI_Allreduce(MPI_IN_PLACE, &sum, 1, MPI_DOUBLE, MPI_SUM, grid.col_comm());
    result.s[c] = std::sqrt(sum);
    for (std::int64_t l = 0; l < lr; ++l) y[l + c * lr] /= result.s[c];
  }
  a.multiply_transposed(y.data(), count, z.data());
  result.passes += 1;
  for (std::int64_t c = 0; c < count; ++c) {
    double sum = 0.0;
    for (std::int64_t l = 0; l < lc; ++l) {
      const double r = z[l + c * lc] - result.s[c] * x[l + c * lc];
      sum += r * r;
    }
    MPI_Allreduce(MPI_IN_PLACE, &sum, 1, MPI_DOUBLE, MPI_SUM, grid.row_comm());
    result.residuals.push_back(std::sqrt(sum) / result.s[0]);
  }
  return result;
}

int run(int argc, char** argv) {
  CLI::App app{"cdmf_bench_scale: read, compress and train the compressed model at scale"};
  std::string dir;
  std::int64_t rank = 10;
  int iters = 5, depth = 3, krylov_steps = 6;
  double lr = 5e3, eps = 1e-3, gamma = 0.01;
  std::string grid_text;
  app.add_option("--data", dir, "directory of cdmf generate --format hdf5")->required();
  app.add_option("--rank", rank, "rhat (the compressed width is 2 rhat)");
  app.add_option("--iters", iters, "GD iterations timed");
  app.add_option("--lr", lr, "step size");
  app.add_option("--krylov-steps", krylov_steps, "block Krylov steps of the alternative SVD (0: skip it)");
  app.add_option("--grid", grid_text, "PrxPc (default: the matrix's shape)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  int ranks = 1, me = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  const auto say = [&](const std::string& text) {
    if (me == 0) std::printf("%s\n", text.c_str()), std::fflush(stdout);
  };

  const bench::PhasePeak phase_peak;
  std::vector<std::pair<std::string, double>> peaks;  // the solver's phases, total bytes
  phase_peak.start();
  double start = now();
  LoadedData data = read_data(MPI_COMM_WORLD, dir + "/train.h5", "", {DataFormat::kHdf5, 0});
  const FactorShape shape = truth_dimensions(MPI_COMM_WORLD, dir + "/truth.h5");
  const double read_seconds = elapsed(MPI_COMM_WORLD, start);
  const GridShape grid_shape = grid_text.empty() ? shape_for_matrix(ranks, shape.rows, shape.cols)
                                                 : parse_grid_shape(grid_text, ranks);
  ProcessGrid grid(MPI_COMM_WORLD, grid_shape);
  peaks.emplace_back("read", phase_peak.total(MPI_COMM_WORLD));
  phase_peak.start();
  start = now();
  const IndexLayout layout(shape.rows, shape.cols, choose_block_size(shape.rows, shape.cols, grid), 1);
  const Observations train = distribute(grid, std::move(data.train), layout);
  const double distribute_seconds = elapsed(grid.comm(), start);
  const double entries = static_cast<double>(train.global_count);
  peaks.emplace_back("distribute", phase_peak.total(grid.comm()));
  phase_peak.start();
  say(fmt::format("{} x {}, {} entries, {} ranks, grid {}x{}, kernel {}: read {:.2f} s, distribute {:.2f} s",
                  shape.rows, shape.cols, train.global_count, ranks, grid.rows(), grid.cols(),
                  fused_pass_target_name(), read_seconds, distribute_seconds));

  // The implicit init and the compression (PARPACK).
  start = now();
  const std::int64_t h = std::max(shape.rows, shape.cols);
  const StructuredInit init(shape.rows, shape.cols, depth, h, 1);
  const double init_seconds = elapsed(grid.comm(), start);
  const double normalization = static_cast<double>(shape.rows) * static_cast<double>(shape.cols);
  ImplicitCompressionReport report;
  start = now();
  Chain chain = compress_implicit(grid, layout, train, normalization, init, {rank, gamma, eps}, &report);
  const double compress_seconds = elapsed(grid.comm(), start);
  const double worst = *std::max_element(report.svd.residuals.begin(), report.svd.residuals.end());
  peaks.emplace_back("init + compression", phase_peak.total(grid.comm()));
  say(fmt::format("init {:.2f} s; compression {:.2f} s (PARPACK SVD {:.2f} s, {} passes, {} restarts, "
                  "s_1 {:.4e}, s_{} {:.4e}, s_{} {:.4e}, largest residual {:.1e} s_1){}",
                  init_seconds, compress_seconds, report.svd_seconds, report.svd.passes, report.svd.iterations,
                  report.svd.s.front(), rank, report.svd.s.back(), rank + 1, report.svd.next_value, worst,
                  report.svd.warning.empty() ? "" : "; warning: " + report.svd.warning));

  // The alternative SVD on the same operator.
  double krylov_seconds = 0.0, krylov_worst = 0.0, krylov_s_error = 0.0;
  std::int64_t krylov_passes = 0;
  if (krylov_steps > 0) {
    double scale = eps * eps * eps;
    const DistSparseMatrix s(grid, shape.rows, shape.cols, layout.block(), train.rows, train.cols, [&](size_t e) {
      return (scale * init.q(train.rows[e], train.cols[e]) - train.values[e]) / normalization;
    });
    start = now();
    const KrylovResult k = block_krylov(s, rank, krylov_steps, 7);
    krylov_seconds = elapsed(grid.comm(), start);
    krylov_passes = k.passes;
    krylov_worst = *std::max_element(k.residuals.begin(), k.residuals.end());
    for (std::int64_t c = 0; c < rank; ++c)
      krylov_s_error = std::max(krylov_s_error, std::abs(k.s[c] - report.svd.s[c]) / report.svd.s[0]);
    say(fmt::format("block Krylov ({} steps of width {}): {:.2f} s, {} passes, largest residual {:.1e} s_1, "
                    "singular values off PARPACK's by up to {:.1e} s_1",
                    krylov_steps, rank + 5, krylov_seconds, krylov_passes, krylov_worst, krylov_s_error));
  }

  // The fused pass alone on this rank's entries: the part of an iteration that grows with
  // the entries (the rest grows with m k^2 and n k^2).
  {
    const CyclicDim rows{shape.rows, layout.block(), grid.rows(), grid.my_row()};
    const CyclicDim cols{shape.cols, layout.block(), grid.cols(), grid.my_col()};
    std::vector<std::int32_t> local_rows(train.size()), local_cols(train.size());
    for (size_t e = 0; e < train.size(); ++e) {
      local_rows[e] = static_cast<std::int32_t>(rows.local(train.rows[e]));
      local_cols[e] = static_cast<std::int32_t>(cols.local(train.cols[e]));
    }
    const RowGroupedEntries by_row = group_by_row(local_rows, local_cols, train.values, rows.count());
    const double pass = bench::fused_pass_seconds(by_row, rows.count(), cols.count(), 2 * rank, 3, grid.comm());
    say(fmt::format("fused pass alone (k = {}): {:.3f} s ({:.1f} ns per observation per core)", 2 * rank, pass,
                    pass * 1e9 * ranks / entries));
    const double floor = bench::touch_floor_seconds(by_row, cols.count(), 2 * rank, 3, grid.comm());
    say(fmt::format("its memory floor (the same bytes touched, no arithmetic): {:.3f} s ({:.1f} ns per "
                    "observation per core)",
                    floor, floor * 1e9 * ranks / entries));
  }

  // GD iterations of the compressed chain on the sparse strategy. (The benchmark's own
  // scaffolding above, the alternative SVD's matrix and the fused pass's copy of the entries,
  // is left out of the phase peaks.)
  phase_peak.start();
  SparseStrategy strategy(train, nullptr, std::nullopt, std::nullopt, normalization);
  Optimizer optimizer({OptimizerKind::kGd, lr}, chain);
  std::vector<DistMatrix> gradient;
  strategy.evaluate(chain, &gradient, false);  // grouping and panels (first-iteration costs)
  optimizer.step(chain, gradient);
  MPI_Barrier(grid.comm());
  start = now();
  Evaluation last;
  for (int t = 0; t < iters; ++t) {
    last = strategy.evaluate(chain, &gradient, false);
    optimizer.step(chain, gradient);
  }
  const double per_iteration = elapsed(grid.comm(), start) / std::max(iters, 1);
  const double ns_per_observation_core = per_iteration * 1e9 * ranks / entries;
  peaks.emplace_back("iterations", phase_peak.total(grid.comm()));
  const PeakMemory peak = peak_memory(grid.comm());
  std::string by_phase;
  double solver_peak = 0.0;
  for (const auto& [phase, bytes] : peaks) {
    by_phase += fmt::format("{}{} {:.1f}", by_phase.empty() ? "" : ", ", phase, bytes / entries);
    solver_peak = std::max(solver_peak, bytes);
  }
  say(fmt::format("peak memory by phase, bytes per entry in total over the ranks: {}; the solver's path: "
                  "{} in total ({:.1f} bytes per entry)",
                  by_phase, byte_text(solver_peak), solver_peak / entries));
  say(fmt::format("iteration {:.3f} s ({:.1f} ns per observation per core), train loss {:.4e}; "
                  "peak memory {} per rank (largest), {} in total ({:.1f} bytes per entry)",
                  per_iteration, ns_per_observation_core, last.train_sse / (2.0 * normalization),
                  byte_text(peak.max_rank), byte_text(peak.total), peak.total / entries));
  say(fmt::format("csv,{},{},{},{},{}x{},{:.3f},{:.3f},{:.3f},{:.3f},{},{:.2e},{:.3f},{},{:.2e},{:.4f},{:.2f},{:.0f},{:.0f}",
                  shape.rows, shape.cols, train.global_count, ranks, grid.rows(), grid.cols(), read_seconds,
                  distribute_seconds, compress_seconds, report.svd_seconds, report.svd.passes, worst,
                  krylov_seconds, krylov_passes, krylov_worst, per_iteration, ns_per_observation_core,
                  peak.max_rank, peak.total));
  return 0;
}

}  // namespace
}  // namespace cdmf

int main(int argc, char** argv) {
  cdmf::Environment environment(&argc, &argv);
  try {
    return cdmf::run(argc, argv);
  } catch (const std::exception& e) {
    int me = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    if (me == 0) std::fprintf(stderr, "cdmf_bench_scale: error: %s\n", e.what());
    return 1;
  }
}
