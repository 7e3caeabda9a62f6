#pragma once
// Internal to the readers: parallel reading of text files by lines. Each rank of a
// communicator reads one byte range of the file and keeps the lines whose first byte lies in
// that range, numbered as in the whole file.
#include <mpi.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace cdmf::detail {

/// "FILE:LINE", or "FILE" when `line` is 0 (no line to name): the prefix of reader errors.
std::string location(const std::string& file, std::int64_t line);

/// Opens `path` for binary reading; throws Error "FILE: cannot open (reason)".
std::ifstream open_input(const std::string& path);

/// The lines of a text file that start in this rank's byte range.
class TextChunk {
 public:
  /// Collective over `comm`: bytes [data_begin, end of file) of `path` are split evenly over
  /// the ranks; `first_line` is the number of the line that starts at `data_begin`.
  /// Errors (missing file, read failure) are agreed.
  static TextChunk read(MPI_Comm comm, const std::string& path, std::int64_t data_begin = 0,
                        std::int64_t first_line = 1);

  /// Number of local lines, blank ones included.
  size_t size() const { return starts_.size(); }
  /// Local line k without its terminator ("\n" or "\r\n").
  std::string_view text(size_t k) const;
  /// The 1-based number of local line k in the whole file.
  std::int64_t number(size_t k) const { return first_number_ + static_cast<std::int64_t>(k); }

 private:
  std::string buffer_;
  std::vector<size_t> starts_;  // offsets of line starts in buffer_
  std::int64_t first_number_ = 1;
};

}  // namespace cdmf::detail
