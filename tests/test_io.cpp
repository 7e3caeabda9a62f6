// HDF5 factor, truth and observation files: round trips across grid shapes (bitwise), the
// on-disk layout as plain HDF5 sees it, and every bad input failing with the same Error on
// every rank.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>

#include <sys/resource.h>
#include <unistd.h>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "cdmf/io/factor_file.hpp"
#include "cdmf/io/output_files.hpp"
#include "cdmf/io/run_outputs.hpp"
#include "cdmf/train/stop_signals.hpp"
#include "cdmf/io/hdf5.hpp"
#include "cdmf/io/slab_exchange.hpp"
#include "cdmf/random/counter_rng.hpp"
#include "support/test_support.hpp"

namespace cdmf {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kRows = 13, kCols = 11, kWidth = 7;

/// The full matrix in original order (column-major) on grid rank 0, empty elsewhere.
std::vector<double> gather_original(const DistMatrix& matrix, const IndexLayout& layout,
                                    SlabIndexing indexing) {
  const std::vector<double> stored = matrix.gather();
  if (stored.empty()) return stored;
  const std::int64_t m = matrix.rows(), n = matrix.cols();
  std::vector<double> original(stored.size());
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < m; ++i)
      original[original_index(layout, indexing.rows, i) +
               original_index(layout, indexing.cols, j) * m] = stored[i + j * m];
  return original;
}

/// A file opened with plain serial HDF5 (no MPI-IO), to inspect what was written and to
/// hand-make bad inputs. Use on one rank only.
class SerialFile {
 public:
  static SerialFile create(const std::string& path) {
    return SerialFile(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  }
  static SerialFile open(const std::string& path, bool writable = false) {
    return SerialFile(H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT));
  }
  hid_t id() const { return id_.get(); }

  /// Writes dataset `name` of `file_type` from row-major `data` given as `memory_type`.
  void write(const std::string& name, hid_t file_type, hid_t memory_type,
             const std::vector<hsize_t>& dims, const void* data) {
    const h5::DataspaceId space(
        H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
    const h5::DatasetId dataset(H5Dcreate2(id(), name.c_str(), file_type, space.get(), H5P_DEFAULT,
                                           H5P_DEFAULT, H5P_DEFAULT));
    ASSERT_TRUE(dataset.valid()) << name;
    ASSERT_GE(H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
  }
  void write_doubles(const std::string& name, const std::vector<hsize_t>& dims,
                     const std::vector<double>& data) {
    write(name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, dims, data.data());
  }
  /// Row-major contents and extent of dataset `name`, read as `memory_type`.
  template <typename T>
  std::vector<T> read(const std::string& name, hid_t memory_type,
                      std::vector<hsize_t>& dims) const {
    const h5::DatasetId dataset(H5Dopen2(id(), name.c_str(), H5P_DEFAULT));
    const h5::DataspaceId space(H5Dget_space(dataset.get()));
    dims.assign(static_cast<size_t>(H5Sget_simple_extent_ndims(space.get())), 0);
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    std::vector<T> data(static_cast<size_t>(H5Sget_simple_extent_npoints(space.get())));
    H5Dread(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data());
    return data;
  }
  void remove(const std::string& name) {
    ASSERT_GE(H5Ldelete(id(), name.c_str(), H5P_DEFAULT), 0) << name;
  }
  void remove_attribute(const std::string& name) {
    ASSERT_GE(H5Adelete(id(), name.c_str()), 0) << name;
  }
  void set_int_attribute(const std::string& name, std::int64_t value) {
    if (H5Aexists(id(), name.c_str()) > 0) remove_attribute(name);
    const h5::DataspaceId space(H5Screate(H5S_SCALAR));
    const h5::AttributeId attribute(
        H5Acreate2(id(), name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
    H5Awrite(attribute.get(), H5T_NATIVE_INT64, &value);
  }
  /// A fixed-length string, as h5py writes numpy bytes (the reader takes both kinds).
  void set_string_attribute(const std::string& name, const std::string& value) {
    if (H5Aexists(id(), name.c_str()) > 0) remove_attribute(name);
    const h5::TypeId type(H5Tcopy(H5T_C_S1));
    H5Tset_size(type.get(), value.size());
    const h5::DataspaceId space(H5Screate(H5S_SCALAR));
    const h5::AttributeId attribute(
        H5Acreate2(id(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
    H5Awrite(attribute.get(), type.get(), value.data());
  }

 private:
  explicit SerialFile(hid_t id) : id_(id) {}
  h5::FileId id_;
};

/// Column-major -> row-major.
std::vector<double> to_row_major(const std::vector<double>& a, std::int64_t m, std::int64_t n) {
  std::vector<double> b(a.size());
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) b[i * n + j] = a[i + j * m];
  return b;
}

/// A deep chain of the given depth on `grid`, with distinct lr multipliers.
Chain test_chain(const ProcessGrid& grid, const IndexLayout& layout, int depth,
                 std::int64_t width = kWidth, std::uint64_t seed = 9) {
  Chain chain = make_deep_chain(grid, layout, depth, width, 0.5, seed,
                                depth == 2 ? ModelKind::kShallow : ModelKind::kDeep);
  for (int l = 0; l < depth; ++l) chain.lr_multipliers[l] = 0.25 * (l + 1);
  return chain;
}

/// Writes test_chain(depth) on the world grid to `path` with a permuted layout.
void write_world_chain(const std::string& path, int depth, const IdMap& row_ids = {},
                       const IdMap& col_ids = {}) {
  test::on_world_grid([&](const ProcessGrid& grid) {
    const IndexLayout layout(kRows, kCols, 3, 5);
    write_factor_file(grid, layout, path, test_chain(grid, layout, depth), {42, R"({"lr": 5000})"},
                      row_ids, col_ids);
  });
}

// ---------------------------------------------------------------------------------------

TEST(SlabExchange, RowSlabsCoverTheRowsInRankOrder) {
  for (std::int64_t rows : {0, 1, 3, 4, 13}) {
    std::int64_t next = 0;
    for (int rank = 0; rank < 4; ++rank) {
      const RowSlab slab = row_slab(rows, 4, rank);
      EXPECT_EQ(slab.first, next);
      EXPECT_LE(slab.count, rows / 4 + 1);
      next += slab.count;
    }
    EXPECT_EQ(next, rows);
  }
}

TEST(SlabExchange, ToAndFromRowSlabsInOriginalOrder) {
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      const IndexLayout layout(kRows, kCols, 2, 3);
      const SlabIndexing indexing{Space::kRows, Space::kCols};
      // Entry value = its original position, so every slab entry says where it came from.
      DistMatrix a(grid, kRows, kCols, 2);
      a.fill([&](std::int64_t i, std::int64_t j) {
        return static_cast<double>(layout.original_row(i) * kCols + layout.original_col(j));
      });
      const std::vector<double> slab = to_row_slab(a, layout, indexing);
      const RowSlab rows = row_slab(kRows, grid.size(), grid.rank());
      ASSERT_EQ(slab.size(), static_cast<size_t>(rows.count * kCols));
      for (std::int64_t k = 0; k < static_cast<std::int64_t>(slab.size()); ++k)
        EXPECT_EQ(slab[k], static_cast<double>(rows.first * kCols + k));
      DistMatrix b(grid, kRows, kCols, 2);
      from_row_slab(slab, layout, indexing, b);
      EXPECT_EQ(a.local(), b.local());
    });
  }
}

TEST(FactorFile, RoundTripAcrossGridShapesIsBitwise) {
  const auto shapes = test::available_shapes();
  for (int depth : {1, 2, 3}) {
    for (GridShape writer : shapes) {
      const std::string path = test::temp_dir("io_roundtrip") + "/chain.h5";
      std::vector<std::vector<double>> reference(depth);
      test::on_grid(writer, [&](const ProcessGrid& grid) {
        const IndexLayout layout(kRows, kCols, 3, 5);
        const Chain chain = test_chain(grid, layout, depth);
        write_factor_file(grid, layout, path, chain, {42, "{}"});
        for (int l = 0; l < depth; ++l)
          reference[l] = gather_original(chain.factors[l], layout, factor_indexing(l, depth));
      });
      for (auto& factor : reference) factor = test::broadcast_from_root(factor);

      for (GridShape reader : shapes) {
        test::on_grid(reader, [&](const ProcessGrid& grid) {
          // Another permutation and block size than the writer's: only original order counts.
          const IndexLayout layout(kRows, kCols, 2, 77);
          const FactorFileInfo info = read_factor_file_info(grid.comm(), path);
          ASSERT_EQ(info.depth, depth);
          const std::vector<DistMatrix> factors = read_factors(grid, layout, info, 2);
          ASSERT_EQ(factors.size(), static_cast<size_t>(depth));
          for (int l = 0; l < depth; ++l) {
            EXPECT_EQ(info.lr_multipliers[l], 0.25 * (l + 1));
            const auto got = gather_original(factors[l], layout, factor_indexing(l, depth));
            if (grid.is_root())
              EXPECT_EQ(got, reference[l])
                  << "depth " << depth << ", W" << l + 1 << ", written on " << writer.rows << "x"
                  << writer.cols << ", read on " << reader.rows << "x" << reader.cols;
          }
        });
      }
    }
  }
}

TEST(FactorFile, RootAttributesAndShapes) {
  const std::string dir = test::temp_dir("io_attributes");
  const std::string path = dir + "/chain.h5";
  write_world_chain(path, 3);
  const FactorFileInfo info = read_factor_file_info(MPI_COMM_WORLD, path);
  EXPECT_EQ(info.path, path);
  EXPECT_EQ(info.format, "cdmf-checkpoint");
  EXPECT_EQ(info.format_version, 1);
  EXPECT_EQ(info.cdmf_version, CDMF_VERSION);
  EXPECT_EQ(info.model, "deep");
  EXPECT_EQ(info.rows, kRows);
  EXPECT_EQ(info.cols, kCols);
  EXPECT_EQ(info.depth, 3);
  EXPECT_EQ(info.width, kWidth);
  EXPECT_EQ(info.iteration, 42);
  EXPECT_TRUE(std::regex_match(info.created, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << info.created;
  EXPECT_EQ(info.config_json, R"({"lr": 5000})");
  ASSERT_EQ(info.shapes.size(), 3u);
  EXPECT_EQ(info.shapes[0].rows, kWidth);
  EXPECT_EQ(info.shapes[0].cols, kCols);
  EXPECT_EQ(info.shapes[1].rows, kWidth);
  EXPECT_EQ(info.shapes[1].cols, kWidth);
  EXPECT_EQ(info.shapes[2].rows, kRows);
  EXPECT_EQ(info.shapes[2].cols, kWidth);
  EXPECT_EQ(info.lr_multipliers, (std::vector<double>{0.25, 0.5, 0.75}));
  // Nothing but the file itself is left in the directory.
  test::on_root(MPI_COMM_WORLD,
                [&] { EXPECT_EQ(test::file_names_in(dir), std::vector<std::string>{"chain.h5"}); });
}

TEST(FactorFile, DatasetsHoldOriginalOrderAsPlainHdf5SeesThem) {
  const std::string path = test::temp_dir("io_layout") + "/chain.h5";
  IdMap row_ids, col_ids;
  for (std::int64_t i = 0; i < kRows; ++i) row_ids.ids.push_back(100 + 3 * i);
  for (std::int64_t j = 0; j < kCols; ++j) col_ids.ids.push_back(7 + j * j);
  test::on_world_grid([&](const ProcessGrid& grid) {
    const IndexLayout layout(kRows, kCols, 3, 5);
    const Chain chain = test_chain(grid, layout, 3);
    write_factor_file(grid, layout, path, chain, {42, "{}"}, row_ids, col_ids);
    std::vector<std::vector<double>> expected;
    for (int l = 0; l < 3; ++l)
      expected.push_back(gather_original(chain.factors[l], layout, factor_indexing(l, 3)));
    test::on_root(grid.comm(), [&] {
      const SerialFile file = SerialFile::open(path);
      for (int l = 0; l < 3; ++l) {
        const std::string name = "/factors/W" + std::to_string(l + 1);
        std::vector<hsize_t> dims;
        const auto values = file.read<double>(name, H5T_NATIVE_DOUBLE, dims);
        const auto& w = chain.factors[l];
        // Shape as in the math (h5py shows W1 as h x n), row-major.
        EXPECT_EQ(dims, (std::vector<hsize_t>{hsize_t(w.rows()), hsize_t(w.cols())})) << name;
        EXPECT_EQ(values, to_row_major(expected[l], w.rows(), w.cols())) << name;
        const h5::DatasetId dataset(H5Dopen2(file.id(), name.c_str(), H5P_DEFAULT));
        const h5::TypeId type(H5Dget_type(dataset.get()));
        EXPECT_TRUE(H5Tequal(type.get(), H5T_IEEE_F64LE) > 0) << name;
        double multiplier = 0.0;
        const h5::AttributeId attribute(H5Aopen(dataset.get(), "lr_multiplier", H5P_DEFAULT));
        H5Aread(attribute.get(), H5T_NATIVE_DOUBLE, &multiplier);
        EXPECT_EQ(multiplier, 0.25 * (l + 1));
      }
      std::vector<hsize_t> dims;
      EXPECT_EQ(file.read<std::int64_t>("/ids/rows", H5T_NATIVE_INT64, dims), row_ids.ids);
      EXPECT_EQ(file.read<std::int64_t>("/ids/cols", H5T_NATIVE_INT64, dims), col_ids.ids);
      // Root attributes: a variable-length string and an int64, as h5py would read them.
      const h5::AttributeId format(H5Aopen(file.id(), "format", H5P_DEFAULT));
      const h5::TypeId format_type(H5Aget_type(format.get()));
      EXPECT_EQ(H5Tget_class(format_type.get()), H5T_STRING);
      EXPECT_TRUE(H5Tis_variable_str(format_type.get()) > 0);
      char* text = nullptr;
      H5Aread(format.get(), format_type.get(), &text);
      EXPECT_STREQ(text, "cdmf-checkpoint");
      H5free_memory(text);
      std::int64_t version = 0;
      const h5::AttributeId version_attribute(H5Aopen(file.id(), "format_version", H5P_DEFAULT));
      H5Aread(version_attribute.get(), H5T_NATIVE_INT64, &version);
      EXPECT_EQ(version, 1);
    });

    IdMap rows_read, cols_read;
    read_id_maps(grid.comm(), path, rows_read, cols_read);
    EXPECT_EQ(rows_read.ids, row_ids.ids);
    EXPECT_EQ(cols_read.ids, col_ids.ids);
  });
}

TEST(FactorFile, IdMapsAreEmptyWhenAbsent) {
  const std::string path = test::temp_dir("io_no_ids") + "/chain.h5";
  write_world_chain(path, 2);
  IdMap row_ids{{1, 2}}, col_ids{{3}};
  read_id_maps(MPI_COMM_WORLD, path, row_ids, col_ids);
  EXPECT_TRUE(row_ids.empty());
  EXPECT_TRUE(col_ids.empty());
}

TEST(FactorFile, BadFilesFailOnEveryRankNamingTheFile) {
  const std::string dir = test::temp_dir("io_bad");
  const std::string good = dir + "/good.h5";
  write_world_chain(good, 3);
  const auto info_of = [](const std::string& path) {
    return [path] { read_factor_file_info(MPI_COMM_WORLD, path); };
  };
  // A copy of the good file, edited serially on rank 0.
  const auto edited = [&](const std::string& name, const std::function<void(SerialFile&)>& edit) {
    const std::string path = dir + "/" + name;
    test::derive_file(good, path, [&](const std::string& copy) {
      SerialFile file = SerialFile::open(copy, true);
      edit(file);
    });
    return path;
  };

  const std::string missing = dir + "/missing.h5";
  test::expect_error(MPI_COMM_WORLD, missing, "no such file", info_of(missing));

  const std::string text = dir + "/text.h5";
  test::write_text_file(text, "0\t1\t2.5\n3\t4\t5.0\n");
  test::expect_error(MPI_COMM_WORLD, text, "cannot open (not an HDF5 file or truncated)",
                     info_of(text));

  const std::string truncated = dir + "/truncated.h5";
  test::on_root(MPI_COMM_WORLD, [&] {
    fs::copy_file(good, truncated);
    fs::resize_file(truncated, fs::file_size(good) / 2);
  });
  test::expect_error(MPI_COMM_WORLD, truncated, "cannot open (not an HDF5 file or truncated)",
                     info_of(truncated));

  const std::string no_format =
      edited("no_format.h5", [](SerialFile& f) { f.remove_attribute("format"); });
  test::expect_error(MPI_COMM_WORLD, no_format,
                     "not a cdmf checkpoint (attribute 'format' is missing)", info_of(no_format));

  const std::string other_format = edited(
      "other_format.h5", [](SerialFile& f) { f.set_string_attribute("format", "other-tool"); });
  test::expect_error(MPI_COMM_WORLD, other_format, "not a cdmf checkpoint (format is 'other-tool'",
                     info_of(other_format));

  const std::string version_2 =
      edited("version_2.h5", [](SerialFile& f) { f.set_int_attribute("format_version", 2); });
  test::expect_error(MPI_COMM_WORLD, version_2,
                     "format_version 2 is not supported (this cdmf reads version 1)",
                     info_of(version_2));

  const std::string string_rows =
      edited("string_rows.h5", [](SerialFile& f) { f.set_string_attribute("rows", "13"); });
  test::expect_error(MPI_COMM_WORLD, string_rows, "attribute 'rows' is not an integer",
                     info_of(string_rows));

  const std::string unknown_model =
      edited("unknown_model.h5", [](SerialFile& f) { f.set_string_attribute("model", "huge"); });
  test::expect_error(MPI_COMM_WORLD, unknown_model, "unknown model 'huge'", info_of(unknown_model));

  const std::string misshaped = edited("misshaped.h5", [](SerialFile& f) {
    f.remove("/factors/W2");
    f.write_doubles("/factors/W2", {5, 6}, std::vector<double>(30, 1.0));
  });
  test::expect_error(MPI_COMM_WORLD, misshaped, "/factors/W2 has shape 5x6 but W1 has 7 rows",
                     info_of(misshaped));

  const std::string wrong_rows =
      edited("wrong_rows.h5", [](SerialFile& f) { f.set_int_attribute("rows", 14); });
  test::expect_error(MPI_COMM_WORLD, wrong_rows,
                     "/factors/W3 has shape 13x7 but the file has rows = 14", info_of(wrong_rows));

  const std::string missing_factor =
      edited("missing_factor.h5", [](SerialFile& f) { f.remove("/factors/W3"); });
  test::expect_error(MPI_COMM_WORLD, missing_factor, "/factors/W3 is missing (depth is 3)",
                     info_of(missing_factor));

  const std::string extra_factor = edited("extra_factor.h5", [](SerialFile& f) {
    f.write_doubles("/factors/W4", {2, 13}, std::vector<double>(26, 1.0));
  });
  test::expect_error(MPI_COMM_WORLD, extra_factor, "/factors holds 4 datasets but depth is 3",
                     info_of(extra_factor));

  const std::string integer_factor = edited("integer_factor.h5", [](SerialFile& f) {
    f.remove("/factors/W1");
    const std::vector<int> zeros(kWidth * kCols, 0);
    f.write("/factors/W1", H5T_STD_I32LE, H5T_NATIVE_INT, {kWidth, kCols}, zeros.data());
  });
  test::expect_error(MPI_COMM_WORLD, integer_factor,
                     "/factors/W1 has element type int32, expected float64",
                     info_of(integer_factor));

  const std::string vector_factor = edited("vector_factor.h5", [](SerialFile& f) {
    f.remove("/factors/W2");
    f.write_doubles("/factors/W2", {kWidth * kWidth}, std::vector<double>(kWidth * kWidth, 1.0));
  });
  test::expect_error(MPI_COMM_WORLD, vector_factor, "/factors/W2 is not 2-D (shape 49)",
                     info_of(vector_factor));

  // A good file read for another problem size.
  test::on_world_grid([&](const ProcessGrid& grid) {
    const FactorFileInfo info = read_factor_file_info(grid.comm(), good);
    const IndexLayout layout(kRows + 1, kCols, 3, 5);
    test::expect_error(grid.comm(), good,
                       "the factors are for a 13x11 matrix but the problem is 14x11",
                       [&] { read_factors(grid, layout, info, 3); });
  });
}

TEST(FactorFile, UnwritableDirectoryFailsOnEveryRank) {
  const std::string dir = test::temp_dir("io_unwritable");
  // Root ignores permission bits: a directory that is a regular file stops even root.
  const std::string not_a_directory = dir + "/plain_file";
  test::write_text_file(not_a_directory, "x");
  test::on_world_grid([&](const ProcessGrid& grid) {
    const IndexLayout layout(kRows, kCols, 3, 5);
    const Chain chain = test_chain(grid, layout, 2);
    for (const std::string& parent : {not_a_directory, std::string("/proc"), dir + "/absent"}) {
      const std::string path = parent + "/chain.h5";
      test::expect_error(grid.comm(), path, "directory " + parent + " is not writable",
                         [&] { write_factor_file(grid, layout, path, chain, {}); });
    }
  });
}

TEST(FactorFile, FailedWriteLeavesTheExistingFileIntact) {
  const std::string dir = test::temp_dir("io_failed_write");
  const std::string path = dir + "/chain.h5";
  write_world_chain(path, 3);
  std::string before;
  test::on_root(MPI_COMM_WORLD, [&] { before = test::file_bytes(path); });

  test::on_world_grid([&](const ProcessGrid& grid) {
    const IndexLayout layout(kRows, kCols, 3, 5);
    const Chain other = test_chain(grid, layout, 3, kWidth, 21);

    // The write fails halfway, after the factors are in the temporary: every rank throws.
    IdMap descending{{5, 4, 3}};
    test::expect_error(grid.comm(), path,
                       "not written: row ids are not strictly ascending (position 2)", [&] {
                         write_factor_file(grid, layout, path, other, {7, "{}"}, descending);
                       });

    // The rename fails (a directory is in the way): every rank throws.
    const std::string blocked = dir + "/blocked";
    test::on_root(grid.comm(), [&] { fs::create_directories(blocked + "/inside"); });
    test::expect_error(grid.comm(), blocked, "cannot rename the temporary file",
                       [&] { write_factor_file(grid, layout, blocked, other, {}); });
    test::on_root(grid.comm(), [&] { fs::remove_all(blocked); });
  });

  // The old file is untouched and still reads; no temporary is left behind.
  test::on_root(MPI_COMM_WORLD, [&] {
    EXPECT_EQ(test::file_bytes(path), before);
    EXPECT_EQ(test::file_names_in(dir), std::vector<std::string>{"chain.h5"});
  });
  EXPECT_EQ(read_factor_file_info(MPI_COMM_WORLD, path).iteration, 42);
}

// ---------------------------------------------------------------------------------------

TEST(TruthFile, FactorsRoundTripOnEveryGridAndGiveUVt) {
  const std::int64_t m = 9, n = 8, r = 2;
  const std::string path = test::temp_dir("io_truth") + "/truth.h5";
  std::vector<double> u, v;  // column-major, rank 0 only
  if (test::world_rank() == 0) {
    for (std::int64_t k = 0; k < m * r; ++k) u.push_back(gaussian(1, 2, k));
    for (std::int64_t k = 0; k < n * r; ++k) v.push_back(gaussian(1, 3, k));
  }
  write_truth_factors(MPI_COMM_WORLD, path, m, n, r, u, v);
  u = test::broadcast_from_root(u);
  v = test::broadcast_from_root(v);
  std::vector<double> product(m * n, 0.0);  // U V^T, column-major
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t k = 0; k < r; ++k) product[i + j * m] += u[i + k * m] * v[j + k * n];

  test::on_root(MPI_COMM_WORLD, [&] {
    const SerialFile file = SerialFile::open(path);
    std::vector<hsize_t> dims;
    EXPECT_EQ(file.read<double>("/U", H5T_NATIVE_DOUBLE, dims), to_row_major(u, m, r));
    EXPECT_EQ(dims, (std::vector<hsize_t>{hsize_t(m), hsize_t(r)}));
    EXPECT_EQ(file.read<double>("/V", H5T_NATIVE_DOUBLE, dims), to_row_major(v, n, r));
    for (const char* name : {"rows", "cols", "rank"})
      EXPECT_GT(H5Aexists(file.id(), name), 0) << name;
  });

  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      const IndexLayout layout(m, n, 2, 31);
      const Truth truth = read_truth(grid, layout, path, 2);
      ASSERT_TRUE(truth.u && truth.v);
      EXPECT_FALSE(truth.matrix);
      const auto u_read = gather_original(*truth.u, layout, {Space::kRows, Space::kInner});
      const auto v_read = gather_original(*truth.v, layout, {Space::kCols, Space::kInner});
      DistMatrix x(grid, m, n, 2);
      gemm('N', 'T', 1.0, *truth.u, *truth.v, 0.0, x);
      const auto x_read = gather_original(x, layout, {Space::kRows, Space::kCols});
      if (!grid.is_root()) return;
      EXPECT_EQ(u_read, u);
      EXPECT_EQ(v_read, v);
      EXPECT_LT(test::relative_error(x_read, product), 1e-14);
    });
  }
}

TEST(TruthFile, DenseMatrixIsReadIntoPermutedSpace) {
  const std::int64_t m = 6, n = 5;
  const std::string path = test::temp_dir("io_truth_matrix") + "/truth.h5";
  std::vector<double> phi(m * n);  // row-major in the file
  for (std::int64_t k = 0; k < m * n; ++k) phi[k] = 0.5 * k;
  test::on_root(MPI_COMM_WORLD, [&] {
    SerialFile file = SerialFile::create(path);
    file.write_doubles("/matrix", {hsize_t(m), hsize_t(n)}, phi);
  });
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      const IndexLayout layout(m, n, 1, 4);
      const Truth truth = read_truth(grid, layout, path, 1);
      ASSERT_TRUE(truth.matrix);
      EXPECT_FALSE(truth.u || truth.v);
      EXPECT_EQ(truth.matrix->entry(layout.permuted_row(2), layout.permuted_col(3)),
                phi[2 * n + 3]);
      const auto read = gather_original(*truth.matrix, layout, {Space::kRows, Space::kCols});
      if (grid.is_root()) EXPECT_EQ(to_row_major(read, m, n), phi);
    });
  }
}

TEST(TruthFile, BadTruthFilesFailOnEveryRank) {
  const std::string dir = test::temp_dir("io_truth_bad");
  const std::string good = dir + "/truth.h5";
  const std::vector<double> u =
      test::world_rank() == 0 ? std::vector<double>(9 * 2, 1.0) : std::vector<double>();
  const std::vector<double> v =
      test::world_rank() == 0 ? std::vector<double>(8 * 2, 1.0) : std::vector<double>();
  write_truth_factors(MPI_COMM_WORLD, good, 9, 8, 2, u, v);
  const std::string only_u = dir + "/only_u.h5", empty = dir + "/empty.h5";
  test::on_root(MPI_COMM_WORLD, [&] {
    SerialFile::create(only_u).write_doubles("/U", {9, 2}, std::vector<double>(18, 1.0));
    SerialFile::create(empty).write_doubles("/other", {1}, {1.0});
  });
  test::expect_error(MPI_COMM_WORLD, dir + "/not_written.h5", "expected 27 and 24", [&] {
    write_truth_factors(MPI_COMM_WORLD, dir + "/not_written.h5", 9, 8, 3, u, v);
  });
  test::on_world_grid([&](const ProcessGrid& grid) {
    const IndexLayout layout(9, 8, 2, 1), taller(10, 8, 2, 1);
    test::expect_error(grid.comm(), dir + "/absent.h5", "no such file",
                       [&] { read_truth(grid, layout, dir + "/absent.h5", 2); });
    test::expect_error(grid.comm(), only_u, "has /U but no /V",
                       [&] { read_truth(grid, layout, only_u, 2); });
    test::expect_error(grid.comm(), empty, "not a truth file",
                       [&] { read_truth(grid, layout, empty, 2); });
    test::expect_error(grid.comm(), good, "/U has shape 9x2 but the problem has 10 rows",
                       [&] { read_truth(grid, taller, good, 2); });
  });
}

// ---------------------------------------------------------------------------------------

/// Writes observation datasets serially: /rows as int32, /cols as uint16, /values float64.
void write_entries_file(const std::string& path, const std::vector<int>& rows,
                        const std::vector<std::uint16_t>& cols, const std::vector<double>& values) {
  test::on_root(MPI_COMM_WORLD, [&] {
    SerialFile file = SerialFile::create(path);
    file.write("/rows", H5T_STD_I32LE, H5T_NATIVE_INT, {rows.size()}, rows.data());
    file.write("/cols", H5T_STD_U16LE, H5T_NATIVE_USHORT, {cols.size()}, cols.data());
    file.write_doubles("/values", {values.size()}, values);
  });
}

TEST(Hdf5Entries, EachRankReadsAContiguousSliceMinusTheBase) {
  const std::string path = test::temp_dir("io_entries") + "/data.h5";
  std::vector<int> rows;
  std::vector<std::uint16_t> cols;
  std::vector<double> values;
  for (int k = 0; k < 11; ++k) {
    rows.push_back(1 + (k * 7) % 5);
    cols.push_back(static_cast<std::uint16_t>(1 + (k * 3) % 4));
    values.push_back(0.5 * k - 1.0);
  }
  write_entries_file(path, rows, cols, values);
  for (GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      const EntryList entries = read_hdf5_entries(grid.comm(), path, 1);
      EXPECT_EQ(entries.file, path);
      long long count = static_cast<long long>(entries.size()), before = 0, total = 0;
      MPI_Exscan(&count, &before, 1, MPI_LONG_LONG, MPI_SUM, grid.comm());
      MPI_Allreduce(&count, &total, 1, MPI_LONG_LONG, MPI_SUM, grid.comm());
      if (grid.rank() == 0) before = 0;
      EXPECT_EQ(total, 11);
      ASSERT_EQ(entries.lines.size(), entries.size());
      for (size_t k = 0; k < entries.size(); ++k) {
        const std::int64_t position = before + static_cast<long long>(k) + 1;
        EXPECT_EQ(entries.lines[k], position);
        EXPECT_EQ(entries.rows[k], rows[position - 1] - 1);
        EXPECT_EQ(entries.cols[k], cols[position - 1] - 1);
        EXPECT_EQ(entries.values[k], values[position - 1]);
      }
    });
  }
}

TEST(Hdf5Entries, BadEntryFilesFailOnEveryRankNamingFileAndPosition) {
  const std::string dir = test::temp_dir("io_entries_bad");
  const std::vector<int> rows{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  const std::vector<std::uint16_t> cols(10, 1);
  const std::vector<double> values(10, 2.5);
  const auto read = [](const std::string& path, int base) {
    return [path, base] { read_hdf5_entries(MPI_COMM_WORLD, path, base); };
  };

  const std::string absent = dir + "/absent.h5";
  test::expect_error(MPI_COMM_WORLD, absent, "no such file", read(absent, 0));

  const std::string text = dir + "/text.h5";
  test::write_text_file(text, "1 2 3\n");
  test::expect_error(MPI_COMM_WORLD, text, "not an HDF5 file", read(text, 0));

  const std::string no_values = dir + "/no_values.h5";
  test::on_root(MPI_COMM_WORLD, [&] {
    SerialFile file = SerialFile::create(no_values);
    file.write("/rows", H5T_STD_I32LE, H5T_NATIVE_INT, {rows.size()}, rows.data());
    file.write("/cols", H5T_STD_U16LE, H5T_NATIVE_USHORT, {cols.size()}, cols.data());
  });
  test::expect_error(MPI_COMM_WORLD, no_values, "dataset /values is missing", read(no_values, 0));

  const std::string unequal = dir + "/unequal.h5";
  write_entries_file(unequal, rows, cols, std::vector<double>(9, 1.0));
  test::expect_error(MPI_COMM_WORLD, unequal, "have different lengths (10, 10, 9)",
                     read(unequal, 0));

  const std::string float_rows = dir + "/float_rows.h5";
  test::on_root(MPI_COMM_WORLD, [&] {
    SerialFile file = SerialFile::create(float_rows);
    file.write_doubles("/rows", {10}, values);
    file.write_doubles("/cols", {10}, values);
    file.write_doubles("/values", {10}, values);
  });
  test::expect_error(MPI_COMM_WORLD, float_rows,
                     "/rows has element type float64, expected integers", read(float_rows, 0));

  // Late positions live on the last ranks: the message still names the first bad one.
  std::vector<int> low_rows = rows;
  low_rows[8] = 0;
  const std::string below_base = dir + "/below_base.h5";
  write_entries_file(below_base, low_rows, cols, values);
  test::expect_error(MPI_COMM_WORLD, below_base + ":9: row index 0 is below the index base 1", "",
                     read(below_base, 1));
  std::vector<int> negative_rows = rows;
  negative_rows[9] = -4;
  const std::string negative = dir + "/negative.h5";
  write_entries_file(negative, negative_rows, cols, values);
  test::expect_error(MPI_COMM_WORLD, negative + ":10: row index -4 is negative", "",
                     read(negative, 0));

  std::vector<double> bad_values = values;
  bad_values[6] = NAN;
  bad_values[9] = INFINITY;
  const std::string not_finite = dir + "/not_finite.h5";
  write_entries_file(not_finite, rows, cols, bad_values);
  test::expect_error(MPI_COMM_WORLD, not_finite + ":7: value nan is not finite", "",
                     read(not_finite, 1));
}

// A NUL or newline read from a file must not cut or split the one-line message: Error stores
// them escaped, and escaping again (a message passed between ranks) changes nothing.
TEST(Errors, ControlBytesAreShownEscaped) {
  using namespace std::string_literals;  // "..."s keeps the NUL
  const Error error("f.tsv:3: cannot parse '\0x\ty\n' as a row index"s);
  EXPECT_STREQ(error.what(), "f.tsv:3: cannot parse '\\0x\ty\\n' as a row index");
  EXPECT_EQ(printable(error.what()), error.what());
  EXPECT_EQ(printable("caf\xc3\xa9 \x01"), "caf\xc3\xa9 \\x01");  // UTF-8 kept
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  test::expect_error(MPI_COMM_WORLD, "f.tsv", "'\\0x", [&] {
    run_agreed(MPI_COMM_WORLD, [&] {
      if (rank == 0) throw Error("f.tsv: '\0x'"s);
    });
  });
}

// An output that is an input, under any name: hard and symbolic links, a path through a
// linked directory, and a path not written yet that resolves onto the input.
TEST(OutputFiles, AnOutputThatIsAnInputIsRefusedUnderAnyName) {
  const std::string dir = test::temp_dir("same_file");
  const std::string input = dir + "/v.tsv";
  test::on_root(MPI_COMM_WORLD, [&] {
    std::ofstream(input) << "0 0 1\n";
    std::ofstream(dir + "/other.tsv") << "0 0 1\n";
    fs::create_hard_link(input, dir + "/hard.tsv");
    fs::create_symlink("v.tsv", dir + "/sym.tsv");
    fs::create_directory_symlink(".", dir + "/here");
    fs::create_directory(dir + "/sub");
    EXPECT_TRUE(same_file(input, dir + "/hard.tsv"));
    EXPECT_TRUE(same_file(input, dir + "/sym.tsv"));
    EXPECT_TRUE(same_file(input, dir + "/here/v.tsv"));
    EXPECT_TRUE(same_file(input, dir + "/sub/../v.tsv"));
    EXPECT_TRUE(same_file(dir + "/missing.h5", dir + "/here/missing.h5"));
    EXPECT_FALSE(same_file(input, dir + "/other.tsv"));
    EXPECT_FALSE(same_file(input, dir + "/new.tsv"));
    EXPECT_FALSE(same_file(input, ""));
  });
  for (const char* name : {"/hard.tsv", "/sym.tsv", "/here/v.tsv"})
    test::expect_error(MPI_COMM_WORLD, std::string("--summary ") + dir + name,
                       "the same file as --data " + input + " (it would be overwritten)", [&] {
                         check_output_files(MPI_COMM_WORLD, {{"--summary", dir + name}},
                                            {{"--test", dir + "/other.tsv"}, {"--data", input}});
                       });
  test::expect_error(MPI_COMM_WORLD, "--summary " + dir + "/out.json",
                     "the same file as --metrics " + dir + "/here/out.json", [&] {
                       check_output_files(MPI_COMM_WORLD,
                                          {{"--metrics", dir + "/here/out.json"},
                                           {"--summary", dir + "/out.json"}});
                     });
  check_output_files(MPI_COMM_WORLD, {{"--summary", dir + "/new.json"}}, {{"--data", input}});
  test::on_root(MPI_COMM_WORLD, [&] { EXPECT_EQ(test::file_bytes(input), "0 0 1\n"); });
}

// A metrics row that cannot be written (a full disk; here a file-size limit, EFBIG) is an
// error naming the file, at the row that failed, not a file cut mid-line and exit 0.
TEST(RunOutputs, AFailedMetricsWriteIsAnError) {
  const std::string dir = test::temp_dir("metrics_full");
  const std::string path = dir + "/m.csv";
  const StopSignals signals;  // ignores SIGXFSZ, as cdmf train does
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::int64_t rows_written = 0;
  test::expect_error(MPI_COMM_WORLD, path, "write failed", [&] {
    run_agreed(MPI_COMM_WORLD, [&] {
      MetricsCsv csv(path, rank == 0);
      rlimit old{}, small{};
      getrlimit(RLIMIT_FSIZE, &old);
      small = old;
      small.rlim_cur = 1000;
      setrlimit(RLIMIT_FSIZE, &small);
      try {
        for (; rows_written < 100; ++rows_written) csv.write({rows_written, 0.5, 1.0, 2.0, 3.0, 4.0, 0.25, {}});
      } catch (...) {
        setrlimit(RLIMIT_FSIZE, &old);
        throw;
      }
      setrlimit(RLIMIT_FSIZE, &old);
    });
  });
  if (rank == 0) EXPECT_LT(rows_written, 100);
}

}  // namespace
}  // namespace cdmf
