#include "cdmf/io/hdf5.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "cdmf/io/hash.hpp"

namespace cdmf::h5 {

namespace {

/// HDF5 prints its error stack to stderr by default; cdmf reports failures as Errors instead.
void silence_error_printing() {
  static const bool silenced = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)silenced;
}

/// The innermost description on HDF5's error stack: the root cause of the last failure.
std::string error_detail() {
  std::string detail;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* entry, void* out) -> herr_t {
        // Walking downward ends at the innermost entry, the root cause.
        if (entry->desc != nullptr && entry->desc[0] != '\0')
          *static_cast<std::string*>(out) = entry->desc;
        return 0;
      },
      &detail);
  return detail;
}

/// " (HDF5: cause)" for messages, or nothing when the stack is empty.
std::string cause() {
  const std::string detail = error_detail();
  return detail.empty() ? std::string() : " (HDF5: " + detail + ")";
}

/// Throws (locally) when an HDF5 call returned a negative id or status.
template <typename T>
T check(T result, const std::string& where, const std::string& what) {
  if (result < 0) fail("{}: cannot {}{}", where, what, cause());
  return result;
}

PropertyListId mpio_file_access(MPI_Comm comm, const std::string& path) {
  PropertyListId access(check(H5Pcreate(H5P_FILE_ACCESS), path, "create a file access list"));
  check(H5Pset_fapl_mpio(access.get(), comm, MPI_INFO_NULL), path, "select MPI-IO");
  return access;
}

TypeId variable_string_type(H5T_cset_t cset = H5T_CSET_UTF8) {
  TypeId type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), cset);
  return type;
}

std::string describe_type(hid_t type) {
  const std::string bits = std::to_string(8 * H5Tget_size(type));
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + bits;
    case H5T_FLOAT:
      return "float" + bits;
    case H5T_STRING:
      return "string";
    default:
      return "non-numeric";
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Attributes

std::string Attributes::describe(const std::string& name) const {
  return "attribute '" + name + "'" + (owner_.empty() ? "" : " of " + owner_);
}

bool Attributes::has(const std::string& name) const {
  return check(H5Aexists(object_, name.c_str()), file_, "look up " + describe(name)) > 0;
}

AttributeId Attributes::open(const std::string& name, H5T_class_t type_class, bool numbers,
                             const char* kind) const {
  AttributeId attribute(
      check(H5Aopen(object_, name.c_str(), H5P_DEFAULT), file_, "open " + describe(name)));
  const DataspaceId space(check(H5Aget_space(attribute.get()), file_, "read " + describe(name)));
  const TypeId type(check(H5Aget_type(attribute.get()), file_, "read " + describe(name)));
  const H5T_class_t found = H5Tget_class(type.get());
  const bool ok = found == type_class || (numbers && found == H5T_INTEGER);
  fail_if(!ok || H5Sget_simple_extent_npoints(space.get()) != 1, "{}: {} is not {}", file_,
          describe(name), kind);
  return attribute;
}

std::optional<std::string> Attributes::get_string(const std::string& name) const {
  if (!has(name)) return std::nullopt;
  const AttributeId attribute = open(name, H5T_STRING, false, "a string");
  const std::string what = "read " + describe(name);
  const TypeId type(check(H5Aget_type(attribute.get()), file_, what));
  if (H5Tis_variable_str(type.get()) > 0) {
    const TypeId memory = variable_string_type(H5Tget_cset(type.get()));
    char* text = nullptr;
    check(H5Aread(attribute.get(), memory.get(), &text), file_, what);
    std::string value = text != nullptr ? text : "";
    H5free_memory(text);
    return value;
  }
  // Fixed length: null-terminated, null-padded or space-padded to the type's size.
  std::string value(H5Tget_size(type.get()), '\0');
  check(H5Aread(attribute.get(), type.get(), value.data()), file_, what);
  value.resize(std::min(value.size(), value.find('\0')));
  if (H5Tget_strpad(type.get()) == H5T_STR_SPACEPAD) value.erase(value.find_last_not_of(' ') + 1);
  return value;
}

std::optional<std::int64_t> Attributes::get_int(const std::string& name) const {
  if (!has(name)) return std::nullopt;
  const AttributeId attribute = open(name, H5T_INTEGER, false, "an integer");
  std::int64_t value = 0;
  check(H5Aread(attribute.get(), H5T_NATIVE_INT64, &value), file_, "read " + describe(name));
  return value;
}

std::optional<double> Attributes::get_double(const std::string& name) const {
  if (!has(name)) return std::nullopt;
  const AttributeId attribute = open(name, H5T_FLOAT, true, "a number");
  double value = 0.0;
  check(H5Aread(attribute.get(), H5T_NATIVE_DOUBLE, &value), file_, "read " + describe(name));
  return value;
}

void Attributes::set(const std::string& name, hid_t file_type, hid_t memory_type,
                     const void* value) {
  std::string message;
  try {
    const DataspaceId space(check(H5Screate(H5S_SCALAR), file_, "create a dataspace"));
    AttributeId attribute(
        check(H5Acreate2(object_, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
              file_, "create " + describe(name)));
    check(H5Awrite(attribute.get(), memory_type, value), file_, "write " + describe(name));
    check(attribute.close(), file_, "close " + describe(name));
  } catch (const Error& e) {
    message = e.what();
  }
  agree_on_error(comm_, message);
}

void Attributes::set_string(const std::string& name, const std::string& value) {
  const TypeId type = variable_string_type();
  const char* text = value.c_str();
  set(name, type.get(), type.get(), &text);
}

void Attributes::set_int(const std::string& name, std::int64_t value) {
  set(name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void Attributes::set_double(const std::string& name, double value) {
  set(name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

// ---------------------------------------------------------------------------------------
// Dataset

Dataset::Dataset(DatasetId id, MPI_Comm comm, std::string file, std::string name)
    : id_(std::move(id)), comm_(comm), file_(std::move(file)), name_(std::move(name)) {
  const DataspaceId space(check(H5Dget_space(id_.get()), file_, "read the extent of " + name_));
  const int rank =
      check(H5Sget_simple_extent_ndims(space.get()), file_, "read the extent of " + name_);
  std::vector<hsize_t> extent(static_cast<size_t>(rank));
  check(H5Sget_simple_extent_dims(space.get(), extent.data(), nullptr), file_,
        "read the extent of " + name_);
  dims_.assign(extent.begin(), extent.end());
  const TypeId type(check(H5Dget_type(id_.get()), file_, "read the element type of " + name_));
  type_class_ = H5Tget_class(type.get());
  type_name_ = describe_type(type.get());
}

std::string Dataset::shape_text() const {
  std::string text;
  for (size_t d = 0; d < dims_.size(); ++d) text += (d ? "x" : "") + std::to_string(dims_[d]);
  return text.empty() ? "scalar" : text;
}

void Dataset::require(size_t rank, Elements elements) const {
  fail_if(dims_.size() != rank, "{} is not {}-D (shape {})", where(), rank, shape_text());
  const bool ok = elements == Elements::kFloat64 ? type_name_ == "float64"
                  : elements == Elements::kInteger
                      ? type_class_ == H5T_INTEGER
                      : type_class_ == H5T_INTEGER || type_class_ == H5T_FLOAT;
  const char* expected = elements == Elements::kFloat64   ? "float64"
                         : elements == Elements::kInteger ? "integers"
                                                          : "numbers";
  fail_if(!ok, "{} has element type {}, expected {}", where(), type_name_, expected);
}

std::pair<DataspaceId, DataspaceId> Dataset::select_rows(std::int64_t first,
                                                         std::int64_t count) const {
  const std::string what = "select rows of " + name_;
  fail_if(dims_.empty(), "{} is a scalar, expected rows", where());
  fail_if(first < 0 || count < 0 || first + count > dims_[0],
          "{}: rows {}..{} are outside the {} rows of {}", file_, first, first + count, dims_[0],
          name_);
  std::int64_t row_length = 1;
  for (size_t d = 1; d < dims_.size(); ++d) row_length *= dims_[d];
  const std::int64_t elements = count * row_length;

  DataspaceId file_space(check(H5Dget_space(id_.get()), file_, what));
  const hsize_t memory_extent = static_cast<hsize_t>(std::max<std::int64_t>(1, elements));
  DataspaceId memory_space(check(H5Screate_simple(1, &memory_extent, nullptr), file_, what));
  if (elements == 0) {
    // Empty slabs still join the collective transfer, with nothing selected.
    check(H5Sselect_none(file_space.get()), file_, what);
    check(H5Sselect_none(memory_space.get()), file_, what);
  } else {
    std::vector<hsize_t> start(dims_.size(), 0), block(dims_.begin(), dims_.end());
    start[0] = static_cast<hsize_t>(first);
    block[0] = static_cast<hsize_t>(count);
    check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, block.data(),
                              nullptr),
          file_, what);
  }
  return {std::move(file_space), std::move(memory_space)};
}

namespace {
PropertyListId collective_transfer(const std::string& where) {
  PropertyListId transfer(check(H5Pcreate(H5P_DATASET_XFER), where, "create a transfer list"));
  check(H5Pset_dxpl_mpio(transfer.get(), H5FD_MPIO_COLLECTIVE), where,
        "select collective transfers");
  return transfer;
}
}  // namespace

namespace {
/// A dataset with no elements has no storage (HDF5 fails any transfer, even an empty one).
bool is_empty(const std::vector<std::int64_t>& dims) {
  return std::any_of(dims.begin(), dims.end(), [](std::int64_t d) { return d == 0; });
}
}  // namespace

void Dataset::write_rows(hid_t memory_type, std::int64_t first, std::int64_t count,
                         const void* data) {
  if (is_empty(dims_) && first == 0 && count == 0) return;  // the same on every rank
  const auto [file_space, memory_space] = select_rows(first, count);
  const PropertyListId transfer = collective_transfer(file_);
  const double placeholder = 0.0;  // HDF5 wants a buffer even for an empty selection
  const herr_t status = H5Dwrite(id_.get(), memory_type, memory_space.get(), file_space.get(),
                                 transfer.get(), data != nullptr ? data : &placeholder);
  agree_on_error(comm_, status < 0 ? fmt::format("{}: cannot write rows {}..{} of {}{}", file_,
                                                 first, first + count - 1, name_, cause())
                                   : std::string());
}

void Dataset::read_rows(hid_t memory_type, std::int64_t first, std::int64_t count,
                        void* data) const {
  if (is_empty(dims_) && first == 0 && count == 0) return;  // the same on every rank
  const auto [file_space, memory_space] = select_rows(first, count);
  const PropertyListId transfer = collective_transfer(file_);
  double placeholder = 0.0;
  const herr_t status = H5Dread(id_.get(), memory_type, memory_space.get(), file_space.get(),
                                transfer.get(), data != nullptr ? data : &placeholder);
  agree_on_error(comm_, status < 0 ? fmt::format("{}: cannot read rows {}..{} of {}{}", file_,
                                                 first, first + count - 1, name_, cause())
                                   : std::string());
}

namespace {
std::string checksum_text(std::uint64_t value) { return fmt::format("{:016x}", value); }

std::uint64_t sum_over_ranks(std::uint64_t local, MPI_Comm comm) {
  std::uint64_t total = 0;  // MPI_SUM on unsigned integers wraps, as the checksum needs
  check_mpi(MPI_Allreduce(&local, &total, 1, MPI_UINT64_T, MPI_SUM, comm), "MPI_Allreduce");
  return total;
}
}  // namespace

std::uint64_t checksum(const void* elements, std::int64_t first, std::int64_t count) {
  const auto* bytes = static_cast<const unsigned char*>(elements);
  std::uint64_t sum = 0;
  for (std::int64_t e = 0; e < count; ++e) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, bytes + 8 * e, 8);
    sum += mix64(bits ^ mix64(static_cast<std::uint64_t>(first + e)));
  }
  return sum;
}

void Dataset::set_checksum(std::uint64_t local) {
  attributes().set_string("checksum", checksum_text(sum_over_ranks(local, comm_)));
}

void Dataset::verify_checksum(std::uint64_t local) const {
  const std::uint64_t total = sum_over_ranks(local, comm_);
  run_agreed(comm_, [&] { verify_whole_checksum(total); });
}

void Dataset::verify_whole_checksum(std::uint64_t whole) const {
  const auto stored = attributes().get_string("checksum");
  if (!stored) return;
  fail_if(*stored != checksum_text(whole),
          "{} is corrupted (checksum mismatch: the data hash to {}, the file records {})", where(),
          checksum_text(whole), *stored);
}

// ---------------------------------------------------------------------------------------
// File

File File::create(MPI_Comm comm, const std::string& path) {
  silence_error_printing();
  std::string message;
  FileId id;
  try {
    const PropertyListId access = mpio_file_access(comm, path);
    check(H5Pset_libver_bounds(access.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST), path,
          "select the file format");
    id = FileId(check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get()), path,
                      "create the file"));
  } catch (const Error& e) {
    message = e.what();
  }
  agree_on_error(comm, message);
  return File(std::move(id), comm, path);
}

File File::open(MPI_Comm comm, const std::string& path) {
  silence_error_printing();
  std::string message;
  std::error_code code;
  if (!std::filesystem::exists(path, code)) {
    message = fmt::format("{}: no such file", path);
  } else if (std::filesystem::is_directory(path, code)) {
    message = fmt::format("{}: is a directory, not a file", path);
  } else if (::access(path.c_str(), R_OK) != 0) {
    message = fmt::format("{}: cannot read ({})", path, std::strerror(errno));
  }
  agree_on_error(comm, message);

  FileId id;
  try {
    const PropertyListId access = mpio_file_access(comm, path);
    id = FileId(H5Fopen(path.c_str(), H5F_ACC_RDONLY, access.get()));
    if (!id.valid()) message = fmt::format("{}: cannot open (not an HDF5 file or truncated)", path);
  } catch (const Error& e) {
    message = e.what();
  }
  agree_on_error(comm, message);
  return File(std::move(id), comm, path);
}

bool File::has(const std::string& name) const {
  // H5Lexists fails (rather than answering no) when an intermediate group is missing.
  size_t end = 0;
  while (end != std::string::npos) {
    end = name.find('/', end + 1);
    const std::string prefix = name.substr(0, end);
    if (check(H5Lexists(id_.get(), prefix.c_str(), H5P_DEFAULT), path_, "look up " + prefix) <= 0)
      return false;
  }
  return true;
}

std::int64_t File::group_size(const std::string& name) const {
  const GroupId group(
      check(H5Gopen2(id_.get(), name.c_str(), H5P_DEFAULT), path_, "open group " + name));
  H5G_info_t info;
  check(H5Gget_info(group.get(), &info), path_, "read group " + name);
  return static_cast<std::int64_t>(info.nlinks);
}

Group File::create_group(const std::string& name) {
  std::string message;
  GroupId group;
  try {
    group = GroupId(check(H5Gcreate2(id_.get(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                          path_, "create group " + name));
  } catch (const Error& e) {
    message = e.what();
  }
  agree_on_error(comm_, message);
  return Group(std::move(group), comm_, path_, name);
}

Group File::open_group(const std::string& name) const {
  fail_if(!has(name), "{}: {} is missing", path_, name);
  GroupId id(H5Gopen2(id_.get(), name.c_str(), H5P_DEFAULT));
  fail_if(!id.valid(), "{}: {} is not a group", path_, name);
  return Group(std::move(id), comm_, path_, name);
}

Dataset File::create_dataset(const std::string& name, hid_t file_type,
                             const std::vector<std::int64_t>& dims) {
  std::string message;
  DatasetId id;
  try {
    const std::vector<hsize_t> extent(dims.begin(), dims.end());
    const DataspaceId space(
        check(H5Screate_simple(static_cast<int>(extent.size()), extent.data(), nullptr), path_,
              "create the dataspace of " + name));
    const PropertyListId creation(
        check(H5Pcreate(H5P_DATASET_CREATE), path_, "create a dataset creation list"));
    check(H5Pset_fill_time(creation.get(), H5D_FILL_TIME_NEVER), path_, "set the fill time");
    id = DatasetId(check(H5Dcreate2(id_.get(), name.c_str(), file_type, space.get(), H5P_DEFAULT,
                                    creation.get(), H5P_DEFAULT),
                         path_, "create dataset " + name));
  } catch (const Error& e) {
    message = e.what();
  }
  agree_on_error(comm_, message);
  return Dataset(std::move(id), comm_, path_, name);
}

Dataset File::open_dataset(const std::string& name) const {
  fail_if(!has(name), "{}: {} is missing", path_, name);
  DatasetId id(H5Dopen2(id_.get(), name.c_str(), H5P_DEFAULT));
  fail_if(!id.valid(), "{}: {} is not a dataset", path_, name);
  return Dataset(std::move(id), comm_, path_, name);
}

void File::reserve(std::uint64_t bytes) {
  flush();  // the superblock: afterwards nothing is dirty until the caller declares objects
  int rank = 0;
  check_mpi(MPI_Comm_rank(comm_, &rank), "MPI_Comm_rank");
  std::string message;
  if (rank == 0) {
    const int fd = ::open(path_.c_str(), O_WRONLY);
    const int code = fd < 0 ? errno : ::posix_fallocate(fd, 0, static_cast<off_t>(bytes));
    if (fd >= 0) ::close(fd);
    if (code != 0)
      message = fmt::format("{}: cannot reserve {:.1f} MB for the file ({})", path_,
                            static_cast<double>(bytes) / 1e6, std::strerror(code));
  }
  agree_on_error(comm_, message);
}

void File::flush() {
  const herr_t status = H5Fflush(id_.get(), H5F_SCOPE_GLOBAL);
  agree_on_error(comm_,
                 status < 0 ? fmt::format("{}: cannot flush{}", path_, cause()) : std::string());
}

void File::close() {
  const herr_t status = id_.close();
  agree_on_error(comm_, status < 0
                            ? fmt::format("{}: cannot close (final flush failed){}", path_, cause())
                            : std::string());
}

}  // namespace cdmf::h5
