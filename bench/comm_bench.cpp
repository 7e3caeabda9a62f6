// cdmf_bench_comm: the communication of one iteration of the sparse strategy, counted and
// modelled, for the scaling model in docs/scaling.md.
//
//   mpirun -n P cdmf_bench_comm [--rows 48019 --cols 1777 --entries 1e6 --width 20 --inner 3]
//
// 1. Counts every MPI collective of one evaluation with gradient (an MPI profiling layer:
//    the MPI_* calls of the library land in the wrappers below, which count and call PMPI_*)
//    on the instance given, and prints calls and bytes per communicator size.
// 2. Compares them with the analytic structure of an iteration on a Pr x Pc grid (m, n rows
//    and columns, k = width, L inner factors):
//      U panel:  allgather over the row communicator (Pc), m/Pr * k doubles in all
//      V panel:  allgather over the column communicator (Pr), n/Pc * k doubles
//      inner:    allreduce over all P of L k^2 doubles
//      Y sum:    reduction over the row communicator, m/Pr * k doubles (gather when Pc <= 4)
//      Z sum:    reduction over the column communicator, n/Pc * k doubles
//      losses:   allreduce over all P of k^2 + 2 doubles
// 3. Measures the alpha-beta parameters of this machine (ping-pong latency and bandwidth
//    between ranks 0 and 1, best of many) and the per-observation time of the evaluation,
//    and prints the modelled seconds per iteration, communication share and weak- and
//    strong-scaling efficiency for the Netflix shape (480,189 x 17,770, 1e8 entries) and a
//    10x larger problem (4,801,890 x 177,700, 1e9 entries... scaled as given by --scale) on
//    64, 256 and 1,024 ranks, each on the grid that minimizes the modelled volume.
// Collective cost model (Thakur, Rabenseifner & Gropp 2005, the algorithms Open MPI's tuned
// component uses for these sizes): allgather and gather of N bytes in all on p processes
// ceil(log2 p) alpha + (p-1)/p N beta; allreduce and reduce of n bytes 2 ceil(log2 p) alpha +
// 2 (p-1)/p n beta (Rabenseifner); broadcast as a reduce.
#include <CLI/CLI.hpp>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "cdmf/data/layout.hpp"
#include "cdmf/model/chain.hpp"
#include "cdmf/random/counter_rng.hpp"
#include "cdmf/strategy/sparse_strategy.hpp"

namespace {

/// Calls and bytes per (collective, communicator size) while counting is on.
struct Tally {
  bool on = false;
  std::map<std::pair<std::string, int>, std::pair<long, double>> calls;
  void add(const char* name, MPI_Comm comm, double bytes) {
    if (!on) return;
    int size = 1;
    PMPI_Comm_size(comm, &size);
    auto& entry = calls[{name, size}];
    entry.first += 1;
    entry.second += bytes;
  }
};
Tally tally;

double type_bytes(MPI_Datatype type) {
  int size = 0;
  PMPI_Type_size(type, &size);
  return size;
}

}  // namespace

// The profiling layer: what the library calls, counted. Bytes are the whole payload of the
// collective (the gathered total for gathers, the vector length for reductions).
extern "C" {
int MPI_Allreduce(const void* send, void* recv, int count, MPI_Datatype type, MPI_Op op,
                  MPI_Comm comm) {
  tally.add("allreduce", comm, count * type_bytes(type));
  return PMPI_Allreduce(send, recv, count, type, op, comm);
}
int MPI_Reduce(const void* send, void* recv, int count, MPI_Datatype type, MPI_Op op, int root,
               MPI_Comm comm) {
  tally.add("reduce", comm, count * type_bytes(type));
  return PMPI_Reduce(send, recv, count, type, op, root, comm);
}
int MPI_Bcast(void* data, int count, MPI_Datatype type, int root, MPI_Comm comm) {
  tally.add("bcast", comm, count * type_bytes(type));
  return PMPI_Bcast(data, count, type, root, comm);
}
int MPI_Gather(const void* send, int send_count, MPI_Datatype send_type, void* recv,
               int recv_count, MPI_Datatype recv_type, int root, MPI_Comm comm) {
  int size = 1;
  PMPI_Comm_size(comm, &size);
  tally.add("gather", comm, static_cast<double>(size) * send_count * type_bytes(send_type));
  return PMPI_Gather(send, send_count, send_type, recv, recv_count, recv_type, root, comm);
}
int MPI_Allgather(const void* send, int send_count, MPI_Datatype send_type, void* recv,
                  int recv_count, MPI_Datatype recv_type, MPI_Comm comm) {
  int size = 1;
  PMPI_Comm_size(comm, &size);
  tally.add("allgather", comm, static_cast<double>(size) * send_count * type_bytes(send_type));
  return PMPI_Allgather(send, send_count, send_type, recv, recv_count, recv_type, comm);
}
int MPI_Allgatherv(const void* send, int send_count, MPI_Datatype send_type, void* recv,
                   const int* recv_counts, const int* displs, MPI_Datatype recv_type,
                   MPI_Comm comm) {
  int size = 1;
  PMPI_Comm_size(comm, &size);
  double total = 0.0;
  for (int q = 0; q < size; ++q) total += recv_counts[q];
  tally.add("allgather", comm, total * type_bytes(recv_type));
  return PMPI_Allgatherv(send, send_count, send_type, recv, recv_counts, displs, recv_type, comm);
}
}

namespace {

double log2_ceil(double p) { return p <= 1.0 ? 0.0 : std::ceil(std::log2(p)); }

struct AlphaBeta {
  double alpha = 0.0;  // seconds per message
  double beta = 0.0;   // seconds per byte
};

/// Seconds of a collective of `bytes` on `p` processes.
double collective_seconds(const std::string& kind, double p, double bytes, AlphaBeta ab) {
  if (p <= 1.0) return 0.0;
  const double share = (p - 1.0) / p;
  if (kind == "allgather" || kind == "gather")
    return log2_ceil(p) * ab.alpha + share * bytes * ab.beta;
  return 2.0 * log2_ceil(p) * ab.alpha + 2.0 * share * bytes * ab.beta;  // (all)reduce, bcast
}

/// One iteration's collectives by the analytic structure (kind, processes, bytes).
struct Collective {
  std::string what, kind;
  double processes, bytes;
};
std::vector<Collective> iteration_collectives(double m, double n, double k, int inner, double pr,
                                              double pc) {
  const double p = pr * pc;
  // Y and Z: summed by gather (+ additions) on up to four processes, reduce beyond.
  const std::string y_kind = pc <= 4 ? "gather" : "reduce";
  const std::string z_kind = pr <= 4 ? "gather" : "reduce";
  return {{"U panel", "allgather", pc, 8.0 * m / pr * k},
          {"V panel", "allgather", pr, 8.0 * n / pc * k},
          {"inner factors", "allreduce", p, 8.0 * inner * k * k},
          {"Y sum", y_kind, pc, 8.0 * m / pr * k * (y_kind == "gather" ? pc : 1.0)},
          {"Z sum", z_kind, pr, 8.0 * n / pc * k * (z_kind == "gather" ? pr : 1.0)},
          {"losses and A^T Y", "allreduce", p, 8.0 * (k * k + 2.0)}};
}

/// Ping-pong between ranks 0 and 1: the best half round trip of `bytes` over `repeats`.
double ping_pong_seconds(double bytes, int repeats, MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  std::vector<char> buffer(static_cast<size_t>(bytes), 1);
  double best = 1e300;
  for (int r = 0; r < repeats; ++r) {
    MPI_Barrier(comm);
    const double t0 = MPI_Wtime();
    if (rank == 0) {
      MPI_Send(buffer.data(), static_cast<int>(bytes), MPI_CHAR, 1, 0, comm);
      MPI_Recv(buffer.data(), static_cast<int>(bytes), MPI_CHAR, 1, 0, comm, MPI_STATUS_IGNORE);
    } else if (rank == 1) {
      MPI_Recv(buffer.data(), static_cast<int>(bytes), MPI_CHAR, 0, 0, comm, MPI_STATUS_IGNORE);
      MPI_Send(buffer.data(), static_cast<int>(bytes), MPI_CHAR, 0, 0, comm);
    }
    best = std::min(best, (MPI_Wtime() - t0) / 2.0);
  }
  MPI_Bcast(&best, 1, MPI_DOUBLE, 0, comm);
  return best;
}

/// This rank's entries of an m x n problem: `entries` / P draws of (local row, local column)
/// pairs of its own block, deduplicated and sorted by (row, column).
cdmf::Observations draw_entries(const cdmf::ProcessGrid& grid, const cdmf::IndexLayout& layout,
                                std::int64_t m, std::int64_t n, double entries) {
  const cdmf::CyclicDim rows{m, layout.block(), grid.rows(), grid.my_row()};
  const cdmf::CyclicDim cols{n, layout.block(), grid.cols(), grid.my_col()};
  const auto draws = static_cast<std::int64_t>(entries / grid.size());
  std::vector<std::pair<std::int64_t, std::int64_t>> pairs;
  pairs.reserve(static_cast<size_t>(draws));
  for (std::int64_t e = 0; e < draws && rows.count() > 0 && cols.count() > 0; ++e) {
    const std::uint64_t key = static_cast<std::uint64_t>(grid.rank()) << 40 | static_cast<std::uint64_t>(e);
    const auto li = static_cast<std::int64_t>(cdmf::uniform_open(3, 1, key) * rows.count());
    const auto lj = static_cast<std::int64_t>(cdmf::uniform_open(3, 2, key) * cols.count());
    pairs.emplace_back(rows.global(std::min(li, rows.count() - 1)),
                       cols.global(std::min(lj, cols.count() - 1)));
  }
  std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  cdmf::Observations obs;
  for (const auto& [i, j] : pairs) {
    obs.rows.push_back(i);
    obs.cols.push_back(j);
    obs.values.push_back(cdmf::gaussian(3, 3, static_cast<std::uint64_t>(i * n + j)));
  }
  std::int64_t local = static_cast<std::int64_t>(obs.size());
  MPI_Allreduce(&local, &obs.global_count, 1, MPI_INT64_T, MPI_SUM, grid.comm());
  return obs;
}

/// The grid of `p` processes that minimizes the modelled communication time.
std::pair<double, double> best_grid(double m, double n, double k, int inner, double p,
                                    AlphaBeta ab) {
  std::pair<double, double> best{1.0, p};
  double best_seconds = 1e300;
  for (double pr = 1.0; pr <= p; pr *= 2.0) {
    const double pc = p / pr;
    double seconds = 0.0;
    for (const Collective& c : iteration_collectives(m, n, k, inner, pr, pc))
      seconds += collective_seconds(c.kind, c.processes, c.bytes, ab);
    if (seconds < best_seconds) {
      best_seconds = seconds;
      best = {pr, pc};
    }
  }
  return best;
}

}  // namespace

/// Modelled seconds of one iteration: compute (per-observation time over the ranks) and
/// communication on the best grid.
struct Modelled {
  double pr, pc, compute, communication;
};
Modelled model_iteration(double m, double n, double entries, double k, int inner, double p,
                         double seconds_per_observation, AlphaBeta ab) {
  const auto [pr, pc] = best_grid(m, n, k, inner, p, ab);
  double communication = 0.0;
  for (const Collective& c : iteration_collectives(m, n, k, inner, pr, pc))
    communication += collective_seconds(c.kind, c.processes, c.bytes, ab);
  return {pr, pc, seconds_per_observation * entries / p, communication};
}

int main(int argc, char** argv) {
  cdmf::Environment environment(&argc, &argv);
  CLI::App app{"cdmf_bench_comm: communication of a sparse-strategy iteration, counted and modelled"};
  std::int64_t m = 48019, n = 1777;
  double entries = 1e6, ns_per_observation = 0.0;
  int width = 20, inner = 3, iters = 10;
  std::string grid_text;
  double alpha_us = 0.0, bandwidth_gbs = 0.0;
  app.add_option("--alpha-us", alpha_us,
                 "latency per message for the model, microseconds (default: measured here)");
  app.add_option("--bandwidth-gbs", bandwidth_gbs,
                 "bandwidth per process for the model, GB/s (default: measured here)");
  app.add_option("--rows", m, "m of the measured instance")->capture_default_str();
  app.add_option("--cols", n, "n of the measured instance")->capture_default_str();
  app.add_option("--entries", entries, "observed entries of the measured instance")->capture_default_str();
  app.add_option("--width", width, "chain width k (2 rhat)")->capture_default_str();
  app.add_option("--inner", inner, "inner factors L")->capture_default_str();
  app.add_option("--iters", iters, "timed evaluations (median)")->capture_default_str();
  app.add_option("--grid", grid_text, "process grid PrxPc (default near-square)");
  app.add_option("--ns-per-observation", ns_per_observation,
                 "compute time per observation per core for the model (default: measured here)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  int ranks = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  cdmf::ProcessGrid grid = grid_text.empty()
                               ? cdmf::ProcessGrid(MPI_COMM_WORLD)
                               : cdmf::ProcessGrid(MPI_COMM_WORLD, cdmf::parse_grid_shape(grid_text, ranks));
  const bool root = grid.is_root();
  const std::int64_t k = width;
  cdmf::IndexLayout layout(m, n, cdmf::choose_block_size(m, n, grid), 1);
  const cdmf::Observations obs = draw_entries(grid, layout, m, n, entries);
  const cdmf::Chain chain = cdmf::bench::compressed_shape_chain(grid, layout, m, n, k, inner);
  cdmf::SparseStrategy strategy(obs, nullptr, std::nullopt, std::nullopt, double(m) * double(n));
  std::vector<cdmf::DistMatrix> gradient;
  strategy.evaluate(chain, &gradient, false);  // warm-up: groups the entries, shapes panels
  tally.on = true;
  strategy.evaluate(chain, &gradient, false);
  tally.on = false;
  const double seconds = cdmf::bench::median_seconds(
      iters, grid.comm(), [&] { strategy.evaluate(chain, &gradient, false); });
  const double measured_per_observation = seconds * grid.size() / static_cast<double>(obs.global_count);
  const double per_observation =
      ns_per_observation > 0.0 ? ns_per_observation * 1e-9 : measured_per_observation;

  if (root) {
    std::printf("instance %lld x %lld, %lld entries, k %lld, %d inner; %d ranks, grid %dx%d\n",
                static_cast<long long>(m), static_cast<long long>(n),
                static_cast<long long>(obs.global_count), static_cast<long long>(k), inner,
                grid.size(), grid.rows(), grid.cols());
    std::printf("evaluation with gradient: %.6f s (median of %d), %.2f ns per observation per core\n",
                seconds, iters, measured_per_observation * 1e9);
    std::printf("counted collectives of one evaluation (rank 0):\n");
    double counted = 0.0;
    for (const auto& [key, value] : tally.calls) {
      std::printf("  %-10s on %4d processes: %3ld calls, %12.0f bytes\n", key.first.c_str(),
                  key.second, value.first, value.second);
      if (key.second > 1) counted += value.second;
    }
    double modelled = 0.0;
    std::printf("analytic structure on this grid:\n");
    for (const Collective& c : iteration_collectives(double(m), double(n), double(k), inner,
                                                     grid.rows(), grid.cols())) {
      std::printf("  %-17s %-10s on %4.0f processes: %12.0f bytes\n", c.what.c_str(),
                  c.kind.c_str(), c.processes, c.bytes);
      if (c.processes > 1.0) modelled += c.bytes;
    }
    std::printf("bytes on more than one process: counted %.0f, analytic %.0f\n", counted, modelled);
  }
  if (grid.size() < 2) return 0;

  // alpha: the best half round trip of 8 bytes; beta: of 4 MB, less alpha, per byte.
  AlphaBeta ab;
  ab.alpha = ping_pong_seconds(8.0, 2000, grid.comm());
  ab.beta = (ping_pong_seconds(4e6, 50, grid.comm()) - ab.alpha) / 4e6;
  if (!root) return 0;
  std::printf("measured: alpha %.2f us, 1/beta %.2f GB/s (ping-pong between ranks 0 and 1, best of 2000 and 50)\n",
              ab.alpha * 1e6, 1e-9 / ab.beta);
  if (alpha_us > 0.0) ab.alpha = alpha_us * 1e-6;
  if (bandwidth_gbs > 0.0) ab.beta = 1e-9 / bandwidth_gbs;
  std::printf("model: alpha %.2f us, 1/beta %.2f GB/s%s\n", ab.alpha * 1e6, 1e-9 / ab.beta,
              alpha_us > 0.0 || bandwidth_gbs > 0.0 ? " (given)" : " (measured)");
  std::printf("model: %.2f ns per observation per core%s\n", per_observation * 1e9,
              ns_per_observation > 0.0 ? " (given)" : " (measured above)");
  struct Problem {
    const char* name;
    double m, n, entries;
  };
  const Problem problems[] = {{"netflix", 480189.0, 17770.0, 1e8},
                              {"netflix-x10", 4801890.0, 177700.0, 1e9}};
  std::printf("%-12s %6s %9s %12s %12s %10s %10s %12s\n", "problem", "ranks", "grid", "compute s",
              "comm s", "comm %", "strong eff", "weak eff");
  for (const Problem& problem : problems) {
    const double serial = per_observation * problem.entries;
    // Weak scaling: users (m) and entries grow with the ranks from the instance on 2 ranks.
    const Modelled base = model_iteration(problem.m, problem.n, problem.entries, double(k), inner,
                                          2.0, per_observation, ab);
    for (double p : {2.0, 8.0, 64.0, 256.0, 1024.0}) {
      const Modelled it = model_iteration(problem.m, problem.n, problem.entries, double(k), inner,
                                          p, per_observation, ab);
      const Modelled weak = model_iteration(problem.m * p / 2.0, problem.n,
                                            problem.entries * p / 2.0, double(k), inner, p,
                                            per_observation, ab);
      const double total = it.compute + it.communication;
      std::printf("%-12s %6.0f %4.0fx%-4.0f %12.6f %12.6f %10.1f %10.2f %12.2f\n", problem.name, p,
                  it.pr, it.pc, it.compute, it.communication, 100.0 * it.communication / total,
                  serial / (p * total),
                  (base.compute + base.communication) / (weak.compute + weak.communication));
    }
  }
  return 0;
}
