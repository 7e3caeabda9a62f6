#include "text_chunks.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"

namespace cdmf::detail {

namespace {
constexpr std::int64_t kReadPiece = 1 << 16;

std::string read_bytes(std::ifstream& in, const std::string& path, std::int64_t offset,
                       std::int64_t count) {
  std::string bytes(static_cast<size_t>(count), '\0');
  in.seekg(offset);
  in.read(bytes.data(), count);
  fail_if(in.gcount() != count, "{}: read error at byte {}", path, offset);
  return bytes;
}

// Appends bytes from `offset` up to and including the next newline (or the end of the file).
void append_rest_of_line(std::ifstream& in, const std::string& path, std::int64_t offset,
                         std::int64_t file_end, std::string& buffer) {
  while (offset < file_end) {
    const std::string piece = read_bytes(in, path, offset, std::min(kReadPiece, file_end - offset));
    const size_t newline = piece.find('\n');
    if (newline != std::string::npos) {
      buffer.append(piece, 0, newline + 1);
      return;
    }
    buffer += piece;
    offset += static_cast<std::int64_t>(piece.size());
  }
}
}  // namespace

std::string location(const std::string& file, std::int64_t line) {
  return line > 0 ? fmt::format("{}:{}", file, line) : file;
}

std::ifstream open_input(const std::string& path) {
  // An ifstream opens a directory without complaint; reading it then fails obscurely.
  std::error_code ignored;
  fail_if(std::filesystem::is_directory(path, ignored), "{}: cannot open ({})", path,
          std::strerror(EISDIR));
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  fail_if(!in, "{}: cannot open ({})", path, errno != 0 ? std::strerror(errno) : "unknown reason");
  return in;
}

TextChunk TextChunk::read(MPI_Comm comm, const std::string& path, std::int64_t data_begin,
                          std::int64_t first_line) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  TextChunk chunk;
  run_agreed(comm, [&] {
    std::ifstream in = open_input(path);
    in.seekg(0, std::ios::end);
    const std::int64_t file_end = in.tellg();
    const std::int64_t span = std::max<std::int64_t>(0, file_end - data_begin);
    const std::int64_t lo = data_begin + span * rank / size;
    const std::int64_t hi = data_begin + span * (rank + 1) / size;
    if (lo == hi) return;
    // One byte before the range tells whether a line starts exactly at `lo`.
    const std::int64_t from = lo > data_begin ? lo - 1 : lo;
    std::string& buffer = chunk.buffer_;
    buffer = read_bytes(in, path, from, hi - from);
    size_t first = 0;
    if (from < lo) {
      const size_t newline = buffer.find('\n');
      // No newline, or only the last byte of the range: every line here started earlier.
      if (newline == std::string::npos || newline + 1 == buffer.size()) {
        buffer.clear();
        return;
      }
      first = newline + 1;
    }
    // The last line that starts here may end in the next rank's range.
    if (hi < file_end && buffer.back() != '\n') append_rest_of_line(in, path, hi, file_end, buffer);
    buffer.erase(0, first);
    size_t at = 0;
    while (at < buffer.size()) {
      chunk.starts_.push_back(at);
      const size_t newline = buffer.find('\n', at);
      if (newline == std::string::npos) break;
      at = newline + 1;
    }
  });
  // Global numbering: lines of lower ranks come first in the file.
  const std::int64_t count = static_cast<std::int64_t>(chunk.starts_.size());
  std::int64_t before = 0;
  check_mpi(MPI_Exscan(&count, &before, 1, MPI_INT64_T, MPI_SUM, comm), "MPI_Exscan");
  chunk.first_number_ = first_line + (rank == 0 ? 0 : before);
  return chunk;
}

std::string_view TextChunk::text(size_t k) const {
  const size_t begin = starts_[k];
  const size_t end = k + 1 < starts_.size() ? starts_[k + 1] : buffer_.size();
  std::string_view line(buffer_.data() + begin, end - begin);
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace cdmf::detail
