#include "cdmf/data/synthetic.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "cdmf/core/error.hpp"
#include "cdmf/data/layout.hpp"
#include "cdmf/linalg/dist_matrix.hpp"
#include "cdmf/model/chain.hpp"
#include "cdmf/random/counter_rng.hpp"
#include "synthetic_factored.hpp"

namespace cdmf {

TruthRecipe parse_truth_recipe(const std::string& name) {
  if (name == "auto") return TruthRecipe::kAuto;
  if (name == "dense") return TruthRecipe::kDense;
  if (name == "factored") return TruthRecipe::kFactored;
  throw Error(fmt::format("--truth-recipe must be auto, dense or factored (got '{}')", name));
}

namespace {
/// m * n as a double: it overflows int64 near 3e9 x 3e9.
double cell_count(const SyntheticSpec& spec) {
  return static_cast<double>(spec.rows) * static_cast<double>(spec.cols);
}
}  // namespace

bool uses_dense_recipe(const SyntheticSpec& spec) {
  if (spec.recipe != TruthRecipe::kAuto) return spec.recipe == TruthRecipe::kDense;
  return spec.observed_entries < 0 && spec.test_entries < 0 &&
         cell_count(spec) * static_cast<double>(std::min(spec.rows, spec.cols)) <= kDenseRecipeLimit;
}

std::int64_t train_entry_count(const SyntheticSpec& spec) {
  if (spec.observed_entries >= 0) return spec.observed_entries;
  return static_cast<std::int64_t>(std::llround(spec.observed * cell_count(spec)));
}

std::int64_t test_entry_count(const SyntheticSpec& spec) {
  const double unobserved = cell_count(spec) - static_cast<double>(train_entry_count(spec));
  if (spec.test_entries >= 0) return spec.test_entries;
  if (spec.test_observed >= 0.0)
    return static_cast<std::int64_t>(std::min(unobserved, std::round(spec.test_observed * cell_count(spec))));
  if (uses_dense_recipe(spec)) return static_cast<std::int64_t>(unobserved);
  return static_cast<std::int64_t>(std::min(unobserved, std::ceil(0.1 * static_cast<double>(train_entry_count(spec)))));
}

void validate_synthetic_spec(const SyntheticSpec& spec, const ProcessGrid& grid) {
  fail_if(spec.rows < 1 || spec.cols < 1, "--rows and --cols must be positive (got {} x {})",
          spec.rows, spec.cols);
  fail_if(cell_count(spec) > 9e18, "--rows {} x --cols {} has more cells than 64-bit indices count",
          spec.rows, spec.cols);
  fail_if(spec.rank < 1 || spec.rank > std::min(spec.rows, spec.cols),
          "--rank {} must be between 1 and min(rows, cols) = {}", spec.rank,
          std::min(spec.rows, spec.cols));
  if (spec.observed_entries < 0) {
    fail_if(!(spec.observed > 0.0 && spec.observed <= 1.0), "--observed must be in (0, 1] (got {})",
            spec.observed);
    fail_if(std::llround(spec.observed * cell_count(spec)) < 1,
            "--observed {} selects no entry of a {} x {} matrix", spec.observed, spec.rows, spec.cols);
  } else {
    fail_if(spec.observed_entries < 1, "--observed-entries must be positive (got {})", spec.observed_entries);
  }
  if (spec.test_entries < 0 && spec.observed_entries < 0)
    fail_if(spec.test_observed > 1.0 - spec.observed + 1e-12,
            "--test-observed {} exceeds the unobserved fraction {}", spec.test_observed,
            1.0 - spec.observed);
  fail_if(static_cast<double>(train_entry_count(spec)) + static_cast<double>(test_entry_count(spec)) > cell_count(spec),
          "{} training and {} test entries exceed the {} x {} = {} cells", train_entry_count(spec),
          test_entry_count(spec), spec.rows, spec.cols, cell_count(spec));
  choose_block_size(spec.rows, spec.cols, grid);  // throws when the grid is too large
}

MemoryPlan synthetic_memory_plan(const SyntheticSpec& spec, bool text) {
  const double m = static_cast<double>(spec.rows), n = static_cast<double>(spec.cols);
  const double r = static_cast<double>(spec.rank);
  const double train = static_cast<double>(train_entry_count(spec));
  const double test = static_cast<double>(test_entry_count(spec));
  MemoryPlan plan(fmt::format("generate {} x {} with {} training and {} test entries", spec.rows,
                              spec.cols, train_entry_count(spec), test_entry_count(spec)));
  // An entry: row, column, line (int64) and value; a text line: at most 48 bytes.
  constexpr double kEntryBytes = 32.0, kLineBytes = 48.0;
  if (uses_dense_recipe(spec)) {
    // The Gaussian, its copy for PDGESVD, U and V^T; the sort keys and entries on rank 0.
    plan.add("the dense Gaussian and its SVD", 4.0 * 8.0 * m * n);
    plan.add("the sampling keys (rank 0)", 0.0, 16.0 * m * n);
    plan.add("the entries (rank 0)", 0.0, kEntryBytes * (train + test) + (text ? kLineBytes * std::max(train, test) : 0.0));
  } else {
    plan.add("the truth's factor U", 8.0 * m * r);
    plan.add("the truth's factor V (on every rank)", 0.0, 2.0 * 8.0 * n * r);
    plan.add("the entries", kEntryBytes * (train + test), 0.0, 1.1);
    if (text) plan.add("the text lines", kLineBytes * std::max(train, test), 0.0, 1.1);
  }
  return plan;
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
  if (!uses_dense_recipe(spec)) return make_factored_problem(grid, spec);
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
  if (!grid.is_root()) {
    problem.u_first = m;  // the rows are all on rank 0
    problem.v_first = n;
    return problem;
  }
  const std::int64_t k = std::min(m, n);
  problem.u.assign(static_cast<size_t>(m * r), 0.0);
  problem.v.assign(static_cast<size_t>(n * r), 0.0);
  for (std::int64_t c = 0; c < r; ++c) {
    for (std::int64_t i = 0; i < m; ++i) problem.u[i + c * m] = u_all[i + c * m] * decomposition.s[c];
    for (std::int64_t j = 0; j < n; ++j) problem.v[j + c * n] = vt_all[c + j * k];
  }
  // Uniform sample without replacement: the entries with the smallest random keys.
  const std::int64_t total = m * n;
  const std::int64_t train_count = train_entry_count(spec);
  const std::int64_t test_count = test_entry_count(spec);
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
