// cdmf generate: a synthetic low-rank completion problem, by the published experiments' recipe
// where the m x n matrix fits, by the factored recipe at any size (data/synthetic.hpp).
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>

#include <fmt/core.h>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "cdmf/core/memory_plan.hpp"
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

/// A count given as an integer or in floating-point notation ("3e9", "1e8"), which must be a
/// whole number.
std::int64_t parse_count(const std::string& text, const std::string& what) {
  size_t used = 0;
  double value = 0.0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  fail_if(used != text.size() || !(std::abs(value) < 9.2e18) || value != std::floor(value),
          "{} must be a whole number (got '{}')", what, text);
  return static_cast<std::int64_t>(value);
}

struct GenerateOptions {
  std::string rows, cols, observed_entries, test_entries;
  std::string format = "tsv";
  std::string recipe = "auto";
  std::string memory_limit;
  std::string out_dir;
};
}  // namespace

Command add_generate_command(CLI::App& app) {
  auto spec = std::make_shared<SyntheticSpec>();
  auto options = std::make_shared<GenerateOptions>();
  CLI::App* sub = app.add_subcommand(
      "generate", "Write a synthetic problem: DIR/train.tsv, DIR/test.tsv (or DIR/train.h5, "
                  "DIR/test.h5 with --format hdf5), DIR/truth.h5");
  sub->add_option("--rows", options->rows, "m (e.g. 480189 or 3e9)")->required();
  sub->add_option("--cols", options->cols, "n")->required();
  sub->add_option("--rank", spec->rank, "rank r of the ground truth")->required();
  sub->add_option("--observed", spec->observed, "fraction of entries observed for training")
      ->capture_default_str();
  sub->add_option("--observed-entries", options->observed_entries,
                  "number of training entries (instead of --observed; e.g. 1e8)");
  sub->add_option("--test-observed", spec->test_observed,
                  "fraction of all entries in the test set (default: every unobserved entry by "
                  "the dense recipe, 10% of the training count by the factored one)");
  sub->add_option("--test-entries", options->test_entries, "number of test entries");
  sub->add_option("--format", options->format, "tsv or hdf5 (train.h5, test.h5: /rows /cols /values)")
      ->capture_default_str();
  sub->add_option("--truth-recipe", options->recipe,
                  "dense (Gaussian m x n truncated by SVD, the published recipe), factored (thin "
                  "factors, any size) or auto (dense when m*n*min(m,n) <= 8e9 and no entry count "
                  "is given)")
      ->capture_default_str();
  sub->add_option("--memory-limit", options->memory_limit,
                  "bytes each rank may use (e.g. 8G; default: the node's available memory)");
  sub->add_option("--seed", spec->seed, "random seed")->capture_default_str();
  sub->add_option("--out", options->out_dir, "output directory")->required();
  return {sub, [spec, options] {
            ProcessGrid grid(MPI_COMM_WORLD);
            const auto start = std::chrono::steady_clock::now();
            // Every option is checked, and the memory planned, before --out is created: a bad
            // one leaves nothing behind.
            spec->rows = parse_count(options->rows, "--rows");
            spec->cols = parse_count(options->cols, "--cols");
            if (!options->observed_entries.empty())
              spec->observed_entries = parse_count(options->observed_entries, "--observed-entries");
            if (!options->test_entries.empty())
              spec->test_entries = parse_count(options->test_entries, "--test-entries");
            spec->recipe = parse_truth_recipe(options->recipe);
            fail_if(options->format != "tsv" && options->format != "hdf5",
                    "--format must be tsv or hdf5 (got '{}')", options->format);
            const bool text = options->format == "tsv";
            const double limit =
                options->memory_limit.empty() ? 0.0 : parse_byte_size(options->memory_limit, "--memory-limit");
            validate_synthetic_spec(*spec, grid);
            synthetic_memory_plan(*spec, text).check(grid.comm(), memory_budget(grid.comm(), limit));
            const std::string dir = options->out_dir;
            run_agreed(grid.comm(), [&] {
              if (grid.is_root()) create_out_directory(dir);
            });
            SyntheticProblem problem = make_synthetic_problem(grid, *spec);
            const std::string extension = text ? ".tsv" : ".h5";
            for (const EntryList* list : {&problem.train, &problem.test}) {
              const std::string path = dir + (list == &problem.train ? "/train" : "/test") + extension;
              if (text)
                write_triplets(grid.comm(), path, *list);
              else
                write_hdf5_entries(grid.comm(), path, *list);
            }
            write_truth_factors(grid.comm(), dir + "/truth.h5", spec->rows, spec->cols, spec->rank,
                                problem.u, problem.v);
            const double seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            const PeakMemory peak = peak_memory(grid.comm());
            if (grid.is_root())
              fmt::print("cdmf generate: {} x {} rank {} ({} recipe): {} training and {} test "
                         "entries in {} ({:.1f} s, peak {} per rank)\n",
                         spec->rows, spec->cols, spec->rank,
                         uses_dense_recipe(*spec) ? "dense" : "factored", train_entry_count(*spec),
                         test_entry_count(*spec), dir, seconds, byte_text(peak.max_rank));
            return 0;
          }};
}

}  // namespace cdmf::cli
