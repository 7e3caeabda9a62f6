// cdmf predict: values at requested (row, col) pairs of the end-to-end matrix of a factor
// file, or of a base plus an adapter (W0 + DeltaW, neither multiplied out when thin).
#include <memory>

#include <fmt/core.h>

#include "cdmf/core/agree.hpp"
#include "cdmf/data/readers.hpp"
#include "cdmf/io/adapt_inputs.hpp"
#include "cdmf/io/adapter_file.hpp"
#include "cdmf/io/factor_file.hpp"
#include "cdmf/io/output_files.hpp"
#include "cdmf/model/base.hpp"
#include "cdmf/model/chain.hpp"
#include "commands.hpp"

namespace cdmf::cli {

namespace {
struct PredictOptions {
  std::string checkpoint, base, adapter, pairs, out, format = "auto";
  int index_base = 0;
};

/// Collective: a factor file's chain read in original order (`layout` does not permute).
Chain read_chain(const ProcessGrid& grid, const IndexLayout& layout, const FactorFileInfo& info) {
  Chain chain;
  chain.kind = parse_model_kind(info.model);
  chain.factors = read_factors(grid, layout, info, layout.block());
  chain.lr_multipliers = info.lr_multipliers;
  return chain;
}

void run_predict(const PredictOptions& o) {
  ProcessGrid grid(MPI_COMM_WORLD);
  const bool adapted = !o.base.empty() || !o.adapter.empty();
  fail_if(adapted && (o.base.empty() || o.adapter.empty()), "--base and --adapter go together");
  fail_if(adapted == !o.checkpoint.empty(),
          "give either --checkpoint FILE or --base BASE --adapter ADAPTER");
  check_output_files(grid.comm(), {{"--out", o.out}});  // before the model is read
  const std::string& model_path = adapted ? o.adapter : o.checkpoint;
  const FactorFileInfo info = adapted ? read_adapter_info(grid.comm(), o.adapter).factors
                                      : read_factor_file_info(grid.comm(), o.checkpoint);
  const int block = choose_block_size(info.rows, info.cols, grid);
  // Files hold original order, so no permutation is needed here.
  const IndexLayout layout(info.rows, info.cols, block, 0, /*permute=*/false);
  Base model, base;
  model.factored = read_chain(grid, layout, info);
  if (adapted) {
    const BaseFileInfo base_info = read_base_info(grid.comm(), o.base);
    fail_if(base_info.rows != info.rows || base_info.cols != info.cols,
            "{}: the adapter is {} x {} but the base {} is {} x {}", o.adapter, info.rows,
            info.cols, o.base, base_info.rows, base_info.cols);
    base = read_base(grid, layout, base_info, block);
    check_adapter_base(read_adapter_info(grid.comm(), o.adapter), o.base,
                       base_fingerprint(base, layout));
  }
  IdMap row_ids, col_ids;
  read_id_maps(grid.comm(), model_path, row_ids, col_ids);
  EntryList pairs = read_pairs(grid.comm(), o.pairs, {parse_data_format(o.format), o.index_base},
                               row_ids, col_ids);
  run_agreed(grid.comm(), [&] {
    for (size_t e = 0; e < pairs.size(); ++e)
      fail_if(pairs.rows[e] >= info.rows || pairs.cols[e] >= info.cols,
              "{}:{}: entry ({}, {}) outside the {} x {} model of {}", pairs.file, pairs.lines[e],
              pairs.rows[e] + o.index_base, pairs.cols[e] + o.index_base, info.rows, info.cols,
              model_path);
  });
  Observations requested;
  requested.rows = pairs.rows;
  requested.cols = pairs.cols;
  requested.values.assign(pairs.size(), 0.0);  // its size is the number of entries
  pairs.values = base_values(model, requested);
  if (adapted) {
    const std::vector<double> w0 = base_values(base, requested);
    for (size_t e = 0; e < pairs.size(); ++e) pairs.values[e] += w0[e];
  }
  // Answer in the caller's convention: ids when the model has them, else their index base.
  for (size_t e = 0; e < pairs.size(); ++e) {
    if (row_ids.empty()) pairs.rows[e] += o.index_base;
    if (col_ids.empty()) pairs.cols[e] += o.index_base;
  }
  write_triplets(grid.comm(), o.out, pairs, row_ids, col_ids);
  std::int64_t count = static_cast<std::int64_t>(pairs.size()), total = 0;
  MPI_Reduce(&count, &total, 1, MPI_INT64_T, MPI_SUM, 0, grid.comm());
  if (grid.is_root()) fmt::print("cdmf predict: {} predictions written to {}\n", total, o.out);
}
}  // namespace

Command add_predict_command(CLI::App& app) {
  auto o = std::make_shared<PredictOptions>();
  CLI::App* sub = app.add_subcommand("predict", "Predict entries from a factor file or a base and adapter");
  sub->add_option("--checkpoint", o->checkpoint, "factor file or checkpoint (HDF5)");
  sub->add_option("--base", o->base, "a base (dense /W or factor file), with --adapter");
  sub->add_option("--adapter", o->adapter, "an adapter file of that base: predicts W0 + DeltaW");
  sub->add_option("--pairs", o->pairs, "row/col pairs (any data format; values ignored)")->required();
  sub->add_option("--out", o->out, "output: row<TAB>col<TAB>prediction lines")->required();
  sub->add_option("--format", o->format, "auto|triplets|movielens|mtx|hdf5")->capture_default_str();
  sub->add_option("--index-base", o->index_base, "0 or 1, for triplet files")->capture_default_str();
  return {sub, [o] { run_predict(*o); return 0; }};
}

}  // namespace cdmf::cli
