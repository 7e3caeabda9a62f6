#include "cdmf/model/chain.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

#include "cdmf/core/error.hpp"
#include "cdmf/random/counter_rng.hpp"

namespace cdmf {

std::string model_name(ModelKind kind) {
  switch (kind) {
    case ModelKind::kDeep: return "deep";
    case ModelKind::kCompressed: return "compressed";
    case ModelKind::kNarrow: return "narrow";
    case ModelKind::kShallow: return "shallow";
  }
  return "unknown";
}

ModelKind parse_model_kind(const std::string& name) {
  for (ModelKind kind : {ModelKind::kDeep, ModelKind::kCompressed, ModelKind::kNarrow, ModelKind::kShallow})
    if (model_name(kind) == name) return kind;
  fail("unknown model '{}' (expected deep, compressed, narrow or shallow)", name);
}

std::vector<FactorShape> chain_shapes(std::int64_t rows, std::int64_t cols, int depth,
                                      std::int64_t width) {
  fail_if(depth < 1, "depth must be at least 1 (got {})", depth);
  fail_if(width < 1, "width must be positive (got {})", width);
  std::vector<FactorShape> shapes;
  if (depth == 1) return {{rows, cols}};
  shapes.push_back({width, cols});
  for (int l = 1; l + 1 < depth; ++l) shapes.push_back({width, width});
  shapes.push_back({rows, width});
  return shapes;
}

std::int64_t original_index(const IndexLayout& layout, Space space, std::int64_t i) {
  switch (space) {
    case Space::kRows: return layout.original_row(i);
    case Space::kCols: return layout.original_col(i);
    case Space::kInner: break;
  }
  return i;
}

DistMatrix gaussian_matrix(const ProcessGrid& grid, const IndexLayout& layout, FactorShape shape,
                           std::uint64_t seed, std::uint32_t stream, Space row_space,
                           Space col_space) {
  // Entry (i, j) is draw oi * cols + oj of the stream (oi, oj: original indices), made a local
  // column at a time in batches.
  DistMatrix g(grid, shape.rows, shape.cols, layout.block());
  const size_t local_rows = static_cast<size_t>(g.local_rows());
  std::vector<std::uint64_t> row_start(local_rows), index(local_rows);
  for (size_t li = 0; li < local_rows; ++li)
    row_start[li] = static_cast<std::uint64_t>(
        original_index(layout, row_space, g.row_dim().global(static_cast<std::int64_t>(li))) *
        shape.cols);
  for (std::int64_t lj = 0; lj < g.local_cols(); ++lj) {
    const auto oj = static_cast<std::uint64_t>(original_index(layout, col_space, g.col_dim().global(lj)));
    for (size_t li = 0; li < local_rows; ++li) index[li] = row_start[li] + oj;
    gaussians(seed, stream, index.data(), local_rows, g.data() + lj * g.ld());
  }
  return g;
}

DistMatrix orthogonal_factor(const ProcessGrid& grid, const IndexLayout& layout, FactorShape shape,
                             double scale, std::uint64_t seed, std::uint32_t stream,
                             Space row_space, Space col_space) {
  // Orthogonalise the tall orientation T (a x b, a >= b); the factor is T or T^T.
  const bool wide = shape.rows < shape.cols;
  DistMatrix tall = wide ? gaussian_matrix(grid, layout, {shape.cols, shape.rows}, seed, stream,
                                           col_space, row_space)
                         : gaussian_matrix(grid, layout, shape, seed, stream, row_space, col_space);
  orthonormalize_columns(tall);
  for (double& x : tall.local()) x *= scale;
  if (wide) return transposed(tall);
  return tall;  // moved (a conditional expression would copy it)
}

void check_chain_options(int depth, std::int64_t width, double init_scale) {
  fail_if(depth < 2, "--depth must be at least 2 (got {})", depth);
  // The compressed chain has L + 2 factors, counted in an int.
  fail_if(depth > std::numeric_limits<int>::max() - 2, "--depth {} is too large", depth);
  fail_if(width < -1, "--width must be positive, 0 (max(m, n)) or -1 (min(m, n)) (got {})", width);
  fail_if(!std::isfinite(init_scale) || !(init_scale > 0.0),
          "--init-scale must be a positive number (got {})", init_scale);
  // log10(eps^L) = L log10(eps), computed without forming eps^L.
  const double exponent = static_cast<double>(depth) * std::log10(init_scale);
  fail_if(exponent < std::log10(DBL_MIN),
          "--init-scale {} with --depth {}: eps^L = 1e{:.0f} underflows (the smallest normal double "
          "is 2.2e-308), so the initial end-to-end matrix is zero and no gradient reaches the "
          "factors, whatever the step size: use fewer factors or a larger --init-scale",
          init_scale, depth, exponent);
  fail_if(exponent > std::log10(DBL_MAX),
          "--init-scale {} with --depth {}: eps^L = 1e{:.0f} overflows (the largest double is "
          "1.8e308): use fewer factors or a smaller --init-scale",
          init_scale, depth, exponent);
}

Chain make_deep_chain(const ProcessGrid& grid, const IndexLayout& layout, int depth,
                      std::int64_t width, double init_scale, std::uint64_t seed, ModelKind kind) {
  fail_if(!std::isfinite(init_scale) || !(init_scale > 0.0),
          "--init-scale must be a positive number (got {})", init_scale);
  const auto shapes = chain_shapes(layout.rows(), layout.cols(), depth, width);
  Chain chain;
  chain.kind = kind;
  for (int l = 0; l < depth; ++l) {
    chain.factors.push_back(orthogonal_factor(
        grid, layout, shapes[l], init_scale, seed,
        static_cast<std::uint32_t>(Stream::kFactorInit) + static_cast<std::uint32_t>(l),
        l == depth - 1 ? Space::kRows : Space::kInner, l == 0 ? Space::kCols : Space::kInner));
    chain.lr_multipliers.push_back(1.0);
  }
  return chain;
}

DistMatrix end_to_end(const Chain& chain) {
  DistMatrix product = chain.factors.front();
  for (size_t l = 1; l < chain.factors.size(); ++l) {
    const DistMatrix& w = chain.factors[l];
    DistMatrix next(w.grid(), w.rows(), product.cols(), w.block());
    gemm('N', 'N', 1.0, w, product, 0.0, next);
    product = std::move(next);
  }
  return product;
}

std::string diverged_factors(const std::vector<DistMatrix>& factors) {
  if (factors.empty()) return "";
  // Per factor: the count of non-finite entries and the squared Frobenius norm.
  std::vector<double> sums(2 * factors.size(), 0.0);
  for (size_t l = 0; l < factors.size(); ++l)
    for (const double value : factors[l].local()) {
      if (std::isfinite(value))
        sums[2 * l + 1] += value * value;
      else
        sums[2 * l] += 1.0;
    }
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, sums.data(), static_cast<int>(sums.size()), MPI_DOUBLE,
                          MPI_SUM, factors.front().grid().comm()),
            "MPI_Allreduce");
  double log_bound = 0.0;  // log10 of prod_l ||W_l||_F >= ||W_K ... W_1||_F
  for (size_t l = 0; l < factors.size(); ++l) {
    if (sums[2 * l] > 0.0)
      return fmt::format("W{} holds {:.0f} non-finite values (inf or NaN)", l + 1, sums[2 * l]);
    log_bound += 0.5 * std::log10(sums[2 * l + 1]);  // inf when the norm itself overflows
  }
  // Room for the squares an SVD forms: entries beyond 1e150 are not computed with.
  if (log_bound > 150.0)
    return fmt::format("the factors' norms multiply to 1e{:.0f}, so W_K...W_1 overflows", log_bound);
  return "";
}

}  // namespace cdmf
