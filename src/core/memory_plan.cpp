#include "cdmf/core/memory_plan.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "cdmf/core/error.hpp"

namespace cdmf {
namespace {

/// MemAvailable of /proc/meminfo in bytes; infinity when unreadable (not Linux).
double mem_available_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  double kib = 0.0;
  std::string unit;
  while (meminfo >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024.0;
  return std::numeric_limits<double>::infinity();
}

/// Bytes the cgroup (v2, else v1) still allows this process's group; infinity without a limit.
double cgroup_headroom_bytes() {
  const auto read_number = [](const char* path) {
    std::ifstream file(path);
    std::string text;
    if (!(file >> text) || text == "max") return std::numeric_limits<double>::infinity();
    try {
      return std::stod(text);
    } catch (const std::exception&) {
      return std::numeric_limits<double>::infinity();
    }
  };
  double limit = read_number("/sys/fs/cgroup/memory.max");
  double used = read_number("/sys/fs/cgroup/memory.current");
  if (std::isinf(limit)) {
    limit = read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    used = read_number("/sys/fs/cgroup/memory/memory.usage_in_bytes");
  }
  // v1 reports "no limit" as a huge page-rounded number.
  if (std::isinf(limit) || limit > 1e18) return std::numeric_limits<double>::infinity();
  return std::max(0.0, limit - (std::isinf(used) ? 0.0 : used));
}

/// Owned communicator of the ranks sharing this node's memory.
class NodeComm {
 public:
  explicit NodeComm(MPI_Comm comm) {
    check_mpi(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &comm_),
              "MPI_Comm_split_type");
  }
  ~NodeComm() {
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }
  NodeComm(const NodeComm&) = delete;
  NodeComm& operator=(const NodeComm&) = delete;
  int size() const {
    int size = 1;
    MPI_Comm_size(comm_, &size);
    return size;
  }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

}  // namespace

std::string byte_text(double bytes) {
  static const char* const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  int unit = 0;
  while (bytes >= 1000.0 && unit < 6) {
    bytes /= 1000.0;
    ++unit;
  }
  return unit == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, units[unit]);
}

double parse_byte_size(const std::string& text, const std::string& what) {
  std::size_t used = 0;
  double value = std::numeric_limits<double>::quiet_NaN();
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string suffix = text.substr(std::min(used, text.size()));
  for (char& c : suffix) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (suffix.size() == 2 && suffix[1] == 'B') suffix.resize(1);
  double scale = 0.0;
  if (suffix.empty() || suffix == "B") scale = 1.0;
  if (suffix == "K") scale = 1e3;
  if (suffix == "M") scale = 1e6;
  if (suffix == "G") scale = 1e9;
  if (suffix == "T") scale = 1e12;
  fail_if(used == 0 || scale == 0.0 || !std::isfinite(value) || value <= 0.0,
          "{} '{}' is not a positive size (e.g. 8G, 512M, 2e9)", what, text);
  return value * scale;
}

MemoryBudget memory_budget(MPI_Comm comm, double limit_bytes) {
  const NodeComm node(comm);
  MemoryBudget budget;
  budget.ranks_per_node = node.size();
  const double machine = std::min(mem_available_bytes(), cgroup_headroom_bytes());
  double mine = machine / budget.ranks_per_node;
  if (limit_bytes > 0.0 && limit_bytes < mine) mine = limit_bytes;
  double smallest = mine;
  check_mpi(MPI_Allreduce(&mine, &smallest, 1, MPI_DOUBLE, MPI_MIN, comm), "MPI_Allreduce");
  budget.per_rank_bytes = smallest;
  if (limit_bytes > 0.0 && limit_bytes <= machine / budget.ranks_per_node)
    budget.source = fmt::format("--memory-limit {}", byte_text(limit_bytes));
  else
    budget.source = fmt::format("{} available on the node / {} rank{} there", byte_text(machine),
                                budget.ranks_per_node, budget.ranks_per_node == 1 ? "" : "s");
  return budget;
}

void MemoryPlan::add(std::string item, double distributed, double replicated, double imbalance) {
  items_.push_back({std::move(item), distributed, replicated, imbalance});
}

double MemoryPlan::per_rank_bytes(int ranks) const {
  double total = 0.0;
  for (const Item& item : items_)
    total += item.distributed / ranks * item.imbalance + item.replicated;
  return total;
}

std::int64_t MemoryPlan::ranks_that_fit(double per_rank_budget) const {
  double distributed = 0.0, replicated = 0.0;
  for (const Item& item : items_) {
    distributed += item.distributed * item.imbalance;
    replicated += item.replicated;
  }
  if (replicated >= per_rank_budget) return 0;
  const double ranks = std::ceil(distributed / (per_rank_budget - replicated));
  return ranks > 9e18 ? 0 : std::max<std::int64_t>(1, static_cast<std::int64_t>(ranks));
}

void MemoryPlan::check(MPI_Comm comm, const MemoryBudget& budget) const {
  int ranks = 1;
  MPI_Comm_size(comm, &ranks);
  const double need = per_rank_bytes(ranks);
  if (need <= budget.per_rank_bytes) return;  // the same on every rank: no agreement needed
  // The three largest items say where the memory goes.
  std::vector<std::pair<double, std::string>> parts;
  for (const Item& item : items_)
    parts.emplace_back(item.distributed / ranks * item.imbalance + item.replicated, item.name);
  std::sort(parts.begin(), parts.end(), std::greater<>());
  std::ostringstream largest;
  for (std::size_t i = 0; i < parts.size() && i < 3; ++i)
    largest << (i ? ", " : "") << parts[i].second << " " << byte_text(parts[i].first);
  const std::int64_t fit = ranks_that_fit(budget.per_rank_bytes);
  const std::string advice =
      fit > 0 ? fmt::format("it would fit on {} ranks with this much memory each", fit)
              : std::string("no rank count fits: the part every rank holds alone exceeds it");
  fail("{} needs {} per rank on {} rank{} ({}) but {} is available per rank ({}); {}", what_,
       byte_text(need), ranks, ranks == 1 ? "" : "s", largest.str(),
       byte_text(budget.per_rank_bytes), budget.source, advice);
}

double peak_resident_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) * 1024.0;  // kilobytes on Linux
}

PeakMemory peak_memory(MPI_Comm comm) {
  const double mine = peak_resident_bytes();
  PeakMemory peak;
  check_mpi(MPI_Allreduce(&mine, &peak.max_rank, 1, MPI_DOUBLE, MPI_MAX, comm), "MPI_Allreduce");
  check_mpi(MPI_Allreduce(&mine, &peak.total, 1, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  return peak;
}

}  // namespace cdmf
