#include "run_options.hpp"

namespace cdmf::cli {

void add_run_options(CLI::App& sub, run::RunOptions& o, const std::string& output_help) {
  sub.add_option("--iters", o.iters, "maximum iterations")->capture_default_str();
  sub.add_option("--tol", o.tol, "stop when train loss < tol")->capture_default_str();
  sub.add_option("--patience", o.patience,
                 "early stopping: log steps without improvement of the validation loss (the test "
                 "loss without a validation set)");
  sub.add_option("--output", o.output, output_help);
  sub.add_option("--metrics", o.metrics, "metrics CSV, one row per log step");
  sub.add_option("--summary", o.summary, "JSON summary of the run");
  sub.add_option("--log-every", o.log_every, "iterations between log rows")->capture_default_str();
  sub.add_option("--grid", o.grid, "process grid PrxPc (default near-square)");
  sub.add_option("--checkpoint-dir", o.checkpoint_dir,
                 "write checkpoints DIR/checkpoint-<iteration>.h5 here (one whenever the run stops)");
  sub.add_option("--checkpoint-every", o.checkpoint_every,
                 "also checkpoint at every K-th iteration (0: off)");
  sub.add_option("--checkpoint-every-seconds", o.checkpoint_every_seconds,
                 "also checkpoint when S seconds of wall time passed since the last one (0: off)");
  sub.add_option("--keep-checkpoints", o.keep_checkpoints, "keep the newest N checkpoints")
      ->capture_default_str();
  sub.add_option("--restart", o.restart,
                 "continue from checkpoint FILE, or 'auto': the newest in --checkpoint-dir (a "
                 "fresh start when there is none)");
  sub.add_option("--max-walltime", o.max_walltime,
                 "[D-]HH:MM:SS: checkpoint and stop (exit status 75) before this much wall time");
  sub.add_option("--memory-limit", o.memory_limit,
                 "memory each rank may use, e.g. 8G (default: the node's available memory "
                 "divided by its ranks); a run that needs more stops at once");
  sub.add_flag("--quiet", o.quiet, "no progress lines");
}

}  // namespace cdmf::cli
