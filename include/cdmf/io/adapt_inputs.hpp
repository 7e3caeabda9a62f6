#pragma once
/// The inputs of an adaptation (DESIGN.md sections 3 and 4): the base file (a dense `/W`,
/// m x n, or any cdmf factor file, its chain kept factored) and the samples files of the
/// linear-layer measurement (`/inputs` s x n and `/targets` s x m, float64, one sample per
/// row), read collectively into the layout's permuted spaces; and the digests that tie an
/// adapter to its base and a checkpoint to its data.
#include <mpi.h>

#include <cstdint>
#include <string>

#include "cdmf/data/layout.hpp"
#include "cdmf/io/checkpoint.hpp"
#include "cdmf/io/factor_file.hpp"
#include "cdmf/model/base.hpp"

namespace cdmf {

struct BaseFileInfo {
  std::string path;
  bool dense = false;  // /W; otherwise a factor file
  std::int64_t rows = 0, cols = 0;
  FactorFileInfo factors;  // when !dense
  bool biases = false;     // a factor file with /biases (train --biases)
};

/// Collective: what `path` holds. Errors name the file: missing, not HDF5, neither /W nor a
/// cdmf factor file, /W not a 2-D float64 dataset.
BaseFileInfo read_base_info(MPI_Comm comm, const std::string& path);

/// Collective: the base, in `layout`'s permuted spaces with block `block`. Rejects NaN/Inf.
Base read_base(const ProcessGrid& grid, const IndexLayout& layout, const BaseFileInfo& info,
               int block);

/// Collective: 16 hex digits digesting the base's stored values with their original indices
/// (and the shape): the same on any grid, different for another base.
std::string base_fingerprint(const Base& base, const IndexLayout& layout);

/// What a samples file holds: s samples of n inputs and m targets.
struct SamplesShape {
  std::int64_t samples = 0, inputs = 0, targets = 0;
};
/// Collective: checks `path` (/inputs and /targets, 2-D float64, the same number of rows,
/// at least one) and returns their shape.
SamplesShape read_samples_shape(MPI_Comm comm, const std::string& path);

struct Samples {
  DistMatrix inputs;   // X: n x s, rows in the permuted column space
  DistMatrix targets;  // Y: m x s, rows in the permuted row space
  DataFingerprint fingerprint;  // s, and a digest of every value
};
/// Collective: reads the samples for a base of layout.rows() x layout.cols(): errors for
/// inputs that are not n wide or targets not m wide, and for NaN/Inf (with the sample and
/// column of the first one).
Samples read_samples(const ProcessGrid& grid, const IndexLayout& layout, const std::string& path);

}  // namespace cdmf
