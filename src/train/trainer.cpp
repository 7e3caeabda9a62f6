#include "cdmf/train/trainer.hpp"

#include <cmath>
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
  row.train_rmse = evaluation.train_count > 0
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

Trainer::Trainer(TrainerConfig config, RowSink sink, std::function<bool()> stop_requested,
                 Probe probe)
    : config_(config), sink_(std::move(sink)), stop_requested_(std::move(stop_requested)),
      probe_(std::move(probe)) {
  fail_if(config.max_iters < 0, "--iters must be non-negative (got {})", config.max_iters);
  fail_if(config.log_every < 1, "--log-every must be positive (got {})", config.log_every);
  fail_if(!(config.tol >= 0.0), "--tol must be non-negative (got {})", config.tol);
}

TrainResult Trainer::run(Chain& chain, Strategy& strategy, Optimizer& optimizer,
                         std::int64_t start_iteration, double start_seconds) {
  TrainResult result;
  const double t0 = MPI_Wtime() - start_seconds;
  std::vector<DistMatrix> gradient;
  double best_test = std::numeric_limits<double>::infinity();
  std::int64_t stale_logs = 0;
  for (std::int64_t t = start_iteration;; ++t) {
    // Stopping is decided from the loss at Theta(t), which needs the metrics row when it ends.
    const bool at_limit = t >= config_.max_iters;
    const bool requested = !at_limit && stop_requested_ && stop_requested_();
    const bool scheduled_log = (t - start_iteration) % config_.log_every == 0;
    const bool need_gradient = !at_limit && !requested;
    Evaluation evaluation =
        strategy.evaluate(chain, need_gradient ? &gradient : nullptr, scheduled_log || !need_gradient);
    const double train_loss = evaluation.train_sse / (2.0 * strategy.normalization());
    fail_if(!std::isfinite(train_loss),
            "training diverged: train loss is {} at iteration {} (try a smaller --lr)", train_loss, t);
    const bool converged = train_loss < config_.tol;
    if (converged && !scheduled_log && need_gradient)  // recompute with the metrics to log them
      evaluation = strategy.evaluate(chain, nullptr, true);
    bool stop = at_limit || requested || converged;
    MetricsRow row = make_metrics(evaluation, strategy.normalization(), t, MPI_Wtime() - t0);
    if (probe_ && (scheduled_log || stop)) row.extra = probe_(chain);
    if (scheduled_log || stop) {
      result.history.push_back(row);
      if (sink_) sink_(row);
      if (config_.patience > 0 && std::isfinite(row.test_loss)) {
        if (row.test_loss < best_test) {
          best_test = row.test_loss;
          stale_logs = 0;
        } else if (++stale_logs >= config_.patience && !stop) {
          stop = true;
          result.stop_reason = "early_stopping";
        }
      }
    }
    if (stop) {
      if (result.stop_reason.empty())
        result.stop_reason = converged ? "converged" : requested ? "requested" : "max_iters";
      if (result.history.empty() || result.history.back().iteration != t) {
        result.history.push_back(row);
        if (sink_) sink_(row);
      }
      result.final = row;
      result.iterations = t;
      result.seconds = row.seconds;
      return result;
    }
    optimizer.step(chain, gradient);
  }
}

}  // namespace cdmf
