#include "cdmf/io/factor_file.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <optional>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "cdmf/io/atomic_file.hpp"
#include "cdmf/io/hdf5.hpp"
#include "cdmf/io/slab_exchange.hpp"
#include "cdmf/io/staged_writer.hpp"

namespace cdmf {

namespace {

std::string factor_name(int l) { return "/factors/W" + std::to_string(l + 1); }

/// ISO 8601 UTC time of rank 0's clock: attributes must be identical on every rank.
std::string utc_now(MPI_Comm comm) {
  std::int64_t seconds = static_cast<std::int64_t>(std::time(nullptr));
  check_mpi(MPI_Bcast(&seconds, 1, MPI_INT64_T, 0, comm), "MPI_Bcast");
  const std::time_t time = static_cast<std::time_t>(seconds);
  std::tm utc{};
  gmtime_r(&time, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

void check_chain(const ProcessGrid& grid, const IndexLayout& layout, const std::string& path,
                 const Chain& chain) {
  fail_if(chain.factors.empty(), "cannot write {}: the chain has no factors", path);
  fail_if(chain.lr_multipliers.size() != chain.factors.size(),
          "cannot write {}: {} learning-rate multipliers for {} factors", path,
          chain.lr_multipliers.size(), chain.factors.size());
  for (size_t l = 0; l < chain.factors.size(); ++l) {
    const DistMatrix& w = chain.factors[l];
    fail_if(&w.grid() != &grid, "cannot write {}: W{} lives on another process grid", path, l + 1);
    fail_if(l > 0 && w.cols() != chain.factors[l - 1].rows(),
            "cannot write {}: W{} is {}x{} but W{} has {} rows", path, l + 1, w.rows(), w.cols(), l,
            chain.factors[l - 1].rows());
  }
  fail_if(chain.rows() != layout.rows() || chain.cols() != layout.cols(),
          "cannot write {}: the chain is {}x{} but the layout is {}x{}", path, chain.rows(),
          chain.cols(), layout.rows(), layout.cols());
}

/// Collective: stages an id map every rank holds as a 1-D int64 dataset, each rank a slab.
/// Throws (on every rank alike) unless the ids ascend, as read_id_maps requires.
void stage_ids(StagedWriter& writer, const std::string& name, const IdMap& map, const char* what,
               MPI_Comm comm) {
  run_agreed(comm, [&] {
    for (size_t k = 1; k < map.ids.size(); ++k)
      fail_if(map.ids[k] <= map.ids[k - 1], "{} ids are not strictly ascending (position {})",
              what, k + 1);
  });
  int ranks = 1, rank = 0;
  check_mpi(MPI_Comm_size(comm, &ranks), "MPI_Comm_size");
  check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  const auto total = static_cast<std::int64_t>(map.ids.size());
  const RowSlab slab = row_slab(total, ranks, rank);
  writer.add_int64(name, total, slab.first,
                   {map.ids.begin() + slab.first, map.ids.begin() + slab.first + slab.count});
}

/// Collective: a 1-D integer dataset read whole by every rank (id maps are replicated);
/// empty when absent.
IdMap read_ids(const h5::File& file, const std::string& name) {
  bool present = false;
  run_agreed(file.comm(), [&] { present = file.has(name); });
  IdMap map;
  if (!present) return map;
  map.ids = read_whole_int64(file, name);
  // IdMap::index_of searches, so the ids must ascend.
  std::string message;
  for (size_t k = 1; k < map.ids.size() && message.empty(); ++k)
    if (map.ids[k] <= map.ids[k - 1])
      message =
          fmt::format("{}: {} is not strictly ascending (position {})", file.path(), name, k + 1);
  agree_on_error(file.comm(), message);
  return map;
}

}  // namespace

FactorFileInfo inspect_factor_file(const h5::File& file, bool allow_adapter) {
  const std::string& path = file.path();
  const h5::Attributes root = file.attributes();
  FactorFileInfo info;
  info.path = path;

  const auto format = root.get_string("format");
  fail_if(!format, "{}: not a cdmf checkpoint (attribute 'format' is missing)", path);
  fail_if(*format == kAdapterFormat && !allow_adapter,
          "{}: a cdmf adapter (an update of a base model), not a model: apply it with --base and "
          "--adapter",
          path);
  fail_if(*format != kCheckpointFormat && *format != kAdapterFormat,
          "{}: not a cdmf checkpoint (format is '{}', expected '{}')", path, *format,
          kCheckpointFormat);
  info.format = *format;
  const auto version = root.get_int("format_version");
  fail_if(!version, "{}: attribute 'format_version' is missing", path);
  fail_if(*version != kCheckpointFormatVersion,
          "{}: format_version {} is not supported (this cdmf reads version {})", path, *version,
          kCheckpointFormatVersion);
  info.format_version = static_cast<int>(*version);

  const auto required = [&](const char* name) {
    const auto value = root.get_int(name);
    fail_if(!value, "{}: attribute '{}' is missing", path, name);
    return *value;
  };
  info.rows = required("rows");
  info.cols = required("cols");
  const std::int64_t depth = required("depth");
  fail_if(info.rows < 1 || info.cols < 1, "{}: rows = {} and cols = {} must be positive", path,
          info.rows, info.cols);
  fail_if(depth < 1 || depth > 1000, "{}: depth = {} is out of range", path, depth);
  info.depth = static_cast<int>(depth);
  const auto model = root.get_string("model");
  fail_if(!model, "{}: attribute 'model' is missing", path);
  try {
    parse_model_kind(*model);
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  }
  info.model = *model;
  info.cdmf_version = root.get_string("cdmf_version").value_or("");
  info.iteration = root.get_int("iteration").value_or(0);
  info.created = root.get_string("created").value_or("");
  const std::optional<double> clip_min = root.get_double("clip_min"), clip_max = root.get_double("clip_max");
  if (clip_min && clip_max) info.clip = std::make_pair(*clip_min, *clip_max);
  info.config_json = root.get_string("config").value_or("{}");

  fail_if(!file.has("/factors"), "{}: /factors is missing", path);
  for (int l = 0; l < info.depth; ++l) {
    const std::string name = factor_name(l);
    fail_if(!file.has(name), "{}: {} is missing (depth is {})", path, name, info.depth);
    const h5::Dataset dataset = file.open_dataset(name);
    dataset.require(2, h5::Elements::kFloat64);
    const FactorShape shape{dataset.dims()[0], dataset.dims()[1]};
    if (l == 0) {
      fail_if(shape.cols != info.cols, "{}: {} has shape {} but the file has cols = {}", path, name,
              dataset.shape_text(), info.cols);
    } else {
      fail_if(shape.cols != info.shapes.back().rows, "{}: {} has shape {} but W{} has {} rows",
              path, name, dataset.shape_text(), l, info.shapes.back().rows);
    }
    fail_if(l == info.depth - 1 && shape.rows != info.rows,
            "{}: {} has shape {} but the file has rows = {}", path, name, dataset.shape_text(),
            info.rows);
    info.shapes.push_back(shape);
    info.lr_multipliers.push_back(dataset.attributes().get_double("lr_multiplier").value_or(1.0));
    info.checksums = (l == 0 || info.checksums) && dataset.attributes().has("checksum");
  }
  const std::int64_t stored = file.group_size("/factors");
  fail_if(stored != info.depth, "{}: /factors holds {} datasets but depth is {}", path, stored,
          info.depth);
  info.width = info.shapes.front().rows;
  const auto width = root.get_int("width");
  fail_if(width && *width != info.width, "{}: attribute width = {} but W1 has {} rows", path,
          *width, info.width);
  return info;
}

namespace {

/// Collective: the root attributes of DESIGN.md section 3.
void write_root_attributes(h5::Attributes root, const Chain& chain, const FactorFileMeta& meta,
                           const std::string& created) {
  root.set_string("format", meta.format);
  root.set_int("format_version", kCheckpointFormatVersion);
  root.set_string("cdmf_version", CDMF_VERSION);
  root.set_string("model", model_name(chain.kind));
  root.set_int("rows", chain.rows());
  root.set_int("cols", chain.cols());
  root.set_int("depth", chain.depth());
  root.set_int("width", chain.width());
  root.set_int("iteration", meta.iteration);
  root.set_string("created", created);
  root.set_string("config", meta.config_json);
  if (meta.clip) {
    root.set_double("clip_min", meta.clip->first);
    root.set_double("clip_max", meta.clip->second);
  }
  for (const auto& [name, value] : meta.string_attributes) root.set_string(name, value);
  for (const auto& [name, value] : meta.int_attributes) root.set_int(name, value);
  for (const auto& [name, value] : meta.double_attributes) root.set_double(name, value);
}

}  // namespace

FactorFileInfo read_factor_file_info(MPI_Comm comm, const std::string& path, bool allow_adapter) {
  const h5::File file = h5::File::open(comm, path);
  FactorFileInfo info;
  run_agreed(comm, [&] { info = inspect_factor_file(file, allow_adapter); });
  return info;
}

std::vector<DistMatrix> read_factors(const ProcessGrid& grid, const IndexLayout& layout,
                                     const FactorFileInfo& info, int block) {
  fail_if(info.rows != layout.rows() || info.cols != layout.cols(),
          "{}: the factors are for a {}x{} matrix but the problem is {}x{}", info.path, info.rows,
          info.cols, layout.rows(), layout.cols());
  const h5::File file = h5::File::open(grid.comm(), info.path);
  const int depth = static_cast<int>(info.shapes.size());
  std::vector<DistMatrix> factors;
  for (int l = 0; l < depth; ++l) {
    factors.emplace_back(grid, info.shapes[l].rows, info.shapes[l].cols, block);
    read_matrix(file, factor_name(l), layout, factor_indexing(l, depth), factors.back());
  }
  return factors;
}

void write_factor_file(const ProcessGrid& grid, const IndexLayout& layout, const std::string& path,
                       const Chain& chain, const FactorFileMeta& meta, const IdMap& row_ids,
                       const IdMap& col_ids, const FactorFileExtension& extension) {
  check_chain(grid, layout, path, chain);
  const std::string created = utc_now(grid.comm());
  std::uint64_t bytes = extension.bytes, objects = extension.objects + 2;  // + /factors, /ids
  for (const DistMatrix& w : chain.factors) bytes += 8 * static_cast<std::uint64_t>(w.rows() * w.cols());
  bytes += 8 * (row_ids.ids.size() + col_ids.ids.size());
  objects += chain.factors.size() + 2;
  if (meta.biases) {
    bytes += 8 * (meta.biases->rows.size() + meta.biases->cols.size());
    objects += 3;
  }
  std::uint64_t text = meta.config_json.size() + created.size() + 256;
  for (const auto& attribute : meta.string_attributes)
    text += attribute.first.size() + attribute.second.size() + 64;
  text += 64 * (meta.int_attributes.size() + meta.double_attributes.size());
  write_atomically(grid.comm(), path, [&](const std::string& temporary) {
    h5::File file = h5::File::create(grid.comm(), temporary);
    file.reserve(file_size_bound(bytes, objects, text));
    {
      StagedWriter writer(file);
      write_root_attributes(file.attributes(), chain, meta, created);
      file.create_group("/factors");
      for (int l = 0; l < chain.depth(); ++l)
        writer
            .add_matrix(factor_name(l), chain.factors[l], layout, factor_indexing(l, chain.depth()))
            .attributes()
            .set_double("lr_multiplier", chain.lr_multipliers[l]);
      if (!row_ids.empty() || !col_ids.empty()) file.create_group("/ids");
      if (!row_ids.empty()) stage_ids(writer, "/ids/rows", row_ids, "row", grid.comm());
      if (!col_ids.empty()) stage_ids(writer, "/ids/cols", col_ids, "column", grid.comm());
      if (meta.biases) {
        file.create_group("/biases").attributes().set_double("mu", meta.biases->mu);
        const int ranks = grid.size(), rank = grid.rank();
        for (const auto& [name, values] :
             {std::pair<const char*, std::vector<double>>{"/biases/rows",
                                                          meta.biases->rows_original(layout)},
              {"/biases/cols", meta.biases->cols_original(layout)}}) {
          const auto total = static_cast<std::int64_t>(values.size());
          const RowSlab slab = row_slab(total, ranks, rank);
          writer.add_float64(name, total, slab.first,
                             {values.begin() + slab.first, values.begin() + slab.first + slab.count});
        }
      }
      if (extension.declare) extension.declare(writer);
      writer.write_all();
    }
    file.close();
  });
}

std::optional<Biases> read_biases(MPI_Comm comm, const std::string& path,
                                  const IndexLayout& layout) {
  const h5::File file = h5::File::open(comm, path);
  return read_biases(file, layout);
}

std::optional<Biases> read_biases(const h5::File& file, const IndexLayout& layout) {
  const MPI_Comm comm = file.comm();
  const std::string& path = file.path();
  bool present = false;
  double mu = 0.0;
  run_agreed(comm, [&] {
    present = file.has("/biases");
    if (!present) return;
    const h5::Group group = file.open_group("/biases");
    const std::optional<double> stored = group.attributes().get_double("mu");
    fail_if(!stored, "{}: /biases has no attribute mu", path);
    mu = *stored;
  });
  if (!present) return std::nullopt;
  const std::vector<double> rows = read_whole_float64(file, "/biases/rows");
  const std::vector<double> cols = read_whole_float64(file, "/biases/cols");
  run_agreed(comm, [&] {
    fail_if(static_cast<std::int64_t>(rows.size()) != layout.rows() ||
                static_cast<std::int64_t>(cols.size()) != layout.cols(),
            "{}: /biases/rows and /biases/cols have {} and {} entries for a {} x {} model", path,
            rows.size(), cols.size(), layout.rows(), layout.cols());
  });
  return Biases::from_original(layout, mu, rows, cols);
}

void read_id_maps(MPI_Comm comm, const std::string& path, IdMap& row_ids, IdMap& col_ids) {
  const h5::File file = h5::File::open(comm, path);
  row_ids = read_ids(file, "/ids/rows");
  col_ids = read_ids(file, "/ids/cols");
}

Truth read_truth(const ProcessGrid& grid, const IndexLayout& layout, const std::string& path,
                 int block) {
  const h5::File file = h5::File::open(grid.comm(), path);
  const std::int64_t m = layout.rows(), n = layout.cols();
  bool has_factors = false, has_matrix = false;
  std::int64_t rank = 0;
  run_agreed(grid.comm(), [&] {
    const bool has_u = file.has("/U"), has_v = file.has("/V");
    has_matrix = file.has("/matrix");
    fail_if(has_u != has_v,
            "{}: has {} but no {} (a truth file holds /U and /V with Phi = U V^T, or /matrix)",
            path, has_u ? "/U" : "/V", has_u ? "/V" : "/U");
    fail_if(!has_u && !has_matrix,
            "{}: not a truth file (expected datasets /U and /V with Phi = U V^T, or /matrix)",
            path);
    has_factors = has_u;
    if (has_factors) {
      const h5::Dataset u = file.open_dataset("/U"), v = file.open_dataset("/V");
      u.require(2, h5::Elements::kFloat64);
      v.require(2, h5::Elements::kFloat64);
      fail_if(u.dims()[0] != m, "{}: /U has shape {} but the problem has {} rows", path,
              u.shape_text(), m);
      fail_if(v.dims()[0] != n, "{}: /V has shape {} but the problem has {} columns", path,
              v.shape_text(), n);
      fail_if(u.dims()[1] < 1, "{}: /U has no columns", path);
      fail_if(v.dims()[1] != u.dims()[1], "{}: /V has shape {} but /U has {} columns", path,
              v.shape_text(), u.dims()[1]);
      rank = u.dims()[1];
    }
    if (has_matrix) {
      const h5::Dataset matrix = file.open_dataset("/matrix");
      matrix.require(2, h5::Elements::kFloat64);
      fail_if(matrix.dims()[0] != m || matrix.dims()[1] != n,
              "{}: /matrix has shape {} but the problem is {}x{}", path, matrix.shape_text(), m, n);
    }
  });

  Truth truth;
  if (has_factors) {
    truth.u.emplace(grid, m, rank, block);
    read_matrix(file, "/U", layout, {Space::kRows, Space::kInner}, *truth.u);
    truth.v.emplace(grid, n, rank, block);
    read_matrix(file, "/V", layout, {Space::kCols, Space::kInner}, *truth.v);
  }
  if (has_matrix) {
    truth.matrix.emplace(grid, m, n, block);
    read_matrix(file, "/matrix", layout, {Space::kRows, Space::kCols}, *truth.matrix);
  }
  return truth;
}

namespace {

/// Where this rank's `local` rows go among all ranks' rows in rank order, and their total.
RowSlab rows_in_rank_order(MPI_Comm comm, std::int64_t local, std::int64_t& total) {
  RowSlab slab{0, local};
  check_mpi(MPI_Exscan(&local, &slab.first, 1, MPI_INT64_T, MPI_SUM, comm), "MPI_Exscan");
  int me = 0;
  check_mpi(MPI_Comm_rank(comm, &me), "MPI_Comm_rank");
  if (me == 0) slab.first = 0;  // MPI_Exscan leaves rank 0's result undefined
  check_mpi(MPI_Allreduce(&local, &total, 1, MPI_INT64_T, MPI_SUM, comm), "MPI_Allreduce");
  return slab;
}

/// Collective: writes this rank's rows `slab` of a 1-D or 2-D dataset (row-major `data`) in
/// pieces of at most kPieceElements, every rank taking part in every piece (HDF5 1.10's
/// MPI-IO transfers stop at 2 GB).
void write_rows_in_pieces(h5::Dataset& dataset, hid_t memory_type, const RowSlab& slab,
                          std::int64_t row_elements, const char* data, size_t element_bytes, MPI_Comm comm) {
  constexpr std::int64_t kPieceElements = std::int64_t{1} << 26;
  const std::int64_t piece_rows = std::max<std::int64_t>(1, kPieceElements / std::max<std::int64_t>(row_elements, 1));
  std::int64_t pieces = (slab.count + piece_rows - 1) / piece_rows, max_pieces = 0;
  check_mpi(MPI_Allreduce(&pieces, &max_pieces, 1, MPI_INT64_T, MPI_MAX, comm), "MPI_Allreduce");
  for (std::int64_t piece = 0; piece < std::max<std::int64_t>(max_pieces, 1); ++piece) {
    const std::int64_t begin = std::min(piece * piece_rows, slab.count);
    const std::int64_t count = std::min(piece_rows, slab.count - begin);
    dataset.write_rows(memory_type, count > 0 ? slab.first + begin : 0, count,
                       data == nullptr ? nullptr : data + begin * row_elements * static_cast<std::int64_t>(element_bytes));
  }
}

/// Row-major copy of a column-major `rows` x `cols` matrix.
std::vector<double> row_major(const std::vector<double>& column_major, std::int64_t rows, std::int64_t cols) {
  std::vector<double> out(column_major.size());
  for (std::int64_t j = 0; j < cols; ++j)
    for (std::int64_t i = 0; i < rows; ++i) out[i * cols + j] = column_major[i + j * rows];
  return out;
}

}  // namespace

void write_truth_factors(MPI_Comm comm, const std::string& path, std::int64_t rows,
                         std::int64_t cols, std::int64_t rank, const std::vector<double>& u,
                         const std::vector<double>& v) {
  fail_if(rows < 1 || cols < 1 || rank < 1,
          "cannot write {}: truth of {} x {} with rank {} (all must be positive)", path, rows, cols,
          rank);
  std::int64_t u_values = 0, v_values = 0;
  rows_in_rank_order(comm, static_cast<std::int64_t>(u.size()), u_values);
  rows_in_rank_order(comm, static_cast<std::int64_t>(v.size()), v_values);
  std::string message;
  if (u_values != rows * rank || v_values != cols * rank)
    message = fmt::format("cannot write {}: U has {} values and V {}, expected {} and {}", path,
                          u_values, v_values, rows * rank, cols * rank);
  else if (static_cast<std::int64_t>(u.size()) % rank != 0 || static_cast<std::int64_t>(v.size()) % rank != 0)
    message = fmt::format("cannot write {}: a rank holds part of a row of U or V", path);
  agree_on_error(comm, message);
  std::int64_t u_rows = 0, v_rows = 0;
  const RowSlab u_slab = rows_in_rank_order(comm, static_cast<std::int64_t>(u.size()) / rank, u_rows);
  const RowSlab v_slab = rows_in_rank_order(comm, static_cast<std::int64_t>(v.size()) / rank, v_rows);
  const std::vector<double> u_rows_major = row_major(u, u_slab.count, rank);
  const std::vector<double> v_rows_major = row_major(v, v_slab.count, rank);
  write_atomically(comm, path, [&](const std::string& temporary) {
    h5::File file = h5::File::create(comm, temporary);
    file.reserve(file_size_bound(8 * static_cast<std::uint64_t>((rows + cols) * rank), 2, 64));
    {
      // Every dataset and attribute first, then the data (see h5::File).
      h5::Attributes root = file.attributes();
      root.set_int("rows", rows);
      root.set_int("cols", cols);
      root.set_int("rank", rank);
      h5::Dataset u_dataset = file.create_dataset("/U", H5T_IEEE_F64LE, {rows, rank});
      h5::Dataset v_dataset = file.create_dataset("/V", H5T_IEEE_F64LE, {cols, rank});
      file.flush();
      const auto bytes = [](const std::vector<double>& x) { return reinterpret_cast<const char*>(x.data()); };
      write_rows_in_pieces(u_dataset, H5T_NATIVE_DOUBLE, u_slab, rank, bytes(u_rows_major), 8, comm);
      write_rows_in_pieces(v_dataset, H5T_NATIVE_DOUBLE, v_slab, rank, bytes(v_rows_major), 8, comm);
    }
    file.close();
  });
}

void write_hdf5_entries(MPI_Comm comm, const std::string& path, const EntryList& entries) {
  std::int64_t total = 0;
  const RowSlab slab = rows_in_rank_order(comm, static_cast<std::int64_t>(entries.size()), total);
  write_atomically(comm, path, [&](const std::string& temporary) {
    h5::File file = h5::File::create(comm, temporary);
    file.reserve(file_size_bound(24 * static_cast<std::uint64_t>(total), 3, 0));
    {
      h5::Dataset rows = file.create_dataset("/rows", H5T_STD_I64LE, {total});
      h5::Dataset cols = file.create_dataset("/cols", H5T_STD_I64LE, {total});
      h5::Dataset values = file.create_dataset("/values", H5T_IEEE_F64LE, {total});
      rows.set_checksum(h5::checksum(entries.rows.data(), slab.first, slab.count));
      cols.set_checksum(h5::checksum(entries.cols.data(), slab.first, slab.count));
      values.set_checksum(h5::checksum(entries.values.data(), slab.first, slab.count));
      file.flush();
      write_rows_in_pieces(rows, H5T_NATIVE_INT64, slab, 1, reinterpret_cast<const char*>(entries.rows.data()), 8, comm);
      write_rows_in_pieces(cols, H5T_NATIVE_INT64, slab, 1, reinterpret_cast<const char*>(entries.cols.data()), 8, comm);
      write_rows_in_pieces(values, H5T_NATIVE_DOUBLE, slab, 1, reinterpret_cast<const char*>(entries.values.data()), 8, comm);
    }
    file.close();
  });
}

EntryList read_hdf5_entries(MPI_Comm comm, const std::string& path, int index_base) {
  const h5::File file = h5::File::open(comm, path);
  std::optional<h5::Dataset> rows, cols, values;
  run_agreed(comm, [&] {
    for (const char* name : {"/rows", "/cols", "/values"})
      fail_if(!file.has(name),
              "{}: dataset {} is missing (an HDF5 data file holds 1-D /rows, /cols, /values)", path,
              name);
    rows.emplace(file.open_dataset("/rows"));
    cols.emplace(file.open_dataset("/cols"));
    values.emplace(file.open_dataset("/values"));
    rows->require(1, h5::Elements::kInteger);
    cols->require(1, h5::Elements::kInteger);
    values->require(1, h5::Elements::kNumber);
    fail_if(cols->dims()[0] != rows->dims()[0] || values->dims()[0] != rows->dims()[0],
            "{}: /rows, /cols and /values have different lengths ({}, {}, {})", path,
            rows->dims()[0], cols->dims()[0], values->dims()[0]);
    fail_if(rows->dims()[0] == 0, "{}: no entries (/rows, /cols and /values are empty)", path);
  });

  int ranks = 1, me = 0;
  check_mpi(MPI_Comm_size(comm, &ranks), "MPI_Comm_size");
  check_mpi(MPI_Comm_rank(comm, &me), "MPI_Comm_rank");
  const RowSlab slab = row_slab(rows->dims()[0], ranks, me);
  const auto count = static_cast<size_t>(slab.count);
  EntryList entries;
  entries.file = path;
  entries.rows.resize(count);
  entries.cols.resize(count);
  entries.values.resize(count);
  entries.lines.resize(count);
  rows->read_rows(H5T_NATIVE_INT64, slab.first, slab.count, entries.rows.data());
  cols->read_rows(H5T_NATIVE_INT64, slab.first, slab.count, entries.cols.data());
  values->read_rows(H5T_NATIVE_DOUBLE, slab.first, slab.count, entries.values.data());

  // The first bad entry of this slice; the agreement keeps the lowest rank's, so the message
  // names the first bad position of the whole file.
  const auto below_base = [&](const char* what, std::int64_t index, std::int64_t position) {
    return index_base == 0
               ? fmt::format("{}:{}: {} index {} is negative", path, position, what, index)
               : fmt::format("{}:{}: {} index {} is below the index base {}", path, position, what,
                             index, index_base);
  };
  std::string message;
  for (size_t k = 0; k < count && message.empty(); ++k) {
    const std::int64_t position = slab.first + static_cast<std::int64_t>(k) + 1;
    entries.lines[k] = position;
    if (entries.rows[k] < index_base) {
      message = below_base("row", entries.rows[k], position);
    } else if (entries.cols[k] < index_base) {
      message = below_base("column", entries.cols[k], position);
    } else if (!std::isfinite(entries.values[k])) {
      message = fmt::format("{}:{}: value {} is not finite", path, position, entries.values[k]);
    }
    entries.rows[k] -= index_base;
    entries.cols[k] -= index_base;
  }
  agree_on_error(comm, message);
  return entries;
}

}  // namespace cdmf
