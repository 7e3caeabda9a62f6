#include "cdmf/io/slab_exchange.hpp"

#include <algorithm>
#include <climits>
#include <optional>
#include <utility>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"

namespace cdmf {

namespace {

/// Stored index of original index `o` of a dimension in `space` (inverse of original_index).
std::int64_t stored_index(const IndexLayout& layout, Space space, std::int64_t o) {
  switch (space) {
    case Space::kRows:
      return layout.permuted_row(o);
    case Space::kCols:
      return layout.permuted_col(o);
    case Space::kInner:
      break;
  }
  return o;
}

void check_extent(Space space, const IndexLayout& layout, std::int64_t size,
                  const char* dimension) {
  const std::int64_t expected = space == Space::kRows   ? layout.rows()
                                : space == Space::kCols ? layout.cols()
                                                        : size;
  fail_if(size != expected, "slab exchange: the matrix has {} {} but the permuted space has {}",
          size, dimension, expected);
}

/// Slab (rank) holding original row `row`, the inverse of row_slab.
int slab_owner(std::int64_t rows, int ranks, std::int64_t row) {
  const std::int64_t base = rows / ranks, extra = rows % ranks;
  const std::int64_t boundary = extra * (base + 1);
  if (row < boundary) return static_cast<int>(row / (base + 1));
  return static_cast<int>(extra + (row - boundary) / base);
}

/// This rank's local indices of one dimension as (original index, local index), sorted by
/// original index: the order in which both sides of the exchange walk the entries.
std::vector<std::pair<std::int64_t, std::int64_t>> local_by_original(const CyclicDim& dim,
                                                                     Space space,
                                                                     const IndexLayout& layout) {
  std::vector<std::pair<std::int64_t, std::int64_t>> order(static_cast<size_t>(dim.count()));
  for (std::int64_t l = 0; l < dim.count(); ++l)
    order[l] = {original_index(layout, space, dim.global(l)), l};
  std::sort(order.begin(), order.end());
  return order;
}

/// Grid process (row or column) owning each original index of a dimension.
std::vector<int> owners_by_original(const CyclicDim& dim, Space space, const IndexLayout& layout,
                                    std::int64_t first, std::int64_t count) {
  std::vector<int> owners(static_cast<size_t>(count));
  for (std::int64_t o = 0; o < count; ++o)
    owners[o] = dim.owner(stored_index(layout, space, first + o));
  return owners;
}

/// MPI counts and displacements, refusing what 32-bit counts cannot address.
struct Counts {
  std::vector<int> counts, offsets;
  int total = 0;
};
Counts to_mpi_counts(const std::vector<std::int64_t>& counts) {
  Counts result;
  std::int64_t total = 0;
  for (std::int64_t c : counts) {
    fail_if(total + c > INT_MAX,
            "slab exchange: more than {} values on one rank exceed MPI's 32-bit counts "
            "(use more ranks)",
            INT_MAX);
    result.offsets.push_back(static_cast<int>(total));
    result.counts.push_back(static_cast<int>(c));
    total += c;
  }
  result.total = static_cast<int>(total);
  return result;
}

}  // namespace

RowSlab row_slab(std::int64_t rows, int ranks, int rank) {
  const std::int64_t base = rows / ranks, extra = rows % ranks;
  return {rank * base + std::min<std::int64_t>(rank, extra), base + (rank < extra ? 1 : 0)};
}

SlabIndexing factor_indexing(int l, int depth) {
  return {l == depth - 1 ? Space::kRows : Space::kInner, l == 0 ? Space::kCols : Space::kInner};
}

std::vector<double> to_row_slab(const DistMatrix& matrix, const IndexLayout& layout,
                                SlabIndexing indexing) {
  const ProcessGrid& grid = matrix.grid();
  const int ranks = grid.size();
  const std::int64_t rows = matrix.rows(), cols = matrix.cols();
  check_extent(indexing.rows, layout, rows, "rows");
  check_extent(indexing.cols, layout, cols, "columns");

  // Send: local entries by (original row, original column); slabs are contiguous runs of
  // original rows, so each destination's values form one contiguous run of the buffer.
  const auto local_rows = local_by_original(matrix.row_dim(), indexing.rows, layout);
  const auto local_cols = local_by_original(matrix.col_dim(), indexing.cols, layout);
  std::vector<std::int64_t> send_counts(ranks, 0);
  for (const auto& row : local_rows)
    send_counts[slab_owner(rows, ranks, row.first)] += static_cast<std::int64_t>(local_cols.size());
  std::vector<double> send;
  send.reserve(local_rows.size() * local_cols.size());
  for (const auto& row : local_rows)
    for (const auto& col : local_cols) send.push_back(matrix.at_local(row.second, col.second));

  // Receive: the slab's entries from their block-cyclic owners, in the same order.
  const RowSlab slab = row_slab(rows, ranks, grid.rank());
  const auto row_owner =
      owners_by_original(matrix.row_dim(), indexing.rows, layout, slab.first, slab.count);
  const auto col_owner = owners_by_original(matrix.col_dim(), indexing.cols, layout, 0, cols);
  std::vector<std::int64_t> rows_of(grid.rows(), 0), cols_of(grid.cols(), 0);
  for (int p : row_owner) ++rows_of[p];
  for (int q : col_owner) ++cols_of[q];
  std::vector<std::int64_t> receive_counts(ranks, 0);
  for (int p = 0; p < grid.rows(); ++p)
    for (int q = 0; q < grid.cols(); ++q)
      receive_counts[grid.rank_of(p, q)] = rows_of[p] * cols_of[q];

  Counts out, in;
  run_agreed(grid.comm(), [&] {
    out = to_mpi_counts(send_counts);
    in = to_mpi_counts(receive_counts);
  });
  std::vector<double> received(static_cast<size_t>(in.total));
  check_mpi(
      MPI_Alltoallv(send.data(), out.counts.data(), out.offsets.data(), MPI_DOUBLE, received.data(),
                    in.counts.data(), in.offsets.data(), MPI_DOUBLE, grid.comm()),
      "MPI_Alltoallv");

  std::vector<double> result(static_cast<size_t>(slab.count * cols));
  std::vector<int> cursor = in.offsets;
  for (std::int64_t i = 0; i < slab.count; ++i)
    for (std::int64_t j = 0; j < cols; ++j)
      result[i * cols + j] = received[cursor[grid.rank_of(row_owner[i], col_owner[j])]++];
  return result;
}

void from_row_slab(const std::vector<double>& slab_values, const IndexLayout& layout,
                   SlabIndexing indexing, DistMatrix& matrix) {
  const ProcessGrid& grid = matrix.grid();
  const int ranks = grid.size();
  const std::int64_t rows = matrix.rows(), cols = matrix.cols();
  check_extent(indexing.rows, layout, rows, "rows");
  check_extent(indexing.cols, layout, cols, "columns");
  const RowSlab slab = row_slab(rows, ranks, grid.rank());

  // Send: the slab's entries to their block-cyclic owners, each run in (row, column) order.
  const auto row_owner =
      owners_by_original(matrix.row_dim(), indexing.rows, layout, slab.first, slab.count);
  const auto col_owner = owners_by_original(matrix.col_dim(), indexing.cols, layout, 0, cols);
  std::vector<std::int64_t> cols_of(grid.cols(), 0);
  for (int q : col_owner) ++cols_of[q];
  std::vector<std::int64_t> send_counts(ranks, 0);
  for (int p : row_owner)
    for (int q = 0; q < grid.cols(); ++q) send_counts[grid.rank_of(p, q)] += cols_of[q];

  // Receive: local entries by (original row, original column); sources (slabs) come in rank
  // order, which is the order of original rows, so the buffer is read front to back.
  const auto local_rows = local_by_original(matrix.row_dim(), indexing.rows, layout);
  const auto local_cols = local_by_original(matrix.col_dim(), indexing.cols, layout);
  std::vector<std::int64_t> receive_counts(ranks, 0);
  for (const auto& row : local_rows)
    receive_counts[slab_owner(rows, ranks, row.first)] +=
        static_cast<std::int64_t>(local_cols.size());

  Counts out, in;
  run_agreed(grid.comm(), [&] {
    fail_if(static_cast<std::int64_t>(slab_values.size()) != slab.count * cols,
            "slab exchange: {} values for a slab of {} rows of {}", slab_values.size(),
            slab.count, cols);
    out = to_mpi_counts(send_counts);
    in = to_mpi_counts(receive_counts);
  });
  std::vector<double> send(static_cast<size_t>(out.total));
  std::vector<int> cursor = out.offsets;
  for (std::int64_t i = 0; i < slab.count; ++i)
    for (std::int64_t j = 0; j < cols; ++j)
      send[cursor[grid.rank_of(row_owner[i], col_owner[j])]++] = slab_values[i * cols + j];
  std::vector<double> received(static_cast<size_t>(in.total));
  check_mpi(
      MPI_Alltoallv(send.data(), out.counts.data(), out.offsets.data(), MPI_DOUBLE, received.data(),
                    in.counts.data(), in.offsets.data(), MPI_DOUBLE, grid.comm()),
      "MPI_Alltoallv");
  size_t next = 0;
  for (const auto& row : local_rows)
    for (const auto& col : local_cols) matrix.at_local(row.second, col.second) = received[next++];
}

void read_matrix(const h5::File& file, const std::string& name, const IndexLayout& layout,
                 SlabIndexing indexing, DistMatrix& matrix) {
  std::optional<h5::Dataset> dataset;
  run_agreed(file.comm(), [&] {
    dataset.emplace(file.open_dataset(name));
    dataset->require(2, h5::Elements::kFloat64);
    fail_if(dataset->dims()[0] != matrix.rows() || dataset->dims()[1] != matrix.cols(),
            "{} has shape {}, expected {}x{}", dataset->where(), dataset->shape_text(),
            matrix.rows(), matrix.cols());
  });
  const RowSlab slab = row_slab(matrix.rows(), matrix.grid().size(), matrix.grid().rank());
  std::vector<double> values(static_cast<size_t>(slab.count * matrix.cols()));
  dataset->read_rows(H5T_NATIVE_DOUBLE, slab.first, slab.count, values.data());
  dataset->verify_checksum(h5::checksum(values.data(), slab.first * matrix.cols(),
                                        static_cast<std::int64_t>(values.size())));
  from_row_slab(values, layout, indexing, matrix);
}

namespace {
template <typename T>
std::vector<T> read_whole(const h5::File& file, const std::string& name, hid_t memory_type,
                          h5::Elements elements) {
  std::optional<h5::Dataset> dataset;
  run_agreed(file.comm(), [&] {
    dataset.emplace(file.open_dataset(name));
    dataset->require(1, elements);
  });
  const std::int64_t count = dataset->dims()[0];
  std::vector<T> values(static_cast<size_t>(count));
  dataset->read_rows(memory_type, 0, count, values.data());
  run_agreed(file.comm(),
             [&] { dataset->verify_whole_checksum(h5::checksum(values.data(), 0, count)); });
  return values;
}
}  // namespace

std::vector<std::int64_t> read_whole_int64(const h5::File& file, const std::string& name) {
  return read_whole<std::int64_t>(file, name, H5T_NATIVE_INT64, h5::Elements::kInteger);
}

std::vector<double> read_whole_float64(const h5::File& file, const std::string& name) {
  return read_whole<double>(file, name, H5T_NATIVE_DOUBLE, h5::Elements::kFloat64);
}

}  // namespace cdmf
