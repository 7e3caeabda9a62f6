#pragma once
/// First-order update rules with a learning-rate multiplier per factor (DESIGN.md section 1,
/// "Optimizers"). With lr_l = lr * multiplier_l and g the gradient of factor l:
///   gd:        W -= lr_l g
///   momentum:  v = mu v + g;  W -= lr_l v                     (heavy ball, PyTorch SGD)
///   nesterov:  v = mu v + g;  W -= lr_l (g + mu v)            (PyTorch SGD nesterov=True)
///   adam:      m = b1 m + (1-b1) g;  s = b2 s + (1-b2) g^2;
///              W -= lr_l (m / (1-b1^t)) / (sqrt(s / (1-b2^t)) + eps_adam)
/// With weight decay w > 0 every rule first shrinks the factor, W -= lr_l w W (decoupled, as
/// PyTorch's AdamW: with adam it is AdamW exactly).
/// All updates are local to each rank's blocks (the state has the factors' layouts).
#include <cstdint>
#include <string>
#include <vector>

#include "cdmf/linalg/dist_matrix.hpp"
#include "cdmf/model/chain.hpp"

namespace cdmf {

enum class OptimizerKind { kGd, kMomentum, kNesterov, kAdam };
std::string optimizer_name(OptimizerKind kind);
/// "gd", "momentum", "nesterov", "adam"; throws Error otherwise.
OptimizerKind parse_optimizer_kind(const std::string& name);

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kGd;
  double lr = 1.0;
  double momentum = 0.9;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double adam_epsilon = 1e-8;
  double weight_decay = 0.0;  // decoupled (AdamW); 0: off
};

class Optimizer {
 public:
  /// Validates the configuration (positive step, momentum in [0,1), betas in [0,1)) and
  /// allocates zero state shaped like `chain`'s factors.
  Optimizer(const OptimizerConfig& config, const Chain& chain);

  /// One update of every factor of `chain` from `gradient`.
  void step(Chain& chain, const std::vector<DistMatrix>& gradient);

  const OptimizerConfig& config() const { return config_; }
  std::int64_t step_count() const { return step_count_; }
  /// Per-factor state: velocities (momentum/nesterov) or first moments (adam).
  std::vector<DistMatrix>& first_moments() { return first_; }
  const std::vector<DistMatrix>& first_moments() const { return first_; }
  /// Per-factor second moments (adam only).
  std::vector<DistMatrix>& second_moments() { return second_; }
  const std::vector<DistMatrix>& second_moments() const { return second_; }
  void set_step_count(std::int64_t count) { step_count_ = count; }

 private:
  OptimizerConfig config_;
  std::int64_t step_count_ = 0;
  std::vector<DistMatrix> first_;
  std::vector<DistMatrix> second_;
};

}  // namespace cdmf
