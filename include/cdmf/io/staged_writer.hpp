#pragma once
/// Writing an HDF5 file in the order h5::File requires (internal to the I/O layer, shared by
/// factor files and checkpoints): every group, dataset and attribute first, then one metadata
/// flush, then the data. Each add_* call creates its dataset at once, with a "checksum"
/// attribute over the data it will hold (so nothing dirties the metadata after the flush),
/// and keeps this rank's slab of the data until write_all().
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "cdmf/data/layout.hpp"
#include "cdmf/io/hdf5.hpp"
#include "cdmf/io/slab_exchange.hpp"
#include "cdmf/linalg/dist_matrix.hpp"

namespace cdmf {

/// An upper bound of the size of an HDF5 file holding `data_bytes` of data in `objects` groups
/// and datasets plus `text_bytes` of string attributes, for h5::File::reserve: the metadata of
/// one of cdmf's objects (object header, attributes, its link in the parent group) stays well
/// under 8 KiB, and 64 KiB cover the superblock and the root group.
std::uint64_t file_size_bound(std::uint64_t data_bytes, std::uint64_t objects,
                              std::uint64_t text_bytes);

class StagedWriter {
 public:
  /// `file` must outlive the writer; destroy the writer (it holds the datasets open) before
  /// closing the file.
  explicit StagedWriter(h5::File& file) : file_(file) {}

  h5::File& file() { return file_; }

  /// Collective: float64 dataset `name` of shape rows x cols that will hold `matrix` in
  /// original order (its block-cyclic entries are exchanged into row slabs now).
  h5::Dataset& add_matrix(const std::string& name, const DistMatrix& matrix,
                          const IndexLayout& layout, SlabIndexing indexing);
  /// Collective: 1-D int64 dataset `name` of `total` elements, of which this rank will write
  /// `values` at positions [first, first + values.size()).
  h5::Dataset& add_int64(const std::string& name, std::int64_t total, std::int64_t first,
                         std::vector<std::int64_t> values);
  /// Collective: the same for a 1-D float64 dataset.
  h5::Dataset& add_float64(const std::string& name, std::int64_t total, std::int64_t first,
                           std::vector<double> values);

  /// Collective: flushes the metadata, writes every staged slab (collective transfers), and
  /// syncs the file to stable storage.
  void write_all();

 private:
  struct Staged {
    h5::Dataset dataset;
    bool integer;                  // int64 data, else float64
    std::int64_t first_row, rows;  // of the leading dimension
    std::vector<double> doubles;
    std::vector<std::int64_t> integers;
  };
  /// Records the checksum of the staged slab (which starts at element `first_element`).
  h5::Dataset& stage(Staged staged, std::int64_t first_element);

  h5::File& file_;
  std::deque<Staged> staged_;  // a deque: references to its datasets stay valid
};

}  // namespace cdmf
