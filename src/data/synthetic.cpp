#include "cdmf/data/synthetic.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "cdmf/core/error.hpp"
#include "cdmf/data/layout.hpp"
#include "cdmf/linalg/dist_matrix.hpp"
#include "cdmf/model/chain.hpp"
#include "cdmf/random/counter_rng.hpp"

namespace cdmf {

void validate_synthetic_spec(const SyntheticSpec& spec, const ProcessGrid& grid) {
  fail_if(spec.rows < 1 || spec.cols < 1, "--rows and --cols must be positive (got {} x {})",
          spec.rows, spec.cols);
  fail_if(spec.rank < 1 || spec.rank > std::min(spec.rows, spec.cols),
          "--rank {} must be between 1 and min(rows, cols) = {}", spec.rank,
          std::min(spec.rows, spec.cols));
  fail_if(!(spec.observed > 0.0 && spec.observed <= 1.0), "--observed must be in (0, 1] (got {})",
          spec.observed);
  fail_if(spec.test_observed > 1.0 - spec.observed + 1e-12,
          "--test-observed {} exceeds the unobserved fraction {}", spec.test_observed,
          1.0 - spec.observed);
  fail_if(std::llround(spec.observed * static_cast<double>(spec.rows * spec.cols)) < 1,
          "--observed {} selects no entry of a {} x {} matrix", spec.observed, spec.rows, spec.cols);
  choose_block_size(spec.rows, spec.cols, grid);  // throws when the grid is too large
}

namespace {
EntryList entries_of(const std::vector<std::int64_t>& linear, std::int64_t cols,
                     const std::vector<double>& u, const std::vector<double>& v,
                     std::int64_t rows, std::int64_t rank, const char* name) {
  EntryList list;
  list.file = name;
  for (std::int64_t index : linear) {
    const std::int64_t i = index / cols, j = index % cols;
    double value = 0.0;
    for (std::int64_t k = 0; k < rank; ++k) value += u[i + k * rows] * v[j + k * cols];
    list.rows.push_back(i);
    list.cols.push_back(j);
    list.values.push_back(value);
    list.lines.push_back(static_cast<std::int64_t>(list.lines.size()) + 1);
  }
  return list;
}
}  // namespace

SyntheticProblem make_synthetic_problem(const ProcessGrid& grid, const SyntheticSpec& spec) {
  validate_synthetic_spec(spec, grid);
  const std::int64_t m = spec.rows, n = spec.cols, r = spec.rank;
  // The Gaussian and its SVD in original order (no permutation).
  IndexLayout layout(m, n, choose_block_size(m, n, grid), spec.seed, /*permute=*/false);
  DistMatrix gauss = gaussian_matrix(grid, layout, {m, n}, spec.seed,
                                     static_cast<std::uint32_t>(Stream::kTruthGaussian),
                                     Space::kInner, Space::kInner);
  const Svd decomposition = svd(gauss);
  const std::vector<double> u_all = decomposition.u.gather();
  const std::vector<double> vt_all = decomposition.vt.gather();

  SyntheticProblem problem;
  if (!grid.is_root()) return problem;
  const std::int64_t k = std::min(m, n);
  problem.u.assign(static_cast<size_t>(m * r), 0.0);
  problem.v.assign(static_cast<size_t>(n * r), 0.0);
  for (std::int64_t c = 0; c < r; ++c) {
    for (std::int64_t i = 0; i < m; ++i) problem.u[i + c * m] = u_all[i + c * m] * decomposition.s[c];
    for (std::int64_t j = 0; j < n; ++j) problem.v[j + c * n] = vt_all[c + j * k];
  }
  // Uniform sample without replacement: the entries with the smallest random keys.
  const std::int64_t total = m * n;
  const std::int64_t train_count = std::llround(spec.observed * static_cast<double>(total));
  const std::int64_t test_count =
      spec.test_observed < 0.0 ? total - train_count
                               : std::min<std::int64_t>(total - train_count,
                                          std::llround(spec.test_observed * static_cast<double>(total)));
  std::vector<std::int64_t> order(static_cast<size_t>(total));
  std::iota(order.begin(), order.end(), 0);
  const auto key = [&](std::int64_t e) {
    return random_word(spec.seed, static_cast<std::uint32_t>(Stream::kObservedSample),
                       static_cast<std::uint64_t>(e));
  };
  std::vector<std::uint64_t> keys(static_cast<size_t>(total));
  for (std::int64_t e = 0; e < total; ++e) keys[e] = key(e);
  const auto by_key = [&](std::int64_t a, std::int64_t b) {
    return keys[a] != keys[b] ? keys[a] < keys[b] : a < b;
  };
  const auto train_end = order.begin() + train_count;
  std::nth_element(order.begin(), train_end, order.end(), by_key);
  if (test_count < total - train_count)
    std::nth_element(train_end, train_end + test_count, order.end(), by_key);
  std::vector<std::int64_t> train(order.begin(), train_end);
  std::vector<std::int64_t> test(train_end, train_end + test_count);
  std::sort(train.begin(), train.end());
  std::sort(test.begin(), test.end());
  problem.train = entries_of(train, n, problem.u, problem.v, m, r, "train");
  problem.test = entries_of(test, n, problem.u, problem.v, m, r, "test");
  return problem;
}

}  // namespace cdmf
