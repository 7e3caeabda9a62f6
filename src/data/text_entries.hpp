#pragma once
// Internal to the readers: entries from the lines of delimited text files (triplets,
// MovieLens, MatrixMarket coordinate data), the checks every entry passes, and the
// MatrixMarket header.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cdmf/data/observations.hpp"
#include "text_chunks.hpp"

namespace cdmf::detail {

/// Splits a line into fields separated by a comma and/or spaces and tabs (two commas in a
/// row delimit an empty field). A UTF-8 byte order mark at the start is dropped.
void split_fields(std::string_view line, std::vector<std::string_view>& fields);

/// Parses a whole field as a decimal integer (an optional sign, no spaces); false otherwise.
bool parse_integer(std::string_view text, std::int64_t& value);

/// How one of the first two fields of a line becomes a 0-based index.
struct IndexRule {
  const char* name = "row index";  // for messages: "row index", "user id", ...
  const char* dimension = "rows";  // for messages: "rows" or "columns"
  bool ids = false;                // arbitrary integer ids, kept as read (mapped later)
  std::int64_t base = 0;           // otherwise subtracted; smaller values are errors
  std::int64_t count = 0;          // when > 0 (a MatrixMarket header), indices stay below it
};

/// The shape of an entry line.
struct LineSyntax {
  const char* expected = "row col value";  // for messages
  size_t min_fields = 3;
  size_t max_fields = 3;
  bool values = true;          // field 3 is a finite value; otherwise ignored and values are 0
  bool header_allowed = true;  // line 1 may be a header (its first field is not a number)
  IndexRule row;
  IndexRule col;
};

/// Collective over `comm`: the entries on the lines of `chunk`, blank lines skipped. Errors
/// name the file and the line and are agreed.
EntryList parse_entries(MPI_Comm comm, const TextChunk& chunk, const std::string& file,
                        const LineSyntax& syntax);

/// The 0-based index of `raw` under `rule` (ids unchanged); throws Error
/// "FILE:LINE: row index -1 is negative (with --index-base 0)" and the like.
std::int64_t apply_index_rule(std::int64_t raw, const IndexRule& rule, const std::string& file,
                              std::int64_t line);

/// Throws Error "FILE:LINE: value nan is not finite" for NaN and infinities.
void check_finite(double value, const std::string& file, std::int64_t line);

/// What the first lines of a MatrixMarket file say.
struct MatrixMarketHeader {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t entries = 0;
  bool pattern = false;          // entries carry no value
  std::int64_t data_offset = 0;  // first byte after the size line
  std::int64_t data_line = 0;    // number of the line starting there
};

/// Collective: rank 0 reads the banner ("%%MatrixMarket matrix coordinate real|integer
/// general", also "pattern" when `allow_pattern`), the % comments and the size line
/// "rows cols entries", and broadcasts them. Other kinds of file are rejected naming the file.
MatrixMarketHeader read_matrix_market_header(MPI_Comm comm, const std::string& path,
                                             bool allow_pattern);

}  // namespace cdmf::detail
