#pragma once
/// The training loop (DESIGN.md section 2, layer 7): evaluate, log, check stopping, step.
/// Iteration t evaluates Theta(t); the run stops at t = max_iters, when the train loss drops
/// below tol (the reference's criterion), when the test loss has not improved for `patience`
/// log steps (optional early stopping), or when a stop is requested.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cdmf/model/chain.hpp"
#include "cdmf/optim/optimizer.hpp"
#include "cdmf/strategy/strategy.hpp"

namespace cdmf {

/// Metrics at one iteration. Test fields are NaN without a test set; recovery_error
/// (||X - Phi||_F / ||Phi||_F) is empty without a ground truth.
struct MetricsRow {
  std::int64_t iteration = 0;
  double seconds = 0.0;
  double train_loss = 0.0;   // f = sse / (2N)
  double test_loss = 0.0;    // same formula on the test set (the reference's "recovery error")
  double train_rmse = 0.0;
  double test_rmse = 0.0;
  std::optional<double> recovery_error;
  std::vector<double> extra;  // values of the trainer's probe columns (diagnostics), if any
};

/// Turns global sums into metrics with loss normalization N.
MetricsRow make_metrics(const Evaluation& evaluation, double normalization, std::int64_t iteration,
                        double seconds);

struct TrainerConfig {
  std::int64_t max_iters = 10000;
  double tol = 0.0;               // stop when train loss < tol (0: never)
  std::int64_t log_every = 100;   // metrics row + progress line every this many iterations
  std::int64_t patience = 0;      // early stopping on test loss, in log steps (0: off)
};

struct TrainResult {
  std::int64_t iterations = 0;  // update steps taken
  double seconds = 0.0;
  std::string stop_reason;      // "converged", "max_iters", "early_stopping", "requested"
  MetricsRow final;
  std::vector<MetricsRow> history;  // every logged row
};

class Trainer {
 public:
  using RowSink = std::function<void(const MetricsRow&)>;
  /// Extra per-row measurements of the chain (collective), e.g. compressibility diagnostics.
  using Probe = std::function<std::vector<double>(const Chain&)>;
  /// `sink` receives every logged row on every rank (rank 0 writes the metrics file).
  /// `stop_requested` is polled once per iteration; it must return the same on every rank.
  Trainer(TrainerConfig config, RowSink sink, std::function<bool()> stop_requested = {},
          Probe probe = {});

  /// Collective. Throws Error when the loss becomes non-finite (divergence).
  TrainResult run(Chain& chain, Strategy& strategy, Optimizer& optimizer,
                  std::int64_t start_iteration = 0, double start_seconds = 0.0);

 private:
  TrainerConfig config_;
  RowSink sink_;
  std::function<bool()> stop_requested_;
  Probe probe_;
};

}  // namespace cdmf
