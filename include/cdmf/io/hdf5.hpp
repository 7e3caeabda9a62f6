#pragma once
/// Owned HDF5 handles and the few parallel-HDF5 operations cdmf's files need (internal to the
/// I/O layer). Files are opened with MPI-IO on a communicator; data transfers are collective.
///
/// Failure handling: HDF5's automatic error printing is off, failures become Error naming the
/// file and what failed. Operations marked *collective* must be called by every rank of the
/// file's communicator and agree on failure (every rank throws the same Error), so no rank is
/// left waiting in a collective. The others (opening a dataset, reading attributes) are
/// independent: callers reading metadata wrap them in run_agreed, with no collective inside.
#include <hdf5.h>
#include <mpi.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cdmf::h5 {

/// Owns one HDF5 identifier and closes it exactly once with `Close`. Move-only.
template <herr_t (*Close)(hid_t)>
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
    }
    return *this;
  }

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  /// Closes now and returns HDF5's status (destructors cannot report failure).
  herr_t close() { return id_ >= 0 ? Close(std::exchange(id_, H5I_INVALID_HID)) : 0; }

 private:
  void reset() noexcept {
    if (id_ >= 0) Close(std::exchange(id_, H5I_INVALID_HID));
  }
  hid_t id_ = H5I_INVALID_HID;
};

using FileId = Handle<H5Fclose>;
using GroupId = Handle<H5Gclose>;
using DatasetId = Handle<H5Dclose>;
using DataspaceId = Handle<H5Sclose>;
using PropertyListId = Handle<H5Pclose>;
using AttributeId = Handle<H5Aclose>;
using TypeId = Handle<H5Tclose>;

/// The attributes of one object (a file's root group or a dataset); a view that is valid
/// while the object is open. Messages name the file and, for a dataset, the dataset
/// ("FILE: attribute 'rows' of /factors/W1 is not an integer").
class Attributes {
 public:
  /// `owner` is the dataset name, or empty for the root group.
  Attributes(hid_t object, MPI_Comm comm, std::string file, std::string owner)
      : object_(object), comm_(comm), file_(std::move(file)), owner_(std::move(owner)) {}

  bool has(const std::string& name) const;
  /// Independent: the value (fixed- or variable-length string), nullopt when absent, Error
  /// when the attribute is not a single string.
  std::optional<std::string> get_string(const std::string& name) const;
  /// Independent: any integer type, read as int64.
  std::optional<std::int64_t> get_int(const std::string& name) const;
  /// Independent: any numeric type, read as float64.
  std::optional<double> get_double(const std::string& name) const;

  /// Collective (same value on every rank): a scalar variable-length UTF-8 string attribute.
  void set_string(const std::string& name, const std::string& value);
  /// Collective: a scalar int64 attribute.
  void set_int(const std::string& name, std::int64_t value);
  /// Collective: a scalar float64 attribute.
  void set_double(const std::string& name, double value);

 private:
  /// "attribute 'NAME'" or "attribute 'NAME' of /dataset" for messages.
  std::string describe(const std::string& name) const;
  /// Opens attribute `name`, requiring one element of `type_class` (or any number when
  /// `type_class` is H5T_FLOAT and `numbers` is set).
  AttributeId open(const std::string& name, H5T_class_t type_class, bool numbers,
                   const char* kind) const;
  void set(const std::string& name, hid_t file_type, hid_t memory_type, const void* value);

  hid_t object_;
  MPI_Comm comm_;
  std::string file_;
  std::string owner_;
};

/// What the elements of a dataset must be for Dataset::require.
enum class Elements { kFloat64, kInteger, kNumber };

/// A dataset of an open File, with its extent and element type read at open.
class Dataset {
 public:
  const std::string& name() const { return name_; }
  /// "FILE: NAME", the prefix of messages about this dataset.
  std::string where() const { return file_ + ": " + name_; }
  const std::vector<std::int64_t>& dims() const { return dims_; }
  /// "5x7" (or "12" for 1-D): the extent for messages.
  std::string shape_text() const;
  Attributes attributes() const { return Attributes(id_.get(), comm_, file_, name_); }
  /// Independent: throws unless the dataset has `rank` dimensions and `elements`
  /// ("FILE: /rows is not 1-D (shape 3x2)", "FILE: /U has element type int32, expected float64").
  void require(size_t rank, Elements elements) const;

  /// Collective (H5FD_MPIO_COLLECTIVE): writes rows [first, first + count) of the leading
  /// dimension (all of the others) from `data`, row-major, converted from `memory_type`.
  /// Ranks with count 0 take part with empty selections.
  void write_rows(hid_t memory_type, std::int64_t first, std::int64_t count, const void* data);
  /// Collective: reads rows [first, first + count) into `data`, row-major, as `memory_type`.
  void read_rows(hid_t memory_type, std::int64_t first, std::int64_t count, void* data) const;

  /// Collective, before the file's metadata flush: records attribute "checksum", the sum over
  /// the ranks of `local` (each rank's checksum() of the elements it will write).
  void set_checksum(std::uint64_t local);
  /// Collective, after every rank read its part: compares the sum over the ranks of `local`
  /// with attribute "checksum" ("FILE: NAME is corrupted (checksum mismatch: ...)" on every
  /// rank). Datasets without the attribute (files of other writers) are not checked.
  void verify_checksum(std::uint64_t local) const;
  /// Independent: the same check when this rank read the whole dataset itself.
  void verify_whole_checksum(std::uint64_t whole) const;

 private:
  friend class File;
  Dataset(DatasetId id, MPI_Comm comm, std::string file, std::string name);
  /// File and memory dataspaces selecting rows [first, first + count).
  std::pair<DataspaceId, DataspaceId> select_rows(std::int64_t first, std::int64_t count) const;

  DatasetId id_;
  MPI_Comm comm_;
  std::string file_;
  std::string name_;
  std::vector<std::int64_t> dims_;
  H5T_class_t type_class_ = H5T_NO_CLASS;
  std::string type_name_;  // "float64", "int32", "uint16", "string", ... for messages
};

/// An open group of a File (for its attributes). Independent; must be destroyed before the
/// File is closed, like every Dataset.
class Group {
 public:
  Attributes attributes() const { return Attributes(id_.get(), comm_, file_, name_); }
  const std::string& name() const { return name_; }

 private:
  friend class File;
  Group(GroupId id, MPI_Comm comm, std::string file, std::string name)
      : id_(std::move(id)), comm_(comm), file_(std::move(file)), name_(std::move(name)) {}
  GroupId id_;
  MPI_Comm comm_;
  std::string file_;
  std::string name_;
};

/// Checksum of `count` 8-byte elements (float64 or int64) that sit at element positions
/// [first, first + count) of a dataset, row-major: the sum mod 2^64 over the elements of a
/// mix of (position, bit pattern). Sums of the slabs of all ranks give the dataset's checksum
/// whatever the split, so each rank hashes only what it writes or reads.
std::uint64_t checksum(const void* elements, std::int64_t first, std::int64_t count);

/// An HDF5 file opened with MPI-IO (H5Pset_fapl_mpio) on a borrowed communicator, which must
/// outlive it. Closing is collective: every rank destroys or closes its File together.
///
/// Writers reserve() the file's space, create every dataset and attribute, flush(), and only
/// then write the data: HDF5 1.10 cannot recover from a failed H5Fclose (the file id is left
/// dangling and the library crashes at exit), so nothing after the reservation may fail for
/// lack of space, and with the metadata already on disk a failed data write leaves nothing
/// for the close to write.
class File {
 public:
  /// Collective: creates `path` for writing (truncating an existing file), in the HDF5 1.8
  /// file format or later, whose metadata (superblock, object headers, indices) carry
  /// checksums, so a damaged header is detected on open or read.
  static File create(MPI_Comm comm, const std::string& path);
  /// Collective: opens an existing file read-only. Errors: "PATH: no such file",
  /// "PATH: cannot open (not an HDF5 file or truncated)".
  static File open(MPI_Comm comm, const std::string& path);

  const std::string& path() const { return path_; }
  MPI_Comm comm() const { return comm_; }
  Attributes attributes() const { return Attributes(id_.get(), comm_, path_, ""); }

  /// Independent: whether the absolute object name (e.g. "/factors/W1") exists; a missing
  /// intermediate group is "no", not an error.
  bool has(const std::string& name) const;
  /// Independent: the number of links in group `name`.
  std::int64_t group_size(const std::string& name) const;
  /// Collective: creates group `name` (its parent must exist) and returns it open, for its
  /// attributes.
  Group create_group(const std::string& name);
  /// Independent: opens group `name` ("PATH: NAME is missing" when absent).
  Group open_group(const std::string& name) const;
  /// Collective: creates dataset `name` of element type `file_type` and extent `dims`
  /// (contiguous, never pre-filled: cdmf writes every element).
  Dataset create_dataset(const std::string& name, hid_t file_type,
                         const std::vector<std::int64_t>& dims);
  /// Independent: opens dataset `name` ("PATH: NAME is missing" when absent).
  Dataset open_dataset(const std::string& name) const;
  /// Collective, right after create(): makes sure the file can grow to `bytes` (an upper
  /// bound of its final size) before any metadata is written. A full disk, a quota or a
  /// file-size limit then fails here, with nothing for the close to flush; once metadata is
  /// dirty, HDF5 1.10 cannot survive a failed flush (its close crashes or, in parallel, hangs).
  /// Rank 0 allocates the blocks (posix_fallocate); HDF5 truncates the file to its real size
  /// when it is closed.
  void reserve(std::uint64_t bytes);
  /// Collective: writes all metadata (and extends the file to its allocated size).
  void flush();
  /// Collective: closes the file, reporting a failed final flush. Every Dataset must be
  /// destroyed first.
  void close();

 private:
  File(FileId id, MPI_Comm comm, std::string path)
      : id_(std::move(id)), comm_(comm), path_(std::move(path)) {}

  FileId id_;
  MPI_Comm comm_;
  std::string path_;
};

}  // namespace cdmf::h5
