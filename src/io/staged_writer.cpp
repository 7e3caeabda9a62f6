#include "cdmf/io/staged_writer.hpp"

#include <utility>

#include "cdmf/core/error.hpp"

namespace cdmf {

std::uint64_t file_size_bound(std::uint64_t data_bytes, std::uint64_t objects,
                              std::uint64_t text_bytes) {
  return data_bytes + 2 * text_bytes + (64 << 10) + objects * (8 << 10);
}

h5::Dataset& StagedWriter::stage(Staged staged, std::int64_t first_element) {
  const bool integer = staged.integer;
  const void* data = integer ? static_cast<const void*>(staged.integers.data())
                             : static_cast<const void*>(staged.doubles.data());
  const auto elements =
      static_cast<std::int64_t>(integer ? staged.integers.size() : staged.doubles.size());
  staged.dataset.set_checksum(h5::checksum(data, first_element, elements));
  staged_.push_back(std::move(staged));
  return staged_.back().dataset;
}

h5::Dataset& StagedWriter::add_matrix(const std::string& name, const DistMatrix& matrix,
                                      const IndexLayout& layout, SlabIndexing indexing) {
  h5::Dataset dataset = file_.create_dataset(name, H5T_IEEE_F64LE, {matrix.rows(), matrix.cols()});
  const RowSlab slab = row_slab(matrix.rows(), matrix.grid().size(), matrix.grid().rank());
  Staged staged{
      std::move(dataset), false, slab.first, slab.count, to_row_slab(matrix, layout, indexing), {}};
  return stage(std::move(staged), slab.first * matrix.cols());
}

h5::Dataset& StagedWriter::add_int64(const std::string& name, std::int64_t total,
                                     std::int64_t first, std::vector<std::int64_t> values) {
  h5::Dataset dataset = file_.create_dataset(name, H5T_STD_I64LE, {total});
  const auto count = static_cast<std::int64_t>(values.size());
  return stage({std::move(dataset), true, first, count, {}, std::move(values)}, first);
}

h5::Dataset& StagedWriter::add_float64(const std::string& name, std::int64_t total,
                                       std::int64_t first, std::vector<double> values) {
  h5::Dataset dataset = file_.create_dataset(name, H5T_IEEE_F64LE, {total});
  const auto count = static_cast<std::int64_t>(values.size());
  return stage({std::move(dataset), false, first, count, std::move(values), {}}, first);
}

void StagedWriter::write_all() {
  file_.flush();
  for (Staged& staged : staged_) {
    if (staged.integer)
      staged.dataset.write_rows(H5T_NATIVE_INT64, staged.first_row, staged.rows,
                                staged.integers.data());
    else
      staged.dataset.write_rows(H5T_NATIVE_DOUBLE, staged.first_row, staged.rows,
                                staged.doubles.data());
  }
  // HDF5's flush ends in MPI_File_sync: the data reach stable storage before the caller
  // renames the file into place (a node that fails later cannot take them with it).
  file_.flush();
}

}  // namespace cdmf
