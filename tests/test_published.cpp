// The published "benefit of depth" behaviour at small size (DESIGN.md section 6): on a
// 100 x 100 rank-10 matrix with 30% observed and eps = 1e-3, width 100, depth 3 recovers the
// matrix while depth 2 fits the observed entries and overfits.
//
// Step sizes: the published 3e2 for depth 3 sits at the edge of GD stability for the design's
// data recipe (truncated Gaussian, top singular value ~19.5): the loss oscillates and needs
// ~65,000 iterations to pass 1e-6 (docs/reproduction.md). 1.5e2 follows the same trajectory
// shape without oscillation; depth 2 uses the published 1e2.
#include <gtest/gtest.h>

#include "cdmf/data/synthetic.hpp"
#include "cdmf/model/chain.hpp"
#include "cdmf/optim/optimizer.hpp"
#include "cdmf/strategy/dense_strategy.hpp"
#include "cdmf/train/trainer.hpp"
#include "support/test_support.hpp"

namespace cdmf {
namespace {

struct DepthRun {
  TrainResult result;
  double test_loss;
};

DepthRun train_depth(const ProcessGrid& grid, int depth, double lr) {
  const SyntheticProblem problem = make_synthetic_problem(grid, {100, 100, 10, 0.3, -1.0, 1});
  IndexLayout layout(100, 100, choose_block_size(100, 100, grid), 1);
  const Observations train = distribute(grid, problem.train, layout);
  const Observations test = distribute(grid, problem.test, layout);
  DenseStrategy strategy(train, &test, std::nullopt, 100.0 * 100.0);
  Chain chain = make_deep_chain(grid, layout, depth, 100, 1e-3, 7);
  Optimizer optimizer({OptimizerKind::kGd, lr}, chain);
  Trainer trainer({60000, 1e-12, 5000, 0}, {});
  DepthRun run{trainer.run(chain, strategy, optimizer), 0.0};
  run.test_loss = run.result.final.test_loss;
  return run;
}

TEST(PublishedBehaviour, DepthThreeRecoversWhereDepthTwoOverfits) {
  test::on_grid(near_square_shape(test::world_size()), [](const ProcessGrid& grid) {
    const DepthRun deep3 = train_depth(grid, 3, 150.0);
    const DepthRun deep2 = train_depth(grid, 2, 100.0);
    // Both fit the observed entries ...
    EXPECT_EQ(deep3.result.stop_reason, "converged");
    EXPECT_EQ(deep2.result.stop_reason, "converged");
    // ... but only depth 3 generalises to the unobserved ones.
    EXPECT_LT(deep3.test_loss, 1e-6);
    EXPECT_GT(deep2.test_loss, 1e-4);
    if (grid.is_root())
      std::printf("depth 3: %lld iterations, test loss %.3e; depth 2: %lld iterations, test loss %.3e\n",
                  static_cast<long long>(deep3.result.iterations), deep3.test_loss,
                  static_cast<long long>(deep2.result.iterations), deep2.test_loss);
  });
}

}  // namespace
}  // namespace cdmf
