// cdmf predict: values of the end-to-end matrix of a factor file at requested (row, col) pairs,
// plus the model's biases when it has them. With biases, a pair whose user or item the model
// never saw (an unknown id, or an index outside the model) is a cold-start pair, answered from
// what is known: mu plus the known side's bias. Predictions are clipped to the range the
// file records (--clip at training). With --base and --adapter: W0 + DeltaW of a base and an
// adapter fitted to it (neither multiplied out when thin).
#include <algorithm>
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

/// predict --base --adapter: W0 + DeltaW at the pairs, after checking the adapter was fitted
/// to this base (its fingerprint).
void predict_adapted(const ProcessGrid& grid, const PredictOptions& o) {
  const AdapterFileInfo adapter = read_adapter_info(grid.comm(), o.adapter);
  const FactorFileInfo& info = adapter.factors;
  const BaseFileInfo base_info = read_base_info(grid.comm(), o.base);
  fail_if(base_info.rows != info.rows || base_info.cols != info.cols,
          "{}: the adapter is {} x {} but the base {} is {} x {}", o.adapter, info.rows, info.cols,
          o.base, base_info.rows, base_info.cols);
  const int block = choose_block_size(info.rows, info.cols, grid);
  const IndexLayout layout(info.rows, info.cols, block, 0, /*permute=*/false);  // file order
  const Base base = read_base(grid, layout, base_info, block);
  check_adapter_base(adapter, o.base, base_fingerprint(base, layout));
  Base update;
  update.factored.emplace();
  update.factored->kind = parse_model_kind(info.model);
  update.factored->factors = read_factors(grid, layout, info, block);
  update.factored->lr_multipliers = info.lr_multipliers;
  IdMap row_ids, col_ids;
  read_id_maps(grid.comm(), o.adapter, row_ids, col_ids);
  EntryList pairs = read_pairs(grid.comm(), o.pairs, {parse_data_format(o.format), o.index_base},
                               row_ids, col_ids);
  run_agreed(grid.comm(), [&] {
    for (size_t e = 0; e < pairs.size(); ++e)
      fail_if(pairs.rows[e] < 0 || pairs.rows[e] >= info.rows || pairs.cols[e] < 0 ||
                  pairs.cols[e] >= info.cols,
              "{}:{}: entry ({}, {}) outside the {} x {} adapter {}", pairs.file, pairs.lines[e],
              pairs.rows[e] + o.index_base, pairs.cols[e] + o.index_base, info.rows, info.cols,
              o.adapter);
  });
  Observations requested;
  requested.rows.assign(pairs.rows.begin(), pairs.rows.end());  // checked in range above
  requested.cols.assign(pairs.cols.begin(), pairs.cols.end());
  requested.values.assign(pairs.size(), 0.0);  // its size is the number of entries
  pairs.values = base_values(update, requested);
  const std::vector<double> w0 = base_values(base, requested);
  for (size_t e = 0; e < pairs.size(); ++e) {
    pairs.values[e] += w0[e];
    if (row_ids.empty()) pairs.rows[e] += o.index_base;
    if (col_ids.empty()) pairs.cols[e] += o.index_base;
  }
  write_triplets(grid.comm(), o.out, pairs, row_ids, col_ids);
  std::int64_t count = static_cast<std::int64_t>(pairs.size());
  MPI_Allreduce(MPI_IN_PLACE, &count, 1, MPI_INT64_T, MPI_SUM, grid.comm());
  if (grid.is_root())
    fmt::print("cdmf predict: {} predictions of base + adapter written to {}\n", count, o.out);
}

void run_predict(const PredictOptions& o) {
  ProcessGrid grid(MPI_COMM_WORLD);
  const bool adapted = !o.base.empty() || !o.adapter.empty();
  fail_if(adapted && (o.base.empty() || o.adapter.empty()), "--base and --adapter go together");
  fail_if(adapted == !o.checkpoint.empty(),
          "give either --checkpoint FILE or --base BASE --adapter ADAPTER");
  // Before the model is read; an --out that is an input would destroy it.
  check_output_files(grid.comm(), {{"--out", o.out}},
                     {{"--checkpoint", o.checkpoint},
                      {"--pairs", o.pairs},
                      {"--base", o.base},
                      {"--adapter", o.adapter}});
  if (adapted) return predict_adapted(grid, o);
  const FactorFileInfo info = read_factor_file_info(grid.comm(), o.checkpoint);
  const int block = choose_block_size(info.rows, info.cols, grid);
  // Files hold original order, so no permutation is needed here.
  const IndexLayout layout(info.rows, info.cols, block, 0, /*permute=*/false);
  Chain chain;
  chain.factors = read_factors(grid, layout, info, block);
  chain.lr_multipliers = info.lr_multipliers;
  IdMap row_ids, col_ids;
  read_id_maps(grid.comm(), o.checkpoint, row_ids, col_ids);
  const std::optional<Biases> biases = read_biases(grid.comm(), o.checkpoint, layout);
  PairIds named;  // the pairs as the file names them
  EntryList pairs = read_pairs(grid.comm(), o.pairs, {parse_data_format(o.format), o.index_base},
                               row_ids, col_ids, biases ? &named : nullptr);
  // Without biases nothing is known of an unseen row or column: such a pair is an error.
  std::vector<char> cold(pairs.size(), 0);
  run_agreed(grid.comm(), [&] {
    for (size_t e = 0; e < pairs.size(); ++e) {
      const bool outside = pairs.rows[e] < 0 || pairs.rows[e] >= info.rows || pairs.cols[e] < 0 ||
                           pairs.cols[e] >= info.cols;
      fail_if(outside && !biases, "{}:{}: entry ({}, {}) outside the {} x {} model of {}",
              pairs.file, pairs.lines[e], pairs.rows[e] + o.index_base,
              pairs.cols[e] + o.index_base, info.rows, info.cols, o.checkpoint);
      cold[e] = outside;
    }
  });
  // Cold pairs ask the chain for (0, 0) (a valid entry) and answer from the biases alone.
  std::vector<std::int64_t> rows(pairs.rows), cols(pairs.cols);
  for (size_t e = 0; e < pairs.size(); ++e) {
    if (!cold[e]) continue;
    if (rows[e] >= info.rows) rows[e] = -1;
    if (cols[e] >= info.cols) cols[e] = -1;
    pairs.rows[e] = pairs.cols[e] = 0;
  }
  const DistMatrix x = end_to_end(chain);
  pairs.values = sample_entries(x, pairs.rows, pairs.cols);
  for (size_t e = 0; e < pairs.size(); ++e) {
    if (biases) pairs.values[e] = cold[e] ? biases->at(rows[e], cols[e]) : pairs.values[e] + biases->at(rows[e], cols[e]);
    if (info.clip) pairs.values[e] = std::clamp(pairs.values[e], info.clip->first, info.clip->second);
  }
  // Answer in the caller's convention: ids when the model has them, else their index base.
  if (biases) {
    pairs.rows = std::move(named.rows);
    pairs.cols = std::move(named.cols);
  }
  for (size_t e = 0; e < pairs.size(); ++e) {
    if (row_ids.empty()) pairs.rows[e] += o.index_base;
    if (col_ids.empty()) pairs.cols[e] += o.index_base;
  }
  if (biases)
    write_triplets(grid.comm(), o.out, pairs);  // the names of the file, as read
  else
    write_triplets(grid.comm(), o.out, pairs, row_ids, col_ids);
  std::int64_t counts[2] = {static_cast<std::int64_t>(pairs.size()),
                            static_cast<std::int64_t>(std::count(cold.begin(), cold.end(), 1))};
  MPI_Allreduce(MPI_IN_PLACE, counts, 2, MPI_INT64_T, MPI_SUM, grid.comm());
  if (grid.is_root())
    fmt::print("cdmf predict: {} predictions written to {} ({} cold-start pairs: a user or item "
               "unseen in training, answered from the mean and the known bias){}\n",
               counts[0], o.out, counts[1],
               info.clip ? fmt::format("; clipped to [{}, {}]", info.clip->first, info.clip->second)
                         : "");
}
}  // namespace

Command add_predict_command(CLI::App& app) {
  auto o = std::make_shared<PredictOptions>();
  CLI::App* sub =
      app.add_subcommand("predict", "Predict entries from a factor file or a base and an adapter");
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
