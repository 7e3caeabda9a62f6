// cdmf train: the options of `cdmf train` (DESIGN.md section 4); the run itself is
// run::run_train (src/run/train_run.cpp), shared with the other training commands.
#include "cdmf/run/train_run.hpp"
#include "commands.hpp"
#include "config_file.hpp"
#include "run_options.hpp"

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
  sub->add_option("--seed", o->seed, "seed of the init and the index permutation")
      ->capture_default_str();
  sub->add_option("--init", o->init, "start from the factors of this HDF5 file");
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
  sub->add_flag("--no-permute", o->no_permute, "do not permute rows/columns before distributing");
  add_run_options(*sub, o->run, "write the final factors to this HDF5 file");
  return {sub, [o, sub, config_path] {
            apply_config_file(*sub, *config_path);
            for (const char* name : {"--data", "--lr"})
              fail_if(sub->get_option(name)->count() == 0,
                      "{} is required (on the command line or in --config)", name);
            return run::run_train(*o);
          }};
}

}  // namespace cdmf::cli
