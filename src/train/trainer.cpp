#include "cdmf/train/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include <fmt/core.h>

#include "cdmf/core/error.hpp"

namespace cdmf {

MetricsRow make_metrics(const Evaluation& evaluation, double normalization, std::int64_t iteration,
                        double seconds) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  MetricsRow row;
  row.iteration = iteration;
  row.seconds = seconds;
  row.train_loss = evaluation.train_sse / (2.0 * normalization);
  row.train_rmse =
      evaluation.train_count > 0
          ? std::sqrt(evaluation.train_sse / static_cast<double>(evaluation.train_count))
          : nan;
  row.test_loss = evaluation.test_count > 0 ? evaluation.test_sse / (2.0 * normalization) : nan;
  row.test_rmse = evaluation.test_count > 0
                      ? std::sqrt(evaluation.test_sse / static_cast<double>(evaluation.test_count))
                      : nan;
  if (evaluation.truth_sse && evaluation.truth_norm_sq && *evaluation.truth_norm_sq > 0.0)
    row.recovery_error = std::sqrt(*evaluation.truth_sse / *evaluation.truth_norm_sq);
  return row;
}

Trainer::Trainer(TrainerConfig config, RowSink sink, StopPoll stop_poll, Probe probe)
    : config_(config),
      sink_(std::move(sink)),
      stop_poll_(std::move(stop_poll)),
      probe_(std::move(probe)) {
  fail_if(config.max_iters < 0, "--iters must be non-negative (got {})", config.max_iters);
  fail_if(config.log_every < 1, "--log-every must be positive (got {})", config.log_every);
  fail_if(!(config.tol >= 0.0), "--tol must be non-negative (got {})", config.tol);
  fail_if(config.checkpoint_every < 0, "--checkpoint-every must be non-negative (got {})",
          config.checkpoint_every);
  fail_if(!(config.checkpoint_every_seconds >= 0.0),
          "--checkpoint-every-seconds must be non-negative (got {})",
          config.checkpoint_every_seconds);
  fail_if(!(config.walltime_budget >= 0.0), "the wall-time budget must be non-negative (got {})",
          config.walltime_budget);
  fail_if(!(config.agreement_seconds >= 0.0), "the agreement interval must be non-negative (got {})",
          config.agreement_seconds);
}

std::vector<std::string> Trainer::leading_columns() const {
  return validation_ ? std::vector<std::string>{"validation_loss", "validation_rmse"}
                     : std::vector<std::string>{};
}

TrainResult Trainer::run(Chain& chain, Strategy& strategy, Optimizer& optimizer,
                         TrainerState start) {
  fail_if(start.iteration < 0, "cannot start at iteration {}", start.iteration);
  const MPI_Comm comm = chain.factors.front().grid().comm();
  TrainResult result;
  result.history = std::move(start.history);
  const double run_start = MPI_Wtime();
  const double t0 = run_start - start.seconds;  // elapsed time continues over restarts
  double best_test = start.best_test_loss;
  std::int64_t stale_logs = start.stale_logs;
  std::int64_t best_iteration = start.best_iteration;
  std::vector<DistMatrix> best_factors = std::move(start.best_factors);
  std::vector<DistMatrix> gradient;

  // Checkpoints record the state at the top of an iteration, before its row is logged, so the
  // continued run logs that row again exactly as the uninterrupted run did.
  std::int64_t last_checkpoint = start.iteration > 0 ? start.iteration : -1;
  double last_checkpoint_time = run_start;
  double slowest_iteration = 0.0, slowest_checkpoint = 0.0;
  const auto write_checkpoint = [&](std::int64_t t, double best, std::int64_t stale,
                                    size_t history_rows) {
    const double begin = MPI_Wtime();
    TrainerState state{t,
                       begin - t0,
                       best,
                       stale,
                       {result.history.begin(),
                        result.history.begin() + static_cast<std::ptrdiff_t>(history_rows)},
                       best_iteration,
                       best_factors};
    checkpoint_(chain, optimizer, state);
    const double end = MPI_Wtime();
    slowest_checkpoint = std::max(slowest_checkpoint, end - begin);
    last_checkpoint_time = end;
    last_checkpoint = t;
    return end - begin;
  };
  // Decisions taken from clocks or signals differ between ranks: they are agreed (one small
  // allreduce) whenever one of them is in use, about every config_.agreement_seconds of work
  // (an allreduce per iteration cost 2-3% of a fast iteration): each agreement also fixes the
  // iteration of the next one, from the smallest cadence any rank proposes.
  const bool agree = static_cast<bool>(stop_poll_) || config_.checkpoint_every_seconds > 0.0 ||
                     config_.walltime_budget > 0.0;
  std::int64_t next_agreement = start.iteration;

  for (std::int64_t t = start.iteration;; ++t) {
    const double iteration_begin = MPI_Wtime();
    const double boundary_best = best_test;
    const std::int64_t boundary_stale = stale_logs;
    const size_t boundary_rows = result.history.size();
    // signal number, seconds cadence due, wall time running out, -(proposed cadence)
    int decision[4] = {0, 0, 0, 0};
    if (agree && t >= next_agreement) {
      decision[0] = stop_poll_ ? stop_poll_() : 0;
      decision[1] = config_.checkpoint_every_seconds > 0.0 &&
                    iteration_begin - last_checkpoint_time >= config_.checkpoint_every_seconds;
      const std::int64_t done = t - start.iteration;
      const double mean_iteration = done > 0 ? (iteration_begin - run_start) / static_cast<double>(done) : 0.0;
      const int proposal =
          mean_iteration > 0.0
              ? static_cast<int>(std::clamp(config_.agreement_seconds / mean_iteration, 1.0, 256.0))
              : 1;
      decision[3] = -proposal;
      // Until the next agreement at most `proposal` iterations run (the agreed cadence is the
      // smallest proposal), one of them perhaps as slow as the slowest so far.
      decision[2] = config_.walltime_budget > 0.0 &&
                    (iteration_begin - run_start) + (proposal - 1) * mean_iteration + slowest_iteration +
                            slowest_checkpoint >=
                        config_.walltime_budget;
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, decision, 4, MPI_INT, MPI_MAX, comm), "MPI_Allreduce");
      next_agreement = t - decision[3];  // decision[3] = -(the smallest proposal)
    }
    // Stopping is decided from the loss at Theta(t), which needs the metrics row when it ends.
    const bool at_limit = t >= config_.max_iters;
    const bool signalled = !at_limit && decision[0] != 0;
    const bool out_of_time = !at_limit && !signalled && decision[2] != 0;
    const bool requested = signalled || out_of_time;
    double checkpoint_seconds = 0.0;
    if (checkpoint_ && !at_limit && !requested && t > start.iteration && t != last_checkpoint &&
        ((config_.checkpoint_every > 0 && t % config_.checkpoint_every == 0) || decision[1] != 0))
      checkpoint_seconds = write_checkpoint(t, boundary_best, boundary_stale, boundary_rows);

    const bool scheduled_log = t % config_.log_every == 0;
    const bool need_gradient = !at_limit && !requested;
    Evaluation evaluation = strategy.evaluate(chain, need_gradient ? &gradient : nullptr,
                                              scheduled_log || !need_gradient);
    const double train_loss = evaluation.train_sse / (2.0 * strategy.normalization());
    fail_if(!std::isfinite(train_loss),
            "training diverged: train loss is {} at iteration {} (try a smaller --lr)", train_loss,
            t);
    const bool converged = train_loss < config_.tol;
    if (converged && !scheduled_log && need_gradient)  // recompute with the metrics to log them
      evaluation = strategy.evaluate(chain, nullptr, true);
    bool stop = at_limit || requested || converged;
    MetricsRow row = make_metrics(evaluation, strategy.normalization(), t, MPI_Wtime() - t0);
    if (scheduled_log || stop) {
      if (validation_) {
        const Evaluation held = validation_->evaluate(chain, nullptr, false);
        row.validation_loss = held.train_sse / (2.0 * validation_->normalization());
        row.validation_rmse =
            held.train_count > 0 ? std::sqrt(held.train_sse / static_cast<double>(held.train_count))
                                 : std::numeric_limits<double>::quiet_NaN();
        row.extra = {row.validation_loss, row.validation_rmse};
      }
      if (probe_) {
        const std::vector<double> probed = probe_(chain);
        row.extra.insert(row.extra.end(), probed.begin(), probed.end());
      }
      result.history.push_back(row);
      if (sink_) sink_(row);
      const double monitored = validation_ ? row.validation_loss : row.test_loss;
      if (std::isfinite(monitored)) {
        if (monitored < best_test) {
          best_test = monitored;
          stale_logs = 0;
          best_iteration = t;
          if (config_.keep_best) {  // the chain is thin when this matters: a copy per best row
            best_factors.resize(chain.factors.size(), chain.factors.front());
            for (size_t l = 0; l < chain.factors.size(); ++l) best_factors[l] = chain.factors[l];
          }
        } else if (config_.patience > 0 && ++stale_logs >= config_.patience && !stop) {
          stop = true;
          result.stop_reason = "early_stopping";
        }
      }
    }
    if (stop) {
      if (result.stop_reason.empty())
        result.stop_reason = converged     ? "converged"
                             : signalled   ? "signal"
                             : out_of_time ? "walltime"
                                           : "max_iters";
      result.stop_signal = signalled ? decision[0] : 0;
      if (checkpoint_ && t != last_checkpoint)
        write_checkpoint(t, boundary_best, boundary_stale, boundary_rows);
      result.final = row;
      result.iterations = t;
      result.seconds = row.seconds;
      result.best_iteration = best_iteration;
      result.best_loss = best_iteration >= 0 ? best_test : std::numeric_limits<double>::quiet_NaN();
      // An interrupted run keeps its last state (the checkpoint above continues it); a finished
      // one ends with the best factors.
      if (config_.keep_best && !result.interrupted() && best_iteration >= 0 && best_iteration != t)
        for (size_t l = 0; l < chain.factors.size(); ++l) chain.factors[l] = best_factors[l];
      return result;
    }
    optimizer.step(chain, gradient);
    slowest_iteration =
        std::max(slowest_iteration, MPI_Wtime() - iteration_begin - checkpoint_seconds);
  }
}

}  // namespace cdmf
