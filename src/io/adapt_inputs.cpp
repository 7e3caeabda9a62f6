#include "cdmf/io/adapt_inputs.hpp"

#include <cmath>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "cdmf/io/hash.hpp"
#include "cdmf/io/hdf5.hpp"
#include "cdmf/io/slab_exchange.hpp"

namespace cdmf {

namespace {

std::uint64_t bits(double value) {
  std::uint64_t word = 0;
  std::memcpy(&word, &value, sizeof word);
  return word;
}

/// Sum over the local entries of a hash of (tag, original row, original column, value).
std::uint64_t local_digest(const DistMatrix& a, const IndexLayout& layout, SlabIndexing indexing,
                           std::uint64_t tag) {
  std::uint64_t sum = 0;
  for (std::int64_t lj = 0; lj < a.local_cols(); ++lj) {
    const auto oj = static_cast<std::uint64_t>(original_index(layout, indexing.cols, a.col_dim().global(lj)));
    for (std::int64_t li = 0; li < a.local_rows(); ++li) {
      const auto oi = static_cast<std::uint64_t>(original_index(layout, indexing.rows, a.row_dim().global(li)));
      sum += mix64(mix64(mix64(tag ^ mix64(oi)) ^ oj) ^ bits(a.at_local(li, lj)));
    }
  }
  return sum;
}

std::uint64_t sum_over(MPI_Comm comm, std::uint64_t local) {
  std::uint64_t total = 0;
  check_mpi(MPI_Allreduce(&local, &total, 1, MPI_UINT64_T, MPI_SUM, comm), "MPI_Allreduce");
  return total;
}

/// Collective: the first (row, column) in file order of a non-finite entry, or nothing;
/// rows are in `indexing.rows`'s file order, columns likewise.
std::optional<std::pair<std::int64_t, std::int64_t>> first_non_finite(const DistMatrix& a,
                                                                      const IndexLayout& layout,
                                                                      SlabIndexing indexing) {
  std::int64_t first = std::numeric_limits<std::int64_t>::max();
  for (std::int64_t lj = 0; lj < a.local_cols(); ++lj)
    for (std::int64_t li = 0; li < a.local_rows(); ++li)
      if (!std::isfinite(a.at_local(li, lj))) {
        const std::int64_t oi = original_index(layout, indexing.rows, a.row_dim().global(li));
        const std::int64_t oj = original_index(layout, indexing.cols, a.col_dim().global(lj));
        first = std::min(first, oi * a.cols() + oj);
      }
  std::int64_t global = 0;
  check_mpi(MPI_Allreduce(&first, &global, 1, MPI_INT64_T, MPI_MIN, a.grid().comm()),
            "MPI_Allreduce");
  if (global == std::numeric_limits<std::int64_t>::max()) return std::nullopt;
  return std::make_pair(global / a.cols(), global % a.cols());
}

}  // namespace

BaseFileInfo read_base_info(MPI_Comm comm, const std::string& path) {
  BaseFileInfo info;
  info.path = path;
  {
    const h5::File file = h5::File::open(comm, path);
    run_agreed(comm, [&] {
      info.dense = file.has("/W");
      if (info.dense) {
        const h5::Dataset w = file.open_dataset("/W");
        w.require(2, h5::Elements::kFloat64);
        info.rows = w.dims()[0];
        info.cols = w.dims()[1];
        fail_if(info.rows < 1 || info.cols < 1, "{}: /W is empty ({})", path, w.shape_text());
      } else {
        fail_if(!file.has("/factors"),
                "{}: not a base (expected a dense /W or a cdmf factor file with /factors)", path);
        info.biases = file.has("/biases");
      }
    });
  }
  if (!info.dense) {
    info.factors = read_factor_file_info(comm, path);
    info.rows = info.factors.rows;
    info.cols = info.factors.cols;
  }
  return info;
}

Base read_base(const ProcessGrid& grid, const IndexLayout& layout, const BaseFileInfo& info,
               int block) {
  fail_if(info.rows != layout.rows() || info.cols != layout.cols(),
          "{}: the base is {} x {} but the problem is {} x {}", info.path, info.rows, info.cols,
          layout.rows(), layout.cols());
  Base base;
  if (info.dense) {
    base.dense.emplace(grid, info.rows, info.cols, block);
    const h5::File file = h5::File::open(grid.comm(), info.path);
    const SlabIndexing indexing{Space::kRows, Space::kCols};
    read_matrix(file, "/W", layout, indexing, *base.dense);
    const auto bad = first_non_finite(*base.dense, layout, indexing);
    fail_if(bad.has_value(), "{}: /W holds a non-finite value (NaN or Inf) at ({}, {})", info.path,
            bad ? bad->first : 0, bad ? bad->second : 0);
    return base;
  }
  Chain chain;
  chain.kind = parse_model_kind(info.factors.model);
  chain.factors = read_factors(grid, layout, info.factors, block);
  chain.lr_multipliers = info.factors.lr_multipliers;
  for (int l = 0; l < chain.depth(); ++l) {
    const auto bad = first_non_finite(chain.factors[l], layout, factor_indexing(l, chain.depth()));
    fail_if(bad.has_value(), "{}: /factors/W{} holds a non-finite value (NaN or Inf) at ({}, {})",
            info.path, l + 1, bad ? bad->first : 0, bad ? bad->second : 0);
  }
  base.factored = std::move(chain);
  if (info.biases) base.biases = read_biases(grid.comm(), info.path, layout);
  return base;
}

std::string base_fingerprint(const Base& base, const IndexLayout& layout) {
  std::uint64_t local = 0;
  MPI_Comm comm = MPI_COMM_NULL;
  if (base.dense) {
    local = local_digest(*base.dense, layout, {Space::kRows, Space::kCols}, 0);
    comm = base.dense->grid().comm();
  } else {
    const Chain& chain = *base.factored;
    for (int l = 0; l < chain.depth(); ++l)
      local += local_digest(chain.factors[l], layout, factor_indexing(l, chain.depth()),
                            static_cast<std::uint64_t>(l + 1));
    comm = chain.factors.front().grid().comm();
  }
  const std::uint64_t shape = mix64(static_cast<std::uint64_t>(base.rows()) * 1000003ULL ^
                                    static_cast<std::uint64_t>(base.cols()));
  // The biases are replicated: every rank digests them alike, outside the sum over ranks.
  std::uint64_t biases = 0;
  if (base.biases) {
    biases = mix64(bits(base.biases->mu) ^ 0x6269617365ULL);
    const std::vector<double> rows = base.biases->rows_original(layout), cols = base.biases->cols_original(layout);
    for (size_t i = 0; i < rows.size(); ++i) biases += mix64(bits(rows[i]) ^ mix64(2 * i + 1));
    for (size_t j = 0; j < cols.size(); ++j) biases += mix64(bits(cols[j]) ^ mix64(2 * j + 2));
  }
  return fmt::format("{:016x}", (sum_over(comm, local) ^ shape) + biases);
}

SamplesShape read_samples_shape(MPI_Comm comm, const std::string& path) {
  const h5::File file = h5::File::open(comm, path);
  SamplesShape shape;
  run_agreed(comm, [&] {
    for (const char* name : {"/inputs", "/targets"})
      fail_if(!file.has(name),
              "{}: {} is missing (a samples file holds /inputs (s x n) and /targets (s x m))", path,
              name);
    const h5::Dataset inputs = file.open_dataset("/inputs"), targets = file.open_dataset("/targets");
    inputs.require(2, h5::Elements::kFloat64);
    targets.require(2, h5::Elements::kFloat64);
    fail_if(inputs.dims()[0] != targets.dims()[0],
            "{}: /inputs holds {} samples but /targets holds {} (one sample per row in both)", path,
            inputs.dims()[0], targets.dims()[0]);
    fail_if(inputs.dims()[0] < 1, "{}: no samples (/inputs is {})", path, inputs.shape_text());
    shape = {inputs.dims()[0], inputs.dims()[1], targets.dims()[1]};
  });
  return shape;
}

Samples read_samples(const ProcessGrid& grid, const IndexLayout& layout, const std::string& path) {
  const SamplesShape shape = read_samples_shape(grid.comm(), path);
  fail_if(shape.inputs != layout.cols(),
          "{}: /inputs has {} columns (features) but the base has {} columns (n)", path,
          shape.inputs, layout.cols());
  fail_if(shape.targets != layout.rows(),
          "{}: /targets has {} columns but the base has {} rows (m)", path, shape.targets,
          layout.rows());
  const h5::File file = h5::File::open(grid.comm(), path);
  const int block = layout.block();
  // Read as stored (one sample per row), checked, then transposed to X (n x s), Y (m x s).
  DistMatrix inputs(grid, shape.samples, shape.inputs, block);
  DistMatrix targets(grid, shape.samples, shape.targets, block);
  const SlabIndexing input_indexing{Space::kInner, Space::kCols}, target_indexing{Space::kInner, Space::kRows};
  read_matrix(file, "/inputs", layout, input_indexing, inputs);
  read_matrix(file, "/targets", layout, target_indexing, targets);
  for (const auto& [name, matrix, indexing] :
       {std::tuple<const char*, const DistMatrix*, SlabIndexing>{"/inputs", &inputs, input_indexing},
        {"/targets", &targets, target_indexing}}) {
    const auto bad = first_non_finite(*matrix, layout, indexing);
    fail_if(bad.has_value(), "{}: {} holds a non-finite value (NaN or Inf) at sample {}, column {}",
            path, name, bad ? bad->first : 0, bad ? bad->second : 0);
  }
  DataFingerprint fingerprint;
  fingerprint.entries = shape.samples;
  fingerprint.hash = sum_over(grid.comm(), local_digest(inputs, layout, input_indexing, 1) +
                                               local_digest(targets, layout, target_indexing, 2));
  return {transposed(inputs), transposed(targets), fingerprint};
}

}  // namespace cdmf
