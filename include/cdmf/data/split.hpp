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

/// Moves the entries of `entries` outside the rows x cols problem (an index < 0, an unknown id,
/// or >= the dimension) into the returned list, their unknown indices set to -1: the
/// cold-start pairs of a test set, whose user or item the training data never saw. Not
/// collective.
EntryList split_outside(EntryList& entries, std::int64_t rows, std::int64_t cols);

/// Whether split_off(.., fraction, seed) holds out entry (i, j).
bool held_out(std::int64_t i, std::int64_t j, double fraction, std::uint64_t seed);

}  // namespace cdmf
