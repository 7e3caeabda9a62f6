#pragma once
/// Readers of observation files (DESIGN.md section 4, data formats). Every reader is
/// collective over `comm` and reads in parallel: each rank parses its own byte range of the
/// file (lines belong to the rank whose range holds their first byte), so a rank sees only
/// part of the data; errors are agreed so every rank throws the same one-line Error
/// "FILE:LINE: problem".
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cdmf/data/observations.hpp"

namespace cdmf {

enum class DataFormat { kAuto, kTriplets, kMovieLens, kMatrixMarket, kHdf5 };

/// "auto", "triplets", "movielens", "mtx", "hdf5"; throws Error otherwise.
DataFormat parse_data_format(const std::string& name);
/// The concrete format of `path` for kAuto: .h5/.hdf5 -> hdf5, .mtx -> mtx, a first line
/// "userId,movieId,..." -> movielens, else triplets. Collective (rank 0 looks, broadcasts).
DataFormat detect_format(MPI_Comm comm, const std::string& path, DataFormat requested);

/// Dense index <-> original id of one dimension (MovieLens ids). Empty when the file's
/// indices are already dense (triplets, mtx, hdf5).
struct IdMap {
  std::vector<std::int64_t> ids;  // dense index -> original id, ascending
  bool empty() const { return ids.empty(); }
  /// Dense index of `id`, or -1 when absent.
  std::int64_t index_of(std::int64_t id) const;
};

struct ReadOptions {
  DataFormat format = DataFormat::kAuto;
  int index_base = 0;  // of triplet files (mtx is always 1-based, movielens uses ids)
};

/// Training (and optional test) entries as parsed on this rank, with the dimensions the
/// training file implies (max index + 1, the mtx header, or the number of distinct ids) and
/// the id maps for MovieLens (built from the training file). A test file never widens the
/// problem: a test id unseen in training becomes index -1, and a test index beyond the
/// training dimensions stays as it is; both are cold-start pairs (split_outside, split.hpp).
struct LoadedData {
  EntryList train;
  EntryList test;  // empty when no test file
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  IdMap row_ids;
  IdMap col_ids;
};

/// Collective: reads `train_path` and, if non-empty, `test_path`. Rejects missing or empty
/// files, malformed lines, negative indices (after the base), NaN/Inf values.
LoadedData read_data(MPI_Comm comm, const std::string& train_path, const std::string& test_path,
                     const ReadOptions& options);

/// Collective: reads (row, col) pairs for prediction from a file in the same formats (a value
/// column, when present, is ignored). With non-empty id maps, ids are mapped to dense indices
/// ("FILE:LINE: unknown user id 17" when absent). Values of the result are 0.
/// With `original`, it receives the pairs as the file names them (ids, or 0-based indices),
/// and an unknown id becomes index -1 instead of an error (a cold-start pair).
struct PairIds {
  std::vector<std::int64_t> rows, cols;
};
EntryList read_pairs(MPI_Comm comm, const std::string& path, const ReadOptions& options,
                     const IdMap& row_ids, const IdMap& col_ids, PairIds* original = nullptr);

/// Collective: writes the entries of every rank as "row<TAB>col<TAB>value" lines (rows in rank
/// order, then local order; ids mapped back through non-empty maps; values with 17 significant
/// digits) to `path` with MPI-IO. Overwrites.
void write_triplets(MPI_Comm comm, const std::string& path, const EntryList& entries,
                    const IdMap& row_ids = {}, const IdMap& col_ids = {});

}  // namespace cdmf
