// cdmf adapt: the options of `cdmf adapt` (DESIGN.md section 4); the run itself is
// run::run_adapt (src/run/adapt_run.cpp), on the run layer `train` uses.
#include "cdmf/run/adapt_run.hpp"
#include "commands.hpp"
#include "config_file.hpp"
#include "run_options.hpp"

namespace cdmf::cli {

Command add_adapt_command(CLI::App& app) {
  auto o = std::make_shared<run::AdaptOptions>();
  CLI::App* sub = app.add_subcommand("adapt", "Fit a low-rank update (LoRA, Deep LoRA) of a frozen base");
  auto config_path = std::make_shared<std::string>();
  sub->add_option("--config", *config_path,
                  "read options from a TOML/INI file (keys: option names; flags override it)");
  sub->add_option("--base", o->base, "the frozen base: HDF5 with a dense /W (m x n) or a cdmf factor file (required)");
  sub->add_option("--adapter", o->adapter, "lora|deep|deep-compressed")->capture_default_str();
  sub->add_option("--rank", o->rank, "adapter rank r (deep-compressed: even, width 2*(r/2)) (required)");
  sub->add_option("--depth", o->depth, "depth L of deep and deep-compressed")->capture_default_str();
  sub->add_option("--width", o->width,
                  "width h of the overparameterized adapter deep-compressed starts from (default max(m, n))");
  sub->add_option("--init-structure", o->init_structure,
                  "deep-compressed: the overparameterized init it starts from: dense (QR of "
                  "Gaussians, h x n factors), implicit (signed permutations; compressed from a "
                  "sparse truncated SVD of the first gradient (entries) or thin QRs of the samples "
                  "(linear layer): no h x n or h x h matrix), auto (implicit when the width is at "
                  "least max(m, n) and max(m, n) > 4000 or the dense one does not fit)")
      ->capture_default_str();
  sub->add_option("--init-scale", o->init_scale, "eps of the orthogonal init (deep, deep-compressed)")
      ->capture_default_str();
  sub->add_option("--gamma", o->gamma, "lr multiplier of the outer factors (deep-compressed)")
      ->capture_default_str();
  sub->add_option("--alpha", o->alpha, "LoRA alpha: DeltaW = (alpha / r) B A (default r)");
  sub->add_option("--samples", o->samples, "linear layer: HDF5 /inputs (s x n) and /targets (s x m)");
  sub->add_option("--test-samples", o->test_samples, "held-out samples, same layout");
  sub->add_option("--data", o->data, "entries: training entries in any format `train` reads");
  sub->add_option("--test", o->test, "held-out entries, same format");
  sub->add_option("--format", o->format, "auto|triplets|movielens|mtx|hdf5")->capture_default_str();
  sub->add_option("--index-base", o->index_base, "0 or 1, for triplet files")->capture_default_str();
  sub->add_option("--optimizer", o->optimizer, "gd|momentum|nesterov|adam")->capture_default_str();
  sub->add_option("--lr", o->lr, "learning rate (required)");
  sub->add_option("--weight-decay", o->weight_decay, "decoupled weight decay (AdamW with adam)")
      ->capture_default_str();
  sub->add_option("--momentum", o->momentum, "momentum (momentum/nesterov)")->capture_default_str();
  sub->add_option("--beta1", o->beta1, "Adam beta1")->capture_default_str();
  sub->add_option("--beta2", o->beta2, "Adam beta2")->capture_default_str();
  sub->add_option("--seed", o->seed, "seed of the init and the index permutation")->capture_default_str();
  sub->add_option("--block-size", o->block_size, "ScaLAPACK block size (default: as for train)");
  sub->add_option("--loss-normalization", o->normalization,
                  "entries: N of the loss, mn or observed (the linear layer divides by s)")
      ->capture_default_str();
  sub->add_option("--strategy", o->strategy, "entries: auto|dense|sparse")->capture_default_str();
  sub->add_option("--export-peft", o->export_peft,
                  "also write DIR/adapter_model.safetensors and DIR/adapter_config.json (PEFT LoRA)");
  sub->add_option("--target-module", o->target_module, "the module name of the PEFT export");
  sub->add_flag("--no-permute", o->no_permute, "do not permute rows/columns before distributing");
  add_run_options(*sub, o->run, "the adapter file to write (HDF5, format cdmf-adapter) (required)");
  return {sub, [o, sub, config_path] {
            apply_config_file(*sub, *config_path);
            for (const char* name : {"--base", "--rank", "--lr", "--output"})
              fail_if(sub->get_option(name)->count() == 0,
                      "{} is required (on the command line or in --config)", name);
            return run::run_adapt(*o);
          }};
}

}  // namespace cdmf::cli
