#pragma once
/// The training loop (DESIGN.md section 2, layer 7): evaluate, log, check stopping, step.
/// Iteration t evaluates Theta(t); the run stops at t = max_iters, when the train loss drops
/// below tol (the reference's criterion), when the monitored loss (the validation loss when a
/// validation set is given, else the test loss) has not improved for `patience` log steps
/// (optional early stopping), on a signal, or when the wall-time budget runs out. With
/// `keep_best`, a run that ends (not an interruption) leaves the chain of the logged iteration
/// with the best monitored loss, not the last one.
///
/// Checkpoints and restarts: at an iteration boundary t the whole state of the run is
/// (Theta(t), the optimizer state after t steps, TrainerState). The trainer hands it to a
/// checkpoint hook every `checkpoint_every` iterations, every `checkpoint_every_seconds`, and
/// when it stops; run() continues from a TrainerState read back from a checkpoint, and on the
/// same grid the continued run is bitwise the run that was never interrupted.
#include <cstdint>
#include <functional>
#include <limits>
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
  double train_loss = 0.0;  // f = sse / (2N)
  double test_loss = 0.0;   // same formula on the test set (the reference's "recovery error")
  double train_rmse = 0.0;
  double test_rmse = 0.0;
  std::optional<double> recovery_error;
  double validation_loss = std::numeric_limits<double>::quiet_NaN();  // NaN without validation
  double validation_rmse = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> extra;  // values of the trainer's probe columns (diagnostics), if any
};

/// Turns global sums into metrics with loss normalization N.
MetricsRow make_metrics(const Evaluation& evaluation, double normalization, std::int64_t iteration,
                        double seconds);

struct TrainerConfig {
  std::int64_t max_iters = 10000;
  double tol = 0.0;              // stop when train loss < tol (0: never)
  std::int64_t log_every = 100;  // metrics row + progress line at iterations t % log_every == 0
  std::int64_t patience = 0;     // early stopping on test loss, in log steps (0: off)
  std::int64_t checkpoint_every = 0;      // checkpoint at iterations t % this == 0 (0: off)
  double checkpoint_every_seconds = 0.0;  // and when this much wall time passed since the last
  /// Wall-clock seconds this run() may use (0: unlimited). The run stops, with a checkpoint,
  /// at the first boundary where the time used plus the slowest iteration and the slowest
  /// checkpoint write so far would exceed it.
  double walltime_budget = 0.0;
  /// Signals, the seconds cadence and the wall-time budget are agreed across ranks (one small
  /// allreduce) every so many iterations that about this much work runs between agreements
  /// (0: at every iteration). A signal stops the run within about this much time.
  double agreement_seconds = 0.01;
  /// Keep the factors of the best logged iteration (by the monitored loss) and end with them.
  bool keep_best = false;
};

/// Where a run stands at an iteration boundary, besides the factors and the optimizer: what
/// a checkpoint records and a restart resumes from.
struct TrainerState {
  std::int64_t iteration = 0;  // the next iteration to evaluate (the factors are Theta(iteration))
  double seconds = 0.0;        // training wall time used so far, over every restart
  double best_test_loss = std::numeric_limits<double>::infinity();  // early stopping
  std::int64_t stale_logs = 0;                                      // early stopping
  std::vector<MetricsRow> history;  // logged rows of the iterations before `iteration`
  /// The logged iteration with the best monitored loss so far (-1: none yet), and with
  /// keep_best its factors.
  std::int64_t best_iteration = -1;
  std::vector<DistMatrix> best_factors;
};

struct TrainResult {
  std::int64_t iterations = 0;  // update steps taken since iteration 0 (over every restart)
  double seconds = 0.0;
  /// "converged", "max_iters", "early_stopping", "signal" (stop_signal says which) or
  /// "walltime". The last two are interruptions: the run is not finished.
  std::string stop_reason;
  int stop_signal = 0;
  MetricsRow final;
  std::vector<MetricsRow> history;  // every logged row, from iteration 0 (restored ones first)
  /// The logged iteration with the lowest monitored loss (validation, else test; -1 when
  /// neither is known) and that loss; with keep_best, the chain run() leaves is that one's.
  std::int64_t best_iteration = -1;
  double best_loss = std::numeric_limits<double>::quiet_NaN();
  bool interrupted() const { return stop_reason == "signal" || stop_reason == "walltime"; }
};

class Trainer {
 public:
  using RowSink = std::function<void(const MetricsRow&)>;
  /// Extra per-row measurements of the chain (collective), e.g. compressibility diagnostics.
  using Probe = std::function<std::vector<double>(const Chain&)>;
  /// A signal received by this rank (its number), or 0. Polled at every iteration boundary;
  /// the trainer agrees on it across ranks, so a signal seen by one rank stops all of them.
  using StopPoll = std::function<int()>;
  /// Collective: writes a checkpoint of the state at a boundary.
  using CheckpointHook = std::function<void(const Chain& chain, const Optimizer& optimizer,
                                            const TrainerState& state)>;

  /// `sink` receives every logged row on every rank (rank 0 writes the metrics file).
  Trainer(TrainerConfig config, RowSink sink, StopPoll stop_poll = {}, Probe probe = {});

  /// Checkpoints at the configured cadence and whenever the run stops.
  void set_checkpoint_hook(CheckpointHook hook) { checkpoint_ = std::move(hook); }
  /// Evaluates `validation` (its training set is the validation entries, its normalization
  /// theirs) at every logged row: the columns validation_loss and validation_rmse, first among
  /// the row's extra values, and the loss early stopping and keep_best monitor.
  void set_validation(Strategy* validation) { validation_ = validation; }
  /// Names of the extra columns run() fills before the probe's.
  std::vector<std::string> leading_columns() const;

  /// Collective. Continues from `start` (a fresh run: the default). Throws Error when the
  /// loss becomes non-finite (divergence).
  TrainResult run(Chain& chain, Strategy& strategy, Optimizer& optimizer, TrainerState start = {});

 private:
  TrainerConfig config_;
  RowSink sink_;
  StopPoll stop_poll_;
  Probe probe_;
  CheckpointHook checkpoint_;
  Strategy* validation_ = nullptr;
};

}  // namespace cdmf
