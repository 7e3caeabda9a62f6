// cdmf train: the options of `cdmf train` (DESIGN.md section 4); the run itself is
// run::run_train (src/run/train_run.cpp), shared with the other training commands.
#include "cdmf/run/train_run.hpp"
#include "commands.hpp"
#include "config_file.hpp"

namespace cdmf::cli {

Command add_train_command(CLI::App& app) {
  auto o = std::make_shared<run::TrainOptions>();
  CLI::App* sub = app.add_subcommand("train", "Train a model on observed entries");
  auto config_path = std::make_shared<std::string>();
  sub->add_option("--config", *config_path,
                  "read options from a TOML/INI file (keys: option names; flags override it)");
  // --data and --lr are required, but may come from the config file: checked after reading it.
  sub->add_option("--data", o->data,
                  "training entries (triplets, MovieLens CSV, .mtx or .h5) (required)");
  sub->add_option("--test", o->test, "held-out entries, same format");
  sub->add_option("--truth", o->truth,
                  "ground truth HDF5 (/U,/V or /matrix) for the recovery error");
  sub->add_option("--rows", o->rows, "m (default: implied by data, truth or init file)");
  sub->add_option("--cols", o->cols, "n (default: implied by data, truth or init file)");
  sub->add_option("--format", o->format, "auto|triplets|movielens|mtx|hdf5")->capture_default_str();
  sub->add_option("--index-base", o->index_base, "0 or 1, for triplet files")
      ->capture_default_str();
  sub->add_option("--model", o->model, "deep|compressed|narrow|shallow")->capture_default_str();
  sub->add_option("--depth", o->depth, "number of factors L")->capture_default_str();
  sub->add_option("--width", o->width, "width h of the deep model (default max(m, n))");
  sub->add_option("--rank", o->rank, "rank estimate rhat (narrow/shallow/compressed width 2*rhat)");
  sub->add_option("--init-scale", o->init_scale, "eps of the orthogonal init")
      ->capture_default_str();
  sub->add_option("--lr", o->lr, "learning rate (required)");
  sub->add_option("--gamma", o->gamma, "lr multiplier of the outer factors (compressed)")
      ->capture_default_str();
  sub->add_option("--optimizer", o->optimizer, "gd|momentum|nesterov|adam")->capture_default_str();
  sub->add_option("--momentum", o->momentum, "momentum (momentum/nesterov)")->capture_default_str();
  sub->add_option("--beta1", o->beta1, "Adam beta1")->capture_default_str();
  sub->add_option("--beta2", o->beta2, "Adam beta2")->capture_default_str();
  sub->add_option("--iters", o->run.iters, "maximum iterations")->capture_default_str();
  sub->add_option("--tol", o->run.tol, "stop when train loss < tol")->capture_default_str();
  sub->add_option("--patience", o->run.patience, "early stopping: log steps without test improvement");
  sub->add_option("--seed", o->seed, "seed of the init and the index permutation")
      ->capture_default_str();
  sub->add_option("--init", o->init, "start from the factors of this HDF5 file");
  sub->add_option("--output", o->run.output, "write the final factors to this HDF5 file");
  sub->add_option("--metrics", o->run.metrics, "metrics CSV, one row per log step");
  sub->add_option("--summary", o->run.summary, "JSON summary of the run");
  sub->add_option("--log-every", o->run.log_every, "iterations between log rows")
      ->capture_default_str();
  sub->add_option("--grid", o->run.grid, "process grid PrxPc (default near-square)");
  sub->add_option("--block-size", o->block_size,
                  "ScaLAPACK block size (default: at most min(64, m/Pr, n/Pc), the one within a factor of "
                  "two of that which spreads rows and columns most evenly)");
  sub->add_option("--loss-normalization", o->normalization,
                  "N of the loss: mn (m*n, the reference) or observed (|Omega|)")
      ->capture_default_str();
  sub->add_option("--strategy", o->strategy,
                  "auto|dense|sparse: loss evaluation (auto: sparse for thin chains)")
      ->capture_default_str();
  sub->add_flag("--diagnostics", o->diagnostics,
                "log the numerical rank of W_l(t) - W_l(0) per factor and the top singular values "
                "of the end-to-end matrix at each log step (PDGESVD: moderate sizes)");
  sub->add_option(
      "--checkpoint-dir", o->run.checkpoint_dir,
      "write checkpoints DIR/checkpoint-<iteration>.h5 here (one whenever the run stops)");
  sub->add_option("--checkpoint-every", o->run.checkpoint_every,
                  "also checkpoint at every K-th iteration (0: off)");
  sub->add_option("--checkpoint-every-seconds", o->run.checkpoint_every_seconds,
                  "also checkpoint when S seconds of wall time passed since the last one (0: off)");
  sub->add_option("--keep-checkpoints", o->run.keep_checkpoints, "keep the newest N checkpoints")
      ->capture_default_str();
  sub->add_option("--restart", o->run.restart,
                  "continue from checkpoint FILE, or 'auto': the newest in --checkpoint-dir (a "
                  "fresh start when there is none)");
  sub->add_option("--max-walltime", o->run.max_walltime,
                  "[D-]HH:MM:SS: checkpoint and stop (exit status 75) before this much wall time");
  sub->add_option("--memory-limit", o->run.memory_limit,
                  "memory each rank may use, e.g. 8G (default: the node's available memory "
                  "divided by its ranks); a run that needs more stops at once");
  sub->add_flag("--no-permute", o->no_permute, "do not permute rows/columns before distributing");
  sub->add_flag("--quiet", o->run.quiet, "no progress lines");
  return {sub, [o, sub, config_path] {
            apply_config_file(*sub, *config_path);
            for (const char* name : {"--data", "--lr"})
              fail_if(sub->get_option(name)->count() == 0,
                      "{} is required (on the command line or in --config)", name);
            return run::run_train(*o);
          }};
}

}  // namespace cdmf::cli
