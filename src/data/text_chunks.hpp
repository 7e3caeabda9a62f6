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

#include "cdmf/core/progress.hpp"

namespace cdmf::detail {

/// "FILE:LINE", or "FILE" when `line` is 0 (no line to name): the prefix of reader errors.
std::string location(const std::string& file, std::int64_t line);

/// Opens `path` for binary reading; throws Error "FILE: cannot open (reason)".
std::ifstream open_input(const std::string& path);

/// Reads bytes [begin, end) of a file in pieces of whole lines through one reused buffer.
class LineReader {
 public:
  /// Throws Error "FILE: cannot open (reason)".
  LineReader(const std::string& path, std::int64_t begin, std::int64_t end);
  /// The next run of whole lines, each with its '\n' (the last of the range may lack it);
  /// empty at the end of the range. Valid until the next call. Throws Error "FILE: read
  /// error at byte B".
  std::string_view next();

 private:
  std::string path_;
  std::ifstream in_;
  std::int64_t offset_, end_;  // next byte to read, end of the range
  std::string buffer_;
  size_t handed_ = 0;   // bytes of buffer_ returned by the last call
  size_t filled_ = 0;   // bytes of buffer_ holding data
};

/// The lines of a text file that start in this rank's byte range. Only their extent and count
/// are kept: for_each_line reads them through one small buffer (a copy of the whole range
/// cost a page fault per 4 kB, most of the time of reading).
class TextChunk {
 public:
  /// Collective over `comm`: bytes [data_begin, end of file) of `path` are split evenly over
  /// the ranks; `first_line` is the number of the line that starts at `data_begin`.
  /// Errors (missing file, read failure) are agreed.
  static TextChunk read(MPI_Comm comm, const std::string& path, std::int64_t data_begin = 0,
                        std::int64_t first_line = 1);

  /// Number of local lines, blank ones included.
  size_t size() const { return count_; }

  /// Calls visit(text, number) for each local line in file order: `text` without its
  /// terminator ("\n" or "\r\n"), `number` its 1-based number in the whole file. Reads the
  /// file again; throws Error on a read failure (not agreed: call it inside run_agreed).
  template <typename Visit>
  void for_each_line(Visit&& visit) const {
    if (count_ == 0) return;
    LineReader reader(path_, begin_, end_);
    ProgressLine progress("reading " + path_, static_cast<double>(end_ - begin_), "bytes",
                          speaks_);
    std::int64_t number = first_number_;
    double consumed = 0.0;
    for (std::string_view lines = reader.next(); !lines.empty(); lines = reader.next()) {
      consumed += static_cast<double>(lines.size());
      progress.update(consumed);
      while (!lines.empty()) {
        const size_t newline = lines.find('\n');
        std::string_view line = lines.substr(0, newline);
        lines.remove_prefix(newline == std::string_view::npos ? lines.size() : newline + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        visit(line, number++);
      }
    }
  }

 private:
  std::string path_;
  std::int64_t begin_ = 0, end_ = 0;  // the local lines are bytes [begin_, end_)
  size_t count_ = 0;
  std::int64_t first_number_ = 1;
  bool speaks_ = false;  // rank 0 prints the progress of long reads
};

}  // namespace cdmf::detail
