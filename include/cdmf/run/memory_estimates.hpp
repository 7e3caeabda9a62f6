#pragma once
/// What a training run will allocate, per model and strategy, stated before it allocates
/// (include/cdmf/core/memory_plan.hpp checks it against the machine).
#include <cstdint>

#include "cdmf/core/memory_plan.hpp"
#include "cdmf/grid/process_grid.hpp"

namespace cdmf::run {

/// The shape of a training run as far as memory goes.
struct TrainFootprint {
  std::int64_t rows = 0, cols = 0;  // m, n
  std::int64_t entries = 0;         // training + test entries over all ranks
  int depth = 3;                    // factors of the chain that is trained
  std::int64_t width = 0;           // its width (h, or k = 2 rhat for thin chains)
  bool dense_strategy = false;      // the dense strategy forms m x n matrices
  int optimizer_copies = 0;         // factor-sized optimizer states (adam 2, momentum 1)
  /// A compressed model built from an explicit deep init: the deep chain of this depth and
  /// width and its dense first gradient exist during start-up (0: none).
  int deep_init_depth = 0;
  std::int64_t deep_init_width = 0;
  bool diagnostics = false;  // a copy of W_l(0) and PDGESVD work on every factor
};

/// The plan of a training run on `grid`. Bytes of factors, products and gradients are
/// distributed over the grid; the sparse strategy's panels are counted at the busiest
/// process's share (m/Pr and n/Pc rows of the thin outer factors, three panels each).
MemoryPlan plan_train_memory(const std::string& what, const TrainFootprint& footprint,
                             const ProcessGrid& grid);

}  // namespace cdmf::run
