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

// Returns the pages of `v`'s storage beyond its first `keep` elements to the system: their
// contents are never read again, and the vector itself is freed whole later.
template <typename T>
void release_pages_from(std::vector<T>& v, size_t keep) {
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const std::uintptr_t begin = (reinterpret_cast<std::uintptr_t>(v.data() + keep) + page - 1) / page * page;
  const std::uintptr_t end = reinterpret_cast<std::uintptr_t>(v.data() + v.size()) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
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

// A received record in its local row: key = local column << 32 | position among the records
// (so sorting keys orders a row by column and keeps equal entries in arrival order), value.
struct RowEntry {
  std::uint64_t key;
  double value;
};

// The records of this rank grouped by local row, each row sorted by column: one histogram
// pass and one scatter pass read the records in order, and each row is then sorted in cache.
// (An indirect sort of all records read a random record per step: 65 s at 5e7 records a rank.)
std::unique_ptr<RowEntry[]> group_by_local_row(const Record* records, size_t n,
                                               const CyclicDim& rows, const CyclicDim& cols,
                                               std::vector<std::int64_t>& row_start) {
  row_start.assign(static_cast<size_t>(rows.count()) + 1, 0);
  for (size_t k = 0; k < n; ++k) ++row_start[static_cast<size_t>(rows.local(records[k].row)) + 1];
  for (size_t r = 1; r < row_start.size(); ++r) row_start[r] += row_start[r - 1];
  std::unique_ptr<RowEntry[]> grouped(new RowEntry[n]);
  std::vector<std::int64_t> next(row_start.begin(), row_start.end() - 1);
  for (size_t k = 0; k < n; ++k) {
    const Record& record = records[k];
    const auto column = static_cast<std::uint64_t>(cols.local(record.col));
    grouped[static_cast<size_t>(next[static_cast<size_t>(rows.local(record.row))]++)] = {
        column << 32 | static_cast<std::uint64_t>(k), record.value};
  }
  for (size_t r = 0; r + 1 < row_start.size(); ++r)
    std::sort(grouped.get() + row_start[r], grouped.get() + row_start[r + 1],
              [](const RowEntry& a, const RowEntry& b) { return a.key < b.key; });
  return grouped;
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
  // never both whole in memory: at 1e8 entries on 2 ranks the peak fell from 56.7 to 49.2 bytes
  // an entry (43.9 at the margin, docs/scale.md). Records are written before they are read: no
  // zero-filling.
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
  const CyclicDim col_dim{layout.cols(), layout.block(), grid.cols(), grid.my_col()};
  std::vector<std::int64_t> row_start;
  std::unique_ptr<RowEntry[]> grouped =
      group_by_local_row(incoming.get(), count, row_dim, col_dim, row_start);
  const auto column_of = [&](size_t e) { return static_cast<std::int64_t>(grouped[e].key >> 32); };
  const auto line_of = [&](size_t e) { return incoming[grouped[e].key & 0xffffffffu].line; };
  run_agreed(comm, [&] {
    for (size_t r = 0; r + 1 < row_start.size(); ++r) {
      const auto end = static_cast<size_t>(row_start[r + 1]);
      for (auto k = static_cast<size_t>(row_start[r]) + 1; k < end; ++k) {
        if (column_of(k - 1) != column_of(k)) continue;
        // The two earliest lines of the first repeated entry, as a sort by line would pair them.
        std::int64_t first = INT64_MAX, second = INT64_MAX;
        for (size_t d = k - 1; d < end && column_of(d) == column_of(k); ++d) {
          const std::int64_t line = line_of(d);
          if (line < first) {
            second = first;
            first = line;
          } else if (line < second) {
            second = line;
          }
        }
        const std::int64_t row = row_dim.global(static_cast<std::int64_t>(r));
        fail("{}: duplicate entry ({}, {}), also at line {}", where(file, second),
             layout.original_row(row), layout.original_col(col_dim.global(column_of(k))), first);
      }
    }
  });
  incoming.reset();  // the lines were only for the messages above
  Observations observations;
  observations.rows.reserve(count);
  observations.cols.reserve(count);
  observations.values.reserve(count);
  for (size_t r = 0; r + 1 < row_start.size(); ++r) {
    const std::int64_t row = row_dim.global(static_cast<std::int64_t>(r));
    for (auto e = static_cast<size_t>(row_start[r]); e < static_cast<size_t>(row_start[r + 1]); ++e) {
      observations.rows.push_back(row);
      observations.cols.push_back(col_dim.global(column_of(e)));
      observations.values.push_back(grouped[e].value);
    }
  }
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
