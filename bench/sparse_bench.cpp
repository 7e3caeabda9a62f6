// cdmf_bench_sparse: the sparse strategy's fused pass (residual + both gradients in one sweep
// over the observations) for |Omega| observed entries of an m x n matrix (20% observed,
// m = n = sqrt(|Omega| / 0.2)) and a compressed-shape chain of width k, against the memory
// bandwidth measured by a STREAM-like triad in the same program and on the same ranks.
//
//   mpirun -n P cdmf_bench_sparse [--entries 2e5,2e6,2e7] [--widths 10,40] [--iters 10]
//
// Rank 0 prints one table row per case and a CSV line ("csv,...") for scripts. Besides the
// whole evaluation it times the fused pass alone and, on the same entries and panels, the
// obvious alternative: a plain loop over the observations (k-long dot product, two k-long
// updates of Y_i and Z_j per observation, in entry order).
// Traffic model of the pass, per observation: 1 column index (4 B) + 1 value (8 B) streamed
// (the row offsets are per row), and 2 rows of k doubles touched (B_j read, Z_j read and
// written; P_i, A_i, Y_i are per row): the streamed 12 B are the floor, 12 + 24 k B the
// ceiling when no row stays in cache. Flops: 6 k per observation (dot, two axpys).
#include <CLI/CLI.hpp>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <vector>

#include "bench_support.hpp"
#include "cdmf/data/layout.hpp"
#include "cdmf/linalg/scalapack.hpp"
#include "cdmf/model/chain.hpp"
#include "cdmf/random/counter_rng.hpp"
#include "cdmf/strategy/fused_pass.hpp"
#include "cdmf/strategy/sparse_strategy.hpp"

namespace {

std::vector<double> parse_list(const std::string& text) {
  std::vector<double> values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) values.push_back(std::stod(item));
  return values;
}

/// Best-of-5 triad a = b + s c over `doubles` elements per rank, all ranks at once:
/// bytes/s over the whole job (24 bytes per element and rank).
double triad_bandwidth(std::int64_t doubles, MPI_Comm comm) {
  std::vector<double> a(static_cast<size_t>(doubles), 0.0), b(a.size(), 1.0), c(a.size(), 2.0);
  int ranks = 1;
  MPI_Comm_size(comm, &ranks);
  double best = 1e300;
  for (int run = 0; run < 5; ++run) {
    MPI_Barrier(comm);
    const double t0 = MPI_Wtime();
    const double s = 0.5 + run;
    for (size_t i = 0; i < a.size(); ++i) a[i] = b[i] + s * c[i];
    double elapsed = MPI_Wtime() - t0;
    MPI_Allreduce(MPI_IN_PLACE, &elapsed, 1, MPI_DOUBLE, MPI_MAX, comm);
    best = std::min(best, elapsed);
  }
  volatile double sink = a[a.size() / 2];  // keep the loop
  (void)sink;
  return 24.0 * static_cast<double>(doubles) * ranks / best;
}

struct Case {
  double seconds;         // median evaluate (with gradient)
  double pass_seconds;    // median fused pass alone (slowest rank)
  double scalar_seconds;  // median plain per-observation loop (slowest rank)
  double entries;         // |Omega|
};

/// The kernel alone and the plain loop on this rank's entries with random panels.
std::pair<double, double> time_kernels(const cdmf::Observations& obs, const cdmf::IndexLayout& layout,
                                       const cdmf::ProcessGrid& grid, std::int64_t m, std::int64_t n,
                                       std::int64_t k, int iters) {
  const cdmf::CyclicDim rows{m, layout.block(), grid.rows(), grid.my_row()};
  const cdmf::CyclicDim cols{n, layout.block(), grid.cols(), grid.my_col()};
  std::vector<std::int32_t> local_rows(obs.size()), local_cols(obs.size());
  for (size_t e = 0; e < obs.size(); ++e) {
    local_rows[e] = static_cast<std::int32_t>(rows.local(obs.rows[e]));
    local_cols[e] = static_cast<std::int32_t>(cols.local(obs.cols[e]));
  }
  const cdmf::RowGroupedEntries grouped = cdmf::group_by_row(local_rows, local_cols, obs.values, rows.count());
  const std::int64_t stride = cdmf::padded_stride(k);
  const auto panel = [&](std::int64_t count, std::int64_t width, std::uint32_t stream) {
    std::vector<double> x(static_cast<size_t>(count * width), 0.0);
    for (std::int64_t i = 0; i < count; ++i)
      for (std::int64_t c = 0; c < k; ++c)
        x[static_cast<size_t>(i * width + c)] = cdmf::gaussian(5, stream, static_cast<std::uint64_t>(i * k + c));
    return x;
  };
  const double inv_n = 1.0 / (double(m) * double(n));
  const double pass = cdmf::bench::fused_pass_seconds(grouped, rows.count(), cols.count(), k, iters, grid.comm());
  // The plain loop on unpadded rows.
  const std::vector<double> p1 = panel(rows.count(), k, 1), bt1 = panel(cols.count(), k, 2),
                            a1 = panel(rows.count(), k, 3);
  std::vector<double> y1(p1.size()), z1(bt1.size());
  volatile double sink = 0.0;
  const double scalar = cdmf::bench::median_seconds(iters, grid.comm(), [&] {
    std::fill(y1.begin(), y1.end(), 0.0);
    std::fill(z1.begin(), z1.end(), 0.0);
    double sse = 0.0;
    for (size_t e = 0; e < obs.size(); ++e) {
      const std::int64_t i = local_rows[e], j = local_cols[e];
      double x = 0.0;
      for (std::int64_t c = 0; c < k; ++c) x += p1[i * k + c] * bt1[j * k + c];
      const double r = x - obs.values[e];
      sse += r * r;
      for (std::int64_t c = 0; c < k; ++c) {
        y1[i * k + c] += r * inv_n * bt1[j * k + c];
        z1[j * k + c] += r * inv_n * a1[i * k + c];
      }
    }
    sink = sse;
  });
  (void)sink;
  return {pass, scalar};
}

Case run_case(const cdmf::ProcessGrid& grid, double entries, std::int64_t k, int iters) {
  const std::int64_t n = static_cast<std::int64_t>(std::llround(std::sqrt(entries / 0.2)));
  const std::int64_t m = n;
  cdmf::IndexLayout layout(m, n, cdmf::choose_block_size(m, n, grid), 1);
  // Each rank draws the entries it owns: 20% of all, keyed by the global index.
  cdmf::Observations obs;
  for (std::int64_t p = 0; p < m; ++p) {
    if (layout.owner(grid, p, 0) / grid.cols() != grid.my_row()) continue;
    for (std::int64_t q = 0; q < n; ++q) {
      if (layout.owner(grid, p, q) != grid.rank()) continue;
      if (cdmf::uniform_open(7, 99, static_cast<std::uint64_t>(p * n + q)) >= 0.2) continue;
      obs.rows.push_back(p);
      obs.cols.push_back(q);
      obs.values.push_back(cdmf::gaussian(7, 98, static_cast<std::uint64_t>(p * n + q)));
    }
  }
  std::int64_t local = static_cast<std::int64_t>(obs.size());
  MPI_Allreduce(&local, &obs.global_count, 1, MPI_INT64_T, MPI_SUM, grid.comm());
  // A compressed-shape chain: [V^T (k x n), 3 inner k x k, U (m x k)].
  const cdmf::Chain chain = cdmf::bench::compressed_shape_chain(grid, layout, m, n, k, 3);
  cdmf::SparseStrategy strategy(obs, nullptr, std::nullopt, std::nullopt, double(m) * double(n));
  std::vector<cdmf::DistMatrix> gradient;
  strategy.evaluate(chain, &gradient, false);  // warm-up (also builds the local index)
  const double seconds = cdmf::bench::median_seconds(iters, grid.comm(), [&] { strategy.evaluate(chain, &gradient, false); });
  const auto [pass, scalar] = time_kernels(obs, layout, grid, m, n, k, iters);
  return {seconds, pass, scalar, static_cast<double>(obs.global_count)};
}

}  // namespace

int main(int argc, char** argv) {
  cdmf::Environment environment(&argc, &argv);
  CLI::App app{"cdmf_bench_sparse: the fused sparse pass vs memory bandwidth"};
  std::string entries_text = "2e5,2e6,2e7", widths_text = "10,40";
  int iters = 10;
  std::int64_t triad_doubles = 1 << 25;
  app.add_option("--entries", entries_text, "observed entries |Omega|, comma-separated");
  app.add_option("--widths", widths_text, "chain widths k, comma-separated");
  app.add_option("--iters", iters, "timed evaluations per case (median reported)");
  app.add_option("--triad-doubles", triad_doubles, "triad array length per rank");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  cdmf::ProcessGrid grid(MPI_COMM_WORLD);
  const double bandwidth = triad_bandwidth(triad_doubles, grid.comm());
  if (grid.is_root()) {
    const char* coretype = std::getenv("OPENBLAS_CORETYPE");
    std::printf("ranks %d, grid %dx%d, OpenBLAS core %s (OPENBLAS_CORETYPE=%s)\n", grid.size(),
                grid.rows(), grid.cols(), openblas_get_corename(), coretype ? coretype : "unset");
    std::printf("triad bandwidth (all ranks): %.2f GB/s\n", bandwidth / 1e9);
    std::printf("%10s %4s %12s %10s %12s %14s %14s %10s %12s %12s\n", "|Omega|", "k", "s/eval",
                "GFLOP/s", "Mobs/s", "GB/s floor", "GB/s ceiling", "floor/bw", "pass ns/obs",
                "plain ns/obs");
  }
  for (double entries : parse_list(entries_text))
    for (double width : parse_list(widths_text)) {
      const auto k = static_cast<std::int64_t>(width);
      const Case c = run_case(grid, entries, k, iters);
      const double floor_bytes = 12.0 * c.entries, ceiling_bytes = (12.0 + 24.0 * k) * c.entries;
      // Per observation of the whole job: the ranks work side by side.
      const double per_obs = 1e9 / c.entries;
      const double flops = 6.0 * k * c.entries;
      if (grid.is_root()) {
        std::printf("%10.3g %4lld %12.6f %10.2f %12.1f %14.2f %14.2f %10.2f %12.2f %12.2f\n",
                    c.entries, static_cast<long long>(k), c.seconds, flops / c.seconds / 1e9,
                    c.entries / c.seconds / 1e6, floor_bytes / c.seconds / 1e9,
                    ceiling_bytes / c.seconds / 1e9, floor_bytes / c.seconds / bandwidth,
                    c.pass_seconds * per_obs, c.scalar_seconds * per_obs);
        std::printf("csv,%d,%.0f,%lld,%.9f,%.4f,%.4f,%.4f,%.4f,%.9f,%.9f\n", grid.size(), c.entries,
                    static_cast<long long>(k), c.seconds, flops / c.seconds / 1e9,
                    floor_bytes / c.seconds / 1e9, ceiling_bytes / c.seconds / 1e9, bandwidth / 1e9,
                    c.pass_seconds, c.scalar_seconds);
        std::fflush(stdout);
      }
    }
  return 0;
}
