// The factored recipe (synthetic.hpp): truth from thin orthonormalised Gaussian factors,
// entries drawn per fixed block of rows, without any m x n array.
#include "synthetic_factored.hpp"

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <unordered_set>

#include "cdmf/core/error.hpp"
#include "cdmf/random/counter_rng.hpp"

namespace cdmf {

RowBlocks::RowBlocks(std::int64_t m)
    : rows(m), rows_per_block((m + kMaxRowBlocks - 1) / kMaxRowBlocks),
      count((m + rows_per_block - 1) / rows_per_block) {}

std::int64_t RowBlocks::size(std::int64_t b) const {
  return std::min(rows_per_block, rows - first(b));
}

namespace {

/// A uniform random bit generator on the counter-based stream (seed, stream): the same
/// sequence on every rank, for std::binomial_distribution.
class CounterEngine {
 public:
  using result_type = std::uint64_t;
  CounterEngine(std::uint64_t seed, Stream stream) : seed_(seed), stream_(static_cast<std::uint32_t>(stream)) {}
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~result_type{0}; }
  result_type operator()() { return random_word(seed_, stream_, next_++); }

 private:
  std::uint64_t seed_;
  std::uint32_t stream_;
  std::uint64_t next_ = 0;
};

/// Splits `total` entries over the blocks in proportion to their free cells (cells * cols
/// less `taken`), by conditional binomials in block order: a multinomial draw, clamped so
/// that no block gets more than its free cells and the rest always fit. Every rank computes
/// the same split (O(blocks) draws).
std::vector<std::int64_t> split_over_blocks(std::int64_t total, const RowBlocks& blocks,
                                            std::int64_t cols, const std::vector<std::int64_t>& taken,
                                            std::uint64_t seed, Stream stream) {
  CounterEngine engine(seed, stream);
  std::vector<double> free_after(static_cast<size_t>(blocks.count + 1), 0.0);
  for (std::int64_t b = blocks.count - 1; b >= 0; --b)
    free_after[b] = free_after[b + 1] + static_cast<double>(blocks.size(b) * cols - taken[b]);
  std::vector<std::int64_t> counts(static_cast<size_t>(blocks.count), 0);
  std::int64_t remaining = total;
  for (std::int64_t b = 0; b < blocks.count && remaining > 0; ++b) {
    const std::int64_t free = blocks.size(b) * cols - taken[b];
    const double p = static_cast<double>(free) / free_after[b];
    std::int64_t count = p >= 1.0 ? remaining : std::binomial_distribution<std::int64_t>(remaining, p)(engine);
    // The blocks after b must hold what is left.
    const double rest = free_after[b + 1];
    if (static_cast<double>(remaining - count) > rest) count = remaining - static_cast<std::int64_t>(rest);
    count = std::min({count, free, remaining});
    counts[b] = count;
    remaining -= count;
  }
  fail_if(remaining != 0, "generate: {} entries do not fit the free cells", remaining);
  return counts;
}

/// Gaussian rows [first, first + count) of an r-column matrix from (seed, stream), column-major
/// (count x r); entry (i, c) is draw i * r + c, whatever rows a rank makes.
std::vector<double> gaussian_rows(std::int64_t first, std::int64_t count, std::int64_t r,
                                  std::uint64_t seed, Stream stream) {
  std::vector<std::uint64_t> index(static_cast<size_t>(count * r));
  for (std::int64_t i = 0; i < count; ++i)
    for (std::int64_t c = 0; c < r; ++c)
      index[static_cast<size_t>(i * r + c)] = static_cast<std::uint64_t>((first + i) * r + c);
  std::vector<double> row_major(index.size());
  gaussians(seed, static_cast<std::uint32_t>(stream), index.data(), index.size(), row_major.data());
  std::vector<double> x(index.size());
  for (std::int64_t i = 0; i < count; ++i)
    for (std::int64_t c = 0; c < r; ++c) x[i + c * count] = row_major[i * r + c];
  return x;
}

/// gram += X^T X for rows [begin, end) of column-major X (`ld` rows), in row order.
void add_gram(const std::vector<double>& x, std::int64_t ld, std::int64_t r, std::int64_t begin,
              std::int64_t end, std::vector<double>& gram) {
  for (std::int64_t a = 0; a < r; ++a)
    for (std::int64_t b = 0; b <= a; ++b) {
      double sum = 0.0;
      for (std::int64_t i = begin; i < end; ++i) sum += x[i + a * ld] * x[i + b * ld];
      gram[a + b * r] += sum;
    }
}

/// X := X L^-T where gram = L L^T (Cholesky): one CholeskyQR step on column-major X.
void apply_cholesky_qr(std::vector<double>& x, std::int64_t ld, std::int64_t r, std::vector<double> gram) {
  for (std::int64_t c = 0; c < r; ++c) {
    double d = gram[c + c * r];
    for (std::int64_t k = 0; k < c; ++k) d -= gram[c + k * r] * gram[c + k * r];
    fail_if(!(d > 0.0), "generate: the truth's Gaussian factor is rank-deficient (use a larger dimension)");
    gram[c + c * r] = std::sqrt(d);
    for (std::int64_t i = c + 1; i < r; ++i) {
      double e = gram[i + c * r];
      for (std::int64_t k = 0; k < c; ++k) e -= gram[i + k * r] * gram[c + k * r];
      gram[i + c * r] = e / gram[c + c * r];
    }
  }
  // Each row y of the result solves L y^T = x^T (forward substitution).
  for (std::int64_t i = 0; i < ld; ++i)
    for (std::int64_t c = 0; c < r; ++c) {
      double e = x[i + c * ld];
      for (std::int64_t k = 0; k < c; ++k) e -= gram[c + k * r] * x[i + k * ld];
      x[i + c * ld] = e / gram[c + c * r];
    }
}

/// The Gram matrix of the rows all ranks hold, summed block by block in block order along a
/// chain of the ranks, so it is the same bits on any number of ranks; `block_ends` are this
/// rank's block boundaries in local rows.
std::vector<double> chained_gram(MPI_Comm comm, const std::vector<double>& x, std::int64_t ld, std::int64_t r,
                                 const std::vector<std::int64_t>& block_ends) {
  int ranks = 1, me = 0;
  check_mpi(MPI_Comm_size(comm, &ranks), "MPI_Comm_size");
  check_mpi(MPI_Comm_rank(comm, &me), "MPI_Comm_rank");
  std::vector<double> total(static_cast<size_t>(r * r), 0.0);
  const int count = static_cast<int>(r * r);
  if (me > 0) check_mpi(MPI_Recv(total.data(), count, MPI_DOUBLE, me - 1, 0, comm, MPI_STATUS_IGNORE), "MPI_Recv");
  std::int64_t begin = 0;
  for (std::int64_t end : block_ends) {
    std::vector<double> block(total.size(), 0.0);
    add_gram(x, ld, r, begin, end, block);
    for (size_t k = 0; k < total.size(); ++k) total[k] += block[k];
    begin = end;
  }
  if (me + 1 < ranks) check_mpi(MPI_Send(total.data(), count, MPI_DOUBLE, me + 1, 0, comm), "MPI_Send");
  check_mpi(MPI_Bcast(total.data(), count, MPI_DOUBLE, ranks - 1, comm), "MPI_Bcast");
  return total;
}

/// Cells (row-major index within the block) drawn for block `b` until `want` distinct ones.
std::vector<std::int64_t> draw_cells(std::uint64_t seed, std::int64_t b, std::int64_t cells, std::int64_t want) {
  std::unordered_set<std::int64_t> seen;
  seen.reserve(static_cast<size_t>(want) * 2);
  std::vector<std::int64_t> drawn;
  drawn.reserve(static_cast<size_t>(want));
  for (std::uint64_t t = 0; static_cast<std::int64_t>(drawn.size()) < want; ++t) {
    const std::uint64_t word = random_word(seed, static_cast<std::uint32_t>(Stream::kEntryDraw),
                                           (static_cast<std::uint64_t>(b) << 40) | t);
    const auto cell = static_cast<std::int64_t>((static_cast<unsigned __int128>(word) * static_cast<std::uint64_t>(cells)) >> 64);
    if (seen.insert(cell).second) drawn.push_back(cell);
  }
  return drawn;
}

/// Numbers the entries of every rank 1, 2, ... in rank order.
void number_lines(MPI_Comm comm, EntryList& list) {
  std::int64_t local = static_cast<std::int64_t>(list.size()), offset = 0;
  check_mpi(MPI_Exscan(&local, &offset, 1, MPI_INT64_T, MPI_SUM, comm), "MPI_Exscan");
  int me = 0;
  check_mpi(MPI_Comm_rank(comm, &me), "MPI_Comm_rank");
  if (me == 0) offset = 0;
  list.lines.resize(list.size());
  for (size_t k = 0; k < list.size(); ++k) list.lines[k] = offset + static_cast<std::int64_t>(k) + 1;
}

}  // namespace

SyntheticProblem make_factored_problem(const ProcessGrid& grid, const SyntheticSpec& spec) {
  const MPI_Comm comm = grid.comm();
  const std::int64_t m = spec.rows, n = spec.cols, r = spec.rank;
  const int ranks = grid.size(), me = grid.rank();
  const RowBlocks blocks(m);
  const std::int64_t block_begin = blocks.count * me / ranks, block_end = blocks.count * (me + 1) / ranks;
  SyntheticProblem problem;
  problem.u_first = blocks.first(block_begin);
  const std::int64_t local_rows = (block_end < blocks.count ? blocks.first(block_end) : m) - problem.u_first;
  std::vector<std::int64_t> block_ends;
  for (std::int64_t b = block_begin; b < block_end; ++b) block_ends.push_back(blocks.first(b) + blocks.size(b) - problem.u_first);

  // U = orth(G_U) S and V = orth(G_V), each by two CholeskyQR steps. Every rank makes all of
  // V (its Gram sums in row order on every rank); U's rows are this rank's blocks.
  const double singular_value = std::sqrt(static_cast<double>(m)) + std::sqrt(static_cast<double>(n));
  std::vector<double> u = gaussian_rows(problem.u_first, local_rows, r, spec.seed, Stream::kTruthFactorU);
  std::vector<double> v = gaussian_rows(0, n, r, spec.seed, Stream::kTruthFactorV);
  for (int step = 0; step < 2; ++step) {
    apply_cholesky_qr(u, local_rows, r, chained_gram(comm, u, local_rows, r, block_ends));
    std::vector<double> gram(static_cast<size_t>(r * r), 0.0);
    add_gram(v, n, r, 0, n, gram);
    apply_cholesky_qr(v, n, r, gram);
  }
  for (double& value : u) value *= singular_value;

  // Entry counts per block (training first, then test among the cells left), then this
  // rank's blocks: the first drawn cells are training entries, the next ones test entries.
  const std::int64_t train_total = train_entry_count(spec), test_total = test_entry_count(spec);
  const std::vector<std::int64_t> none(static_cast<size_t>(blocks.count), 0);
  const std::vector<std::int64_t> train_counts = split_over_blocks(train_total, blocks, n, none, spec.seed, Stream::kEntryCounts);
  const std::vector<std::int64_t> test_counts =
      split_over_blocks(test_total, blocks, n, train_counts, spec.seed + 0x9E3779B97F4A7C15ull, Stream::kEntryCounts);
  problem.train.file = "train";
  problem.test.file = "test";
  for (EntryList* list : {&problem.train, &problem.test}) {
    std::int64_t local = 0;
    for (std::int64_t b = block_begin; b < block_end; ++b) local += (list == &problem.train ? train_counts : test_counts)[b];
    list->rows.reserve(static_cast<size_t>(local));
    list->cols.reserve(static_cast<size_t>(local));
    list->values.reserve(static_cast<size_t>(local));
  }
  const auto add_entries = [&](EntryList& list, std::vector<std::int64_t>::iterator begin,
                               std::vector<std::int64_t>::iterator end, std::int64_t first_row) {
    std::sort(begin, end);
    for (auto cell = begin; cell != end; ++cell) {
      const std::int64_t i = first_row + *cell / n, j = *cell % n, local_i = i - problem.u_first;
      double value = 0.0;
      for (std::int64_t c = 0; c < r; ++c) value += u[local_i + c * local_rows] * v[j + c * n];
      list.rows.push_back(i);
      list.cols.push_back(j);
      list.values.push_back(value);
    }
  };
  for (std::int64_t b = block_begin; b < block_end; ++b) {
    std::vector<std::int64_t> cells = draw_cells(spec.seed, b, blocks.size(b) * n, train_counts[b] + test_counts[b]);
    add_entries(problem.train, cells.begin(), cells.begin() + train_counts[b], blocks.first(b));
    add_entries(problem.test, cells.begin() + train_counts[b], cells.end(), blocks.first(b));
  }
  number_lines(comm, problem.train);
  number_lines(comm, problem.test);

  // This rank keeps its slab of V for the truth file.
  problem.v_first = n * me / ranks;
  const std::int64_t slab = n * (me + 1) / ranks - problem.v_first;
  problem.v.resize(static_cast<size_t>(slab * r));
  for (std::int64_t c = 0; c < r; ++c)
    for (std::int64_t j = 0; j < slab; ++j) problem.v[j + c * slab] = v[problem.v_first + j + c * n];
  problem.u = std::move(u);
  return problem;
}

}  // namespace cdmf
