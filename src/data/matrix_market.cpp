// The MatrixMarket coordinate header (https://math.nist.gov/MatrixMarket/formats.html):
//   %%MatrixMarket matrix coordinate real general
//   % comments
//   rows cols entries
// followed by one 1-based "row col value" line per entry, read by parse_entries.
#include <algorithm>
#include <cctype>
#include <sstream>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "text_entries.hpp"

namespace cdmf::detail {

namespace {
std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string word; in >> word;) out.push_back(lowercase(word));
  return out;
}

void check_banner(const std::string& path, const std::string& line, bool allow_pattern,
                  MatrixMarketHeader& header) {
  const std::vector<std::string> w = words(line);
  fail_if(w.size() != 5 || w[0] != "%%matrixmarket" || w[1] != "matrix",
          "{}:1: not a MatrixMarket matrix file (expected '%%MatrixMarket matrix coordinate "
          "real general', got '{}')",
          path, line.substr(0, 60));
  fail_if(w[2] != "coordinate",
          "{}:1: MatrixMarket format '{}' is not supported (only 'coordinate')", path, w[2]);
  header.pattern = w[3] == "pattern";
  fail_if(w[3] != "real" && w[3] != "integer" && !(header.pattern && allow_pattern),
          "{}:1: MatrixMarket field '{}' is not supported (only 'real' or 'integer')", path, w[3]);
  fail_if(w[4] != "general", "{}:1: MatrixMarket symmetry '{}' is not supported (only 'general')",
          path, w[4]);
}
}  // namespace

MatrixMarketHeader read_matrix_market_header(MPI_Comm comm, const std::string& path,
                                             bool allow_pattern) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  MatrixMarketHeader header;
  run_agreed(comm, [&] {
    if (rank != 0) return;
    std::ifstream in = open_input(path);
    std::string line;
    std::int64_t number = 0, offset = 0;
    const auto next = [&] {
      if (!std::getline(in, line)) return false;
      ++number;
      offset += static_cast<std::int64_t>(line.size()) + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return true;
    };
    fail_if(!next(), "{}: no entries", path);
    check_banner(path, line, allow_pattern, header);
    while (next()) {
      const std::vector<std::string> w = words(line);
      if (w.empty() || w[0][0] == '%') continue;
      const bool ok = w.size() == 3 && parse_integer(w[0], header.rows) &&
                      parse_integer(w[1], header.cols) && parse_integer(w[2], header.entries) &&
                      header.rows > 0 && header.cols > 0 && header.entries >= 0;
      fail_if(!ok, "{}:{}: expected the MatrixMarket size line 'rows cols entries', got '{}'", path,
              number, line.substr(0, 60));
      header.data_offset = offset;
      header.data_line = number + 1;
      return;
    }
    fail("{}: the MatrixMarket size line 'rows cols entries' is missing", path);
  });
  std::int64_t packed[6] = {header.rows,        header.cols,
                            header.entries,     header.pattern ? 1 : 0,
                            header.data_offset, header.data_line};
  check_mpi(MPI_Bcast(packed, 6, MPI_INT64_T, 0, comm), "MPI_Bcast");
  header = {packed[0], packed[1], packed[2], packed[3] != 0, packed[4], packed[5]};
  return header;
}

}  // namespace cdmf::detail
