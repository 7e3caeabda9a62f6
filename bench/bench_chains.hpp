#pragma once
// Chains the benchmarks evaluate, shared by cdmf_bench_sparse and cdmf_bench_comm.
#include <cmath>
#include <cstdint>
#include <vector>

#include "cdmf/data/layout.hpp"
#include "cdmf/model/chain.hpp"

namespace cdmf::bench {

/// A compressed-shape chain [V^T (k x n), `inner` k x k factors, U (m x k)] of Gaussian
/// entries scaled by 1/sqrt(k), the same on every grid.
inline Chain compressed_shape_chain(const ProcessGrid& grid, const IndexLayout& layout,
                                    std::int64_t m, std::int64_t n, std::int64_t k, int inner) {
  Chain chain;
  chain.kind = ModelKind::kCompressed;
  std::vector<FactorShape> shapes{{k, n}};
  for (int l = 0; l < inner; ++l) shapes.push_back({k, k});
  shapes.push_back({m, k});
  for (size_t l = 0; l < shapes.size(); ++l) {
    chain.factors.push_back(gaussian_matrix(grid, layout, shapes[l], 3,
                                            static_cast<std::uint32_t>(200 + l),
                                            l + 1 == shapes.size() ? Space::kRows : Space::kInner,
                                            l == 0 ? Space::kCols : Space::kInner));
    for (double& x : chain.factors.back().local()) x /= std::sqrt(static_cast<double>(k));
    chain.lr_multipliers.push_back(1.0);
  }
  return chain;
}

}  // namespace cdmf::bench
