#pragma once
/// Moving a block-cyclic DistMatrix to and from contiguous slabs of rows in *original* index
/// order, the shape in which every rank reads and writes its part of an HDF5 dataset (internal
/// to the I/O layer; factor files, truth files and checkpoints share it).
///
/// A matrix of R rows is cut into P slabs in rank order (row_slab); rank r holds slab r,
/// row-major. The exchange is one MPI_Alltoallv of values only: sender and receiver both order
/// the entries of each pair of ranks by (original row, original column), so the position of a
/// value in the message says where it goes and no indices travel.
///
/// Files are read and written as these slabs: each rank transfers its own hyperslab of every
/// dataset with a collective MPI-IO transfer.
#include <cstdint>
#include <string>
#include <vector>

#include "cdmf/data/layout.hpp"
#include "cdmf/io/hdf5.hpp"
#include "cdmf/linalg/dist_matrix.hpp"
#include "cdmf/model/chain.hpp"

namespace cdmf {

/// Rows [first, first + count) of a dataset.
struct RowSlab {
  std::int64_t first = 0;
  std::int64_t count = 0;
};

/// Slab of `rank` when `rows` rows are split into `ranks` contiguous slabs in rank order, the
/// first rows % ranks slabs one row longer (ranks past `rows` get empty slabs).
RowSlab row_slab(std::int64_t rows, int ranks, int rank);

/// Index spaces (model/chain.hpp) of a matrix's rows and columns: Space::kInner is the
/// file's order, kRows / kCols the layout's permuted row / column space.
struct SlabIndexing {
  Space rows = Space::kInner;
  Space cols = Space::kInner;
};

/// Factor l (0-based) of a chain of `depth` factors: rows in the permuted row space iff
/// l == depth - 1 (WK), columns in the permuted column space iff l == 0 (W1).
SlabIndexing factor_indexing(int l, int depth);

/// Collective over matrix.grid().comm(): this rank's slab row_slab(matrix.rows(), P, rank) of
/// the matrix in original order, row-major (count x cols).
std::vector<double> to_row_slab(const DistMatrix& matrix, const IndexLayout& layout,
                                SlabIndexing indexing);

/// Collective over matrix.grid().comm(): the inverse of to_row_slab. `slab` is this rank's
/// row_slab(matrix.rows(), P, rank) of the original-order matrix, row-major.
void from_row_slab(const std::vector<double>& slab, const IndexLayout& layout,
                   SlabIndexing indexing, DistMatrix& matrix);

// Writing goes through StagedWriter (staged_writer.hpp), which records checksums.

/// Collective: reads 2-D float64 dataset `name` of `file` (opened on matrix.grid().comm())
/// into `matrix`, whose shape it must have ("FILE: NAME has shape AxB, expected CxD"), and
/// verifies the dataset's checksum when it has one.
void read_matrix(const h5::File& file, const std::string& name, const IndexLayout& layout,
                 SlabIndexing indexing, DistMatrix& matrix);

/// Collective: every rank reads all of 1-D dataset `name` (integers, read as int64), checksum
/// verified. For the small replicated tables of a checkpoint.
std::vector<std::int64_t> read_whole_int64(const h5::File& file, const std::string& name);
/// Collective: the same for a 1-D float64 dataset.
std::vector<double> read_whole_float64(const h5::File& file, const std::string& name);

}  // namespace cdmf
