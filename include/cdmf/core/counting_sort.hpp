#pragma once
/// Stable counting sort of positions by a small integer key: what grouping entries by local
/// row and column needs (a comparison sort of them cost more than the data exchange).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cdmf {

/// The positions `order` (0..n-1 when null) rearranged so that key(position), an integer in
/// [0, extent), ascends; positions with equal keys keep their order.
template <typename Key>
std::vector<int> stable_order_by(size_t n, const std::vector<int>* order, std::int64_t extent,
                                 Key key) {
  std::vector<int> next(static_cast<size_t>(extent) + 1, 0);
  const auto at = [&](size_t k) { return order ? (*order)[k] : static_cast<int>(k); };
  for (size_t k = 0; k < n; ++k) ++next[static_cast<size_t>(key(at(k))) + 1];
  for (size_t v = 1; v < next.size(); ++v) next[v] += next[v - 1];
  std::vector<int> sorted(n);
  for (size_t k = 0; k < n; ++k) sorted[static_cast<size_t>(next[static_cast<size_t>(key(at(k)))]++)] = at(k);
  return sorted;
}

}  // namespace cdmf
