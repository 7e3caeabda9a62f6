#pragma once
/// `cdmf adapt` as a library call (DESIGN.md sections 1, 3 and 4): read a frozen base, build an
/// adapter (lora, deep, deep-compressed) for the entries or the linear-layer measurement,
/// train it with the shared run session (checkpoints, restart, signals, wall time, metrics,
/// summary), keep the best adapter on the test set with --patience, and write the adapter
/// file and, on request, its PEFT export.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "cdmf/run/run_session.hpp"

namespace cdmf::run {

struct AdaptOptions {
  RunOptions run;  // --output is the adapter file (required)
  std::string base, adapter = "lora";
  std::string samples, test_samples;                   // linear-layer measurement
  std::string data, test, format = "auto";             // entries measurement
  std::string optimizer = "adam", normalization = "mn", strategy = "auto";
  std::string export_peft, target_module;
  std::string init_structure = "auto";  // deep-compressed: dense, implicit or auto (as train's)
  std::int64_t rank = 0, width = 0;
  int depth = 3, index_base = 0, block_size = 0;
  double init_scale = 1e-3, gamma = 0.01, alpha = 0.0, lr = 0.0, weight_decay = 0.0;
  double momentum = 0.9, beta1 = 0.9, beta2 = 0.999;
  std::uint64_t seed = 0;
  bool no_permute = false;

  /// The effective configuration, echoed at start and stored in every checkpoint.
  nlohmann::json to_json() const;
};

/// Collective over MPI_COMM_WORLD: runs `cdmf adapt`. Returns the exit status (0 finished,
/// kExitInterrupted stopped early with a checkpoint); throws Error on bad input.
int run_adapt(const AdaptOptions& options);

}  // namespace cdmf::run
