#pragma once
/// Models as chains of factors X = W_K ... W_2 W_1 (W_1 applied first), DESIGN.md section 1.
/// Every factor is a block-cyclic DistMatrix; the first factor's columns live in the permuted
/// column space and the last factor's rows in the permuted row space (IndexLayout), inner
/// dimensions are not permuted.
#include <cstdint>
#include <string>
#include <vector>

#include "cdmf/data/layout.hpp"
#include "cdmf/linalg/dist_matrix.hpp"

namespace cdmf {

enum class ModelKind { kDeep, kCompressed, kNarrow, kShallow };
std::string model_name(ModelKind kind);
/// "deep", "compressed", "narrow", "shallow"; throws Error otherwise.
ModelKind parse_model_kind(const std::string& name);

struct Chain {
  ModelKind kind = ModelKind::kDeep;
  std::vector<DistMatrix> factors;        // W_1 first
  std::vector<double> lr_multipliers;     // one per factor
  std::int64_t rows() const { return factors.back().rows(); }
  std::int64_t cols() const { return factors.front().cols(); }
  int depth() const { return static_cast<int>(factors.size()); }
  /// Width of the first inner dimension (h, or k for thin chains).
  std::int64_t width() const { return factors.front().rows(); }
};

/// Shape of factor l (0-based) in a chain of `depth` factors and width `width` for m x n.
struct FactorShape {
  std::int64_t rows, cols;
};
std::vector<FactorShape> chain_shapes(std::int64_t rows, std::int64_t cols, int depth,
                                      std::int64_t width);

/// Which index space a factor dimension lives in: the layout's permuted row space (m), its
/// permuted column space (n), or an inner (unpermuted) dimension.
enum class Space { kInner, kRows, kCols };
/// Original index of stored index `i` of a dimension in `space`.
std::int64_t original_index(const IndexLayout& layout, Space space, std::int64_t i);

/// A rows x cols matrix of standard normal draws keyed by (seed, stream, oi * cols + oj) with
/// (oi, oj) the original indices: bitwise the same entries on every grid.
DistMatrix gaussian_matrix(const ProcessGrid& grid, const IndexLayout& layout, FactorShape shape,
                           std::uint64_t seed, std::uint32_t stream, Space row_space,
                           Space col_space);

/// eps * O with O having orthonormal rows or columns (QR of a Gaussian, signs fixed so R has
/// a non-negative diagonal; the transpose when rows < cols) — torch.nn.init.orthogonal_ up to
/// the random draws. Draws are keyed by (seed, stream, original index), so the factor is the
/// same on every grid. `permute_rows`/`permute_cols` say whether that dimension is stored in
/// the layout's permuted row / column space.
DistMatrix orthogonal_factor(const ProcessGrid& grid, const IndexLayout& layout, FactorShape shape,
                             double scale, std::uint64_t seed, std::uint32_t stream,
                             Space row_space, Space col_space);

/// Throws Error unless a chain of `depth` factors at init scale eps = `init_scale` can be
/// built and trained: depth >= 2, eps finite and positive, and eps^L (the scale of the initial
/// end-to-end matrix, and 1/eps^L the scale compression divides by) a normal double, neither
/// underflowing to zero (then no gradient reaches the factors, whatever the step size) nor
/// overflowing. `width` below -1 is refused (0 stands for max(m, n), -1 for min(m, n)).
/// Checks numbers only.
void check_chain_options(int depth, std::int64_t width, double init_scale);

/// The deep chain of the design's table: depth L, width h, W_l(0) = eps * O_l, multipliers 1.
/// Factor l uses RNG stream Stream::kFactorInit + l.
Chain make_deep_chain(const ProcessGrid& grid, const IndexLayout& layout, int depth,
                      std::int64_t width, double init_scale, std::uint64_t seed,
                      ModelKind kind = ModelKind::kDeep);

/// The end-to-end matrix W_K ... W_1 (m x n, permuted indices).
DistMatrix end_to_end(const Chain& chain);

/// Collective over the factors' grid: "" when the chain is usable, else one line saying why
/// not: a factor holding non-finite values ("W3 holds 12 non-finite values (inf or NaN)"), or
/// finite factors whose norms multiply beyond 1e150 (an upper bound of ||W_K...W_1||_F), so
/// the end-to-end matrix overflows in a product or an SVD. A diverged run's state; it must not
/// reach LAPACK or a restart.
std::string diverged_factors(const std::vector<DistMatrix>& factors);

}  // namespace cdmf
