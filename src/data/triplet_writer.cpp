// write_triplets: every rank formats its own lines, an exclusive scan of the byte counts
// gives each rank its offset, and one collective MPI-IO write puts them in rank order.
#include <algorithm>
#include <iterator>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "cdmf/data/readers.hpp"

namespace cdmf {

namespace {
// MPI counts are int: larger buffers go out in pieces of this size.
constexpr std::int64_t kWritePiece = std::int64_t{1} << 30;

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<size_t>(length));
}

// Agrees on the first failed MPI-IO call of any rank.
void agree_on_io(MPI_Comm comm, int code, const std::string& path, const char* what) {
  agree_on_error(comm, code == MPI_SUCCESS
                           ? std::string()
                           : fmt::format("{}: cannot {} ({})", path, what, mpi_error_text(code)));
}

// An open MPI file, closed collectively when the owner goes out of scope on every rank.
class OpenFile {
 public:
  explicit OpenFile(MPI_File file) : file_(file) {}
  ~OpenFile() { MPI_File_close(&file_); }
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  MPI_File get() const { return file_; }

 private:
  MPI_File file_;
};

std::int64_t external_id(std::int64_t index, const IdMap& map, const char* what) {
  if (map.empty()) return index;
  fail_if(index < 0 || index >= static_cast<std::int64_t>(map.ids.size()),
          "cannot write {} {}: the id map holds {} ids", what, index, map.ids.size());
  return map.ids[static_cast<size_t>(index)];
}
}  // namespace

void write_triplets(MPI_Comm comm, const std::string& path, const EntryList& entries,
                    const IdMap& row_ids, const IdMap& col_ids) {
  fmt::memory_buffer text;
  run_agreed(comm, [&] {
    for (size_t k = 0; k < entries.size(); ++k)
      fmt::format_to(std::back_inserter(text), "{}\t{}\t{:.17g}\n",
                     external_id(entries.rows[k], row_ids, "row"),
                     external_id(entries.cols[k], col_ids, "column"), entries.values[k]);
  });
  const std::int64_t bytes = static_cast<std::int64_t>(text.size());
  std::int64_t offset = 0;
  check_mpi(MPI_Exscan(&bytes, &offset, 1, MPI_INT64_T, MPI_SUM, comm), "MPI_Exscan");
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  if (rank == 0) offset = 0;  // MPI_Exscan leaves rank 0's result undefined

  MPI_File handle = MPI_FILE_NULL;
  const int opened =
      MPI_File_open(comm, path.c_str(), MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL, &handle);
  // A rank whose open succeeded while another's failed cannot close collectively: the
  // handle is left to MPI_Finalize.
  agree_on_io(comm, opened, path, "open for writing");
  const OpenFile file(handle);
  agree_on_io(comm, MPI_File_set_size(file.get(), 0), path, "truncate");

  std::int64_t pieces = (bytes + kWritePiece - 1) / kWritePiece, max_pieces = 0;
  check_mpi(MPI_Allreduce(&pieces, &max_pieces, 1, MPI_INT64_T, MPI_MAX, comm), "MPI_Allreduce");
  int written = MPI_SUCCESS;
  // Collective writes: every rank takes part in every round, with 0 bytes when done.
  for (std::int64_t piece = 0; piece < max_pieces; ++piece) {
    const std::int64_t begin = std::min(piece * kWritePiece, bytes);
    const int count = static_cast<int>(std::min(kWritePiece, bytes - begin));
    const int code = MPI_File_write_at_all(file.get(), offset + begin, text.data() + begin, count,
                                           MPI_CHAR, MPI_STATUS_IGNORE);
    if (written == MPI_SUCCESS) written = code;
  }
  agree_on_io(comm, written, path, "write");
}

}  // namespace cdmf
