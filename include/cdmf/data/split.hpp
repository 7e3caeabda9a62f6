#pragma once
/// A held-out split of the training entries (the validation set of `--validation`).
#include <cstdint>

#include "cdmf/data/observations.hpp"

namespace cdmf {

/// Moves about `fraction` (in [0, 1)) of `entries` into the returned list, in their order:
/// entry (i, j) (original 0-based indices) is held out when
///   uniform_open(seed, Stream::kValidationSplit, i * 2^32 + j) < fraction,
/// a function of the entry alone, so every rank count and every file order gives the same
/// split for the same seed. Not collective.
EntryList split_off(EntryList& entries, double fraction, std::uint64_t seed);

/// Whether split_off(.., fraction, seed) holds out entry (i, j).
bool held_out(std::int64_t i, std::int64_t j, double fraction, std::uint64_t seed);

}  // namespace cdmf
