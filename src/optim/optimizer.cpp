#include "cdmf/optim/optimizer.hpp"

#include <cmath>

#include "cdmf/core/error.hpp"

namespace cdmf {

std::string optimizer_name(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kGd: return "gd";
    case OptimizerKind::kMomentum: return "momentum";
    case OptimizerKind::kNesterov: return "nesterov";
    case OptimizerKind::kAdam: return "adam";
  }
  return "unknown";
}

OptimizerKind parse_optimizer_kind(const std::string& name) {
  for (OptimizerKind kind : {OptimizerKind::kGd, OptimizerKind::kMomentum, OptimizerKind::kNesterov,
                             OptimizerKind::kAdam})
    if (optimizer_name(kind) == name) return kind;
  fail("unknown optimizer '{}' (expected gd, momentum, nesterov or adam)", name);
}

Optimizer::Optimizer(const OptimizerConfig& config, const Chain& chain) : config_(config) {
  fail_if(!(config.lr > 0.0) || !std::isfinite(config.lr), "--lr must be positive and finite (got {})", config.lr);
  fail_if(!(config.momentum >= 0.0 && config.momentum < 1.0), "--momentum must be in [0, 1) (got {})",
          config.momentum);
  fail_if(!(config.beta1 >= 0.0 && config.beta1 < 1.0 && config.beta2 >= 0.0 && config.beta2 < 1.0),
          "Adam betas must be in [0, 1)");
  fail_if(!(config.adam_epsilon > 0.0), "Adam epsilon must be positive");
  fail_if(!(config.weight_decay >= 0.0) || !std::isfinite(config.weight_decay),
          "--weight-decay must be non-negative (got {})", config.weight_decay);
  for (double multiplier : chain.lr_multipliers)
    fail_if(!(multiplier >= 0.0) || !std::isfinite(multiplier),
            "learning-rate multipliers must be non-negative and finite (got {})", multiplier);
  if (config.kind == OptimizerKind::kGd) return;
  for (const DistMatrix& w : chain.factors) first_.emplace_back(w.grid(), w.rows(), w.cols(), w.block());
  if (config.kind == OptimizerKind::kAdam)
    for (const DistMatrix& w : chain.factors) second_.emplace_back(w.grid(), w.rows(), w.cols(), w.block());
}

void Optimizer::step(Chain& chain, const std::vector<DistMatrix>& gradient) {
  ++step_count_;
  const double mu = config_.momentum;
  const double bias1 = 1.0 - std::pow(config_.beta1, static_cast<double>(step_count_));
  const double bias2 = 1.0 - std::pow(config_.beta2, static_cast<double>(step_count_));
  for (size_t l = 0; l < chain.factors.size(); ++l) {
    const double lr = config_.lr * chain.lr_multipliers[l];
    std::vector<double>& w = chain.factors[l].local();
    const std::vector<double>& g = gradient[l].local();
    if (config_.weight_decay > 0.0) {
      const double shrink = 1.0 - lr * config_.weight_decay;
      for (double& x : w) x *= shrink;
    }
    switch (config_.kind) {
      case OptimizerKind::kGd:
        for (size_t e = 0; e < w.size(); ++e) w[e] -= lr * g[e];
        break;
      case OptimizerKind::kMomentum: {
        std::vector<double>& v = first_[l].local();
        for (size_t e = 0; e < w.size(); ++e) {
          v[e] = mu * v[e] + g[e];
          w[e] -= lr * v[e];
        }
        break;
      }
      case OptimizerKind::kNesterov: {
        std::vector<double>& v = first_[l].local();
        for (size_t e = 0; e < w.size(); ++e) {
          v[e] = mu * v[e] + g[e];
          w[e] -= lr * (g[e] + mu * v[e]);
        }
        break;
      }
      case OptimizerKind::kAdam: {
        std::vector<double>& m = first_[l].local();
        std::vector<double>& s = second_[l].local();
        for (size_t e = 0; e < w.size(); ++e) {
          m[e] = config_.beta1 * m[e] + (1.0 - config_.beta1) * g[e];
          s[e] = config_.beta2 * s[e] + (1.0 - config_.beta2) * g[e] * g[e];
          w[e] -= lr * (m[e] / bias1) / (std::sqrt(s[e] / bias2) + config_.adam_epsilon);
        }
        break;
      }
    }
  }
}

}  // namespace cdmf
