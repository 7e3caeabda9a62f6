// cdmf train: the options of `cdmf train` (DESIGN.md section 4); the run itself is
// run::run_train (src/run/train_run.cpp), shared with the other training commands.
#include <utility>

#include "cdmf/core/error.hpp"
#include "cdmf/run/train_run.hpp"
#include "commands.hpp"
#include "config_file.hpp"
#include "run_options.hpp"

namespace cdmf::cli {

namespace {

/// `--preset ratings`: what real ratings need (issue 11; measured in docs/realdata.md): the
/// biases fitted first, the chain a compressed depth-3 model of generous rank started at a
/// scale small against the ratings' spectrum, plain GD on the loss normalized by |Omega|, a
/// validation split watched by early stopping, clipped predictions, and the sparse strategy
/// at every rank (auto would form the m x n matrix once 4 rhat exceeds min(m, n): ratings are
/// sparse whatever the rank). Each value applies only
/// to an option given neither on the command line nor in --config.
constexpr std::pair<const char*, const char*> kRatingsPreset[] = {
    {"model", "compressed"},  {"depth", "3"},          {"rank", "50"},
    {"width", "-1"},         {"init-scale", "1"},     {"gamma", "0.3"},
    {"optimizer", "gd"},      {"lr", "50"},            {"loss-normalization", "observed"},
    {"biases", "true"},       {"bias-reg", "3"},       {"validation", "0.1"},
    {"patience", "6"},        {"iters", "2000"},       {"log-every", "5"},
    {"clip", "true"},         {"strategy", "sparse"},
};

void apply_preset(CLI::App& sub, run::TrainOptions& o) {
  const std::string& name = o.preset;
  if (name.empty()) return;
  o.rank_from_preset = sub.get_option("--rank")->count() == 0;
  fail_if(name != "ratings", "--preset must be 'ratings' (got '{}')", name);
  for (const auto& [option_name, value] : kRatingsPreset) {
    CLI::Option* option = sub.get_option(std::string("--") + option_name);
    if (option->count() > 0) continue;  // given on the command line or in --config
    option->add_result(std::string(value));
    option->run_callback();
  }
}

}  // namespace

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
  sub->add_option("--rows", o->rows, "m (default: implied by the data; --truth and --init must match)");
  sub->add_option("--cols", o->cols, "n (default: implied by the data; --truth and --init must match)");
  sub->add_option("--format", o->format, "auto|triplets|movielens|mtx|hdf5")->capture_default_str();
  sub->add_option("--index-base", o->index_base, "0 or 1, for triplet files")
      ->capture_default_str();
  sub->add_option("--model", o->model, "deep|compressed|narrow|shallow")->capture_default_str();
  sub->add_option("--depth", o->depth, "number of factors L")->capture_default_str();
  sub->add_option("--width", o->width,
                  "width h of the deep model (default 0: max(m, n); -1: min(m, n))");
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
  sub->add_option("--init-structure", o->init_structure,
                  "compressed: the deep init it starts from: dense (QR of Gaussians, the "
                  "published one), implicit (signed permutations, a sparse truncated SVD of the "
                  "first gradient: no h x n or h x h matrix), auto (implicit when the width is at "
                  "least max(m, n) and max(m, n) > 4000 or the dense one does not fit)")
      ->capture_default_str();
  sub->add_option("--strategy", o->strategy,
                  "auto|dense|sparse: loss evaluation (auto: sparse for thin chains)")
      ->capture_default_str();
  sub->add_flag("--diagnostics", o->diagnostics,
                "log the numerical rank of W_l(t) - W_l(0) per factor and the top singular values "
                "of the end-to-end matrix at each log step (PDGESVD: moderate sizes)");
  sub->add_option("--preset", o->preset,
                  "ratings: the settings real ratings need (README); flags and --config override "
                  "each of them");
  sub->add_flag("--biases", o->biases,
                "model X = mu + b 1^T + 1 c^T + chain: mean and row/column biases fitted first "
                "(regularized sweeps), the chain trained on their residual");
  sub->add_option("--bias-reg", o->bias_reg, "L2 regularization lambda of the biases")
      ->capture_default_str();
  sub->add_option("--bias-sweeps", o->bias_sweeps, "alternating sweeps of the bias fit")
      ->capture_default_str();
  sub->add_option("--validation", o->validation,
                  "hold out this fraction of the training entries (by entry, seeded by --seed): "
                  "--patience watches its loss and the best logged model is kept")
      ->capture_default_str();
  sub->add_flag("--clip", o->clip, "clip predictions to the range of the training values");
  sub->add_flag("--no-permute", o->no_permute, "do not permute rows/columns before distributing");
  add_run_options(*sub, o->run, "write the final factors to this HDF5 file");
  return {sub, [o, sub, config_path] {
            apply_config_file(*sub, *config_path);
            apply_preset(*sub, *o);
            o->run.config_file = *config_path;
            for (const char* name : {"--data", "--lr"})
              fail_if(sub->get_option(name)->count() == 0,
                      "{} is required (on the command line or in --config)", name);
            return run::run_train(*o);
          }};
}

}  // namespace cdmf::cli
