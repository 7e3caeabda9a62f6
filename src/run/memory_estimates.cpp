#include "cdmf/run/memory_estimates.hpp"

#include <algorithm>
#include <cmath>

namespace cdmf::run {
namespace {

constexpr double kDouble = 8.0;

/// Elements of a chain of `depth` factors of width `width` for m x n (DESIGN.md's shapes:
/// W_1 h x n, inner h x h, W_L m x h; a depth-2 chain has no inner factor).
double chain_elements(double m, double n, int depth, double width) {
  return width * n + std::max(0, depth - 2) * width * width + m * width;
}

}  // namespace

MemoryPlan plan_train_memory(const std::string& what, const TrainFootprint& f,
                             const ProcessGrid& grid) {
  MemoryPlan plan(what);
  const double m = static_cast<double>(f.rows), n = static_cast<double>(f.cols);
  // Entries at the load: parsed triplets with their source lines (32 bytes an entry) handed
  // over in rounds to the received records (24), sorted in place, then the 16-byte
  // observations (33-35 bytes an entry in total at the peak, fixed costs included, measured on
  // the Netflix-shaped 1e8 load, docs/scale.md); skewed data can leave one rank with more.
  plan.add("entries", 40.0 * static_cast<double>(f.entries), 0.0, 1.25);
  // The index layout's row and column permutations and their inverses, on every rank: what a
  // lone index of 2e9 in a small file would make 32 GB of.
  plan.add("index permutations", 0.0, 4.0 * (m + n) * kDouble);
  const double factors = chain_elements(m, n, f.depth, static_cast<double>(f.width)) * kDouble;
  // Factors, their gradients and the optimizer's states.
  plan.add("factors", factors * (2.0 + f.optimizer_copies));
  if (f.diagnostics) plan.add("diagnostics (W_l(0))", factors * 2.0);
  if (f.dense_strategy) {
    // The forward products W_{l:1} (one of each factor's rows x n), the residual and the
    // back-propagated products: about 2 L + 1 matrices of max(m, h) x n.
    const double rows = std::max(m, static_cast<double>(f.width));
    plan.add("dense products (X, S and partial products)",
             (2.0 * f.depth + 1.0) * rows * n * kDouble);
  } else {
    const double k = static_cast<double>(f.width);
    // Per process: its grid row's m/Pr rows and its grid column's n/Pc rows, three panels of
    // each; counted as distributed so that more ranks (a larger grid) shrink it.
    const double panels = 3.0 * k * (m / grid.rows() + n / grid.cols()) * kDouble;
    plan.add("sparse panels (U, V rows and their gradients)", panels * grid.size(),
             4.0 * k * k * kDouble);
  }
  if (f.implicit_init) {
    // S0 on Omega (value and two local indices, 16 bytes an entry), PARPACK's basis of
    // ~max(2 rhat + 3, rhat + 21) vectors of the smaller side (split over the ranks), and on
    // every rank: P's permutation, signs and inverse (24 bytes per h, 40 while drawn), the
    // SVD's U_S0, V_S0 and the thin V, U, Q^T U_S0 (about 4 (m + n) k doubles).
    const double h = static_cast<double>(f.deep_init_width), r = static_cast<double>(f.rank);
    const double ncv = std::max(2.0 * r + 3.0, r + 21.0);
    plan.add("implicit init for compression (S0 on Omega, PARPACK's basis)",
             16.0 * static_cast<double>(f.entries) + ncv * std::min(m, n) * kDouble, 0.0, 1.25);
    plan.add("implicit init for compression (permutation, thin SVD factors)", 0.0,
             40.0 * h + 4.0 * (m + n) * 2.0 * r * kDouble);
  } else if (f.deep_init_depth > 0) {
    const double h = static_cast<double>(f.deep_init_width);
    const double deep = chain_elements(m, n, f.deep_init_depth, h) * kDouble;
    const double rows = std::max(m, h);
    plan.add("deep init for compression (factors, X, S and the first gradient)",
             deep + (2.0 * f.deep_init_depth + 1.0) * rows * n * kDouble);
  }
  return plan;
}

}  // namespace cdmf::run
