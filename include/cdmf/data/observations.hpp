#pragma once
/// Observed entries of the target (DESIGN.md section 2, layer 3).
/// `EntryList`: entries as parsed from a file, in original 0-based indices, with the source
/// line of each (for error messages), held by whichever rank parsed them.
/// `Observations`: the same entries after distribution, in permuted indices, each on the rank
/// that owns its block of the m x n index space (IndexLayout::owner).
#include <cstdint>
#include <string>
#include <vector>

#include "cdmf/data/layout.hpp"
#include "cdmf/grid/process_grid.hpp"

namespace cdmf {

struct EntryList {
  std::string file;                // source name for messages
  std::vector<std::int64_t> rows;  // original 0-based row index
  std::vector<std::int64_t> cols;  // original 0-based column index
  std::vector<double> values;
  std::vector<std::int64_t> lines;  // 1-based line in `file`
  size_t size() const { return values.size(); }
};

/// A permuted global index of an observation: indices fit 32 bits (layout.hpp's
/// kMaxDimension), so an observation takes 16 bytes, not 24 (docs/scale.md, memory).
using ObservationIndex = std::int32_t;

/// The entries owned by this rank, permuted indices, sorted by (row, col).
struct Observations {
  std::vector<ObservationIndex> rows;  // permuted global row
  std::vector<ObservationIndex> cols;  // permuted global column
  std::vector<double> values;
  /// A known part of each observation's prediction, X_ij = offset + (W_K...W_1)_ij, so the
  /// chain fits values - offsets (empty: no offsets). Biases and centering (model/biases.hpp)
  /// and a frozen base's values enter the loss this way, and every strategy runs unchanged.
  /// Set it before a strategy sees the set (the sparse strategy caches the targets).
  std::vector<double> offsets;
  std::int64_t global_count = 0;  // over all ranks
  size_t size() const { return values.size(); }
  /// What the chain fits at local observation `e`: values[e] - offsets[e].
  double target(size_t e) const { return offsets.empty() ? values[e] : values[e] - offsets[e]; }
  /// Every target, in local order.
  std::vector<double> targets() const;
};

/// Collective over grid.comm(): sends every entry to its owner under `layout` (all-to-all),
/// sorts, and rejects duplicates ("FILE:LINE: duplicate entry (i, j), also at line L") and
/// indices outside the layout ("FILE:LINE: row i outside 0..m-1"). Errors are agreed across
/// ranks (every rank throws the same Error).
Observations distribute(const ProcessGrid& grid, const EntryList& entries,
                        const IndexLayout& layout);
/// Entries a rank sends per round of the exchange (24 bytes each).
inline constexpr std::int64_t kDistributeRoundEntries = std::int64_t{1} << 22;

/// The same, consuming `entries`: the exchange runs in rounds of `round_entries` entries taken
/// from the end of the list, and the pages of each round's entries go back to the system as
/// soon as they are packed, so the list and the received entries are never both whole.
Observations distribute(const ProcessGrid& grid, EntryList&& entries, const IndexLayout& layout,
                        std::int64_t round_entries = kDistributeRoundEntries);

}  // namespace cdmf
