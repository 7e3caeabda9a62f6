#include "cdmf/data/split.hpp"

#include "cdmf/core/error.hpp"
#include "cdmf/random/counter_rng.hpp"

namespace cdmf {

bool held_out(std::int64_t i, std::int64_t j, double fraction, std::uint64_t seed) {
  // Column indices below 2^32 keep the counter one-to-one (a larger index is refused below).
  const std::uint64_t counter = (static_cast<std::uint64_t>(i) << 32) | static_cast<std::uint64_t>(j);
  return uniform_open(seed, static_cast<std::uint32_t>(Stream::kValidationSplit), counter) < fraction;
}

namespace {
/// Moves the entries for which `moves(e)` holds from `entries` into the result, in order.
template <typename Predicate>
EntryList move_where(EntryList& entries, Predicate moves) {
  EntryList moved;
  moved.file = entries.file;
  size_t kept = 0;
  for (size_t e = 0; e < entries.size(); ++e) {
    if (moves(e)) {
      moved.rows.push_back(entries.rows[e]);
      moved.cols.push_back(entries.cols[e]);
      moved.values.push_back(entries.values[e]);
      moved.lines.push_back(entries.lines[e]);
    } else {
      entries.rows[kept] = entries.rows[e];
      entries.cols[kept] = entries.cols[e];
      entries.values[kept] = entries.values[e];
      entries.lines[kept] = entries.lines[e];
      ++kept;
    }
  }
  entries.rows.resize(kept);
  entries.cols.resize(kept);
  entries.values.resize(kept);
  entries.lines.resize(kept);
  return moved;
}
}  // namespace

EntryList split_outside(EntryList& entries, std::int64_t rows, std::int64_t cols) {
  EntryList cold = move_where(entries, [&](size_t e) {
    return entries.rows[e] < 0 || entries.rows[e] >= rows || entries.cols[e] < 0 ||
           entries.cols[e] >= cols;
  });
  for (size_t e = 0; e < cold.size(); ++e) {
    if (cold.rows[e] >= rows) cold.rows[e] = -1;
    if (cold.cols[e] >= cols) cold.cols[e] = -1;
  }
  return cold;
}

EntryList split_off(EntryList& entries, double fraction, std::uint64_t seed) {
  fail_if(!(fraction >= 0.0 && fraction < 1.0), "--validation must be in [0, 1) (got {})", fraction);
  for (size_t e = 0; e < entries.size(); ++e)
    fail_if(entries.cols[e] >= (std::int64_t{1} << 32),
            "{}:{}: column {} too large for the validation split", entries.file, entries.lines[e],
            entries.cols[e]);
  if (fraction == 0.0) return EntryList{entries.file, {}, {}, {}, {}};
  return move_where(entries, [&](size_t e) {
    return held_out(entries.rows[e], entries.cols[e], fraction, seed);
  });
}

}  // namespace cdmf
