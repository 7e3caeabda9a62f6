#pragma once
/// The 64-bit mix behind dataset checksums and data fingerprints (internal to the I/O layer).
#include <cstdint>

namespace cdmf {

/// splitmix64's finalizer: a bijection of 64-bit words that spreads every input bit over the
/// output, so sums of mixed values make good order-independent hashes.
inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace cdmf
