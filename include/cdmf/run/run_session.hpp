#pragma once
/// The run layer (DESIGN.md section 2, between I/O and the CLI): what every command that
/// trains something does the same way, so `train`, `adapt` and any later command share one
/// orchestration instead of copies. A RunSession owns the process grid of a run, echoes its
/// configuration, prepares the checkpoint directory and checks the output paths before any
/// work, times the phases, finds the checkpoint to restart from, runs the trainer with the
/// metrics file, progress lines, checkpoints, signals and wall-time limit, and writes the
/// summary (with phase_seconds and peak_memory_bytes). The CLI parses options and calls one
/// function of this layer; the model-specific work (data, model, strategy) is the caller's.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cdmf/core/error.hpp"
#include "cdmf/core/memory_plan.hpp"
#include "cdmf/grid/process_grid.hpp"
#include "cdmf/io/checkpoint.hpp"
#include "cdmf/io/output_files.hpp"
#include "cdmf/train/trainer.hpp"

namespace cdmf::run {

/// Exit status of a run that stopped before its stopping criterion, on a signal or at
/// --max-walltime, after writing a checkpoint (EX_TEMPFAIL of sysexits.h: "try again later").
/// Job scripts continue such a run with `--restart auto`. 0 is a finished run, 1 an error.
inline constexpr int kExitInterrupted = 75;

/// Options every training command shares: the process grid, stopping, logging, outputs,
/// checkpoints, restart, wall time and memory.
struct RunOptions {
  std::string grid;  // "PrxPc", empty: near-square
  std::int64_t iters = 10000, log_every = 100, patience = 0;
  double tol = 0.0;
  std::string metrics, summary, output;
  std::string checkpoint_dir, restart, max_walltime;
  std::int64_t checkpoint_every = 0;
  double checkpoint_every_seconds = 0.0;
  int keep_checkpoints = 3;
  std::string memory_limit;  // per rank, e.g. "8G"; empty: the machine's
  bool quiet = false;

  /// The entries of these options in the echoed configuration (merged into the command's).
  nlohmann::json to_json() const;
};

/// Seconds of "[D-]HH:MM:SS" (--max-walltime, Slurm's notation); 0 for an empty text.
double parse_walltime(const std::string& text);

/// Wall-clock seconds per named phase of a run (read, init, compress, train, output), in the
/// order first entered; a phase entered again adds up.
class PhaseClock {
 public:
  /// Ends the current phase (if any) and starts `name`.
  void enter(const std::string& name);
  /// Ends the current phase.
  void stop();
  nlohmann::json to_json() const;

 private:
  std::vector<std::pair<std::string, double>> seconds_;
  std::string current_;
  double since_ = 0.0;
};

/// The checkpoint a run continues from, as found by RunSession::find_restart.
template <typename Loaded>
struct Restart {
  std::string path;
  CheckpointInfo info;
  Loaded loaded;
  double read_seconds = 0.0;
};

class RunSession {
 public:
  /// Collective over MPI_COMM_WORLD: checks the shared options, builds the grid, prints
  /// "cdmf VERSION COMMAND on P ranks (grid PrxPc)" and the configuration (rank 0), prepares
  /// the checkpoint directory (removing the temporaries of killed writers) and checks every
  /// output path (`outputs` plus --output, --metrics, --summary) before any work is done.
  RunSession(std::string command, const RunOptions& options, nlohmann::json config,
             std::vector<OutputFile> outputs = {});

  const ProcessGrid& grid() const { return grid_; }
  const RunOptions& options() const { return options_; }
  const nlohmann::json& config() const { return config_; }
  const std::string& grid_text() const { return grid_text_; }
  bool is_root() const { return grid_.is_root(); }
  PhaseClock& phases() { return phases_; }
  const std::optional<CheckpointDirectory>& checkpoints() const { return checkpoints_; }
  /// The memory each rank may use (the machine's, or --memory-limit).
  const MemoryBudget& memory_budget() const { return budget_; }
  /// Collective: refuses `plan` with one line on every rank when it does not fit the budget.
  void check_memory(const MemoryPlan& plan) const { plan.check(grid_.comm(), budget_); }

  /// Collective: the checkpoint of --restart. For `auto`, the newest one in --checkpoint-dir
  /// that `load` reads without an Error (a damaged one is skipped with a warning; none at all:
  /// a fresh start, nullopt). `check(info)` throws when a checkpoint belongs to another run,
  /// which is an error even for `auto`, never skipped. `load(path, info)` reads the state.
  template <typename Loaded>
  std::optional<Restart<Loaded>> find_restart(
      const std::function<void(const CheckpointInfo&)>& check,
      const std::function<Loaded(const std::string&, const CheckpointInfo&)>& load) const;

  /// Throws unless the configuration stored in `info` has the same values as this run's for
  /// every key of `defining` (a restart continues the same run).
  void check_same_run(const CheckpointInfo& info, const std::vector<std::string>& defining) const;

  /// What train() needs besides the chain, strategy and optimizer.
  struct Training {
    const IndexLayout* layout = nullptr;  // the layout the checkpoints are written in
    CheckpointMeta meta;                  // written into every checkpoint
    std::vector<std::string> extra_columns;  // the trainer's leading columns first
    Trainer::Probe probe;
    Strategy* validation = nullptr;  // evaluated at every logged row (Trainer::set_validation)
    bool keep_best = false;          // end with the best logged factors (TrainerConfig)
  };

  /// Collective: runs the trainer from `start` with the metrics file (rewritten with
  /// start.history first, so a restarted file continues exactly), progress lines, checkpoints
  /// at the configured cadence and at the stop, stop signals and the wall-time budget (counted
  /// from the session's start), then prints how it stopped (and, when interrupted, how to
  /// continue). The "train" phase covers it.
  TrainResult train(Chain& chain, Strategy& strategy, Optimizer& optimizer, TrainerState start,
                    const Training& training);

  /// The newest checkpoint train() wrote ("" when none).
  const std::string& last_checkpoint() const { return last_checkpoint_; }

  /// Collective: writes --summary (rank 0; every rank fails if it cannot): the trainer's
  /// result, `extra`, the configuration, phase_seconds and peak_memory_bytes.
  void write_summary(const std::string& model, const TrainResult& result,
                     nlohmann::json extra);

  /// 0 for a finished run, kExitInterrupted for one stopped by a signal or the wall time.
  static int exit_status(const TrainResult& result) {
    return result.interrupted() ? kExitInterrupted : 0;
  }

 private:
  static ProcessGrid make_grid(const std::string& shape);

  RunOptions options_;
  nlohmann::json config_;
  double started_;
  double max_walltime_;
  ProcessGrid grid_;
  std::string grid_text_;
  PhaseClock phases_;
  MemoryBudget budget_;
  std::optional<CheckpointDirectory> checkpoints_;
  std::string last_checkpoint_;
};

template <typename Loaded>
std::optional<Restart<Loaded>> RunSession::find_restart(
    const std::function<void(const CheckpointInfo&)>& check,
    const std::function<Loaded(const std::string&, const CheckpointInfo&)>& load) const {
  if (options_.restart.empty()) return std::nullopt;
  const bool automatic = options_.restart == "auto";
  const std::vector<std::string> candidates =
      automatic ? list_checkpoints(grid_.comm(), options_.checkpoint_dir)
                : std::vector<std::string>{options_.restart};
  const auto warn = [&](const std::string& message) {
    if (is_root()) fmt::print(stderr, "cdmf: warning: {}\n", message);
  };
  for (const std::string& path : candidates) {
    const double begin = MPI_Wtime();
    Restart<Loaded> found{path, {}, {}, 0.0};
    try {
      found.info = read_checkpoint_info(grid_.comm(), path);
      fail_if(!found.info.restartable,
              "{}: a factor file without the restart state (no /optimizer, /trainer, ...): use "
              "it with --init, not --restart",
              path);
    } catch (const Error& e) {
      if (!automatic) throw;
      warn(fmt::format("skipping {}", e.what()));
      continue;
    }
    check(found.info);  // another run's checkpoint: an error, never skipped
    try {
      found.loaded = load(path, found.info);
    } catch (const Error& e) {
      if (!automatic) throw;
      warn(fmt::format("skipping {}", e.what()));
      continue;
    }
    found.read_seconds = MPI_Wtime() - begin;
    return found;
  }
  fail_if(!candidates.empty(),
          "--restart auto: none of the {} checkpoints in {} can be read (see the warnings above); "
          "move them away to start afresh",
          candidates.size(), options_.checkpoint_dir);
  if (is_root())
    fmt::print("restart: no checkpoint in {}: starting from iteration 0\n",
               options_.checkpoint_dir);
  return std::nullopt;
}

}  // namespace cdmf::run
