#pragma once
/// HDF5 factor files (DESIGN.md section 3, format version 1), read and written collectively
/// with parallel HDF5 (MPI-IO): each rank reads/writes a contiguous slab of rows of each
/// dataset, exchanged with the block-cyclic owners (rows/columns that live in the permuted
/// index space are mapped back to original indices, so files always hold original order).
/// Datasets are float64, shape (rows, cols) as in the math (row-major, as h5py shows them).
#include <mpi.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cdmf/data/layout.hpp"
#include "cdmf/data/observations.hpp"
#include "cdmf/data/readers.hpp"
#include "cdmf/linalg/dist_matrix.hpp"
#include "cdmf/model/biases.hpp"
#include "cdmf/model/chain.hpp"

namespace cdmf {

namespace h5 {
class File;
}

inline constexpr const char* kCheckpointFormat = "cdmf-checkpoint";
inline constexpr int kCheckpointFormatVersion = 1;
/// Adapter files (DESIGN.md section 3): the same layout, DeltaW = W_K ... W_1 of a base.
inline constexpr const char* kAdapterFormat = "cdmf-adapter";

/// Root attributes and factor shapes of a factor file / checkpoint.
struct FactorFileInfo {
  std::string path;
  std::string format;
  int format_version = 0;
  std::string cdmf_version;
  std::string model;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  int depth = 0;              // number of factors K
  std::int64_t width = 0;     // rows of W1
  std::int64_t iteration = 0;
  std::string created;        // ISO 8601
  std::string config_json;
  std::vector<FactorShape> shapes;     // W1..WK
  std::vector<double> lr_multipliers;  // W1..WK (1 when the attribute is absent)
  bool checksums = false;  // every factor has a "checksum" attribute (verified when read)
  /// Root attributes clip_min, clip_max: predictions are clipped to this range (--clip).
  std::optional<std::pair<double, double>> clip;
};

/// Collective: opens `path`, checks format == "cdmf-checkpoint" (or "cdmf-adapter" when
/// `allow_adapter`; an adapter is an update of a base, never a model on its own) and
/// format_version == 1, that
/// /factors/W1..WK exist as 2-D float64 datasets forming a chain (cols of W_{l+1} == rows of
/// W_l, WK rows == rows, W1 cols == cols). Errors name the file and the problem: missing file,
/// not HDF5, wrong format/version, missing or mis-shaped factors, truncated file.
FactorFileInfo read_factor_file_info(MPI_Comm comm, const std::string& path,
                                     bool allow_adapter = false);

/// Independent: the checks of read_factor_file_info on a file that is already open (callers
/// agree on failure with run_agreed).
FactorFileInfo inspect_factor_file(const h5::File& file, bool allow_adapter = false);

/// Collective: reads the factors of `info` into DistMatrices with `block` on `grid`, W1's
/// columns into the layout's permuted column space and WK's rows into its permuted row
/// space. The caller checks info.rows/cols against the layout (this throws if they differ).
std::vector<DistMatrix> read_factors(const ProcessGrid& grid, const IndexLayout& layout,
                                     const FactorFileInfo& info, int block);

/// What a factor file records besides the factors.
struct FactorFileMeta {
  // A constructor rather than an aggregate: callers brace-initialise the leading fields.
  FactorFileMeta(std::int64_t iteration_ = 0, std::string config_json_ = "{}",
                 const Biases* biases_ = nullptr,
                 std::optional<std::pair<double, double>> clip_ = std::nullopt)
      : iteration(iteration_), config_json(std::move(config_json_)), biases(biases_),
        clip(std::move(clip_)) {}
  std::int64_t iteration = 0;
  std::string config_json = "{}";
  /// Biases of the model (model/biases.hpp), written as /biases (attr mu; /biases/rows (m) and
  /// /biases/cols (n), float64, original order); none when null.
  const Biases* biases = nullptr;
  /// Range predictions are clipped to (root attributes clip_min, clip_max); none: no clipping.
  std::optional<std::pair<double, double>> clip;
  std::string format = kCheckpointFormat;  // or kAdapterFormat
  /// More root attributes (an adapter's: adapter, rank, base_fingerprint, ...).
  std::vector<std::pair<std::string, std::string>> string_attributes;
  std::vector<std::pair<std::string, std::int64_t>> int_attributes;
  std::vector<std::pair<std::string, double>> double_attributes;
};

class StagedWriter;
/// More content for a file written by write_factor_file (a checkpoint's groups): `declare`
/// runs on every rank after the root attributes, /factors and /ids are declared and before any
/// data is written, and declares its groups, attributes and datasets through the writer.
/// `bytes` (its data, all ranks together) and `objects` (its groups and datasets) bound what
/// it adds, for the space the file reserves before writing anything.
struct FactorFileExtension {
  std::uint64_t bytes = 0;
  std::uint64_t objects = 0;
  std::function<void(StagedWriter& writer)> declare;
};

/// Collective: writes `chain` as a factor file (root attributes, /factors/W1..WK with the
/// lr_multiplier attribute, /ids/rows and /ids/cols when the maps are non-empty, and what
/// `extension` adds) to a temporary name in the same directory, then renames it to `path`
/// once every rank agrees the write succeeded. Each dataset carries a "checksum" attribute
/// that readers verify. A failure leaves `path` untouched and throws Error on every rank.
void write_factor_file(const ProcessGrid& grid, const IndexLayout& layout, const std::string& path,
                       const Chain& chain, const FactorFileMeta& meta, const IdMap& row_ids = {},
                       const IdMap& col_ids = {}, const FactorFileExtension& extension = {});

/// Collective: the /biases of a factor file or checkpoint in `layout`'s permuted spaces, or
/// nullopt when it has none. Errors name the file (wrong sizes, a missing mu).
std::optional<Biases> read_biases(MPI_Comm comm, const std::string& path, const IndexLayout& layout);
/// The same from a file open on every rank of its communicator.
std::optional<Biases> read_biases(const h5::File& file, const IndexLayout& layout);

/// Collective: the id maps stored in a factor file (empty when absent).
void read_id_maps(MPI_Comm comm, const std::string& path, IdMap& row_ids, IdMap& col_ids);

/// Ground truth (DESIGN.md section 4): factors /U (m x r), /V (n x r) with Phi = U V^T, or a
/// dense /matrix (m x n). Rows of U and of /matrix are read into the permuted row space, rows
/// of V and columns of /matrix into the permuted column space.
struct Truth {
  std::optional<DistMatrix> u;       // m x r
  std::optional<DistMatrix> v;       // n x r
  std::optional<DistMatrix> matrix;  // m x n
};
/// Collective. Errors name the file: missing, neither /U+/V nor /matrix, shapes that do not
/// match rows x cols of the layout.
Truth read_truth(const ProcessGrid& grid, const IndexLayout& layout, const std::string& path,
                 int block);
/// Collective: the m x n a truth file describes (rows of /U and /V, or the shape of /matrix).
FactorShape truth_dimensions(MPI_Comm comm, const std::string& path);
/// Collective: writes /U and /V, root attributes rows, cols, rank. Each rank holds some rows of
/// U and of V (column-major, original order; all of them on one rank, or consecutive slabs in
/// rank order) and writes them as its hyperslab.
void write_truth_factors(MPI_Comm comm, const std::string& path, std::int64_t rows,
                         std::int64_t cols, std::int64_t rank, const std::vector<double>& u,
                         const std::vector<double>& v);

/// Collective: reads observations from an HDF5 file with 1-D datasets /rows, /cols (integer)
/// and /values (float64) of equal length, each rank a contiguous slice; `index_base` is
/// subtracted from the indices. "lines" are the 1-based positions in the datasets.
EntryList read_hdf5_entries(MPI_Comm comm, const std::string& path, int index_base);

/// Collective: writes the entries of every rank (0-based, in rank order) as the 1-D datasets
/// /rows, /cols (int64) and /values (float64) that read_hdf5_entries reads, each rank its
/// hyperslab, with checksums; to a temporary name renamed when complete.
void write_hdf5_entries(MPI_Comm comm, const std::string& path, const EntryList& entries);

}  // namespace cdmf
