#include "cdmf/random/counter_rng.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace cdmf {

namespace {
constexpr std::uint32_t kMul0 = 0xD2511F53u;
constexpr std::uint32_t kMul1 = 0xCD9E8D57u;
constexpr std::uint32_t kWeyl0 = 0x9E3779B9u;
constexpr std::uint32_t kWeyl1 = 0xBB67AE85u;

inline void mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
  const std::uint64_t product = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(product >> 32);
  lo = static_cast<std::uint32_t>(product);
}
}  // namespace

void philox4x32(std::uint64_t seed, std::uint32_t stream, std::uint64_t index,
                std::uint32_t out[4]) {
  std::uint32_t c0 = static_cast<std::uint32_t>(index);
  std::uint32_t c1 = static_cast<std::uint32_t>(index >> 32);
  std::uint32_t c2 = stream;
  std::uint32_t c3 = 0;
  std::uint32_t k0 = static_cast<std::uint32_t>(seed);
  std::uint32_t k1 = static_cast<std::uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    std::uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMul0, c0, hi0, lo0);
    mulhilo(kMul1, c2, hi1, lo1);
    const std::uint32_t n0 = hi1 ^ c1 ^ k0;
    const std::uint32_t n1 = lo1;
    const std::uint32_t n2 = hi0 ^ c3 ^ k1;
    const std::uint32_t n3 = lo0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

namespace {
// 53 random bits mapped to (0, 1).
inline double to_open_unit(std::uint64_t word) {
  return (static_cast<double>(word >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
}  // namespace

std::uint64_t random_word(std::uint64_t seed, std::uint32_t stream, std::uint64_t index) {
  std::uint32_t w[4];
  philox4x32(seed, stream, index, w);
  return (static_cast<std::uint64_t>(w[1]) << 32) | w[0];
}

double uniform_open(std::uint64_t seed, std::uint32_t stream, std::uint64_t index) {
  return to_open_unit(random_word(seed, stream, index));
}

double gaussian(std::uint64_t seed, std::uint32_t stream, std::uint64_t index) {
  std::uint32_t w[4];
  philox4x32(seed, stream, index, w);
  const double u1 = to_open_unit((static_cast<std::uint64_t>(w[1]) << 32) | w[0]);
  const double u2 = to_open_unit((static_cast<std::uint64_t>(w[3]) << 32) | w[2]);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
}

std::vector<std::int64_t> random_permutation(std::int64_t n, std::uint64_t seed,
                                             std::uint32_t stream) {
  std::vector<std::int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::vector<std::uint64_t> key(static_cast<size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) key[static_cast<size_t>(i)] = random_word(seed, stream, i);
  // order[p] = original index placed at position p; ties broken by index.
  std::sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
    return key[a] != key[b] ? key[a] < key[b] : a < b;
  });
  std::vector<std::int64_t> perm(static_cast<size_t>(n));
  for (std::int64_t p = 0; p < n; ++p) perm[static_cast<size_t>(order[p])] = p;
  return perm;
}

}  // namespace cdmf
