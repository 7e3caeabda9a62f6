// cdmf inspect: metadata, factor shapes and the spectrum of a factor file's end-to-end matrix.
#include <algorithm>
#include <memory>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "cdmf/io/factor_file.hpp"
#include "cdmf/model/chain.hpp"
#include "commands.hpp"

namespace cdmf::cli {

namespace {
void run_inspect(const std::string& path, int top) {
  ProcessGrid grid(MPI_COMM_WORLD);
  const FactorFileInfo info = read_factor_file_info(grid.comm(), path);
  const int block = choose_block_size(info.rows, info.cols, grid);
  const IndexLayout layout(info.rows, info.cols, block, 0, /*permute=*/false);
  Chain chain;
  chain.factors = read_factors(grid, layout, info, block);
  chain.lr_multipliers = info.lr_multipliers;
  const std::vector<double> sigma = singular_values(end_to_end(chain));
  if (!grid.is_root()) return;
  fmt::print("file           {}\n", path);
  fmt::print("format         {} version {} (written by cdmf {})\n", info.format, info.format_version,
             info.cdmf_version);
  fmt::print("model          {}: {} x {}, {} factors, width {}\n", info.model, info.rows, info.cols,
             info.depth, info.width);
  fmt::print("iteration      {}\ncreated        {}\n", info.iteration, info.created);
  for (size_t l = 0; l < info.shapes.size(); ++l)
    fmt::print("  W{:<3} {:>8} x {:<8} lr multiplier {}\n", l + 1, info.shapes[l].rows,
               info.shapes[l].cols, info.lr_multipliers[l]);
  const size_t shown = std::min<size_t>(sigma.size(), static_cast<size_t>(std::max(top, 0)));
  fmt::print("singular values of the end-to-end matrix (top {} of {}):\n", shown, sigma.size());
  for (size_t k = 0; k < shown; ++k) fmt::print("  s{:<4} {:.10e}\n", k + 1, sigma[k]);
  fmt::print("configuration  {}\n", info.config_json);
}
}  // namespace

Command add_inspect_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto top = std::make_shared<int>(10);
  CLI::App* sub = app.add_subcommand("inspect", "Describe a factor file or checkpoint");
  sub->add_option("file", *path, "HDF5 factor file")->required();
  sub->add_option("--top", *top, "number of singular values to print")->capture_default_str();
  return {sub, [path, top] { run_inspect(*path, *top); }};
}

}  // namespace cdmf::cli
