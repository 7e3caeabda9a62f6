// cdmf_bench_sparse: the sparse strategy's fused pass (residual + both gradients in one sweep
// over the observations) for |Omega| observed entries of an m x n matrix (20% observed,
// m = n = sqrt(|Omega| / 0.2)) and a compressed-shape chain of width k, against the memory
// bandwidth measured by a STREAM-like triad in the same program and on the same ranks.
//
//   mpirun -n P cdmf_bench_sparse [--entries 2e5,2e6,2e7] [--widths 10,40] [--iters 10]
//
// Rank 0 prints one table row per case and a CSV line ("csv,...") for scripts.
// Traffic model of the pass, per observation: 2 indices (4 B each) + 1 value (8 B) streamed,
// and 5 rows of k doubles touched (P_i, B_j, A_i read; Y_i, Z_j read and written): the
// streamed part (16 B) is the floor, the full count (16 + 56 k B) the ceiling when no row
// stays in cache. Flops: 6 k per observation (dot, two axpys).
#include <CLI/CLI.hpp>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <vector>

#include "cdmf/data/layout.hpp"
#include "cdmf/linalg/scalapack.hpp"
#include "cdmf/model/chain.hpp"
#include "cdmf/random/counter_rng.hpp"
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
  double seconds;        // median evaluate (with gradient)
  double entries;        // |Omega|
};

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
  cdmf::Chain chain;
  chain.kind = cdmf::ModelKind::kCompressed;
  const std::vector<cdmf::FactorShape> shapes{{k, n}, {k, k}, {k, k}, {k, k}, {m, k}};
  for (size_t l = 0; l < shapes.size(); ++l) {
    chain.factors.push_back(cdmf::gaussian_matrix(
        grid, layout, shapes[l], 3, static_cast<std::uint32_t>(200 + l),
        l + 1 == shapes.size() ? cdmf::Space::kRows : cdmf::Space::kInner,
        l == 0 ? cdmf::Space::kCols : cdmf::Space::kInner));
    for (double& x : chain.factors.back().local()) x /= std::sqrt(static_cast<double>(k));
    chain.lr_multipliers.push_back(1.0);
  }
  cdmf::SparseStrategy strategy(obs, nullptr, std::nullopt, std::nullopt, double(m) * double(n));
  std::vector<cdmf::DistMatrix> gradient;
  strategy.evaluate(chain, &gradient, false);  // warm-up (also builds the local index)
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) {
    MPI_Barrier(grid.comm());
    const double t0 = MPI_Wtime();
    strategy.evaluate(chain, &gradient, false);
    double elapsed = MPI_Wtime() - t0;
    MPI_Allreduce(MPI_IN_PLACE, &elapsed, 1, MPI_DOUBLE, MPI_MAX, grid.comm());
    times.push_back(elapsed);
  }
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2], static_cast<double>(obs.global_count)};
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
    std::printf("%10s %4s %12s %10s %12s %14s %14s %10s\n", "|Omega|", "k", "s/eval", "GFLOP/s",
                "Mobs/s", "GB/s floor", "GB/s ceiling", "floor/bw");
  }
  for (double entries : parse_list(entries_text))
    for (double width : parse_list(widths_text)) {
      const auto k = static_cast<std::int64_t>(width);
      const Case c = run_case(grid, entries, k, iters);
      const double floor_bytes = 16.0 * c.entries, ceiling_bytes = (16.0 + 56.0 * k) * c.entries;
      const double flops = 6.0 * k * c.entries;
      if (grid.is_root()) {
        std::printf("%10.3g %4lld %12.6f %10.2f %12.1f %14.2f %14.2f %10.2f\n", c.entries,
                    static_cast<long long>(k), c.seconds, flops / c.seconds / 1e9,
                    c.entries / c.seconds / 1e6, floor_bytes / c.seconds / 1e9,
                    ceiling_bytes / c.seconds / 1e9, floor_bytes / c.seconds / bandwidth);
        std::printf("csv,%d,%.0f,%lld,%.9f,%.4f,%.4f,%.4f,%.4f\n", grid.size(), c.entries,
                    static_cast<long long>(k), c.seconds, flops / c.seconds / 1e9,
                    floor_bytes / c.seconds / 1e9, ceiling_bytes / c.seconds / 1e9, bandwidth / 1e9);
        std::fflush(stdout);
      }
    }
  return 0;
}
