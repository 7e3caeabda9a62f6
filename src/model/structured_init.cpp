#include "cdmf/model/structured_init.hpp"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "cdmf/linalg/truncated_svd.hpp"
#include "cdmf/random/counter_rng.hpp"

namespace cdmf {

namespace {
// Streams of the structured factors, apart from the dense init's kFactorInit + l.
constexpr std::uint32_t kStructuredPermutation = static_cast<std::uint32_t>(Stream::kFactorInit) + 50;
constexpr std::uint32_t kStructuredSign = static_cast<std::uint32_t>(Stream::kFactorInit) + 70;
/// Collective: the whole of a thin matrix on every rank, column-major.
std::vector<double> replicated(const DistMatrix& a) {
  std::vector<double> full = a.gather();
  full.resize(static_cast<size_t>(a.rows() * a.cols()));
  check_mpi(MPI_Bcast(full.data(), static_cast<int>(full.size()), MPI_DOUBLE, 0, a.grid().comm()),
            "MPI_Bcast");
  return full;
}

/// Collective: the checks compress_chain makes, for the implicit paths.
void validate_implicit(const ProcessGrid& grid, const IndexLayout& layout, const StructuredInit& init,
                       const CompressionConfig& config) {
  const std::int64_t m = layout.rows(), n = layout.cols(), rank = config.rank;
  run_agreed(grid.comm(), [&] {
    fail_if(rank < 1, "--rank must be at least 1 for the compressed model (got {})", rank);
    fail_if(2 * rank > std::min(m, n),
            "--rank {}: the compressed width 2*rank = {} exceeds min(rows, cols) = {}", rank, 2 * rank,
            std::min(m, n));
    fail_if(!(config.init_scale > 0.0), "--init-scale must be positive (got {})", config.init_scale);
    fail_if(!(config.gamma >= 0.0) || !std::isfinite(config.gamma),
            "--gamma must be non-negative and finite (got {})", config.gamma);
    fail_if(init.rows() != m || init.cols() != n, "structured init of {} x {} for a {} x {} problem",
            init.rows(), init.cols(), m, n);
  });
}

/// eps^L as the chain's product forms it.
double chain_scale(const StructuredInit& init, double init_scale) {
  double scale = 1.0;
  for (int l = 0; l < init.depth(); ++l) scale *= init_scale;
  return scale;
}

/// Collective: Q X for X (n x s) on the grid, m x s: X is replicated a panel of columns at a
/// time (n x 64 words on every rank), never whole.
DistMatrix apply_q(const StructuredInit& init, const DistMatrix& x) {
  constexpr std::int64_t kPanel = 64;
  const std::int64_t m = init.rows(), n = x.rows(), s = x.cols();
  DistMatrix y(x.grid(), m, s, x.block());
  for (std::int64_t c0 = 0; c0 < s; c0 += kPanel) {
    const std::int64_t w = std::min(kPanel, s - c0);
    DistMatrix panel(x.grid(), n, w, x.block());
    copy_block(x, 0, c0, n, w, panel, 0, 0);
    const std::vector<double> qx = init.apply(replicated(panel), w);
    for (std::int64_t lj = 0; lj < y.local_cols(); ++lj) {
      const std::int64_t c = y.col_dim().global(lj) - c0;
      if (c < 0 || c >= w) continue;
      for (std::int64_t li = 0; li < y.local_rows(); ++li)
        y.at_local(li, lj) = qx[static_cast<size_t>(y.row_dim().global(li) + c * m)];
    }
  }
  return y;
}

}  // namespace

StructuredInit::StructuredInit(std::int64_t rows, std::int64_t cols, int depth, std::int64_t width,
                               std::uint64_t seed)
    : rows_(rows), cols_(cols), depth_(depth), width_(width), seed_(seed) {
  fail_if(depth < 1, "depth must be at least 1 (got {})", depth);
  fail_if(width < std::max(rows, cols),
          "the structured init needs a width h >= max(m, n) = {} (got {})", std::max(rows, cols), width);
  // P = P_L ... P_1: j goes to pi_1(j), then pi_2 of that, ..., its sign the product.
  pi_.resize(static_cast<size_t>(width));
  sigma_.assign(static_cast<size_t>(width), 1.0);
  for (std::int64_t j = 0; j < width; ++j) pi_[j] = j;
  std::vector<std::int64_t> pi;
  std::vector<double> sigma;
  for (int l = 0; l < depth; ++l) {
    factor(l, pi, sigma);
    for (std::int64_t j = 0; j < width; ++j) {
      sigma_[j] *= sigma[pi_[j]];
      pi_[j] = pi[pi_[j]];
    }
  }
  inverse_.resize(static_cast<size_t>(width));
  for (std::int64_t j = 0; j < width; ++j) inverse_[pi_[j]] = j;
}

void StructuredInit::factor(int l, std::vector<std::int64_t>& pi, std::vector<double>& sigma) const {
  pi = random_permutation(width_, seed_, kStructuredPermutation + static_cast<std::uint32_t>(l));
  sigma.resize(static_cast<size_t>(width_));
  for (std::int64_t j = 0; j < width_; ++j)
    sigma[j] = (random_word(seed_, kStructuredSign + static_cast<std::uint32_t>(l), static_cast<std::uint64_t>(j)) & 1) != 0
                   ? -1.0 : 1.0;
}

std::vector<double> StructuredInit::apply_transposed(const std::vector<double>& y, std::int64_t k) const {
  // (Q^T y)_j = sigma(j) y_pi(j) when pi(j) < m.
  std::vector<double> x(static_cast<size_t>(cols_ * k), 0.0);
  for (std::int64_t j = 0; j < cols_; ++j) {
    const std::int64_t i = q_row(j);
    if (i < 0) continue;
    for (std::int64_t c = 0; c < k; ++c) x[j + c * cols_] = sigma_[j] * y[i + c * rows_];
  }
  return x;
}

std::vector<double> StructuredInit::apply(const std::vector<double>& x, std::int64_t k) const {
  // (Q x)_i = sigma(j) x_j for j = pi^-1(i) when j < n.
  std::vector<double> y(static_cast<size_t>(rows_ * k), 0.0);
  for (std::int64_t i = 0; i < rows_; ++i) {
    const std::int64_t j = inverse_[i];
    if (j >= cols_) continue;
    for (std::int64_t c = 0; c < k; ++c) y[i + c * rows_] = sigma_[j] * x[j + c * cols_];
  }
  return y;
}

Chain StructuredInit::dense_chain(const ProcessGrid& grid, const IndexLayout& layout, double init_scale) const {
  fail_if(layout.rows() != rows_ || layout.cols() != cols_, "structured init of {} x {} for a {} x {} layout",
          rows_, cols_, layout.rows(), layout.cols());
  const auto shapes = chain_shapes(rows_, cols_, depth_, width_);
  Chain chain;
  chain.kind = ModelKind::kDeep;
  std::vector<std::int64_t> pi;
  std::vector<double> sigma;
  for (int l = 0; l < depth_; ++l) {
    factor(l, pi, sigma);
    DistMatrix w(grid, shapes[l].rows, shapes[l].cols, layout.block());
    // Entry (i, j) of P_l is sigma(j) when pi(j) = i; the cut keeps rows < m (last factor)
    // and columns < n (first factor), which the shape does.
    w.fill([&](std::int64_t i, std::int64_t j) { return pi[j] == i ? init_scale * sigma[j] : 0.0; });
    chain.factors.push_back(std::move(w));
    chain.lr_multipliers.push_back(1.0);
  }
  return chain;
}

Chain compressed_chain(DistMatrix v, DistMatrix u, int depth, const CompressionConfig& config) {
  const ProcessGrid& grid = v.grid();
  const int block = v.block();
  const std::int64_t k = v.cols();
  Chain compressed;
  compressed.kind = ModelKind::kCompressed;
  compressed.factors.push_back(transposed(v));
  compressed.lr_multipliers.push_back(config.gamma);
  for (int l = 0; l < depth; ++l) {
    compressed.factors.push_back(scaled_identity(grid, k, config.init_scale, block));
    compressed.lr_multipliers.push_back(1.0);
  }
  compressed.factors.push_back(std::move(u));
  compressed.lr_multipliers.push_back(config.gamma);
  return compressed;
}

namespace {
/// Collective: the compressed chain from U_S0 (m x rank) and V_S0 (n x rank), column-major on
/// every rank, in the layout's permuted spaces.
Chain compressed_from_singular_vectors(const ProcessGrid& grid, const IndexLayout& layout,
                                       const StructuredInit& init, const std::vector<double>& u_s0,
                                       const std::vector<double>& v_s0, const CompressionConfig& config) {
  const std::int64_t m = layout.rows(), n = layout.cols(), rank = config.rank;
  // m <= n: V = orth([V_S0, Q^T U_S0]) on the grid, then U = Q V; m > n: U = orth([U_S0, Q V_S0]),
  // then V = Q^T U (as compression_factors, model/compression.cpp, says why).
  const int block = layout.block();
  const std::int64_t k = 2 * rank;
  const bool tall = m > n;
  const std::int64_t side = tall ? m : n;
  const std::vector<double>& own = tall ? u_s0 : v_s0;
  std::vector<double> lifted = tall ? init.apply(v_s0, rank) : init.apply_transposed(u_s0, rank);
  DistMatrix basis(grid, side, k, block);
  basis.fill([&](std::int64_t j, std::int64_t c) { return c < rank ? own[j + c * side] : lifted[j + (c - rank) * side]; });
  std::vector<double>().swap(lifted);
  orthonormalize_columns(basis);
  const std::vector<double> basis_full = replicated(basis);
  const std::vector<double> other_full = tall ? init.apply_transposed(basis_full, k) : init.apply(basis_full, k);
  const std::int64_t other_side = tall ? n : m;
  DistMatrix other(grid, other_side, k, block);
  other.fill([&](std::int64_t i, std::int64_t c) { return other_full[i + c * other_side]; });
  DistMatrix v = tall ? std::move(other) : std::move(basis);
  DistMatrix u = tall ? std::move(basis) : std::move(other);
  return compressed_chain(std::move(v), std::move(u), init.depth(), config);
}
}  // namespace

Chain compress_implicit(const ProcessGrid& grid, const IndexLayout& layout, const Observations& train,
                        double normalization, const StructuredInit& init,
                        const CompressionConfig& config, ImplicitCompressionReport* report) {
  const std::int64_t m = layout.rows(), n = layout.cols(), rank = config.rank;
  validate_implicit(grid, layout, init, config);
  // S0 on Omega: (eps^L Q_ij - (Phi_ij - offset_ij)) / N.
  const double scale = chain_scale(init, config.init_scale);
  const auto start = std::chrono::steady_clock::now();
  SparseSvd top;
  {
    const DistSparseMatrix s(grid, m, n, layout.block(), train.rows, train.cols, [&](size_t e) {
      return (scale * init.q(train.rows[e], train.cols[e]) - train.target(e)) / normalization;
    });
    top = sparse_truncated_svd(s, rank, {1e-14, 1000, layout.seed(), true});
  }
  const double svd_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Chain chain = compressed_from_singular_vectors(grid, layout, init, top.u, top.v, config);
  if (report != nullptr) {
    top.u.clear();
    top.v.clear();
    report->svd = std::move(top);
    report->svd_seconds = svd_seconds;
  }
  return chain;
}

Chain compress_implicit_samples(const ProcessGrid& grid, const IndexLayout& layout, const DistMatrix& x,
                                const DistMatrix& b0, const StructuredInit& init,
                                const CompressionConfig& config) {
  const std::int64_t n = layout.cols(), s = x.cols(), rank = config.rank;
  validate_implicit(grid, layout, init, config);
  fail_if(std::min(s, n) < rank,
          "--init-structure implicit: {} samples cannot determine the top {} singular directions of "
          "the first gradient (use --init-structure dense)",
          s, rank);
  // S0 = R X^T / s with R = B0 + eps^L Q X (m x s): its singular vectors from thin factors.
  DistMatrix r = apply_q(init, x);
  for (double& value : r.local()) value *= chain_scale(init, config.init_scale);
  axpy(1.0, b0, r);
  // X = Q_x R_x (n x s, thin QR, when s <= n), so R X^T = (R R_x^T) Q_x^T with M = R R_x^T
  // m x s: U_S0, V_S0 are M's left vectors and Q_x times its right ones. With s > n, M = R X^T
  // (m x n, no larger than R).
  std::optional<DistMatrix> qx;
  DistMatrix m_core(grid, layout.rows(), std::min(s, n), layout.block());
  if (s <= n) {
    qx.emplace(x);
    orthonormalize_columns(*qx);
    DistMatrix rx(grid, s, s, layout.block());
    gemm('T', 'N', 1.0, *qx, x, 0.0, rx);
    gemm('N', 'T', 1.0, r, rx, 0.0, m_core);
  } else {
    gemm('N', 'T', 1.0, r, x, 0.0, m_core);
  }
  const TruncatedSvd top = top_singular_vectors(m_core, rank, UnresolvedSubspace::kUseFullSvd);
  std::vector<double> v_s0;
  if (qx) {
    DistMatrix v(grid, n, rank, layout.block());
    gemm('N', 'N', 1.0, *qx, top.v, 0.0, v);
    v_s0 = replicated(v);
  } else {
    v_s0 = replicated(top.v);
  }
  return compressed_from_singular_vectors(grid, layout, init, replicated(top.u), v_s0, config);
}

}  // namespace cdmf
