// cdmf generate: a synthetic low-rank completion problem as the published experiments make it.
#include <filesystem>
#include <memory>

#include <fmt/core.h>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "cdmf/data/readers.hpp"
#include "cdmf/data/synthetic.hpp"
#include "cdmf/io/factor_file.hpp"
#include "commands.hpp"

namespace cdmf::cli {

namespace {
/// Creates the --out directory (and its parents) when missing.
void create_out_directory(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code code;
  fail_if(fs::exists(path, code) && !fs::is_directory(path, code),
          "--out {}: a file of that name is in the way (a directory is needed)", path);
  fs::create_directories(path, code);
  fail_if(static_cast<bool>(code), "--out {}: cannot create the directory ({})", path,
          code.message());
}
}  // namespace

Command add_generate_command(CLI::App& app) {
  auto spec = std::make_shared<SyntheticSpec>();
  auto out_dir = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand(
      "generate", "Write a synthetic problem: DIR/train.tsv, DIR/test.tsv, DIR/truth.h5");
  sub->add_option("--rows", spec->rows, "m")->required();
  sub->add_option("--cols", spec->cols, "n")->required();
  sub->add_option("--rank", spec->rank, "rank r of the ground truth")->required();
  sub->add_option("--observed", spec->observed, "fraction of entries observed for training")
      ->capture_default_str();
  sub->add_option("--test-observed", spec->test_observed,
                  "fraction of all entries in the test set (default: every unobserved entry)");
  sub->add_option("--seed", spec->seed, "random seed")->capture_default_str();
  sub->add_option("--out", *out_dir, "output directory")->required();
  return {sub, [spec, out_dir] {
            ProcessGrid grid(MPI_COMM_WORLD);
            // Every option is checked before --out is created: a bad one leaves nothing behind.
            validate_synthetic_spec(*spec, grid);
            run_agreed(grid.comm(), [&] {
              if (grid.is_root()) create_out_directory(*out_dir);
            });
            const SyntheticProblem problem = make_synthetic_problem(grid, *spec);
            const std::string dir = *out_dir;
            write_triplets(grid.comm(), dir + "/train.tsv", problem.train);
            write_triplets(grid.comm(), dir + "/test.tsv", problem.test);
            write_truth_factors(grid.comm(), dir + "/truth.h5", spec->rows, spec->cols, spec->rank,
                                problem.u, problem.v);
            if (grid.is_root())
              fmt::print("cdmf generate: {} x {} rank {}: {} training and {} test entries in {}\n",
                         spec->rows, spec->cols, spec->rank, problem.train.size(),
                         problem.test.size(), dir);
            return 0;
          }};
}

}  // namespace cdmf::cli
