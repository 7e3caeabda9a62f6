#include "cdmf/data/observations.hpp"

#include <algorithm>
#include <climits>
#include <tuple>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"

namespace cdmf {

namespace {
// One entry on its way to its owner: permuted indices, value, and its source line for
// messages.
struct Record {
  std::int64_t row;
  std::int64_t col;
  std::int64_t line;
  double value;
};

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
}  // namespace

Observations distribute(const ProcessGrid& grid, const EntryList& entries,
                        const IndexLayout& layout) {
  const MPI_Comm comm = grid.comm();
  const size_t ranks = static_cast<size_t>(grid.size());
  const size_t n = entries.size();

  // Check on the rank that parsed the entry, which still knows its line; bucket by owner.
  std::vector<int> owners(n);
  std::vector<int> send_counts(ranks, 0);
  run_agreed(comm, [&] {
    fail_if(entries.rows.size() != n || entries.cols.size() != n || entries.lines.size() != n,
            "{}: inconsistent entry list ({} rows, {} cols, {} values, {} lines)", entries.file,
            entries.rows.size(), entries.cols.size(), n, entries.lines.size());
    for (size_t k = 0; k < n; ++k) {
      check_in_range(entries.rows[k], layout.rows(), "row", "rows", entries.file, entries.lines[k]);
      check_in_range(entries.cols[k], layout.cols(), "column", "columns", entries.file,
                     entries.lines[k]);
      owners[k] = layout.owner(grid, layout.permuted_row(entries.rows[k]),
                               layout.permuted_col(entries.cols[k]));
      ++send_counts[static_cast<size_t>(owners[k])];
    }
  });
  const std::vector<int> send_offsets = displacements(send_counts);
  std::vector<Record> outgoing(n);
  std::vector<int> fill = send_offsets;
  for (size_t k = 0; k < n; ++k)
    outgoing[static_cast<size_t>(fill[static_cast<size_t>(owners[k])]++)] = {
        layout.permuted_row(entries.rows[k]), layout.permuted_col(entries.cols[k]),
        entries.lines[k], entries.values[k]};

  std::vector<int> recv_counts(ranks, 0);
  check_mpi(MPI_Alltoall(send_counts.data(), 1, MPI_INT, recv_counts.data(), 1, MPI_INT, comm),
            "MPI_Alltoall");
  std::int64_t incoming_total = 0;
  for (int count : recv_counts) incoming_total += count;
  run_agreed(comm, [&] {
    fail_if(incoming_total > INT_MAX, "{}: {} entries for one rank exceed MPI's int counts",
            entries.file, incoming_total);
  });
  const std::vector<int> recv_offsets = displacements(recv_counts);
  std::vector<Record> incoming(static_cast<size_t>(incoming_total));
  const RecordType record_type;
  check_mpi(MPI_Alltoallv(outgoing.data(), send_counts.data(), send_offsets.data(),
                          record_type.get(), incoming.data(), recv_counts.data(),
                          recv_offsets.data(), record_type.get(), comm),
            "MPI_Alltoallv");

  // Sorting by line too makes the earlier line of a duplicate pair come first.
  std::sort(incoming.begin(), incoming.end(), [](const Record& a, const Record& b) {
    return std::tie(a.row, a.col, a.line) < std::tie(b.row, b.col, b.line);
  });
  run_agreed(comm, [&] {
    for (size_t k = 1; k < incoming.size(); ++k) {
      const Record& a = incoming[k - 1];
      const Record& b = incoming[k];
      if (a.row == b.row && a.col == b.col)
        fail("{}: duplicate entry ({}, {}), also at line {}", where(entries.file, b.line),
             layout.original_row(b.row), layout.original_col(b.col), a.line);
    }
  });

  Observations observations;
  observations.rows.reserve(incoming.size());
  observations.cols.reserve(incoming.size());
  observations.values.reserve(incoming.size());
  for (const Record& record : incoming) {
    observations.rows.push_back(record.row);
    observations.cols.push_back(record.col);
    observations.values.push_back(record.value);
  }
  const std::int64_t local = static_cast<std::int64_t>(incoming.size());
  check_mpi(MPI_Allreduce(&local, &observations.global_count, 1, MPI_INT64_T, MPI_SUM, comm),
            "MPI_Allreduce");
  return observations;
}

}  // namespace cdmf
