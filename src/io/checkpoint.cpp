#include "cdmf/io/checkpoint.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <regex>

#include <fmt/ranges.h>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "cdmf/io/hash.hpp"
#include "cdmf/io/hdf5.hpp"
#include "cdmf/io/output_files.hpp"
#include "cdmf/io/slab_exchange.hpp"
#include "cdmf/io/staged_writer.hpp"

namespace cdmf {

namespace fs = std::filesystem;

namespace {

/// Columns every metrics table has, in this order; probe columns follow.
const std::vector<std::string> kBaseColumns = {
    "iteration", "seconds", "train_loss", "test_loss", "train_rmse", "test_rmse", "recovery_error"};
constexpr const char* kGroups[] = {"/optimizer", "/trainer", "/permutation", "/metrics"};
constexpr const char* kGenerator = "philox4x32-10";

std::string moment_name(const char* moment, int l) {
  return fmt::format("/optimizer/{}/W{}", moment, l + 1);
}
std::string best_name(int l) { return fmt::format("/trainer/best/W{}", l + 1); }
std::string diagnostics_name(int l) { return fmt::format("/diagnostics/initial/W{}", l + 1); }

int comm_rank(MPI_Comm comm) {
  int rank = 0;
  check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  return rank;
}

/// Rank 0's list of strings on every rank.
std::vector<std::string> broadcast_strings(MPI_Comm comm, std::vector<std::string> items) {
  std::string joined;
  for (const std::string& item : items) joined += item + '\n';
  int length = static_cast<int>(joined.size());
  check_mpi(MPI_Bcast(&length, 1, MPI_INT, 0, comm), "MPI_Bcast");
  joined.resize(static_cast<size_t>(length));
  check_mpi(MPI_Bcast(joined.data(), length, MPI_CHAR, 0, comm), "MPI_Bcast");
  items.clear();
  for (size_t begin = 0, end; (end = joined.find('\n', begin)) != std::string::npos;
       begin = end + 1)
    items.push_back(joined.substr(begin, end - begin));
  return items;
}

/// A column of the history as stored: NaN stands for an absent recovery error.
std::vector<double> column_values(const std::vector<MetricsRow>& rows, size_t column) {
  std::vector<double> values;
  values.reserve(rows.size());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const MetricsRow& row : rows) {
    switch (column) {
      case 1: values.push_back(row.seconds); break;
      case 2: values.push_back(row.train_loss); break;
      case 3: values.push_back(row.test_loss); break;
      case 4: values.push_back(row.train_rmse); break;
      case 5: values.push_back(row.test_rmse); break;
      case 6: values.push_back(row.recovery_error.value_or(nan)); break;
      default: values.push_back(row.extra.at(column - kBaseColumns.size())); break;
    }
  }
  return values;
}

std::vector<std::string> split_columns(const std::string& text) {
  std::vector<std::string> columns;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    columns.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return columns;
}

/// Independent: the attribute `name` of `attributes`, which must be present.
template <typename Get>
auto required(const std::string& path, const std::string& owner, const char* name, Get get) {
  const auto value = get(name);
  fail_if(!value, "{}: attribute '{}' of {} is missing", path, name, owner);
  return *value;
}

/// Independent: a dataset group (first/second moments, diagnostics) shaped like the factors.
void check_factor_shaped(const h5::File& file, const FactorFileInfo& factors,
                         const std::function<std::string(int)>& name) {
  for (int l = 0; l < factors.depth; ++l) {
    const h5::Dataset dataset = file.open_dataset(name(l));
    dataset.require(2, h5::Elements::kFloat64);
    fail_if(
        dataset.dims()[0] != factors.shapes[l].rows || dataset.dims()[1] != factors.shapes[l].cols,
        "{} has shape {} but W{} is {}x{}", dataset.where(), dataset.shape_text(), l + 1,
        factors.shapes[l].rows, factors.shapes[l].cols);
  }
}

/// Independent: the checkpoint part of an open file, validated.
CheckpointInfo inspect_checkpoint(const h5::File& file) {
  const std::string& path = file.path();
  CheckpointInfo info;
  info.factors = inspect_factor_file(file);
  const FactorFileInfo& factors = info.factors;
  const bool any = std::any_of(std::begin(kGroups), std::end(kGroups),
                               [&](const char* group) { return file.has(group); });
  if (!any) return info;  // a plain factor file
  for (const char* group : kGroups)
    fail_if(!file.has(group), "{}: an incomplete checkpoint ({} is missing)", path, group);
  info.restartable = true;

  const h5::Attributes root = file.attributes();
  const auto root_int = [&](const char* name) { return root.get_int(name); };
  const std::string fingerprint = required(path, "/", "data_fingerprint",
                                           [&](const char* name) { return root.get_string(name); });
  char* end = nullptr;
  info.data.hash = std::strtoull(fingerprint.c_str(), &end, 16);
  fail_if(fingerprint.size() != 16 || end != fingerprint.c_str() + 16,
          "{}: attribute 'data_fingerprint' is not 16 hex digits ('{}')", path, fingerprint);
  info.data.entries = required(path, "/", "train_entries", root_int);
  info.ranks = static_cast<int>(root.get_int("ranks").value_or(0));
  info.grid = root.get_string("grid").value_or("");

  {
    const h5::Group optimizer_group = file.open_group("/optimizer");
    const h5::Attributes optimizer = optimizer_group.attributes();
    info.optimizer = required(path, "/optimizer", "kind",
                              [&](const char* name) { return optimizer.get_string(name); });
    try {
      parse_optimizer_kind(info.optimizer);
    } catch (const Error& e) {
      fail("{}: /optimizer: {}", path, e.what());
    }
    info.step_count = required(path, "/optimizer", "step_count",
                               [&](const char* name) { return optimizer.get_int(name); });
    fail_if(info.step_count < 0, "{}: /optimizer step_count {} is negative", path, info.step_count);
    info.has_first_moments = file.has("/optimizer/first_moment");
    info.has_second_moments = file.has("/optimizer/second_moment");
    const bool needs_first = info.optimizer != "gd", needs_second = info.optimizer == "adam";
    fail_if(
        info.has_first_moments != needs_first || info.has_second_moments != needs_second,
        "{}: the optimizer state does not fit optimizer '{}' (first moments {}, second moments {})",
        path, info.optimizer, info.has_first_moments ? "present" : "absent",
        info.has_second_moments ? "present" : "absent");
    if (needs_first)
      check_factor_shaped(file, factors, [](int l) { return moment_name("first_moment", l); });
    if (needs_second)
      check_factor_shaped(file, factors, [](int l) { return moment_name("second_moment", l); });
  }
  {
    const h5::Group trainer_group = file.open_group("/trainer");
    const h5::Attributes trainer = trainer_group.attributes();
    const std::int64_t iteration = required(
        path, "/trainer", "iteration", [&](const char* name) { return trainer.get_int(name); });
    fail_if(iteration != factors.iteration,
            "{}: /trainer is at iteration {} but the file is at iteration {}", path, iteration,
            factors.iteration);
    info.elapsed_seconds = required(path, "/trainer", "elapsed_seconds",
                                    [&](const char* name) { return trainer.get_double(name); });
    required(path, "/trainer", "best_test_loss",
             [&](const char* name) { return trainer.get_double(name); });
    required(path, "/trainer", "stale_logs",
             [&](const char* name) { return trainer.get_int(name); });
  }
  {
    const h5::Group permutation_group = file.open_group("/permutation");
    const h5::Attributes permutation = permutation_group.attributes();
    info.permutation_seed = static_cast<std::uint64_t>(required(
        path, "/permutation", "seed", [&](const char* name) { return permutation.get_int(name); }));
    info.permuted = required(path, "/permutation", "permuted",
                             [&](const char* name) { return permutation.get_int(name); }) != 0;
    for (const auto& [name, extent] :
         {std::pair<const char*, std::int64_t>{"/permutation/rows", factors.rows},
          {"/permutation/cols", factors.cols}}) {
      const h5::Dataset dataset = file.open_dataset(name);
      dataset.require(1, h5::Elements::kInteger);
      fail_if(dataset.dims()[0] != extent, "{} has {} entries, expected {}", dataset.where(),
              dataset.dims()[0], extent);
    }
  }
  {
    const h5::Group metrics_group = file.open_group("/metrics");
    const h5::Attributes metrics = metrics_group.attributes();
    info.metric_columns = split_columns(required(
        path, "/metrics", "columns", [&](const char* name) { return metrics.get_string(name); }));
    fail_if(info.metric_columns.size() < kBaseColumns.size() ||
                !std::equal(kBaseColumns.begin(), kBaseColumns.end(), info.metric_columns.begin()),
            "{}: /metrics columns '{}' do not start with {}", path,
            fmt::join(info.metric_columns, ","), fmt::join(kBaseColumns, ","));
    for (size_t c = 0; c < info.metric_columns.size(); ++c) {
      const h5::Dataset dataset = file.open_dataset("/metrics/" + info.metric_columns[c]);
      dataset.require(1, c == 0 ? h5::Elements::kInteger : h5::Elements::kFloat64);
      if (c == 0) info.metric_rows = dataset.dims()[0];
      fail_if(dataset.dims()[0] != info.metric_rows, "{} has {} rows but /metrics/iteration has {}",
              dataset.where(), dataset.dims()[0], info.metric_rows);
    }
  }
  info.has_diagnostics = file.has("/diagnostics/initial");
  if (info.has_diagnostics) check_factor_shaped(file, factors, diagnostics_name);
  return info;
}

/// Collective: reads the matrices `name(l)` of the chain's shapes.
std::vector<DistMatrix> read_factor_shaped(const ProcessGrid& grid, const IndexLayout& layout,
                                           const h5::File& file, const FactorFileInfo& factors,
                                           int block, const std::function<std::string(int)>& name) {
  std::vector<DistMatrix> matrices;
  for (int l = 0; l < factors.depth; ++l) {
    matrices.emplace_back(grid, factors.shapes[l].rows, factors.shapes[l].cols, block);
    read_matrix(file, name(l), layout, factor_indexing(l, factors.depth), matrices.back());
  }
  return matrices;
}

}  // namespace

// ---------------------------------------------------------------------------------------

std::string DataFingerprint::text() const { return fmt::format("{:016x}", hash); }

DataFingerprint fingerprint_entries(MPI_Comm comm, const EntryList& entries) {
  std::uint64_t sum = 0;
  for (size_t e = 0; e < entries.size(); ++e) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &entries.values[e], sizeof bits);
    sum += mix64(mix64(mix64(static_cast<std::uint64_t>(entries.rows[e])) ^
                       static_cast<std::uint64_t>(entries.cols[e])) ^
                 bits);
  }
  DataFingerprint fingerprint;
  std::int64_t count = static_cast<std::int64_t>(entries.size());
  check_mpi(MPI_Allreduce(&count, &fingerprint.entries, 1, MPI_INT64_T, MPI_SUM, comm),
            "MPI_Allreduce");
  check_mpi(MPI_Allreduce(&sum, &fingerprint.hash, 1, MPI_UINT64_T, MPI_SUM, comm),
            "MPI_Allreduce");
  return fingerprint;
}

void write_checkpoint(const ProcessGrid& grid, const IndexLayout& layout, const std::string& path,
                      const Chain& chain, const Optimizer& optimizer, const TrainerState& state,
                      const CheckpointMeta& meta) {
  const int depth = chain.depth();
  const auto& first = optimizer.first_moments();
  const auto& second = optimizer.second_moments();
  fail_if((!first.empty() && static_cast<int>(first.size()) != depth) ||
              (!second.empty() && static_cast<int>(second.size()) != depth),
          "cannot write {}: the optimizer state does not match the {} factors", path, depth);
  if (meta.diagnostics_initial)  // fail_if would evaluate the size of a null pointer
    fail_if(static_cast<int>(meta.diagnostics_initial->size()) != depth,
            "cannot write {}: {} diagnostics factors for {} factors", path,
            meta.diagnostics_initial->size(), depth);
  for (const MetricsRow& row : state.history)
    fail_if(row.extra.size() != meta.extra_metric_columns.size(),
            "cannot write {}: a metrics row has {} extra values for {} extra columns", path,
            row.extra.size(), meta.extra_metric_columns.size());

  const auto declare = [&](StagedWriter& writer) {
    h5::File& file = writer.file();
    const int rank = grid.rank(), ranks = grid.size();
    h5::Attributes root = file.attributes();
    root.set_string("data_fingerprint", meta.data.text());
    root.set_int("train_entries", meta.data.entries);
    root.set_int("ranks", ranks);
    root.set_string("grid", fmt::format("{}x{}", grid.rows(), grid.cols()));

    {
      const OptimizerConfig& config = optimizer.config();
      const h5::Group group = file.create_group("/optimizer");
      h5::Attributes attributes = group.attributes();
      attributes.set_string("kind", optimizer_name(config.kind));
      attributes.set_int("step_count", optimizer.step_count());
      attributes.set_double("lr", config.lr);
      attributes.set_double("momentum", config.momentum);
      attributes.set_double("beta1", config.beta1);
      attributes.set_double("beta2", config.beta2);
      attributes.set_double("adam_epsilon", config.adam_epsilon);
    }
    for (const auto& [moment, matrices] :
         {std::pair<const char*, const std::vector<DistMatrix>*>{"first_moment", &first},
          {"second_moment", &second}}) {
      if (matrices->empty()) continue;
      file.create_group(std::string("/optimizer/") + moment);
      for (int l = 0; l < depth; ++l)
        writer.add_matrix(moment_name(moment, l), (*matrices)[l], layout,
                          factor_indexing(l, depth));
    }

    {
      const h5::Group group = file.create_group("/permutation");
      h5::Attributes attributes = group.attributes();
      attributes.set_int("seed", static_cast<std::int64_t>(layout.seed()));
      attributes.set_int("permuted", layout.permuted() ? 1 : 0);
    }
    for (const auto& [name, permutation] :
         {std::pair<const char*, const std::vector<std::int64_t>*>{"/permutation/rows",
                                                                   &layout.row_permutation()},
          {"/permutation/cols", &layout.col_permutation()}}) {
      const auto total = static_cast<std::int64_t>(permutation->size());
      const RowSlab slab = row_slab(total, ranks, rank);
      writer.add_int64(
          name, total, slab.first,
          {permutation->begin() + slab.first, permutation->begin() + slab.first + slab.count});
    }

    {
      const h5::Group group = file.create_group("/rng");
      h5::Attributes attributes = group.attributes();
      attributes.set_string("generator", kGenerator);
      attributes.set_int("seed", static_cast<std::int64_t>(layout.seed()));
    }
    {
      const h5::Group group = file.create_group("/trainer");
      h5::Attributes attributes = group.attributes();
      attributes.set_int("iteration", state.iteration);
      attributes.set_double("elapsed_seconds", state.seconds);
      attributes.set_double("best_test_loss", state.best_test_loss);
      attributes.set_int("stale_logs", state.stale_logs);
      attributes.set_int("best_iteration", state.best_iteration);
    }
    if (!state.best_factors.empty()) {
      file.create_group("/trainer/best");
      for (int l = 0; l < depth; ++l)
        writer.add_matrix(best_name(l), state.best_factors[l], layout, factor_indexing(l, depth));
    }

    // The history is the same on every rank but for the clock readings: rank 0's is written.
    std::vector<std::string> columns = kBaseColumns;
    columns.insert(columns.end(), meta.extra_metric_columns.begin(),
                   meta.extra_metric_columns.end());
    file.create_group("/metrics")
        .attributes()
        .set_string("columns", fmt::format("{}", fmt::join(columns, ",")));
    const auto rows = static_cast<std::int64_t>(state.history.size());
    const bool holder = rank == 0;
    std::vector<std::int64_t> iterations;
    if (holder)
      for (const MetricsRow& row : state.history) iterations.push_back(row.iteration);
    writer.add_int64("/metrics/iteration", rows, 0, std::move(iterations));
    for (size_t c = 1; c < columns.size(); ++c)
      writer.add_float64("/metrics/" + columns[c], rows, 0,
                         holder ? column_values(state.history, c) : std::vector<double>{});

    if (meta.diagnostics_initial) {
      file.create_group("/diagnostics");
      file.create_group("/diagnostics/initial");
      for (int l = 0; l < depth; ++l)
        writer.add_matrix(diagnostics_name(l), (*meta.diagnostics_initial)[l], layout,
                          factor_indexing(l, depth));
    }
  };
  // What the groups above add, for the space the file reserves before writing.
  std::uint64_t factor_entries = 0;
  for (const DistMatrix& w : chain.factors)
    factor_entries += static_cast<std::uint64_t>(w.rows() * w.cols());
  fail_if(!state.best_factors.empty() && static_cast<int>(state.best_factors.size()) != depth,
          "cannot write {}: {} best factors for {} factors", path, state.best_factors.size(), depth);
  const std::uint64_t matrices = first.size() + second.size() + state.best_factors.size() +
                                 (meta.diagnostics_initial ? static_cast<std::uint64_t>(depth) : 0);
  const std::uint64_t columns = 7 + meta.extra_metric_columns.size();
  FactorFileExtension extension;
  extension.bytes = 8 * ((matrices / std::max(depth, 1)) * factor_entries +
                         static_cast<std::uint64_t>(layout.rows() + layout.cols()) +
                         columns * state.history.size());
  extension.objects = 10 + matrices + 2 + columns;
  extension.declare = declare;
  const IdMap none;
  write_factor_file(grid, layout, path, chain, {state.iteration, meta.config_json, meta.biases, meta.clip},
                    meta.row_ids ? *meta.row_ids : none, meta.col_ids ? *meta.col_ids : none,
                    extension);
}

CheckpointInfo read_checkpoint_info(MPI_Comm comm, const std::string& path) {
  const h5::File file = h5::File::open(comm, path);
  CheckpointInfo info;
  run_agreed(comm, [&] { info = inspect_checkpoint(file); });
  return info;
}

LoadedCheckpoint load_checkpoint(const ProcessGrid& grid, const IndexLayout& layout,
                                 const CheckpointInfo& info, int block) {
  const FactorFileInfo& factors = info.factors;
  const std::string& path = factors.path;
  fail_if(!info.restartable,
          "{}: a factor file without the restart state (no /optimizer, /trainer, ...): use it "
          "with --init, not --restart",
          path);
  LoadedCheckpoint loaded;
  loaded.chain.kind = parse_model_kind(factors.model);
  loaded.chain.factors = read_factors(grid, layout, factors, block);
  loaded.chain.lr_multipliers = factors.lr_multipliers;

  const h5::File file = h5::File::open(grid.comm(), path);
  loaded.step_count = info.step_count;
  if (info.has_first_moments)
    loaded.first_moments = read_factor_shaped(grid, layout, file, factors, block,
                                              [](int l) { return moment_name("first_moment", l); });
  if (info.has_second_moments)
    loaded.second_moments = read_factor_shaped(
        grid, layout, file, factors, block, [](int l) { return moment_name("second_moment", l); });
  if (info.has_diagnostics)
    loaded.diagnostics_initial =
        read_factor_shaped(grid, layout, file, factors, block, diagnostics_name);
  loaded.row_permutation = read_whole_int64(file, "/permutation/rows");
  loaded.col_permutation = read_whole_int64(file, "/permutation/cols");

  TrainerState& state = loaded.state;
  state.iteration = factors.iteration;
  state.seconds = info.elapsed_seconds;
  run_agreed(grid.comm(), [&] {
    const h5::Group trainer_group = file.open_group("/trainer");
    const h5::Attributes trainer = trainer_group.attributes();
    state.best_test_loss = trainer.get_double("best_test_loss").value();
    state.stale_logs = trainer.get_int("stale_logs").value();
    // Checkpoints written before best_iteration existed kept no best factors.
    state.best_iteration = trainer.get_int("best_iteration").value_or(-1);
  });
  if (file.has("/trainer/best"))
    state.best_factors = read_factor_shaped(grid, layout, file, factors, block, best_name);
  loaded.biases = read_biases(file, layout);

  const std::vector<std::int64_t> iterations = read_whole_int64(file, "/metrics/iteration");
  std::vector<std::vector<double>> columns;
  for (size_t c = 1; c < info.metric_columns.size(); ++c)
    columns.push_back(read_whole_float64(file, "/metrics/" + info.metric_columns[c]));
  loaded.extra_metric_columns.assign(info.metric_columns.begin() + kBaseColumns.size(),
                                     info.metric_columns.end());
  std::string message;
  for (size_t r = 0; r < iterations.size(); ++r) {
    MetricsRow row;
    row.iteration = iterations[r];
    row.seconds = columns[0][r];
    row.train_loss = columns[1][r];
    row.test_loss = columns[2][r];
    row.train_rmse = columns[3][r];
    row.test_rmse = columns[4][r];
    if (!std::isnan(columns[5][r])) row.recovery_error = columns[5][r];
    for (size_t c = kBaseColumns.size() - 1; c < columns.size(); ++c)
      row.extra.push_back(columns[c][r]);
    if (message.empty() && (row.iteration >= state.iteration ||
                            (r > 0 && row.iteration <= state.history.back().iteration)))
      message = fmt::format("{}: /metrics/iteration is not increasing below iteration {} (row {})",
                            path, state.iteration, r + 1);
    state.history.push_back(std::move(row));
  }
  agree_on_error(grid.comm(), message);
  return loaded;
}

void restore_optimizer(LoadedCheckpoint& loaded, Optimizer& optimizer, const std::string& path) {
  std::vector<DistMatrix>& first = optimizer.first_moments();
  std::vector<DistMatrix>& second = optimizer.second_moments();
  fail_if(
      first.size() != loaded.first_moments.size() || second.size() != loaded.second_moments.size(),
      "{}: the checkpoint holds the state of another optimizer", path);
  for (size_t l = 0; l < first.size(); ++l) {
    fail_if(!first[l].same_layout(loaded.first_moments[l]),
            "{}: the optimizer state of W{} has another layout", path, l + 1);
    first[l] = std::move(loaded.first_moments[l]);
  }
  for (size_t l = 0; l < second.size(); ++l) {
    fail_if(!second[l].same_layout(loaded.second_moments[l]),
            "{}: the optimizer state of W{} has another layout", path, l + 1);
    second[l] = std::move(loaded.second_moments[l]);
  }
  optimizer.set_step_count(loaded.step_count);
}

// ---------------------------------------------------------------------------------------

namespace {
const std::regex kCheckpointName(R"(checkpoint-([0-9]+)\.h5)");
/// Temporaries of write_atomically for checkpoint files: ".checkpoint-N.h5.tmp.XXXXXX".
const std::regex kTemporaryName(R"(\.checkpoint-[0-9]+\.h5\.tmp\.[A-Za-z0-9]{6})");

/// Rank 0's view: checkpoint files of `directory` with their iteration, newest first.
std::vector<std::pair<std::int64_t, std::string>> scan(const std::string& directory) {
  std::vector<std::pair<std::int64_t, std::string>> found;
  std::error_code code;
  for (fs::directory_iterator it(directory, code), end; !code && it != end; it.increment(code)) {
    std::smatch match;
    const std::string name = it->path().filename().string();
    if (std::regex_match(name, match, kCheckpointName) && it->is_regular_file(code))
      found.emplace_back(std::stoll(match[1].str()), it->path().string());
  }
  std::sort(found.begin(), found.end(), std::greater<>());
  return found;
}
}  // namespace

CheckpointDirectory::CheckpointDirectory(MPI_Comm comm, std::string directory, int keep)
    : directory_(std::move(directory)), keep_(keep) {
  fail_if(directory_.empty(), "--checkpoint-dir must not be empty");
  fail_if(keep < 1, "--keep-checkpoints must be at least 1 (got {})", keep);
  std::string message;
  if (comm_rank(comm) == 0) {
    std::error_code code;
    fs::create_directories(directory_, code);
    if (code || !fs::is_directory(directory_)) {
      message = fmt::format("checkpoint directory {} cannot be created ({})", directory_,
                            code ? code.message() : "a file of that name is in the way");
    } else if (const std::string problem = directory_write_problem(directory_); !problem.empty()) {
      message = fmt::format("checkpoint directory {} is not writable ({})", directory_, problem);
    }
    if (message.empty())
      for (fs::directory_iterator it(directory_, code), end; !code && it != end;
           it.increment(code)) {
        const std::string name = it->path().filename().string();
        std::error_code removed;
        if (std::regex_match(name, kTemporaryName) && fs::remove(it->path(), removed))
          removed_.push_back(it->path().string());
      }
  }
  agree_on_error(comm, message);
}

std::string CheckpointDirectory::file_for(std::int64_t iteration) const {
  return (fs::path(directory_) / fmt::format("checkpoint-{:010d}.h5", iteration)).string();
}

std::vector<std::string> CheckpointDirectory::prune(MPI_Comm comm) const {
  std::vector<std::string> failures;
  if (comm_rank(comm) != 0) return failures;
  const auto found = scan(directory_);
  for (size_t k = static_cast<size_t>(keep_); k < found.size(); ++k) {
    std::error_code code;
    if (!fs::remove(found[k].second, code) && code)
      failures.push_back(
          fmt::format("cannot remove old checkpoint {} ({})", found[k].second, code.message()));
  }
  return failures;
}

std::vector<std::string> list_checkpoints(MPI_Comm comm, const std::string& directory) {
  std::vector<std::string> paths;
  if (comm_rank(comm) == 0)
    for (const auto& entry : scan(directory)) paths.push_back(entry.second);
  return broadcast_strings(comm, std::move(paths));
}

}  // namespace cdmf
