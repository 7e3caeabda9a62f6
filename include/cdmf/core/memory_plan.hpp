#pragma once
/// Memory planning: every path that allocates in proportion to the problem first states what
/// it will allocate, and a plan that cannot fit stops the run at once with one line (what
/// needs how much, what is available, and the rank count that would fit), instead of an OOM
/// kill or a bare std::bad_alloc after minutes of work.
///
/// A plan is a list of items, each with bytes split over the ranks (`distributed`: a block of
/// a distributed matrix, a share of the entries) and bytes every rank holds (`replicated`: a
/// k x k core, a panel of a thin factor). The need of the busiest rank at P ranks is
/// distributed / P * imbalance + replicated.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace cdmf {

/// What one process may allocate, and where that figure comes from.
struct MemoryBudget {
  double per_rank_bytes = 0.0;  ///< bytes this rank may use
  int ranks_per_node = 1;       ///< ranks sharing this node's memory
  std::string source;           ///< e.g. "MemAvailable 22.1 GB / 2 ranks on the node"
};

/// Collective over `comm`. `limit_bytes` > 0 (--memory-limit, per rank) caps the budget;
/// otherwise each rank may use the node's available memory (the smaller of MemAvailable in
/// /proc/meminfo and the cgroup limit) divided by the ranks on its node. The budget is the
/// smallest over all ranks.
MemoryBudget memory_budget(MPI_Comm comm, double limit_bytes = 0.0);

/// "12.3 GB", "45.6 MB", "789 B" (decimal units, as `free -h --si`).
std::string byte_text(double bytes);

/// Parses a size such as "8G", "512M", "1.5GB", "2e9" (decimal units, K/M/G/T); throws Error
/// naming `what` (e.g. "--memory-limit") on anything else.
double parse_byte_size(const std::string& text, const std::string& what);

class MemoryPlan {
 public:
  /// `what` names the work in the error message, e.g. "train --model deep (480189 x 17770)".
  explicit MemoryPlan(std::string what) : what_(std::move(what)) {}

  /// Adds an item: `distributed` bytes split over the ranks (times `imbalance`, the busiest
  /// rank's share relative to an even one), plus `replicated` bytes on every rank.
  void add(std::string item, double distributed, double replicated = 0.0,
           double imbalance = 1.0);

  /// Bytes the busiest rank needs when the plan runs on `ranks` processes.
  double per_rank_bytes(int ranks) const;
  /// The smallest rank count at which the busiest rank fits in `per_rank_budget`; 0 when no
  /// rank count does (the replicated part alone does not fit).
  std::int64_t ranks_that_fit(double per_rank_budget) const;

  /// Collective over `comm`: throws the same Error on every rank when the plan does not fit
  /// `budget` at the communicator's size. The message is one line: the need per rank with its
  /// largest items, the budget and where it comes from, and the rank count that would fit.
  void check(MPI_Comm comm, const MemoryBudget& budget) const;

 private:
  struct Item {
    std::string name;
    double distributed, replicated, imbalance;
  };
  std::string what_;
  std::vector<Item> items_;
};

/// The peak resident set of this process so far (getrusage), in bytes.
double peak_resident_bytes();

/// Collective: the largest and the summed peak resident set over `comm`.
struct PeakMemory {
  double max_rank = 0.0, total = 0.0;
};
PeakMemory peak_memory(MPI_Comm comm);

}  // namespace cdmf
