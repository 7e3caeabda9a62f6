// cdmf predict: values of the end-to-end matrix of a factor file at requested (row, col) pairs.
#include <memory>

#include <fmt/core.h>

#include "cdmf/core/agree.hpp"
#include "cdmf/data/readers.hpp"
#include "cdmf/io/factor_file.hpp"
#include "cdmf/io/output_files.hpp"
#include "cdmf/model/chain.hpp"
#include "commands.hpp"

namespace cdmf::cli {

namespace {
struct PredictOptions {
  std::string checkpoint, pairs, out, format = "auto";
  int index_base = 0;
};

void run_predict(const PredictOptions& o) {
  ProcessGrid grid(MPI_COMM_WORLD);
  // Before the model is read; an --out that is an input would destroy it.
  check_output_files(grid.comm(), {{"--out", o.out}},
                     {{"--checkpoint", o.checkpoint}, {"--pairs", o.pairs}});
  const FactorFileInfo info = read_factor_file_info(grid.comm(), o.checkpoint);
  const int block = choose_block_size(info.rows, info.cols, grid);
  // Files hold original order, so no permutation is needed here.
  const IndexLayout layout(info.rows, info.cols, block, 0, /*permute=*/false);
  Chain chain;
  chain.factors = read_factors(grid, layout, info, block);
  chain.lr_multipliers = info.lr_multipliers;
  IdMap row_ids, col_ids;
  read_id_maps(grid.comm(), o.checkpoint, row_ids, col_ids);
  EntryList pairs = read_pairs(grid.comm(), o.pairs, {parse_data_format(o.format), o.index_base},
                               row_ids, col_ids);
  run_agreed(grid.comm(), [&] {
    for (size_t e = 0; e < pairs.size(); ++e)
      fail_if(pairs.rows[e] >= info.rows || pairs.cols[e] >= info.cols,
              "{}:{}: entry ({}, {}) outside the {} x {} model of {}", pairs.file, pairs.lines[e],
              pairs.rows[e] + o.index_base, pairs.cols[e] + o.index_base, info.rows, info.cols,
              o.checkpoint);
  });
  const DistMatrix x = end_to_end(chain);
  pairs.values = sample_entries(x, pairs.rows, pairs.cols);
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
  CLI::App* sub = app.add_subcommand("predict", "Predict entries from a factor file");
  sub->add_option("--checkpoint", o->checkpoint, "factor file or checkpoint (HDF5)")->required();
  sub->add_option("--pairs", o->pairs, "row/col pairs (any data format; values ignored)")->required();
  sub->add_option("--out", o->out, "output: row<TAB>col<TAB>prediction lines")->required();
  sub->add_option("--format", o->format, "auto|triplets|movielens|mtx|hdf5")->capture_default_str();
  sub->add_option("--index-base", o->index_base, "0 or 1, for triplet files")->capture_default_str();
  return {sub, [o] { run_predict(*o); return 0; }};
}

}  // namespace cdmf::cli
