#pragma once
/// `cdmf train` as a library call: load the data, build (or restore from a checkpoint) the
/// model, plan its memory, compress it, train it with the shared run session (checkpoints,
/// signals, wall time, metrics, summary) and write the factors.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "cdmf/run/run_session.hpp"

namespace cdmf::run {

/// The options of `cdmf train` (DESIGN.md section 4) besides the shared RunOptions.
struct TrainOptions {
  RunOptions run;
  std::string data, test, truth, format = "auto", model = "deep", optimizer = "gd";
  std::string init, normalization = "mn", strategy = "auto";
  std::int64_t rows = 0, cols = 0, width = 0, rank = 0;
  int index_base = 0, depth = 3, block_size = 0;
  double init_scale = 1e-3, lr = 0.0, gamma = 0.01, momentum = 0.9;
  double beta1 = 0.9, beta2 = 0.999;
  std::uint64_t seed = 0;
  bool no_permute = false, diagnostics = false;
  // Ratings (issue 11): the biases of X = mu + b 1^T + 1 c^T + chain, fitted first; a seeded
  // validation split of the training entries (early stopping on it, the best model kept);
  // predictions clipped to the range of the training values.
  bool biases = false, clip = false;
  double bias_reg = 3.0, validation = 0.0;
  int bias_sweeps = 10;
  std::string preset;
  bool rank_from_preset = false;  // --rank set by the preset (lowered when the data is smaller)

  /// The effective configuration, echoed at start and stored in every checkpoint.
  nlohmann::json to_json() const;
};

/// Collective over MPI_COMM_WORLD: runs `cdmf train`. Returns the exit status (0 finished,
/// kExitInterrupted stopped early with a checkpoint); throws Error on bad input.
int run_train(const TrainOptions& options);

}  // namespace cdmf::run
