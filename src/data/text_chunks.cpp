#include "text_chunks.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"

namespace cdmf::detail {

namespace {
// Lines are short: the end of one is looked for in small reads.
constexpr std::int64_t kScanPiece = 1 << 12;
// The reused buffer of LineReader: large enough that reads are few, small enough that its
// pages cost nothing next to the parse.
constexpr size_t kLinePiece = 1 << 18;

void read_into(std::ifstream& in, const std::string& path, std::int64_t offset, char* bytes,
               std::int64_t count) {
  in.read(bytes, count);
  fail_if(in.gcount() != count, "{}: read error at byte {}", path, offset);
}

// The byte after the first newline at or after `from`, or `file_end` when there is none.
std::int64_t end_of_line(std::ifstream& in, const std::string& path, std::int64_t from,
                         std::int64_t file_end) {
  std::string piece;
  in.seekg(from);
  while (from < file_end) {
    piece.resize(static_cast<size_t>(std::min(kScanPiece, file_end - from)));
    read_into(in, path, from, piece.data(), static_cast<std::int64_t>(piece.size()));
    const size_t newline = piece.find('\n');
    if (newline != std::string::npos) return from + static_cast<std::int64_t>(newline) + 1;
    from += static_cast<std::int64_t>(piece.size());
  }
  return file_end;
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

LineReader::LineReader(const std::string& path, std::int64_t begin, std::int64_t end)
    : path_(path), in_(open_input(path)), offset_(begin), end_(end), buffer_(kLinePiece, '\0') {
  in_.seekg(begin);
}

std::string_view LineReader::next() {
  // The incomplete line after the run handed out last moves to the front.
  std::memmove(buffer_.data(), buffer_.data() + handed_, filled_ - handed_);
  filled_ -= handed_;
  handed_ = 0;
  while (offset_ < end_) {
    if (filled_ == buffer_.size()) buffer_.resize(2 * buffer_.size());  // a very long line
    const size_t scanned = filled_;
    const std::int64_t count =
        std::min(static_cast<std::int64_t>(buffer_.size() - filled_), end_ - offset_);
    read_into(in_, path_, offset_, buffer_.data() + filled_, count);
    filled_ += static_cast<size_t>(count);
    offset_ += count;
    if (offset_ == end_) break;
    const size_t last = std::string_view(buffer_.data() + scanned, filled_ - scanned).rfind('\n');
    if (last != std::string_view::npos) {
      handed_ = scanned + last + 1;
      return {buffer_.data(), handed_};
    }
  }
  handed_ = filled_;  // the rest of the range
  return {buffer_.data(), filled_};
}

TextChunk TextChunk::read(MPI_Comm comm, const std::string& path, std::int64_t data_begin,
                          std::int64_t first_line) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  TextChunk chunk;
  chunk.path_ = path;
  chunk.speaks_ = rank == 0;
  run_agreed(comm, [&] {
    std::ifstream in = open_input(path);
    in.seekg(0, std::ios::end);
    const std::int64_t file_end = in.tellg();
    const std::int64_t span = std::max<std::int64_t>(0, file_end - data_begin);
    const std::int64_t lo = data_begin + span * rank / size;
    const std::int64_t hi = data_begin + span * (rank + 1) / size;
    if (lo == hi) return;
    // A line starts at `lo` when the byte before it ends one; otherwise the first line here
    // starts after the next newline, and none does when that is at or after `hi`.
    const std::int64_t begin = lo > data_begin ? end_of_line(in, path, lo - 1, file_end) : lo;
    if (begin >= hi) return;
    // The last line that starts here may end in the next rank's range.
    const std::int64_t end = end_of_line(in, path, hi - 1, file_end);
    // Lines start at `begin` and after every newline but a final one.
    LineReader reader(path, begin, end);
    ProgressLine progress("scanning " + path, static_cast<double>(end - begin), "bytes",
                          rank == 0);
    size_t newlines = 0;
    double consumed = 0.0;
    bool ends_in_newline = false;
    for (std::string_view lines = reader.next(); !lines.empty(); lines = reader.next()) {
      consumed += static_cast<double>(lines.size());
      progress.update(consumed);
      newlines += static_cast<size_t>(std::count(lines.begin(), lines.end(), '\n'));
      ends_in_newline = lines.back() == '\n';
    }
    chunk.begin_ = begin;
    chunk.end_ = end;
    chunk.count_ = newlines + (ends_in_newline ? 0 : 1);
  });
  // Global numbering: lines of lower ranks come first in the file.
  const std::int64_t count = static_cast<std::int64_t>(chunk.count_);
  std::int64_t before = 0;
  check_mpi(MPI_Exscan(&count, &before, 1, MPI_INT64_T, MPI_SUM, comm), "MPI_Exscan");
  chunk.first_number_ = first_line + (rank == 0 ? 0 : before);
  return chunk;
}

}  // namespace cdmf::detail
