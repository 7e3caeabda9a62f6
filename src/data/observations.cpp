#include "cdmf/data/observations.hpp"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <memory>

#include <sys/mman.h>
#include <unistd.h>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "cdmf/linalg/dist_matrix.hpp"

namespace cdmf {

namespace {
// One entry on its way to its owner: permuted indices, value, and its source line for
// messages.
// Indices fit 32 bits (layout.hpp's kMaxDimension): 24 bytes a record, not 32.
struct Record {
  std::int32_t row;
  std::int32_t col;
  double value;
  std::int64_t line;
};
static_assert(sizeof(Record) == 24, "records are packed as 24 bytes");

// The MPI datatype of one Record, as raw bytes (all ranks run the same binary).
class RecordType {
 public:
  RecordType() {
    check_mpi(MPI_Type_contiguous(sizeof(Record), MPI_BYTE, &type_), "MPI_Type_contiguous");
    check_mpi(MPI_Type_commit(&type_), "MPI_Type_commit");
  }
  ~RecordType() { MPI_Type_free(&type_); }
  RecordType(const RecordType&) = delete;
  RecordType& operator=(const RecordType&) = delete;
  MPI_Datatype get() const { return type_; }

 private:
  MPI_Datatype type_ = MPI_DATATYPE_NULL;
};

// Returns the whole pages inside [begin, end) to the system (their contents are never read
// again; the array itself is freed whole later). Returns where the released pages end (`begin`
// when none was whole), so that a caller releasing an array in steps continues from there.
const void* release_pages(const void* begin, const void* end) {
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const std::uintptr_t first = (reinterpret_cast<std::uintptr_t>(begin) + page - 1) / page * page;
  const std::uintptr_t last = reinterpret_cast<std::uintptr_t>(end) / page * page;
  if (last <= first) return begin;
  ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  return reinterpret_cast<const void*>(last);
}

// The pages of `v`'s storage beyond its first `keep` elements.
template <typename T>
void release_pages_from(std::vector<T>& v, size_t keep) {
  release_pages(v.data() + keep, v.data() + v.size());
}

std::string where(const std::string& file, std::int64_t line) {
  return fmt::format("{}:{}", file.empty() ? "observations" : file, line);
}

void check_in_range(std::int64_t index, std::int64_t count, const char* what, const char* dimension,
                    const std::string& file, std::int64_t line) {
  if (index < 0 || index >= count)
    fail("{}: {} index {} (counting from 0) outside 0..{} (the matrix has {} {})", where(file, line),
         what, index, count - 1, count, dimension);
}

std::vector<int> displacements(const std::vector<int>& counts) {
  std::vector<int> offsets(counts.size(), 0);
  for (size_t r = 1; r < counts.size(); ++r) offsets[r] = offsets[r - 1] + counts[r - 1];
  return offsets;
}

// Sorts this rank's records by (row, column) in place, in two levels: an in-place radix
// partition into at most 1,024 ranges of local rows (each record moved once to its range's next
// free slot; with so few ranges those slots stay in cache, so the moves run at memory speed),
// then a sort of each range in cache (~50,000 records at 1e8 entries on 2 ranks). In place, so
// that the records (24 bytes an entry) are the only per-entry array at this point: a scatter
// into a second array (16 bytes an entry) made this the peak of the whole run (40.8 bytes an
// entry at 1e8 on 2 ranks, docs/scale.md), and a one-level in-place partition into every local
// row (240,000) took 4x as long as that scatter, a cache miss per move.
void sort_by_row_and_column(Record* records, size_t n, const CyclicDim& rows) {
  const auto local_rows = static_cast<size_t>(std::max<std::int64_t>(rows.count(), 1));
  const size_t ranges = std::min<size_t>(1024, local_rows);
  const size_t rows_per_range = (local_rows + ranges - 1) / ranges;
  const auto range_of = [&](const Record& record) {
    return static_cast<size_t>(rows.local(record.row)) / rows_per_range;
  };
  std::vector<size_t> start(ranges + 1, 0);
  for (size_t k = 0; k < n; ++k) ++start[range_of(records[k]) + 1];
  for (size_t r = 1; r <= ranges; ++r) start[r] += start[r - 1];
  std::vector<size_t> next(start.begin(), start.end() - 1);
  for (size_t r = 0; r < ranges; ++r) {
    while (next[r] < start[r + 1]) {
      Record moving = records[next[r]];
      // Carry `moving` to its range's next free slot, taking the record found there, until one
      // belongs to range r.
      for (size_t target = range_of(moving); target != r; target = range_of(moving))
        std::swap(moving, records[next[target]++]);
      records[next[r]++] = moving;
    }
  }
  for (size_t r = 0; r < ranges; ++r)
    std::sort(records + start[r], records + start[r + 1], [](const Record& a, const Record& b) {
      return a.row != b.row ? a.row < b.row : a.col < b.col;
    });
}

// distribute(); `consumed`, when given, is `entries` itself, emptied once its entries are
// packed for the exchange.
Observations distribute_entries(const ProcessGrid& grid, const EntryList& entries,
                                const IndexLayout& layout, EntryList* consumed,
                                std::int64_t round_entries) {
  fail_if(round_entries < 1, "distribute: rounds of {} entries", round_entries);
  const MPI_Comm comm = grid.comm();
  const std::string file = entries.file;  // `entries` may be emptied below
  const size_t ranks = static_cast<size_t>(grid.size());
  const size_t n = entries.size();
  const auto owner = [&](size_t k) {
    return static_cast<size_t>(layout.owner(grid, layout.permuted_row(entries.rows[k]),
                                            layout.permuted_col(entries.cols[k])));
  };

  // Check on the rank that parsed the entry, which still knows its line; count by owner.
  std::vector<int> send_counts(ranks, 0);
  run_agreed(comm, [&] {
    fail_if(entries.rows.size() != n || entries.cols.size() != n || entries.lines.size() != n,
            "{}: inconsistent entry list ({} rows, {} cols, {} values, {} lines)", file,
            entries.rows.size(), entries.cols.size(), n, entries.lines.size());
    for (size_t k = 0; k < n; ++k) {
      check_in_range(entries.rows[k], layout.rows(), "row", "rows", file, entries.lines[k]);
      check_in_range(entries.cols[k], layout.cols(), "column", "columns", file,
                     entries.lines[k]);
      ++send_counts[owner(k)];
    }
  });
  std::vector<int> recv_counts(ranks, 0);
  check_mpi(MPI_Alltoall(send_counts.data(), 1, MPI_INT, recv_counts.data(), 1, MPI_INT, comm),
            "MPI_Alltoall");
  std::int64_t incoming_total = 0;
  for (int count : recv_counts) incoming_total += count;
  run_agreed(comm, [&] {
    fail_if(incoming_total > INT_MAX, "{}: {} entries for one rank exceed MPI's int counts",
            file, incoming_total);
  });

  // The exchange runs in rounds of at most `round_entries` entries a rank, taken from the end of
  // the list. When the list is consumed, the pages of what each round packed go back to the
  // system at once, so the parsed list (32 bytes an entry) and the received records (24) are
  // never both whole in memory (docs/scale.md, memory). Records are written before they are
  // read: no zero-filling.
  std::unique_ptr<Record[]> incoming(new Record[static_cast<size_t>(incoming_total)]);
  const std::int64_t my_rounds = (static_cast<std::int64_t>(n) + round_entries - 1) / round_entries;
  std::int64_t rounds = 0;
  check_mpi(MPI_Allreduce(&my_rounds, &rounds, 1, MPI_INT64_T, MPI_MAX, comm), "MPI_Allreduce");
  std::unique_ptr<Record[]> outgoing(new Record[static_cast<size_t>(std::min<std::int64_t>(
      std::max<std::int64_t>(static_cast<std::int64_t>(n), 1), round_entries))]);
  const RecordType record_type;
  std::int64_t received = 0;
  for (std::int64_t round = 0; round < rounds; ++round) {
    const size_t hi = static_cast<size_t>(std::max<std::int64_t>(static_cast<std::int64_t>(n) - round * round_entries, 0));
    const size_t lo = static_cast<size_t>(std::max<std::int64_t>(static_cast<std::int64_t>(hi) - round_entries, 0));
    std::vector<int> round_counts(ranks, 0);
    for (size_t k = lo; k < hi; ++k) ++round_counts[owner(k)];
    const std::vector<int> round_offsets = displacements(round_counts);
    std::vector<int> fill = round_offsets;
    for (size_t k = lo; k < hi; ++k)
      outgoing[static_cast<size_t>(fill[owner(k)]++)] = {
          static_cast<std::int32_t>(layout.permuted_row(entries.rows[k])),
          static_cast<std::int32_t>(layout.permuted_col(entries.cols[k])), entries.values[k],
          entries.lines[k]};
    if (consumed) {
      release_pages_from(consumed->rows, lo);
      release_pages_from(consumed->cols, lo);
      release_pages_from(consumed->values, lo);
      release_pages_from(consumed->lines, lo);
    }
    std::vector<int> round_received(ranks, 0);
    check_mpi(MPI_Alltoall(round_counts.data(), 1, MPI_INT, round_received.data(), 1, MPI_INT, comm),
              "MPI_Alltoall");
    const std::vector<int> received_offsets = displacements(round_received);
    check_mpi(MPI_Alltoallv(outgoing.get(), round_counts.data(), round_offsets.data(), record_type.get(),
                            incoming.get() + received, round_received.data(), received_offsets.data(),
                            record_type.get(), comm),
              "MPI_Alltoallv");
    for (int count : round_received) received += count;
  }
  outgoing.reset();
  if (consumed) *consumed = EntryList{};

  const size_t count = static_cast<size_t>(incoming_total);
  const CyclicDim row_dim{layout.rows(), layout.block(), grid.rows(), grid.my_row()};
  sort_by_row_and_column(incoming.get(), count, row_dim);
  run_agreed(comm, [&] {
    for (size_t k = 1; k < count; ++k) {
      if (incoming[k - 1].row != incoming[k].row || incoming[k - 1].col != incoming[k].col) continue;
      // The two earliest lines of the first repeated entry, as a sort by line would pair them.
      std::int64_t first = INT64_MAX, second = INT64_MAX;
      for (size_t d = k - 1; d < count && incoming[d].row == incoming[k].row && incoming[d].col == incoming[k].col;
           ++d) {
        const std::int64_t line = incoming[d].line;
        if (line < first) {
          second = first;
          first = line;
        } else if (line < second) {
          second = line;
        }
      }
      fail("{}: duplicate entry ({}, {}), also at line {}", where(file, second),
           layout.original_row(incoming[k].row), layout.original_col(incoming[k].col), first);
    }
  });
  // The observations (16 bytes an entry) are filled from the records in order, and the records'
  // pages go back to the system behind the fill, so the two are never both whole.
  Observations observations;
  observations.rows.reserve(count);
  observations.cols.reserve(count);
  observations.values.reserve(count);
  constexpr size_t kReleaseEvery = size_t{1} << 18;
  const void* released = incoming.get();
  for (size_t k = 0; k < count; ++k) {
    observations.rows.push_back(incoming[k].row);
    observations.cols.push_back(incoming[k].col);
    observations.values.push_back(incoming[k].value);
    if ((k + 1) % kReleaseEvery == 0) released = release_pages(released, incoming.get() + k + 1);
  }
  incoming.reset();
  const std::int64_t local = static_cast<std::int64_t>(count);
  check_mpi(MPI_Allreduce(&local, &observations.global_count, 1, MPI_INT64_T, MPI_SUM, comm),
            "MPI_Allreduce");
  return observations;
}
}  // namespace

std::vector<double> Observations::targets() const {
  std::vector<double> result(values);
  for (size_t e = 0; e < offsets.size(); ++e) result[e] -= offsets[e];
  return result;
}

Observations distribute(const ProcessGrid& grid, const EntryList& entries,
                        const IndexLayout& layout) {
  return distribute_entries(grid, entries, layout, nullptr, kDistributeRoundEntries);
}

Observations distribute(const ProcessGrid& grid, EntryList&& entries, const IndexLayout& layout,
                        std::int64_t round_entries) {
  return distribute_entries(grid, entries, layout, &entries, round_entries);
}

}  // namespace cdmf
