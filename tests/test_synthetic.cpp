// generate at any size (data/synthetic.hpp, the factored recipe): the same problem on 1, 2 and
// 4 ranks, no duplicates, the requested counts, a truth with orthonormal factors whose product
// gives the values, HDF5 and text outputs that read back equal, and plans that refuse.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "cdmf/core/memory_plan.hpp"
#include "cdmf/data/readers.hpp"
#include "cdmf/data/synthetic.hpp"
#include "cdmf/io/factor_file.hpp"
#include "support/test_support.hpp"

namespace cdmf {
namespace {

using Entry = std::tuple<std::int64_t, std::int64_t, double>;

/// Every rank's entries, on every rank of `comm`, in rank order.
std::vector<Entry> gather_entries(MPI_Comm comm, const EntryList& list) {
  int ranks = 1;
  MPI_Comm_size(comm, &ranks);
  const int local = static_cast<int>(list.size());
  std::vector<int> counts(static_cast<size_t>(ranks)), offsets(static_cast<size_t>(ranks), 0);
  MPI_Allgather(&local, 1, MPI_INT, counts.data(), 1, MPI_INT, comm);
  for (int p = 1; p < ranks; ++p) offsets[p] = offsets[p - 1] + counts[p - 1];
  const int total = offsets.back() + counts.back();
  std::vector<std::int64_t> rows(static_cast<size_t>(total)), cols(rows.size());
  std::vector<double> values(rows.size());
  MPI_Allgatherv(list.rows.data(), local, MPI_INT64_T, rows.data(), counts.data(), offsets.data(), MPI_INT64_T, comm);
  MPI_Allgatherv(list.cols.data(), local, MPI_INT64_T, cols.data(), counts.data(), offsets.data(), MPI_INT64_T, comm);
  MPI_Allgatherv(list.values.data(), local, MPI_DOUBLE, values.data(), counts.data(), offsets.data(), MPI_DOUBLE, comm);
  std::vector<Entry> out;
  for (size_t k = 0; k < rows.size(); ++k) out.emplace_back(rows[k], cols[k], values[k]);
  return out;
}

/// The rows of a factor every rank holds part of (column-major slabs), row-major on every rank.
std::vector<double> gather_factor(MPI_Comm comm, const std::vector<double>& local, std::int64_t r) {
  const std::int64_t rows = static_cast<std::int64_t>(local.size()) / r;
  EntryList as_entries;
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t c = 0; c < r; ++c) {
      as_entries.rows.push_back(0);
      as_entries.cols.push_back(0);
      as_entries.values.push_back(local[i + c * rows]);
    }
  std::vector<double> out;
  for (const Entry& e : gather_entries(comm, as_entries)) out.push_back(std::get<2>(e));
  return out;
}

struct Generated {
  std::vector<Entry> train, test;
  std::vector<double> u, v;  // row-major
};

Generated generate_on(const ProcessGrid& grid, const SyntheticSpec& spec) {
  const SyntheticProblem p = make_synthetic_problem(grid, spec);
  return {gather_entries(grid.comm(), p.train), gather_entries(grid.comm(), p.test),
          gather_factor(grid.comm(), p.u, spec.rank), gather_factor(grid.comm(), p.v, spec.rank)};
}

/// Runs `body` on the first `ranks` world ranks (a 1 x ranks grid); false when the world is smaller.
template <typename Body>
bool on_first_ranks(int ranks, Body&& body) {
  return test::on_grid({1, ranks}, [&](const ProcessGrid& grid) { body(grid); });
}

SyntheticSpec factored_spec(std::int64_t m, std::int64_t n, std::int64_t r, std::int64_t train,
                            std::int64_t test, std::uint64_t seed) {
  SyntheticSpec spec;
  spec.rows = m;
  spec.cols = n;
  spec.rank = r;
  spec.seed = seed;
  spec.observed_entries = train;
  spec.test_entries = test;
  spec.recipe = TruthRecipe::kFactored;
  return spec;
}

TEST(FactoredRecipe, SameProblemOnOneTwoAndFourRanks) {
  // Tall, wide and dense enough that blocks run out of cells; the last one has 1-row blocks.
  for (const SyntheticSpec& spec : {factored_spec(70, 23, 3, 500, 200, 5), factored_spec(9, 140, 2, 600, 300, 6),
                                    factored_spec(12, 10, 2, 90, 30, 7), factored_spec(150000, 4, 2, 3000, 100, 8)}) {
    SCOPED_TRACE(fmt::format("{} x {}", spec.rows, spec.cols));
    Generated reference;
    on_first_ranks(1, [&](const ProcessGrid& grid) { reference = generate_on(grid, spec); });
    // Rank 0 made the reference; the others compare against it after a broadcast of a digest.
    for (int ranks : {2, 4}) {
      Generated other;
      if (!on_first_ranks(ranks, [&](const ProcessGrid& grid) { other = generate_on(grid, spec); })) continue;
      if (test::world_rank() != 0) continue;
      // Bit for bit the same, in the same order (rank order = row-major order).
      EXPECT_EQ(other.train, reference.train) << ranks << " ranks";
      EXPECT_EQ(other.test, reference.test) << ranks << " ranks";
      EXPECT_EQ(other.u, reference.u) << ranks << " ranks";
      EXPECT_EQ(other.v, reference.v) << ranks << " ranks";
    }
    if (test::world_rank() != 0) continue;
    ASSERT_EQ(static_cast<std::int64_t>(reference.train.size()), spec.observed_entries);
    ASSERT_EQ(static_cast<std::int64_t>(reference.test.size()), spec.test_entries);
    std::set<std::pair<std::int64_t, std::int64_t>> cells;
    for (const auto* list : {&reference.train, &reference.test})
      for (const Entry& e : *list) {
        ASSERT_GE(std::get<0>(e), 0);
        ASSERT_LT(std::get<0>(e), spec.rows);
        ASSERT_GE(std::get<1>(e), 0);
        ASSERT_LT(std::get<1>(e), spec.cols);
        EXPECT_TRUE(cells.emplace(std::get<0>(e), std::get<1>(e)).second)
            << "duplicate (" << std::get<0>(e) << ", " << std::get<1>(e) << ")";
        // The value is the truth's (U V^T)_ij.
        double x = 0.0;
        for (std::int64_t c = 0; c < spec.rank; ++c)
          x += reference.u[std::get<0>(e) * spec.rank + c] * reference.v[std::get<1>(e) * spec.rank + c];
        EXPECT_NEAR(std::get<2>(e), x, 1e-13 * (1.0 + std::abs(x)));
      }
    // V orthonormal, U orthogonal with every singular value sqrt(m) + sqrt(n).
    const double s = std::sqrt(double(spec.rows)) + std::sqrt(double(spec.cols));
    for (std::int64_t a = 0; a < spec.rank; ++a)
      for (std::int64_t b = 0; b < spec.rank; ++b) {
        double vv = 0.0, uu = 0.0;
        for (std::int64_t j = 0; j < spec.cols; ++j) vv += reference.v[j * spec.rank + a] * reference.v[j * spec.rank + b];
        for (std::int64_t i = 0; i < spec.rows; ++i) uu += reference.u[i * spec.rank + a] * reference.u[i * spec.rank + b];
        EXPECT_NEAR(vv, a == b ? 1.0 : 0.0, 1e-13);
        EXPECT_NEAR(uu / (s * s), a == b ? 1.0 : 0.0, 1e-13);
      }
  }
}

TEST(FactoredRecipe, EntriesAreSpreadUniformly) {
  // 40 x 50 cells, 1000 entries: each row should get 25 on average; a broken split or a
  // biased draw shows up as rows far off. A chi-square over rows with 39 degrees of freedom
  // exceeds 80 with probability below 1e-4.
  const SyntheticSpec spec = factored_spec(40, 50, 2, 1000, 0, 11);
  test::on_world_grid([&](const ProcessGrid& grid) {
    const Generated g = generate_on(grid, spec);
    std::vector<double> per_row(40, 0.0), per_col(50, 0.0);
    for (const Entry& e : g.train) {
      per_row[std::get<0>(e)] += 1.0;
      per_col[std::get<1>(e)] += 1.0;
    }
    double chi_rows = 0.0, chi_cols = 0.0;
    for (double c : per_row) chi_rows += (c - 25.0) * (c - 25.0) / 25.0;
    for (double c : per_col) chi_cols += (c - 20.0) * (c - 20.0) / 20.0;
    EXPECT_LT(chi_rows, 80.0);
    EXPECT_LT(chi_cols, 95.0);  // 49 degrees of freedom
  });
}

TEST(FactoredRecipe, HdfAndTextOutputsReadBackEqual) {
  const SyntheticSpec spec = factored_spec(60, 45, 3, 700, 150, 12);
  const std::string dir = test::temp_dir("synthetic_outputs");
  test::on_world_grid([&](const ProcessGrid& grid) {
    const SyntheticProblem p = make_synthetic_problem(grid, spec);
    write_hdf5_entries(grid.comm(), dir + "/train.h5", p.train);
    write_hdf5_entries(grid.comm(), dir + "/test.h5", p.test);
    write_triplets(grid.comm(), dir + "/train.tsv", p.train);
    write_triplets(grid.comm(), dir + "/test.tsv", p.test);
    write_truth_factors(grid.comm(), dir + "/truth.h5", spec.rows, spec.cols, spec.rank, p.u, p.v);
    const LoadedData from_hdf5 = read_data(grid.comm(), dir + "/train.h5", dir + "/test.h5", {DataFormat::kHdf5, 0});
    const LoadedData from_text = read_data(grid.comm(), dir + "/train.tsv", dir + "/test.tsv", {DataFormat::kTriplets, 0});
    const auto sorted = [&](const EntryList& list) {
      std::vector<Entry> all = gather_entries(grid.comm(), list);
      std::sort(all.begin(), all.end());
      return all;
    };
    const std::vector<Entry> made = sorted(p.train), made_test = sorted(p.test);
    EXPECT_EQ(sorted(from_hdf5.train), made);
    EXPECT_EQ(sorted(from_hdf5.test), made_test);
    EXPECT_EQ(sorted(from_text.train), made);  // 17 significant digits round-trip
    EXPECT_EQ(sorted(from_text.test), made_test);
    // The truth file holds the factors every rank wrote its slab of.
    const IndexLayout layout(spec.rows, spec.cols, 4, spec.seed, /*permute=*/false);
    const Truth truth = read_truth(grid, layout, dir + "/truth.h5", 4);
    ASSERT_TRUE(truth.u && truth.v);
    const std::vector<double> u = gather_factor(grid.comm(), p.u, spec.rank);
    const std::vector<double> u_read = truth.u->gather();  // column-major on rank 0
    if (grid.is_root()) {
      for (std::int64_t i = 0; i < spec.rows; ++i)
        for (std::int64_t c = 0; c < spec.rank; ++c) EXPECT_EQ(u_read[i + c * spec.rows], u[i * spec.rank + c]);
    }
  });
}

TEST(FactoredRecipe, CountsAndRecipeChoice) {
  SyntheticSpec paper;  // the paper MC instance keeps the dense recipe
  paper.rows = paper.cols = 1000;
  paper.rank = 5;
  EXPECT_TRUE(uses_dense_recipe(paper));
  EXPECT_EQ(train_entry_count(paper), 200000);
  EXPECT_EQ(test_entry_count(paper), 800000);
  SyntheticSpec netflix = paper;
  netflix.rows = 480189;
  netflix.cols = 17770;
  netflix.observed_entries = 100000000;
  EXPECT_FALSE(uses_dense_recipe(netflix));
  EXPECT_EQ(test_entry_count(netflix), 10000000);  // 10% of the training count by default
  netflix.observed_entries = -1;
  EXPECT_FALSE(uses_dense_recipe(netflix));  // too large for the dense SVD
}

TEST(FactoredRecipe, PlansThatCannotFitAreRefused) {
  SyntheticSpec huge = factored_spec(2000000000, 2000000000, 10, -1, -1, 1);
  huge.observed = 0.2;
  SyntheticSpec too_wide = huge;
  too_wide.rows = too_wide.cols = 3000000000;
  test::on_world_grid([&](const ProcessGrid& grid) {
    // Beyond ScaLAPACK's 32-bit dimensions: refused by the validation.
    test::expect_error(grid.comm(), "3000000000 x 3000000000", "largest supported dimension",
                       [&] { validate_synthetic_spec(too_wide, grid); });
    validate_synthetic_spec(huge, grid);
    test::expect_error(grid.comm(), "generate 2000000000 x 2000000000", "needs", [&] {
      synthetic_memory_plan(huge, true).check(grid.comm(), memory_budget(grid.comm()));
    });
    // Netflix's shape with 1e7 entries fits in 8 GB a rank, not in 100 MB.
    SyntheticSpec netflix = factored_spec(480189, 17770, 10, 10000000, 1000000, 1);
    synthetic_memory_plan(netflix, false).check(grid.comm(), memory_budget(grid.comm(), 8e9));
    test::expect_error(grid.comm(), "generate 480189 x 17770", "needs", [&] {
      synthetic_memory_plan(netflix, false).check(grid.comm(), memory_budget(grid.comm(), 1e8));
    });
  });
}

TEST(FactoredRecipe, BadCountsAreRefused) {
  test::on_world_grid([&](const ProcessGrid& grid) {
    test::expect_error(grid.comm(), "12 x 10", "exceed", [&] {
      validate_synthetic_spec(factored_spec(12, 10, 2, 100, 30, 1), grid);
    });
    test::expect_error(grid.comm(), "--observed-entries", "positive", [&] {
      validate_synthetic_spec(factored_spec(12, 10, 2, 0, 3, 1), grid);
    });
  });
}

}  // namespace
}  // namespace cdmf
