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

// One Philox4x32 round on the counter (c0, c1, c2, c3) with the round key (k0, k1).
inline void philox_round(std::uint32_t& c0, std::uint32_t& c1, std::uint32_t& c2, std::uint32_t& c3,
                         std::uint32_t k0, std::uint32_t k1) {
  const std::uint64_t p0 = static_cast<std::uint64_t>(kMul0) * c0;
  const std::uint64_t p1 = static_cast<std::uint64_t>(kMul1) * c2;
  c0 = static_cast<std::uint32_t>(p1 >> 32) ^ c1 ^ k0;
  c1 = static_cast<std::uint32_t>(p1);
  c2 = static_cast<std::uint32_t>(p0 >> 32) ^ c3 ^ k1;
  c3 = static_cast<std::uint32_t>(p0);
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
    philox_round(c0, c1, c2, c3, k0, k1);
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

namespace {
// Box-Muller on the words of one Philox draw.
inline double box_muller(std::uint32_t w0, std::uint32_t w1, std::uint32_t w2, std::uint32_t w3) {
  const double u1 = to_open_unit((static_cast<std::uint64_t>(w1) << 32) | w0);
  const double u2 = to_open_unit((static_cast<std::uint64_t>(w3) << 32) | w2);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
}

constexpr size_t kLanes = 16;

// philox4x32 on kLanes counters at once: the lanes are independent, so the compiler runs
// their rounds in SIMD registers (the same round, so the same words).
void philox_lanes(std::uint64_t seed, std::uint32_t stream, const std::uint64_t* index,
                  std::uint32_t c0[kLanes], std::uint32_t c1[kLanes], std::uint32_t c2[kLanes],
                  std::uint32_t c3[kLanes]) {
  for (size_t l = 0; l < kLanes; ++l) {
    c0[l] = static_cast<std::uint32_t>(index[l]);
    c1[l] = static_cast<std::uint32_t>(index[l] >> 32);
    c2[l] = stream;
    c3[l] = 0;
  }
  std::uint32_t k0 = static_cast<std::uint32_t>(seed);
  std::uint32_t k1 = static_cast<std::uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    for (size_t l = 0; l < kLanes; ++l) philox_round(c0[l], c1[l], c2[l], c3[l], k0, k1);
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
}
}  // namespace

double gaussian(std::uint64_t seed, std::uint32_t stream, std::uint64_t index) {
  std::uint32_t w[4];
  philox4x32(seed, stream, index, w);
  return box_muller(w[0], w[1], w[2], w[3]);
}

void gaussians(std::uint64_t seed, std::uint32_t stream, const std::uint64_t* index, std::size_t count,
               double* out) {
  size_t k = 0;
  for (; k + kLanes <= count; k += kLanes) {
    std::uint32_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
    philox_lanes(seed, stream, index + k, c0, c1, c2, c3);
    for (size_t l = 0; l < kLanes; ++l) out[k + l] = box_muller(c0[l], c1[l], c2[l], c3[l]);
  }
  for (; k < count; ++k) out[k] = gaussian(seed, stream, index[k]);
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
