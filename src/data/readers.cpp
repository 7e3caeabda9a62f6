#include "cdmf/data/readers.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "cdmf/io/factor_file.hpp"
#include "text_chunks.hpp"
#include "text_entries.hpp"

namespace cdmf {

namespace {
using detail::IndexRule;
using detail::LineSyntax;

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

const char* format_name(DataFormat format) {
  switch (format) {
    case DataFormat::kAuto:
      return "auto";
    case DataFormat::kTriplets:
      return "triplets";
    case DataFormat::kMovieLens:
      return "movielens";
    case DataFormat::kMatrixMarket:
      return "mtx";
    case DataFormat::kHdf5:
      return "hdf5";
  }
  return "?";
}

void check_index_base(const ReadOptions& options) {
  fail_if(options.index_base != 0 && options.index_base != 1,
          "--index-base must be 0 or 1 (got {})", options.index_base);
}

// Training data needs values; prediction pairs may carry one, which is ignored.
enum class Purpose { kData, kPairs };

// One file's entries and the dimensions it implies (its header's, or max index + 1).
struct FileEntries {
  EntryList entries;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
};

IndexRule index_rule(bool row, bool ids, std::int64_t base, std::int64_t count) {
  IndexRule rule;
  rule.name = ids ? (row ? "user id" : "item id") : (row ? "row index" : "column index");
  rule.dimension = row ? "rows" : "columns";
  rule.ids = ids;
  rule.base = base;
  rule.count = ids ? 0 : count;
  return rule;
}

LineSyntax line_syntax(DataFormat format, Purpose purpose, bool row_ids, bool col_ids,
                       std::int64_t base, const detail::MatrixMarketHeader& header) {
  const bool pairs = purpose == Purpose::kPairs;
  LineSyntax syntax;
  syntax.values = !pairs;
  if (format == DataFormat::kMovieLens) {
    syntax.expected =
        pairs ? "userId,movieId[,rating[,timestamp]]" : "userId,movieId,rating[,timestamp]";
    syntax.min_fields = pairs ? 2 : 3;
    syntax.max_fields = 4;
    row_ids = col_ids = true;
  } else {
    syntax.expected = pairs ? "row col [value]" : "row col value";
    syntax.min_fields = pairs ? 2 : 3;
    syntax.max_fields = 3;
  }
  if (format == DataFormat::kMatrixMarket) {
    syntax.header_allowed = false;  // the banner is line 1
    base = 1;
  }
  syntax.row = index_rule(true, row_ids, base, header.rows);
  syntax.col = index_rule(false, col_ids, base, header.cols);
  return syntax;
}

std::int64_t global_sum(MPI_Comm comm, std::int64_t local) {
  std::int64_t total = 0;
  check_mpi(MPI_Allreduce(&local, &total, 1, MPI_INT64_T, MPI_SUM, comm), "MPI_Allreduce");
  return total;
}

std::int64_t global_max(MPI_Comm comm, std::int64_t local) {
  std::int64_t result = 0;
  check_mpi(MPI_Allreduce(&local, &result, 1, MPI_INT64_T, MPI_MAX, comm), "MPI_Allreduce");
  return result;
}

// HDF5 entries come already parsed; they get the checks text lines get while parsing. The
// base is applied here, per dimension, because a dimension with an id map has none.
EntryList read_hdf5(MPI_Comm comm, const std::string& path, Purpose purpose, bool row_ids,
                    bool col_ids, std::int64_t base) {
  EntryList list = read_hdf5_entries(comm, path, 0);
  list.file = path;
  const IndexRule row = index_rule(true, row_ids, base, 0);
  const IndexRule col = index_rule(false, col_ids, base, 0);
  run_agreed(comm, [&] {
    for (size_t k = 0; k < list.size(); ++k) {
      const std::int64_t line = list.lines[k];
      list.rows[k] = detail::apply_index_rule(list.rows[k], row, path, line);
      list.cols[k] = detail::apply_index_rule(list.cols[k], col, path, line);
      if (purpose == Purpose::kData) detail::check_finite(list.values[k], path, line);
    }
  });
  if (purpose == Purpose::kPairs) std::fill(list.values.begin(), list.values.end(), 0.0);
  return list;
}

// Collective: one file in a concrete format; rejects a file without entries.
FileEntries read_file(MPI_Comm comm, const std::string& path, DataFormat format, Purpose purpose,
                      bool row_ids, bool col_ids, std::int64_t base) {
  FileEntries out;
  detail::MatrixMarketHeader header;
  if (format == DataFormat::kHdf5) {
    out.entries = read_hdf5(comm, path, purpose, row_ids, col_ids, base);
  } else {
    std::int64_t data_offset = 0, first_line = 1;
    if (format == DataFormat::kMatrixMarket) {
      header = detail::read_matrix_market_header(comm, path, purpose == Purpose::kPairs);
      data_offset = header.data_offset;
      first_line = header.data_line;
    }
    const detail::TextChunk chunk = detail::TextChunk::read(comm, path, data_offset, first_line);
    out.entries = detail::parse_entries(
        comm, chunk, path, line_syntax(format, purpose, row_ids, col_ids, base, header));
  }
  const std::int64_t total = global_sum(comm, static_cast<std::int64_t>(out.entries.size()));
  fail_if(format == DataFormat::kMatrixMarket && total != header.entries,
          "{}: header says {} entries, found {}", path, header.entries, total);
  fail_if(total == 0, "{}: no entries", path);
  const auto max_of = [](const std::vector<std::int64_t>& v) {
    return v.empty() ? std::int64_t{-1} : *std::max_element(v.begin(), v.end());
  };
  out.rows = std::max(header.rows, global_max(comm, max_of(out.entries.rows)) + 1);
  out.cols = std::max(header.cols, global_max(comm, max_of(out.entries.cols)) + 1);
  return out;
}

// Collective: the sorted union over all ranks of the ids in `lists`.
IdMap gather_ids(MPI_Comm comm, const std::vector<const std::vector<std::int64_t>*>& lists) {
  std::vector<std::int64_t> local;
  for (const auto* list : lists) local.insert(local.end(), list->begin(), list->end());
  std::sort(local.begin(), local.end());
  local.erase(std::unique(local.begin(), local.end()), local.end());
  int size = 1;
  MPI_Comm_size(comm, &size);
  const int count = static_cast<int>(local.size());
  std::vector<int> counts(static_cast<size_t>(size)), offsets(static_cast<size_t>(size), 0);
  check_mpi(MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, comm), "MPI_Allgather");
  for (int r = 1; r < size; ++r) offsets[r] = offsets[r - 1] + counts[r - 1];
  IdMap map;
  map.ids.resize(static_cast<size_t>(offsets.back() + counts.back()));
  check_mpi(MPI_Allgatherv(local.data(), count, MPI_INT64_T, map.ids.data(), counts.data(),
                           offsets.data(), MPI_INT64_T, comm),
            "MPI_Allgatherv");
  std::sort(map.ids.begin(), map.ids.end());
  map.ids.erase(std::unique(map.ids.begin(), map.ids.end()), map.ids.end());
  return map;
}

// Collective: replaces ids by dense indices through the non-empty maps.
/// Unknown ids become -1 when `unknown_as_missing`, else an error.
void map_ids(MPI_Comm comm, EntryList& list, const IdMap& row_ids, const IdMap& col_ids,
             bool unknown_as_missing = false) {
  run_agreed(comm, [&] {
    const auto map = [&](std::vector<std::int64_t>& values, const IdMap& ids, const char* what) {
      if (ids.empty()) return;
      for (size_t k = 0; k < values.size(); ++k) {
        const std::int64_t index = ids.index_of(values[k]);
        if (index < 0 && !unknown_as_missing)
          fail("{}: unknown {} {}", detail::location(list.file, list.lines[k]), what, values[k]);
        values[k] = index;
      }
    };
    map(list.rows, row_ids, "user id");
    map(list.cols, col_ids, "item id");
  });
}
}  // namespace

DataFormat parse_data_format(const std::string& name) {
  for (DataFormat format : {DataFormat::kAuto, DataFormat::kTriplets, DataFormat::kMovieLens,
                            DataFormat::kMatrixMarket, DataFormat::kHdf5})
    if (name == format_name(format)) return format;
  fail("unknown data format '{}' (expected auto, triplets, movielens, mtx or hdf5)", name);
}

DataFormat detect_format(MPI_Comm comm, const std::string& path, DataFormat requested) {
  if (requested != DataFormat::kAuto) return requested;
  const std::string extension = lowercase(std::filesystem::path(path).extension().string());
  if (extension == ".h5" || extension == ".hdf5") return DataFormat::kHdf5;
  if (extension == ".mtx") return DataFormat::kMatrixMarket;
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  int detected = static_cast<int>(DataFormat::kTriplets);
  run_agreed(comm, [&] {
    if (rank != 0) return;
    std::ifstream in = detail::open_input(path);
    std::string first;
    std::getline(in, first);
    std::vector<std::string_view> fields;
    detail::split_fields(first, fields);
    if (lowercase(first.substr(0, 14)) == "%%matrixmarket") {
      detected = static_cast<int>(DataFormat::kMatrixMarket);
    } else if (fields.size() >= 2 && lowercase(std::string(fields[0])) == "userid" &&
               lowercase(std::string(fields[1])) == "movieid") {
      detected = static_cast<int>(DataFormat::kMovieLens);
    }
  });
  check_mpi(MPI_Bcast(&detected, 1, MPI_INT, 0, comm), "MPI_Bcast");
  return static_cast<DataFormat>(detected);
}

std::int64_t IdMap::index_of(std::int64_t id) const {
  const auto it = std::lower_bound(ids.begin(), ids.end(), id);
  return it != ids.end() && *it == id ? it - ids.begin() : -1;
}

LoadedData read_data(MPI_Comm comm, const std::string& train_path, const std::string& test_path,
                     const ReadOptions& options) {
  check_index_base(options);
  const bool has_test = !test_path.empty();
  DataFormat train_format = detect_format(comm, train_path, options.format);
  DataFormat test_format = has_test ? detect_format(comm, test_path, options.format) : train_format;
  // A MovieLens file without its header looks like triplets: ids in one file mean ids in both.
  const bool ids = train_format == DataFormat::kMovieLens || test_format == DataFormat::kMovieLens;
  if (ids) {
    for (const auto& [path, format] :
         {std::pair{train_path, train_format}, std::pair{test_path, test_format}})
      fail_if(format == DataFormat::kMatrixMarket || format == DataFormat::kHdf5,
              "{}: {} indices cannot be combined with MovieLens ids", path, format_name(format));
    train_format = test_format = DataFormat::kMovieLens;
  }
  LoadedData data;
  FileEntries train =
      read_file(comm, train_path, train_format, Purpose::kData, ids, ids, options.index_base);
  FileEntries test;
  if (has_test)
    test = read_file(comm, test_path, test_format, Purpose::kData, ids, ids, options.index_base);
  data.train = std::move(train.entries);
  data.test = std::move(test.entries);
  if (ids) {
    // The training ids alone define the problem: a test id unseen in training maps to -1.
    data.row_ids = gather_ids(comm, {&data.train.rows});
    data.col_ids = gather_ids(comm, {&data.train.cols});
    map_ids(comm, data.train, data.row_ids, data.col_ids);
    map_ids(comm, data.test, data.row_ids, data.col_ids, /*unknown_as_missing=*/true);
    data.rows = static_cast<std::int64_t>(data.row_ids.ids.size());
    data.cols = static_cast<std::int64_t>(data.col_ids.ids.size());
  } else {
    data.rows = train.rows;
    data.cols = train.cols;
  }
  return data;
}

EntryList read_pairs(MPI_Comm comm, const std::string& path, const ReadOptions& options,
                     const IdMap& row_ids, const IdMap& col_ids, PairIds* original) {
  check_index_base(options);
  const DataFormat format = detect_format(comm, path, options.format);
  fail_if(format == DataFormat::kMovieLens && (row_ids.empty() || col_ids.empty()),
          "{}: MovieLens ids need the id maps of a model trained on MovieLens data", path);
  FileEntries pairs = read_file(comm, path, format, Purpose::kPairs, !row_ids.empty(),
                                !col_ids.empty(), options.index_base);
  if (original) {
    original->rows = pairs.entries.rows;
    original->cols = pairs.entries.cols;
  }
  map_ids(comm, pairs.entries, row_ids, col_ids, original != nullptr);
  return std::move(pairs.entries);
}

}  // namespace cdmf
