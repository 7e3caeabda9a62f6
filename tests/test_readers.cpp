// Readers of every data format, write_triplets, and the distribution of observations to their
// owners. Bad inputs are written large enough that, on 2 and 4 ranks, the bad line is parsed
// by a rank other than 0; every rank must still throw the same one-line Error.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <tuple>

#include "cdmf/core/error.hpp"
#include "cdmf/data/layout.hpp"
#include "cdmf/data/observations.hpp"
#include "cdmf/data/readers.hpp"
#include "support/test_support.hpp"

namespace cdmf {
namespace {

using Entry =
    std::tuple<std::int64_t, std::int64_t, double, std::int64_t>;  // row, col, value, line

template <typename T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<std::int32_t>() {
  return MPI_INT32_T;
}
template <>
MPI_Datatype mpi_type<std::int64_t>() {
  return MPI_INT64_T;
}
template <>
MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}

// The concatenation over the ranks of `comm` of every rank's `local`, in rank order.
template <typename T>
std::vector<T> all_of(MPI_Comm comm, const std::vector<T>& local) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  const int count = static_cast<int>(local.size());
  std::vector<int> counts(static_cast<size_t>(size)), offsets(static_cast<size_t>(size), 0);
  MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, comm);
  for (int r = 1; r < size; ++r) offsets[r] = offsets[r - 1] + counts[r - 1];
  std::vector<T> all(static_cast<size_t>(offsets.back() + counts.back()));
  MPI_Allgatherv(local.data(), count, mpi_type<T>(), all.data(), counts.data(), offsets.data(),
                 mpi_type<T>(), comm);
  return all;
}

// Every rank's entries in rank order, which is file order.
std::vector<Entry> all_entries(MPI_Comm comm, const EntryList& list) {
  const auto rows = all_of(comm, list.rows), cols = all_of(comm, list.cols),
             lines = all_of(comm, list.lines);
  const auto values = all_of(comm, list.values);
  std::vector<Entry> entries;
  for (size_t k = 0; k < values.size(); ++k)
    entries.emplace_back(rows[k], cols[k], values[k], lines[k]);
  return entries;
}

std::string from_root(MPI_Comm comm, std::string text) {
  int length = static_cast<int>(text.size());
  MPI_Bcast(&length, 1, MPI_INT, 0, comm);
  text.resize(static_cast<size_t>(length));
  MPI_Bcast(text.data(), length, MPI_CHAR, 0, comm);
  return text;
}

// Runs `body` on every rank of `comm`: each must throw cdmf::Error, all with the same one-line
// message, containing every piece of `expected`.
template <typename Body>
void expect_error(MPI_Comm comm, Body&& body, const std::vector<std::string>& expected) {
  std::string message;
  try {
    body();
    ADD_FAILURE() << "no cdmf::Error thrown; expected one containing '" << expected.front() << "'";
  } catch (const Error& e) {
    message = e.what();
  }
  for (const std::string& piece : expected)
    EXPECT_NE(message.find(piece), std::string::npos) << "'" << piece << "' not in: " << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_EQ(message, from_root(comm, message)) << "ranks disagree";
}

// `count` valid triplet lines with distinct entries (row k % 19, column k / 19, counted from
// `base`); line `bad_line` (1-based) replaced by `bad` when positive.
std::string triplet_text(int count, int base = 0, int bad_line = 0, const std::string& bad = "") {
  std::string text;
  for (int k = 0; k < count; ++k)
    text += k + 1 == bad_line
                ? bad + "\n"
                : fmt::format("{}\t{}\t{}\n", k % 19 + base, k / 19 + base, 0.5 * k + 1);
  return text;
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

ReadOptions with_base(int base, DataFormat format = DataFormat::kAuto) {
  ReadOptions options;
  options.format = format;
  options.index_base = base;
  return options;
}

// An HDF5 data file: 1-D /rows, /cols (int64) and /values (float64), written by world rank 0.
void write_hdf5_data(const std::string& path, const std::vector<std::int64_t>& rows,
                     const std::vector<std::int64_t>& cols, const std::vector<double>& values) {
  if (test::world_rank() == 0) {
    const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hsize_t n = rows.size();
    const hid_t space = H5Screate_simple(1, &n, nullptr);
    const auto write = [&](const char* name, hid_t type, const void* data) {
      const hid_t dataset =
          H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(dataset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
      H5Dclose(dataset);
    };
    write("/rows", H5T_NATIVE_INT64, rows.data());
    write("/cols", H5T_NATIVE_INT64, cols.data());
    write("/values", H5T_NATIVE_DOUBLE, values.data());
    H5Sclose(space);
    H5Fclose(file);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST(Formats, NamesAndDetection) {
  EXPECT_EQ(parse_data_format("auto"), DataFormat::kAuto);
  EXPECT_EQ(parse_data_format("triplets"), DataFormat::kTriplets);
  EXPECT_EQ(parse_data_format("movielens"), DataFormat::kMovieLens);
  EXPECT_EQ(parse_data_format("mtx"), DataFormat::kMatrixMarket);
  EXPECT_EQ(parse_data_format("hdf5"), DataFormat::kHdf5);
  EXPECT_THROW(parse_data_format("csv"), Error);
  EXPECT_THROW(read_data(MPI_COMM_WORLD, "any.tsv", "", with_base(2)), Error);

  const std::string dir = test::temp_dir("formats");
  const MPI_Comm world = MPI_COMM_WORLD;
  test::write_text_file(dir + "/ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.5,9\n");
  test::write_text_file(dir + "/plain.csv", "row,col,value\n1,2,3.5\n");
  test::write_text_file(dir + "/banner.txt", "%%MatrixMarket matrix coordinate real general\n");
  EXPECT_EQ(detect_format(world, dir + "/ratings.csv", DataFormat::kAuto), DataFormat::kMovieLens);
  EXPECT_EQ(detect_format(world, dir + "/plain.csv", DataFormat::kAuto), DataFormat::kTriplets);
  EXPECT_EQ(detect_format(world, dir + "/banner.txt", DataFormat::kAuto),
            DataFormat::kMatrixMarket);
  // Extensions decide without opening the file; an explicit format is kept.
  EXPECT_EQ(detect_format(world, dir + "/absent.mtx", DataFormat::kAuto),
            DataFormat::kMatrixMarket);
  EXPECT_EQ(detect_format(world, dir + "/absent.H5", DataFormat::kAuto), DataFormat::kHdf5);
  EXPECT_EQ(detect_format(world, dir + "/absent.hdf5", DataFormat::kAuto), DataFormat::kHdf5);
  EXPECT_EQ(detect_format(world, dir + "/ratings.csv", DataFormat::kTriplets),
            DataFormat::kTriplets);
  expect_error(world, [&] { detect_format(world, dir + "/absent.tsv", DataFormat::kAuto); },
               {dir + "/absent.tsv: cannot open (No such file or directory)"});
}

TEST(IdMap, IndexOfFindsDenseIndices) {
  IdMap map;
  EXPECT_EQ(map.index_of(3), -1);
  map.ids = {-5, 2, 17, 1000};
  EXPECT_EQ(map.index_of(-5), 0);
  EXPECT_EQ(map.index_of(17), 2);
  EXPECT_EQ(map.index_of(1000), 3);
  EXPECT_EQ(map.index_of(3), -1);
  EXPECT_EQ(map.index_of(2000), -1);
}

TEST(Triplets, EverySeparatorHeaderBaseAndLineEnding) {
  const std::string dir = test::temp_dir("triplets");
  // (row, col, as written, value)
  const std::vector<std::tuple<std::int64_t, std::int64_t, std::string, double>> data = {
      {0, 0, "1.5", 1.5}, {3, 1, "-2", -2.0},  {1, 4, "+2.5e-3", 2.5e-3},
      {2, 2, "7", 7.0},   {0, 3, ".25", 0.25}, {4, 0, "-1E2", -100.0}};
  int variant = 0;
  for (const std::string separator : {"\t", ",", " ", "  ,\t", ", "})
    for (const bool header : {false, true})
      for (const int base : {0, 1})
        for (const std::string eol : {"\n", "\r\n"})
          for (const bool final_newline : {true, false}) {
            std::string text;
            std::int64_t line = 0;
            std::vector<Entry> expected;
            if (header) {
              text += "row" + separator + "col" + separator + "value" + eol;
              ++line;
            }
            for (size_t k = 0; k < data.size(); ++k) {
              if (k == 3) {
                text += "  " + eol;  // blank lines are skipped but counted
                ++line;
              }
              const auto& [row, col, written, value] = data[k];
              text +=
                  fmt::format("{}{}{}{}{}", row + base, separator, col + base, separator, written) +
                  eol;
              expected.emplace_back(row, col, value, ++line);
            }
            if (!final_newline) text.resize(text.size() - eol.size());
            const std::string path = dir + "/variant" + std::to_string(variant++) + ".txt";
            test::write_text_file(path, text);
            const LoadedData loaded = read_data(MPI_COMM_WORLD, path, "", with_base(base));
            SCOPED_TRACE(path);
            EXPECT_EQ(all_entries(MPI_COMM_WORLD, loaded.train), expected);
            EXPECT_EQ(loaded.train.file, path);
            EXPECT_EQ(loaded.rows, 5);
            EXPECT_EQ(loaded.cols, 5);
            EXPECT_TRUE(loaded.row_ids.empty());
            EXPECT_TRUE(loaded.col_ids.empty());
            EXPECT_EQ(loaded.test.size(), 0u);
          }
}

TEST(Triplets, LinesAreSplitAcrossRanksInFileOrder) {
  const std::string dir = test::temp_dir("split");
  const std::string path = dir + "/train.tsv";
  test::write_text_file(path, triplet_text(400));
  const LoadedData loaded = read_data(MPI_COMM_WORLD, path, "", {});
  std::vector<Entry> expected;
  for (int k = 0; k < 400; ++k) expected.emplace_back(k % 19, k / 19, 0.5 * k + 1, k + 1);
  EXPECT_EQ(all_entries(MPI_COMM_WORLD, loaded.train), expected);
  EXPECT_EQ(loaded.rows, 19);
  EXPECT_EQ(loaded.cols, 22);
  // Each rank holds a non-empty run of consecutive lines, after the previous rank's.
  ASSERT_FALSE(loaded.train.lines.empty());
  for (size_t k = 1; k < loaded.train.lines.size(); ++k)
    EXPECT_EQ(loaded.train.lines[k], loaded.train.lines[k - 1] + 1);
  const auto firsts = all_of(MPI_COMM_WORLD, std::vector<std::int64_t>{loaded.train.lines.front()});
  const auto lasts = all_of(MPI_COMM_WORLD, std::vector<std::int64_t>{loaded.train.lines.back()});
  EXPECT_EQ(firsts.front(), 1);
  EXPECT_EQ(lasts.back(), 400);
  for (size_t r = 1; r < firsts.size(); ++r) EXPECT_EQ(firsts[r], lasts[r - 1] + 1);
}

TEST(Triplets, LongFilesAndLongLinesAreReadPieceByPiece) {
  // Lines are read through a buffer of 256 kB: here many pieces per rank, lines across piece
  // and rank boundaries, and lines longer than the buffer (blank padding, and a comment-free
  // over-long bad line whose message still shows only its start).
  const std::string dir = test::temp_dir("long");
  const std::string padding(300000, ' ');
  std::string text;
  std::vector<Entry> expected;
  for (int k = 0; k < 60000; ++k) {
    const bool padded = k == 7 || k == 31000 || k == 59999;
    text += fmt::format("{}\t{}\t{}{}\n", k % 300, k / 300, 0.25 * k, padded ? padding : "");
    expected.emplace_back(k % 300, k / 300, 0.25 * k, k + 1);
  }
  const std::string path = dir + "/long.tsv";
  test::write_text_file(path, text);
  const LoadedData loaded = read_data(MPI_COMM_WORLD, path, "", {});
  EXPECT_EQ(all_entries(MPI_COMM_WORLD, loaded.train), expected);
  EXPECT_EQ(loaded.rows, 300);
  EXPECT_EQ(loaded.cols, 200);

  const std::string bad = dir + "/bad.tsv";
  test::write_text_file(bad, triplet_text(400, 0, 390, "1 2 3 " + std::string(400000, '4')));
  expect_error(MPI_COMM_WORLD, [&] { read_data(MPI_COMM_WORLD, bad, "", {}); },
               {bad + ":390: expected 'row col value', got '1 2 3 4444", "...'"});
}

// A test file never widens the problem: its entries beyond the training dimensions are
// cold-start pairs (the run layer scores them apart).
TEST(Triplets, DimensionsComeFromTheTrainingFileAlone) {
  const std::string dir = test::temp_dir("dims");
  test::write_text_file(dir + "/train.tsv", "0 0 1\n4 7 2\n");
  test::write_text_file(dir + "/test.tsv", "9 1 3\n");
  const LoadedData loaded = read_data(MPI_COMM_WORLD, dir + "/train.tsv", dir + "/test.tsv", {});
  EXPECT_EQ(loaded.rows, 5);
  EXPECT_EQ(loaded.cols, 8);
  EXPECT_EQ(all_entries(MPI_COMM_WORLD, loaded.test), (std::vector<Entry>{{9, 1, 3.0, 1}}));
  EXPECT_EQ(loaded.test.file, dir + "/test.tsv");
}

// An index near INT64_MAX would wrap max + 1 into a nonsense shape: indices at or beyond
// kMaxDimension (ScaLAPACK's 32-bit dimensions) are named with their line, and the largest
// allowed one costs the reader nothing in proportion to it. A NUL in a line shows escaped.
TEST(Triplets, IndicesBeyondTheLargestDimensionAreNamedNotWrapped) {
  const std::string dir = test::temp_dir("huge_index");
  const std::string rows = dir + "/rows.tsv", cols = dir + "/cols.tsv", ok = dir + "/ok.tsv";
  const std::string nul = dir + "/nul.tsv";
  test::write_text_file(rows, "0 0 1\n4 7 2\n9223372036854775807 1 3\n");
  test::write_text_file(cols, "0 0 1\n4 2147483647 2\n");
  test::write_text_file(ok, "0 0 1\n4 2147483646 2\n");
  test::write_text_file(nul, std::string("0 0 1\n1\0x 2 3\n", 14));
  expect_error(MPI_COMM_WORLD, [&] { read_data(MPI_COMM_WORLD, rows, "", {}); },
               {rows + ":3: row index 9223372036854775807 is beyond the largest supported "
                       "dimension, 2147483647 rows"});
  expect_error(MPI_COMM_WORLD, [&] { read_data(MPI_COMM_WORLD, cols, "", {}); },
               {cols + ":2: column index 2147483647 is beyond", "2147483647 columns"});
  expect_error(MPI_COMM_WORLD, [&] { read_data(MPI_COMM_WORLD, nul, "", {}); },
               {nul + ":2: cannot parse '1\\0x' as a row index"});
  const LoadedData loaded = read_data(MPI_COMM_WORLD, ok, "", {});
  EXPECT_EQ(loaded.cols, kMaxDimension);
  test::on_world_grid([&](const ProcessGrid& grid) {
    expect_error(grid.comm(), [&] { choose_block_size(loaded.rows, kMaxDimension + 1, grid); },
                 {"exceeds the largest supported dimension"});
    expect_error(grid.comm(), [&] { choose_block_size(20, 15, grid, 100000); },
                 {"--block-size 100000 exceeds the larger dimension of the 20 x 15 matrix"});
    expect_error(grid.comm(), [&] { choose_block_size(20, 15, grid, -4); },
                 {"--block-size must be positive (got -4)"});
    EXPECT_EQ(choose_block_size(20, 15, grid, 20), 20);
  });
}

TEST(MovieLens, IdsBecomeDenseIndicesAndWriteTripletsMapsThemBack) {
  const std::string dir = test::temp_dir("movielens");
  // Sparse, unordered ids; the test file has no header, a user and a movie the training file
  // lacks (cold start: index -1, the ids define nothing).
  std::string train = "userId,movieId,rating,timestamp\r\n", expected_output;
  std::vector<std::pair<std::int64_t, std::int64_t>> train_ids;
  for (int k = 0; k < 300; ++k) {
    const std::int64_t user = 1000 + 13 * ((k * 7) % 23), movie = 50000 - 11 * (k / 23);
    const double rating = 0.5 * (1 + k % 10);
    train += fmt::format("{},{},{},{}\r\n", user, movie, rating, 978300760 + k);
    expected_output += fmt::format("{}\t{}\t{:.17g}\n", user, movie, rating);
    train_ids.emplace_back(user, movie);
  }
  test::write_text_file(dir + "/ratings.csv", train);
  test::write_text_file(dir + "/test.csv", "7,50000,4.0,1\n1000,7,1.5,2\n");
  const LoadedData loaded = read_data(MPI_COMM_WORLD, dir + "/ratings.csv", dir + "/test.csv", {});

  std::vector<std::int64_t> users, movies;
  for (const auto& [user, movie] : train_ids) {
    users.push_back(user);
    movies.push_back(movie);
  }
  for (auto* ids : {&users, &movies}) {
    std::sort(ids->begin(), ids->end());
    ids->erase(std::unique(ids->begin(), ids->end()), ids->end());
  }
  EXPECT_EQ(loaded.row_ids.ids, users);
  EXPECT_EQ(loaded.col_ids.ids, movies);
  EXPECT_EQ(loaded.rows, static_cast<std::int64_t>(users.size()));
  EXPECT_EQ(loaded.cols, static_cast<std::int64_t>(movies.size()));
  const auto entries = all_entries(MPI_COMM_WORLD, loaded.train);
  ASSERT_EQ(entries.size(), train_ids.size());
  for (size_t k = 0; k < entries.size(); ++k) {
    EXPECT_EQ(loaded.row_ids.ids[std::get<0>(entries[k])], train_ids[k].first);
    EXPECT_EQ(loaded.col_ids.ids[std::get<1>(entries[k])], train_ids[k].second);
    EXPECT_EQ(std::get<3>(entries[k]), static_cast<std::int64_t>(k) + 2);
  }
  EXPECT_EQ(
      all_entries(MPI_COMM_WORLD, loaded.test),
      (std::vector<Entry>{{-1, static_cast<std::int64_t>(movies.size()) - 1, 4.0, 1},
                          {static_cast<std::int64_t>(loaded.row_ids.index_of(1000)), -1, 1.5, 2}}));

  const std::string out = dir + "/written.tsv";
  write_triplets(MPI_COMM_WORLD, out, loaded.train, loaded.row_ids, loaded.col_ids);
  EXPECT_EQ(read_whole_file(out), expected_output);
}

TEST(MovieLens, PairsAreMappedThroughTheModelsIds) {
  const std::string dir = test::temp_dir("pairs_ml");
  IdMap users, movies;
  users.ids = {3, 17, 40};
  movies.ids = {100, 200};
  test::write_text_file(dir + "/pairs.csv", "userId,movieId\n40,100\n3,200\n");
  EXPECT_EQ(all_entries(MPI_COMM_WORLD,
                        read_pairs(MPI_COMM_WORLD, dir + "/pairs.csv", {}, users, movies)),
            (std::vector<Entry>{{2, 0, 0.0, 2}, {0, 1, 0.0, 3}}));
  // Plain "user item" pairs are ids too when the model has id maps.
  test::write_text_file(dir + "/pairs.tsv", "17\t200\n");
  EXPECT_EQ(all_entries(MPI_COMM_WORLD,
                        read_pairs(MPI_COMM_WORLD, dir + "/pairs.tsv", {}, users, movies)),
            (std::vector<Entry>{{1, 1, 0.0, 1}}));

  std::string text = "userId,movieId,rating,timestamp\n";
  for (int k = 2; k <= 300; ++k) text += k == 290 ? "5,100,1.0,7\n" : "40,200,1.0,7\n";
  test::write_text_file(dir + "/unknown.csv", text);
  expect_error(MPI_COMM_WORLD,
               [&] { read_pairs(MPI_COMM_WORLD, dir + "/unknown.csv", {}, users, movies); },
               {dir + "/unknown.csv:290: unknown user id 5"});
  expect_error(MPI_COMM_WORLD,
               [&] { read_pairs(MPI_COMM_WORLD, dir + "/unknown.csv", {}, {}, {}); },
               {dir + "/unknown.csv", "id maps"});
}

TEST(MatrixMarket, EntriesAreOneBasedAndTheHeaderGivesDimensions) {
  const std::string dir = test::temp_dir("mtx");
  for (const std::string field : {"real", "integer", "Real"}) {
    for (const std::string eol : {"\n", "\r\n"}) {
      const std::string path = dir + "/m_" + field + std::to_string(eol.size()) + ".mtx";
      std::string text = "%%MatrixMarket matrix coordinate " + field + " general" + eol +
                         "% a comment" + eol + "%" + eol + "10 12 3" + eol + "1 1 5" + eol +
                         "3 2 -1" + eol + eol + "7 4 2";
      test::write_text_file(path, text);
      const LoadedData loaded = read_data(MPI_COMM_WORLD, path, "", with_base(0));
      SCOPED_TRACE(path);
      EXPECT_EQ(loaded.rows, 10);
      EXPECT_EQ(loaded.cols, 12);
      EXPECT_EQ(all_entries(MPI_COMM_WORLD, loaded.train),
                (std::vector<Entry>{{0, 0, 5.0, 5}, {2, 1, -1.0, 6}, {6, 3, 2.0, 8}}));
    }
  }
}

TEST(MatrixMarket, OtherKindsOfFileAreRejected) {
  const std::string dir = test::temp_dir("mtx_kinds");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"%%MatrixMarket matrix coordinate pattern general\n2 2 1\n1 1\n", "field 'pattern'"},
      {"%%MatrixMarket matrix coordinate complex general\n2 2 1\n1 1 1 0\n", "field 'complex'"},
      {"%%MatrixMarket matrix coordinate real symmetric\n2 2 1\n1 1 1\n", "symmetry 'symmetric'"},
      {"%%MatrixMarket matrix array real general\n2 2\n1\n2\n3\n4\n", "format 'array'"},
      {"1 1 1\n", "not a MatrixMarket matrix file"},
      {"%%MatrixMarket matrix coordinate real general\n% only comments\n", "size line"},
      {"%%MatrixMarket matrix coordinate real general\n2 x 1\n1 1 1\n",
       ":2: expected the MatrixMarket size line"},
      {"", "no entries"}};
  for (size_t k = 0; k < cases.size(); ++k) {
    const std::string path = dir + "/case" + std::to_string(k) + ".mtx";
    test::write_text_file(path, cases[k].first);
    expect_error(MPI_COMM_WORLD, [&] { read_data(MPI_COMM_WORLD, path, "", {}); },
                 {path, cases[k].second});
  }
}

TEST(MatrixMarket, EntryCountAndIndicesMustMatchTheHeader) {
  const std::string dir = test::temp_dir("mtx_count");
  const std::string banner = "%%MatrixMarket matrix coordinate real general\n";
  // Line numbers of entries are 2 more than in triplet_text: the banner and the size line.
  const std::string fewer = dir + "/fewer.mtx", more = dir + "/more.mtx",
                    beyond = dir + "/beyond.mtx";
  test::write_text_file(fewer, banner + "19 22 400\n" + triplet_text(399, 1));
  test::write_text_file(more, banner + "19 22 398\n" + triplet_text(399, 1));
  test::write_text_file(beyond, banner + "19 22 400\n" + triplet_text(400, 1, 388, "20 5 1.0"));
  expect_error(MPI_COMM_WORLD, [&] { read_data(MPI_COMM_WORLD, fewer, "", {}); },
               {fewer + ": header says 400 entries, found 399"});
  expect_error(MPI_COMM_WORLD, [&] { read_data(MPI_COMM_WORLD, more, "", {}); },
               {more + ": header says 398 entries, found 399"});
  expect_error(MPI_COMM_WORLD, [&] { read_data(MPI_COMM_WORLD, beyond, "", {}); },
               {beyond + ":390: row index 20 outside 1..19 (the header says 19 rows)"});
}

TEST(Hdf5, EntriesGetTheBaseAndTheChecksOfTextFiles) {
  const std::string dir = test::temp_dir("hdf5");
  std::vector<std::int64_t> rows, cols;
  std::vector<double> values;
  std::vector<Entry> expected;
  for (std::int64_t k = 0; k < 400; ++k) {
    rows.push_back(k % 19 + 1);
    cols.push_back(k / 19 + 1);
    values.push_back(0.5 * static_cast<double>(k));
    expected.emplace_back(k % 19, k / 19, 0.5 * static_cast<double>(k), k + 1);
  }
  const std::string good = dir + "/good.h5";
  write_hdf5_data(good, rows, cols, values);
  const LoadedData loaded = read_data(MPI_COMM_WORLD, good, "", with_base(1));
  EXPECT_EQ(all_entries(MPI_COMM_WORLD, loaded.train), expected);
  EXPECT_EQ(loaded.rows, 19);
  EXPECT_EQ(loaded.cols, 22);
  for (auto& entry : expected) std::get<2>(entry) = 0.0;
  EXPECT_EQ(all_entries(MPI_COMM_WORLD, read_pairs(MPI_COMM_WORLD, good, with_base(1), {}, {})),
            expected);

  const std::string nan = dir + "/nan.h5", zero = dir + "/zero.h5";
  std::vector<double> bad_values = values;
  bad_values[389] = std::numeric_limits<double>::quiet_NaN();
  write_hdf5_data(nan, rows, cols, bad_values);
  std::vector<std::int64_t> bad_cols = cols;
  bad_cols[379] = 0;
  write_hdf5_data(zero, rows, bad_cols, values);
  expect_error(MPI_COMM_WORLD, [&] { read_data(MPI_COMM_WORLD, nan, "", with_base(1)); },
               {nan + ":390: value nan is not finite"});
  expect_error(MPI_COMM_WORLD, [&] { read_data(MPI_COMM_WORLD, zero, "", with_base(1)); },
               {zero + ":380: column index 0 is below the index base (with --index-base 1)"});
}

TEST(Pairs, ValueColumnIsOptionalAndIgnored) {
  const std::string dir = test::temp_dir("pairs");
  test::write_text_file(dir + "/pairs.tsv", "row\tcol\n1\t2\n3\t1\t9.5\n");
  EXPECT_EQ(all_entries(MPI_COMM_WORLD,
                        read_pairs(MPI_COMM_WORLD, dir + "/pairs.tsv", with_base(1), {}, {})),
            (std::vector<Entry>{{0, 1, 0.0, 2}, {2, 0, 0.0, 3}}));
  test::write_text_file(dir + "/pairs.mtx",
                        "%%MatrixMarket matrix coordinate pattern general\n5 5 2\n1 2\n5 5\n");
  EXPECT_EQ(all_entries(MPI_COMM_WORLD, read_pairs(MPI_COMM_WORLD, dir + "/pairs.mtx", {}, {}, {})),
            (std::vector<Entry>{{0, 1, 0.0, 3}, {4, 4, 0.0, 4}}));
  std::string text = triplet_text(300, 0, 280, "1 2 3 4");
  test::write_text_file(dir + "/wide.tsv", text);
  expect_error(MPI_COMM_WORLD, [&] { read_pairs(MPI_COMM_WORLD, dir + "/wide.tsv", {}, {}, {}); },
               {dir + "/wide.tsv:280: expected 'row col [value]', got '1 2 3 4'"});
}

TEST(WriteTriplets, RoundTripIsExactAndOverwrites) {
  const std::string dir = test::temp_dir("write");
  std::string text;
  for (int k = 0; k < 250; ++k)
    text += fmt::format("{} {} {:.17g}\n", k % 31, k / 31,
                        std::sin(k + 0.1) * std::pow(10.0, k % 40 - 20));
  test::write_text_file(dir + "/in.txt", text);
  const std::string out = dir + "/out.tsv";
  test::write_text_file(out, std::string(100000, 'x'));  // longer than the output: truncated
  const LoadedData loaded = read_data(MPI_COMM_WORLD, dir + "/in.txt", "", {});
  write_triplets(MPI_COMM_WORLD, out, loaded.train);
  const LoadedData again = read_data(MPI_COMM_WORLD, out, "", {});
  EXPECT_EQ(all_entries(MPI_COMM_WORLD, again.train), all_entries(MPI_COMM_WORLD, loaded.train));
  std::string expected;
  for (const auto& [row, col, value, line] : all_entries(MPI_COMM_WORLD, loaded.train))
    expected += fmt::format("{}\t{}\t{:.17g}\n", row, col, value);
  EXPECT_EQ(read_whole_file(out), expected);

  expect_error(MPI_COMM_WORLD,
               [&] { write_triplets(MPI_COMM_WORLD, dir + "/no/such/dir/out.tsv", loaded.train); },
               {dir + "/no/such/dir/out.tsv: cannot open for writing"});
}

// Bad files: one bad line near the end (parsed by the last rank), or no entries at all.
TEST(BadInput, EveryRankThrowsTheSameErrorNamingFileAndLine) {
  const std::string dir = test::temp_dir("bad");
  struct Case {
    std::string name;
    std::string text;
    int base;
    std::string expected;
  };
  const std::string header = "userId,movieId,rating,timestamp\n";
  std::string movielens = header;
  for (int k = 2; k <= 400; ++k)
    movielens += k == 390 ? "12,abc,3.0,1\n" : fmt::format("{},{},4.5,1\n", k, k);
  const std::vector<Case> cases = {
      {"row.tsv", triplet_text(400, 0, 390, "abc\t1\t2.0"), 0,
       ":390: cannot parse 'abc' as a row index"},
      {"col.tsv", triplet_text(400, 0, 390, "1,x,2.0"), 0,
       ":390: cannot parse 'x' as a column index"},
      {"value.tsv", triplet_text(400, 0, 390, "1 2 1.5.2"), 0,
       ":390: cannot parse '1.5.2' as a value"},
      {"empty_field.tsv", triplet_text(400, 0, 390, "1,,2.0"), 0,
       ":390: cannot parse '' as a column index"},
      {"nan.tsv", triplet_text(400, 0, 390, "1\t2\tNaN"), 0, ":390: value nan is not finite"},
      {"inf.tsv", triplet_text(400, 0, 390, "1\t2\tinf"), 0, ":390: value inf is not finite"},
      {"minus_inf.tsv", triplet_text(400, 0, 390, "1\t2\t-Infinity"), 0,
       ":390: value -inf is not finite"},
      {"huge.tsv", triplet_text(400, 0, 390, "1\t2\t1e999"), 0,
       ":390: value '1e999' is outside the range"},
      {"two_fields.tsv", triplet_text(400, 0, 390, "1\t2"), 0,
       ":390: expected 'row col value', got '1\t2'"},
      {"four_fields.tsv", triplet_text(400, 0, 390, "1 2 3 4"), 0,
       ":390: expected 'row col value', got '1 2 3 4'"},
      {"negative.tsv", triplet_text(400, 0, 390, "-1\t2\t3"), 0,
       ":390: row index -1 is negative (with --index-base 0)"},
      {"below_base.tsv", triplet_text(400, 1, 390, "3\t0\t3"), 1,
       ":390: column index 0 is below the index base (with --index-base 1)"},
      {"late_header.tsv", triplet_text(400, 0, 390, "row\tcol\tvalue"), 0,
       ":390: cannot parse 'row' as a row index"},
      {"movielens.csv", movielens, 0, ":390: cannot parse 'abc' as an item id"},
      {"empty.tsv", "", 0, ": no entries"},
      {"header_only.csv", "row,col,value\r\n", 0, ": no entries"},
      {"blank.tsv", "\n  \n\t\n", 0, ": no entries"},
  };
  for (const Case& c : cases) {
    const std::string path = dir + "/" + c.name;
    test::write_text_file(path, c.text);
    SCOPED_TRACE(c.name);
    expect_error(MPI_COMM_WORLD, [&] { read_data(MPI_COMM_WORLD, path, "", with_base(c.base)); },
                 {path + c.expected});
  }
  const std::string good = dir + "/good.tsv", missing = dir + "/missing.tsv";
  test::write_text_file(good, triplet_text(10));
  expect_error(MPI_COMM_WORLD, [&] { read_data(MPI_COMM_WORLD, missing, "", {}); },
               {missing + ": cannot open (No such file or directory)"});
  expect_error(MPI_COMM_WORLD, [&] { read_data(MPI_COMM_WORLD, good, missing, {}); },
               {missing + ": cannot open (No such file or directory)"});
  expect_error(MPI_COMM_WORLD,
               [&] { read_data(MPI_COMM_WORLD, dir, "", with_base(0, DataFormat::kTriplets)); },
               {dir + ": cannot open (Is a directory)"});
  expect_error(MPI_COMM_WORLD, [&] { read_data(MPI_COMM_WORLD, good, dir + "/nan.tsv", {}); },
               {dir + "/nan.tsv:390: value nan is not finite"});
}

// Checks a distribution against `expected` (original row, column, value; sorted): the global
// count, every observation on its owner, each rank's observations strictly ordered by (row,
// column), and, back in original indices, the union over the grid equal to `expected`.
void expect_distributed(const ProcessGrid& grid, const IndexLayout& layout, const Observations& observations,
                        const std::vector<std::tuple<std::int64_t, std::int64_t, double>>& expected) {
  EXPECT_EQ(observations.global_count, static_cast<std::int64_t>(expected.size()));
  for (size_t k = 0; k < observations.size(); ++k) {
    EXPECT_EQ(layout.owner(grid, observations.rows[k], observations.cols[k]), grid.rank());
    if (k > 0)
      EXPECT_LT(std::tie(observations.rows[k - 1], observations.cols[k - 1]),
                std::tie(observations.rows[k], observations.cols[k]));
  }
  const auto rows = all_of(grid.comm(), observations.rows), cols = all_of(grid.comm(), observations.cols);
  const auto values = all_of(grid.comm(), observations.values);
  std::vector<std::tuple<std::int64_t, std::int64_t, double>> found;
  for (size_t k = 0; k < values.size(); ++k)
    found.emplace_back(layout.original_row(rows[k]), layout.original_col(cols[k]), values[k]);
  std::sort(found.begin(), found.end());
  EXPECT_EQ(found, expected);
}

TEST(Distribute, EveryEntryReachesItsOwnerOnEveryGrid) {
  const std::string dir = test::temp_dir("distribute");
  const std::string path = dir + "/train.tsv";
  const std::int64_t m = 23, n = 19;
  std::string text;
  std::vector<std::tuple<std::int64_t, std::int64_t, double>> expected;
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j)
      if ((i * 7 + j * 3) % 5 != 0) {
        const double value = static_cast<double>(i * 100 + j);
        text += fmt::format("{}\t{}\t{}\n", i, j, value);
        expected.emplace_back(i, j, value);
      }
  test::write_text_file(path, text);
  for (const bool permute : {true, false}) {
    for (const GridShape shape : test::available_shapes()) {
      test::on_grid(shape, [&](const ProcessGrid& grid) {
        SCOPED_TRACE(fmt::format("grid {}x{}, permute {}", shape.rows, shape.cols, permute));
        const LoadedData loaded = read_data(grid.comm(), path, "", {});
        ASSERT_EQ(loaded.rows, m);
        ASSERT_EQ(loaded.cols, n);
        const IndexLayout layout(m, n, 4, 11, permute);
        const Observations observations = distribute(grid, loaded.train, layout);
        expect_distributed(grid, layout, observations, expected);
        if (grid.size() > 1) EXPECT_GT(observations.size(), 0u);
      });
    }
  }
}

TEST(Distribute, EntriesHeldByOneRankAreSpreadToo) {
  for (const GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      EntryList entries;
      entries.file = "memory";
      if (grid.is_root())
        for (std::int64_t k = 0; k < 40; ++k) {
          entries.rows.push_back(k % 8);
          entries.cols.push_back(k / 8);
          entries.values.push_back(static_cast<double>(k));
          entries.lines.push_back(k + 1);
        }
      const IndexLayout layout(8, 5, 2, 3);
      const Observations observations = distribute(grid, entries, layout);
      EXPECT_EQ(observations.global_count, 40);
      for (size_t k = 0; k < observations.size(); ++k) {
        EXPECT_EQ(layout.owner(grid, observations.rows[k], observations.cols[k]), grid.rank());
        const std::int64_t i = layout.original_row(observations.rows[k]);
        const std::int64_t j = layout.original_col(observations.cols[k]);
        EXPECT_EQ(observations.values[k], static_cast<double>(j * 8 + i));
      }
    });
  }
}

TEST(Distribute, RoundsAndReleasedPagesChangeNothing) {
  // 70 x 80 with ~60% of the entries, spread over the ranks by a hash (each rank several pages
  // of each vector, so rounds of 97 entries release pages while later rounds still read).
  for (const GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      EntryList entries;
      entries.file = "memory";
      for (std::int64_t k = 0; k < 70 * 80; ++k) {
        if ((k * 7919) % 5 < 2 || (k * 31) % grid.size() != grid.rank()) continue;
        entries.rows.push_back(k % 70);
        entries.cols.push_back(k / 70);
        entries.values.push_back(0.5 * static_cast<double>(k));
        entries.lines.push_back(k + 1);
      }
      const IndexLayout layout(70, 80, 3, 5);
      const Observations whole = distribute(grid, entries, layout);
      EXPECT_EQ(whole.global_count, 70 * 80 - 70 * 80 * 2 / 5);
      for (const std::int64_t round : {1, 97, 100000}) {
        SCOPED_TRACE(fmt::format("rounds of {}", round));
        EntryList copy = entries;
        const Observations rounds = distribute(grid, std::move(copy), layout, round);
        EXPECT_TRUE(copy.values.empty());
        EXPECT_EQ(rounds.rows, whole.rows);
        EXPECT_EQ(rounds.cols, whole.cols);
        EXPECT_EQ(rounds.values, whole.values);
      }
      // A duplicate found across rounds still names its two lines.
      EntryList twice = entries;
      if (grid.rank() == grid.size() - 1) {
        twice.rows.push_back(twice.rows.front());
        twice.cols.push_back(twice.cols.front());
        twice.values.push_back(1.0);
        twice.lines.push_back(99999);
      }
      const std::int64_t first_line = entries.lines.empty() ? 0 : entries.lines.front();
      std::int64_t line = grid.rank() == grid.size() - 1 ? first_line : 0;
      MPI_Bcast(&line, 1, MPI_INT64_T, grid.size() - 1, grid.comm());
      std::int64_t row = grid.rank() == grid.size() - 1 ? entries.rows.front() : 0;
      std::int64_t col = grid.rank() == grid.size() - 1 ? entries.cols.front() : 0;
      MPI_Bcast(&row, 1, MPI_INT64_T, grid.size() - 1, grid.comm());
      MPI_Bcast(&col, 1, MPI_INT64_T, grid.size() - 1, grid.comm());
      expect_error(grid.comm(), [&] { distribute(grid, std::move(twice), layout, 97); },
                   {fmt::format("memory:99999: duplicate entry ({}, {}), also at line {}", row, col, line)});
    });
  }
}

TEST(Distribute, RanksWithMoreThan1024LocalRowsSortInRanges) {
  // 5,003 x 7, entries listed in a scrambled order: each rank holds over 1,024 local rows, so
  // the in-place grouping sorts ranges of several rows (observations.cpp), and a range's rows
  // must still come out ordered by row and then column.
  const std::int64_t m = 5003, n = 7;
  for (const GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      SCOPED_TRACE(fmt::format("grid {}x{}", shape.rows, shape.cols));
      EntryList entries;
      entries.file = "memory";
      std::vector<std::tuple<std::int64_t, std::int64_t, double>> expected;
      for (std::int64_t t = 0; t < m * n; ++t) {
        const std::int64_t k = (t * 7919) % (m * n);  // 7919 is prime to m n: a permutation
        if (k % 3 == 0) continue;
        const double value = 0.25 * static_cast<double>(k);
        expected.emplace_back(k / n, k % n, value);
        if (t % grid.size() != grid.rank()) continue;
        entries.rows.push_back(k / n);
        entries.cols.push_back(k % n);
        entries.values.push_back(value);
        entries.lines.push_back(t + 1);
      }
      std::sort(expected.begin(), expected.end());
      const IndexLayout layout(m, n, 2, 13);
      EntryList copy = entries;
      const Observations observations = distribute(grid, std::move(copy), layout, 1000);
      expect_distributed(grid, layout, observations, expected);
      // A repeat of the last-listed entry, listed again on another rank, is found.
      EntryList twice = entries;
      const auto [row, col, value] = expected.back();
      if (grid.rank() == 0) {
        twice.rows.push_back(row);
        twice.cols.push_back(col);
        twice.values.push_back(value);
        twice.lines.push_back(m * n + 1);
      }
      if (grid.size() == 1 || grid.rank() == 1) {
        twice.rows.push_back(row);
        twice.cols.push_back(col);
        twice.values.push_back(value);
        twice.lines.push_back(m * n + 2);
      }
      std::int64_t listed = 0;  // the line of its first listing
      for (std::int64_t t = 0; t < m * n && listed == 0; ++t)
        if ((t * 7919) % (m * n) == row * n + col) listed = t + 1;
      expect_error(grid.comm(), [&] { distribute(grid, std::move(twice), layout, 1000); },
                   {fmt::format("memory:{}: duplicate entry ({}, {}), also at line {}", m * n + 1, row, col, listed)});
    });
  }
}

TEST(Distribute, RejectsIndicesOutsideAnExplicitLayout) {
  const std::string dir = test::temp_dir("range");
  const std::string rows_path = dir + "/rows.tsv", cols_path = dir + "/cols.tsv";
  test::write_text_file(rows_path, triplet_text(400, 0, 390, "25\t3\t1.0"));
  test::write_text_file(cols_path, triplet_text(400, 0, 385, "3\t30\t1.0"));
  for (const GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      const IndexLayout layout(20, 22, 3, 5);
      const LoadedData by_rows = read_data(grid.comm(), rows_path, "", {});
      EXPECT_EQ(by_rows.rows, 26);
      expect_error(grid.comm(), [&] { distribute(grid, by_rows.train, layout); },
                   {rows_path +
                    ":390: row index 25 (counting from 0) outside 0..19 (the matrix has 20 rows)"});
      const LoadedData by_cols = read_data(grid.comm(), cols_path, "", {});
      expect_error(
          grid.comm(), [&] { distribute(grid, by_cols.train, layout); },
          {cols_path +
           ":385: column index 30 (counting from 0) outside 0..21 (the matrix has 22 columns)"});
    });
  }
}

TEST(Distribute, RejectsDuplicatesFromAnyPairOfRanks) {
  const std::string dir = test::temp_dir("duplicates");
  // Line 3 holds (2, 0): its twin at line 395 is parsed by the last rank, and the two meet
  // only at their owner. Lines 390 and 391 are twins within one rank's chunk. In `many`, (5, 1)
  // is on lines 25, 200, 300 and 399, (2, 0) on lines 3 and 395: the message names the first
  // repeated entry in (row, col) order under the layout, with its two earliest lines.
  const std::string far = dir + "/far.tsv", near = dir + "/near.tsv", many = dir + "/many.tsv";
  test::write_text_file(far, triplet_text(400, 0, 395, "2\t0\t9.5"));
  test::write_text_file(near, triplet_text(400, 0, 391, "9\t20\t7.0"));
  std::string many_text;
  for (int k = 0; k < 400; ++k) {
    const int line = k + 1;
    many_text += line == 200 || line == 300 || line == 399 ? "5\t1\t1.0\n"
                 : line == 395                             ? "2\t0\t1.0\n"
                                                           : fmt::format("{}\t{}\t1.0\n", k % 19, k / 19);
  }
  test::write_text_file(many, many_text);
  for (const GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      for (const bool permute : {true, false}) {
        const IndexLayout layout(19, 22, 2, 9, permute);
        const LoadedData a = read_data(grid.comm(), far, "", {});
        expect_error(grid.comm(), [&] { distribute(grid, a.train, layout); },
                     {far + ":395: duplicate entry (2, 0), also at line 3"});
        const LoadedData b = read_data(grid.comm(), near, "", {});
        expect_error(grid.comm(), [&] { distribute(grid, b.train, layout); },
                     {near + ":391: duplicate entry (9, 20), also at line 390"});
        const LoadedData c = read_data(grid.comm(), many, "", {});
        // Which of the two repeated entries comes first depends on the permutation.
        const bool five_first =
            std::make_pair(layout.permuted_row(5), layout.permuted_col(1)) <
            std::make_pair(layout.permuted_row(2), layout.permuted_col(0));
        const int five_owner = layout.owner(grid, layout.permuted_row(5), layout.permuted_col(1));
        const int two_owner = layout.owner(grid, layout.permuted_row(2), layout.permuted_col(0));
        // The lowest rank holding a repeated entry reports it (agreed errors keep rank order).
        const bool five_reported =
            five_owner < two_owner || (five_owner == two_owner && five_first);
        expect_error(grid.comm(), [&] { distribute(grid, c.train, layout); },
                     {five_reported ? many + ":200: duplicate entry (5, 1), also at line 25"
                                    : many + ":395: duplicate entry (2, 0), also at line 3"});
      }
    });
  }
}

TEST(Layout, DefaultBlockSpreadsRowsAndColumnsEvenly) {
  for (const GridShape shape : test::available_shapes()) {
    test::on_grid(shape, [&](const ProcessGrid& grid) {
      SCOPED_TRACE(fmt::format("grid {}x{}", shape.rows, shape.cols));
      EXPECT_EQ(choose_block_size(1000, 1000, grid, 17), 17);  // a requested block is kept
      for (const std::int64_t size : {23, 100, 777, 1000, 4096, 100000}) {
        const int block = choose_block_size(size, size + 1, grid);
        const std::int64_t largest = std::min<std::int64_t>(
            {64, (size + shape.rows - 1) / shape.rows, (size + 1 + shape.cols - 1) / shape.cols});
        EXPECT_LE(block, largest);
        EXPECT_GE(block, std::max<std::int64_t>(1, largest / 2));
        // No block in that range leaves the busiest process less work (counted here from
        // the owners of every index, not from the count formula).
        const auto busiest = [](std::int64_t n, std::int64_t b, int procs) {
          std::vector<std::int64_t> load(static_cast<size_t>(procs), 0);
          for (std::int64_t g = 0; g < n; ++g) ++load[static_cast<size_t>((g / b) % procs)];
          return *std::max_element(load.begin(), load.end());
        };
        const std::int64_t chosen = busiest(size, block, shape.rows) * busiest(size + 1, block, shape.cols);
        for (std::int64_t b = std::max<std::int64_t>(1, largest / 2); b <= largest; ++b)
          EXPECT_LE(chosen, busiest(size, b, shape.rows) * busiest(size + 1, b, shape.cols)) << "block " << b;
      }
      if (shape.rows == 1 && shape.cols == 2) EXPECT_EQ(choose_block_size(1000, 1000, grid), 50);
    });
  }
}

}  // namespace
}  // namespace cdmf
