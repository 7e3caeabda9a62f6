#pragma once
/// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11): each draw is a pure
/// function of (seed, stream, index), so a matrix entry, a permutation or a sample gets the
/// same value on any number of ranks and in any order of evaluation.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cdmf {

/// Named streams keep independent uses of one seed apart.
enum class Stream : std::uint32_t {
  kRowPermutation = 1,
  kColPermutation = 2,
  kTruthGaussian = 3,
  kObservedSample = 4,
  kValidationSplit = 5,
  kFactorInit = 100,  // + factor index
};

/// Four 32-bit words of Philox4x32-10 for key (seed, stream) and counter (index, 0).
void philox4x32(std::uint64_t seed, std::uint32_t stream, std::uint64_t index,
                std::uint32_t out[4]);

/// Uniform double in (0, 1) (never 0, so log is safe).
double uniform_open(std::uint64_t seed, std::uint32_t stream, std::uint64_t index);

/// Standard normal draw (Box-Muller on the first two 64-bit words).
double gaussian(std::uint64_t seed, std::uint32_t stream, std::uint64_t index);

/// out[k] = gaussian(seed, stream, index[k]) for k < count, bit for bit, several draws at a
/// time (30 against 40 ns a draw on the machine of docs/benchmarks.md).
void gaussians(std::uint64_t seed, std::uint32_t stream, const std::uint64_t* index, std::size_t count,
               double* out);

/// 64-bit random word.
std::uint64_t random_word(std::uint64_t seed, std::uint32_t stream, std::uint64_t index);

/// A uniformly random permutation of 0..n-1: perm[i] is where original index i goes.
/// Sorting by random keys: the same on every rank for the same (seed, stream).
std::vector<std::int64_t> random_permutation(std::int64_t n, std::uint64_t seed,
                                             std::uint32_t stream);

}  // namespace cdmf
