#pragma once
// What the benchmarks share (cdmf_bench_sparse, cdmf_bench_comm): the chain they evaluate and
// the median timing of a collective piece of work.
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "cdmf/data/layout.hpp"
#include "cdmf/model/chain.hpp"
#include "cdmf/random/counter_rng.hpp"
#include "cdmf/strategy/fused_pass.hpp"

namespace cdmf::bench {

/// A compressed-shape chain [V^T (k x n), `inner` k x k factors, U (m x k)] of Gaussian
/// entries scaled by 1/sqrt(k), the same on every grid.
inline Chain compressed_shape_chain(const ProcessGrid& grid, const IndexLayout& layout,
                                    std::int64_t m, std::int64_t n, std::int64_t k, int inner) {
  Chain chain;
  chain.kind = ModelKind::kCompressed;
  std::vector<FactorShape> shapes{{k, n}};
  for (int l = 0; l < inner; ++l) shapes.push_back({k, k});
  shapes.push_back({m, k});
  for (size_t l = 0; l < shapes.size(); ++l) {
    chain.factors.push_back(gaussian_matrix(grid, layout, shapes[l], 3,
                                            static_cast<std::uint32_t>(200 + l),
                                            l + 1 == shapes.size() ? Space::kRows : Space::kInner,
                                            l == 0 ? Space::kCols : Space::kInner));
    for (double& x : chain.factors.back().local()) x /= std::sqrt(static_cast<double>(k));
    chain.lr_multipliers.push_back(1.0);
  }
  return chain;
}

/// Median over `iters` runs of `work`, each timed on the slowest rank.
template <typename Work>
double median_seconds(int iters, MPI_Comm comm, Work work) {
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) {
    MPI_Barrier(comm);
    const double t0 = MPI_Wtime();
    work();
    double elapsed = MPI_Wtime() - t0;
    MPI_Allreduce(MPI_IN_PLACE, &elapsed, 1, MPI_DOUBLE, MPI_MAX, comm);
    times.push_back(elapsed);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

/// Median seconds of the fused pass (with gradients) over `grouped` entries with Gaussian
/// panels of width k: rows x k for P and A, cols x k for B^T (the slowest rank's time).
inline double fused_pass_seconds(const RowGroupedEntries& grouped, std::int64_t rows, std::int64_t cols,
                                 std::int64_t k, int iters, MPI_Comm comm) {
  const std::int64_t stride = padded_stride(k);
  const auto panel = [&](std::int64_t count, std::uint32_t stream) {
    std::vector<double> x(static_cast<size_t>(count * stride), 0.0);
    for (std::int64_t i = 0; i < count; ++i)
      for (std::int64_t c = 0; c < k; ++c)
        x[static_cast<size_t>(i * stride + c)] = gaussian(5, stream, static_cast<std::uint64_t>(i * k + c));
    return x;
  };
  const std::vector<double> p = panel(rows, 1), bt = panel(cols, 2), a = panel(rows, 3);
  std::vector<double> y(p.size()), z(bt.size());
  const FusedPassPanels panels{p.data(), bt.data(), a.data(), stride};
  return median_seconds(iters, comm, [&] {
    std::fill(y.begin(), y.end(), 0.0);
    std::fill(z.begin(), z.end(), 0.0);
    fused_pass(grouped, panels, 1e-9, y.data(), z.data());
  });
}

/// The memory floor of the fused pass on this machine: the same sweep over `grouped` touching
/// the same bytes (each observation's column index and value, its B^T row read and its Z row
/// read and written back) with one independent add a double (vectorized, no dependency
/// chains), so no kernel with this data layout can take much less time. Median seconds over
/// `iters` runs.
inline double touch_floor_seconds(const RowGroupedEntries& grouped, std::int64_t cols, std::int64_t k,
                                  int iters, MPI_Comm comm) {
  constexpr std::int64_t kMaxStride = 64;
  const std::int64_t stride = std::min(padded_stride(k), kMaxStride);
  std::vector<double> bt(static_cast<size_t>(cols * stride), 1.0), z(bt.size(), 0.0);
  double sink = 0.0;
  const double seconds = median_seconds(iters, comm, [&] {
    for (std::int64_t r = 0; r < grouped.local_rows(); ++r) {
      double row[kMaxStride] = {};
      for (std::int64_t e = grouped.row_start[static_cast<size_t>(r)]; e < grouped.row_start[static_cast<size_t>(r) + 1];
           ++e) {
        const double v = grouped.value[static_cast<size_t>(e)];
        const size_t at = static_cast<size_t>(grouped.col[static_cast<size_t>(e)] * stride);
        const double* b = &bt[at];
        double* zj = &z[at];
        for (std::int64_t c = 0; c < stride; ++c) {
          row[c] += b[c];
          zj[c] += v;
        }
      }
      sink += row[0];
    }
  });
  volatile double keep = sink + z[0];  // the sweep's results are used
  (void)keep;
  return seconds;
}

/// The peak resident set of one phase, summed over the ranks: `start()` resets this process's
/// high-water mark to its current resident set (Linux: "5" to /proc/self/clear_refs), and
/// `total(comm)` reads it back (VmHWM of /proc/self/status). getrusage's peak cannot be reset,
/// so it only gives the whole run's.
class PhasePeak {
 public:
  void start() const {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
  }
  double total(MPI_Comm comm) const {
    std::ifstream status("/proc/self/status");
    std::string key;
    double kib = 0.0;
    while (status >> key) {
      if (key == "VmHWM:") {
        status >> kib;
        break;
      }
      status.ignore(1 << 20, '\n');
    }
    double mine = kib * 1024.0, sum = 0.0;
    MPI_Allreduce(&mine, &sum, 1, MPI_DOUBLE, MPI_SUM, comm);
    return sum;
  }
};

}  // namespace cdmf::bench
