// Top singular triplets from the Gram matrix of the smaller side (formulas, cost, accuracy and
// sign convention: include/cdmf/linalg/truncated_svd.hpp).
#include "cdmf/linalg/truncated_svd.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <memory>

#include "cdmf/core/error.hpp"
#include "cdmf/linalg/scalapack.hpp"
#include "pblas_topology_guard.hpp"

namespace cdmf {

namespace {
constexpr int kOne = 1;
/// ||E|| / lambda_1 for forming C = A^T A and reducing it: a multiple of the unit roundoff
/// (measured subspace errors on 700 x 500 matrices with small gaps: up to 3 u lambda_1 / gap).
constexpr double kGramNoise = 16.0 * std::numeric_limits<double>::epsilon();
/// The subspace accuracy the Gram path must guarantee, else the policy applies.
constexpr double kSubspaceTolerance = 1e-10;
/// Largest workspace (doubles, per rank) offered to PDSYNTRD for its one-rank LAPACK path.
constexpr double kSerialReductionWorkspace = double(1 << 24);

bool all_finite(const DistMatrix& a) {
  int finite = 1;
  for (std::int64_t lj = 0; lj < a.local_cols() && finite; ++lj)
    for (std::int64_t li = 0; li < a.local_rows(); ++li)
      if (!std::isfinite(a.at_local(li, lj))) {
        finite = 0;
        break;
      }
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, &finite, 1, MPI_INT, MPI_MIN, a.grid().comm()),
            "MPI_Allreduce");
  return finite == 1;
}

/// The lower triangle of A^T A (of_columns) or A A^T (PDSYRK).
DistMatrix lower_gram(const DistMatrix& a, bool of_columns) {
  const int n = static_cast<int>(of_columns ? a.cols() : a.rows());
  const int k = static_cast<int>(of_columns ? a.rows() : a.cols());
  DistMatrix c(a.grid(), n, n, a.block());
  const double one = 1.0, zero = 0.0;
  pdsyrk_("L", of_columns ? "T" : "N", &n, &k, &one, a.data(), &kOne, &kOne, a.desc(), &zero,
          c.data(), &kOne, &kOne, c.desc());
  return c;
}

/// The `wanted` largest eigenvalues of the symmetric n x n C (lower triangle read; C is
/// destroyed), descending on every rank, and the eigenvectors of the `vectors` largest,
/// descending, as an n x `vectors` matrix on C's grid.
///   C = Q T Q^T (PDSYNTRD), T x_i = lambda_i x_i (LAPACK DSTEMR on T, on grid rank 0, then
///   broadcast; O(n wanted)), z_i = Q x_i (PDORMTR).
/// Not PDSYEVR, which does the same: in ScaLAPACK 2.2.1 it sizes its internal PDORMTR
/// workspace too small when few eigenvectors are asked with blocks of 16 or more (e.g. 6
/// vectors of 500 x 500, block 32), reports that only on stderr, returns INFO = 0 and hands
/// back the eigenvectors of T instead of C's. Here PDORMTR gets a queried workspace.
struct TopEigenpairs {
  std::vector<double> values;
  DistMatrix vectors;
};

TopEigenpairs top_eigenpairs(DistMatrix& c, int wanted, int vectors) {
  const ProcessGrid& grid = c.grid();
  const int n = static_cast<int>(c.rows()), block = c.block();
  const size_t local_cols = static_cast<size_t>(std::max<std::int64_t>(1, c.local_cols()));
  std::vector<double> tau(local_cols);
  {
    const PblasTopologyGuard topology(grid.blacs_context());
    std::vector<double> d(local_cols), e(local_cols);  // T is read back from C below
    int info = 0, lwork = -1;
    double query = 0.0;
    pdsyntrd_("L", &n, c.data(), &kOne, &kOne, c.desc(), d.data(), e.data(), tau.data(), &query,
              &lwork, &info, 1);
    fail_if(info != 0, "pdsyntrd workspace query failed (info {})", info);
    // On grids of up to 3 ranks PDSYNTRD reduces with LAPACK DSYTRD on one rank (much faster
    // than its distributed path) when given n^2 + 3n + 1 of workspace, which the query does
    // not ask for: offer it while that is modest.
    const double serial = double(n) * n + 3.0 * n + 1.0;
    const double minimum = double(c.local_rows() + 1) * block + 3.0 * block;
    const size_t size = static_cast<size_t>(
        std::max({query, minimum, serial <= kSerialReductionWorkspace ? serial : 0.0}) + 1);
    // Not zero-filled: workspace (n^2 doubles) whose pages a rank may never touch.
    const std::unique_ptr<double[]> work(new double[size]);
    lwork = static_cast<int>(size);
    pdsyntrd_("L", &n, c.data(), &kOne, &kOne, c.desc(), d.data(), e.data(), tau.data(),
              work.get(), &lwork, &info, 1);
    fail_if(info != 0, "pdsyntrd failed (info {})", info);
  }
  // T's diagonal and subdiagonal, overwritten onto C's, on every rank.
  std::vector<double> t(2 * static_cast<size_t>(n), 0.0);  // [diagonal, subdiagonal (n-1), 0]
  const CyclicDim& rows = c.row_dim();
  const CyclicDim& cols = c.col_dim();
  for (std::int64_t i = 0; i < n; ++i) {
    if (cols.owner(i) != cols.me) continue;
    if (rows.owner(i) == rows.me) t[i] = c.at_local(rows.local(i), cols.local(i));
    if (i + 1 < n && rows.owner(i + 1) == rows.me)
      t[n + i] = c.at_local(rows.local(i + 1), cols.local(i));
  }
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, t.data(), 2 * n, MPI_DOUBLE, MPI_SUM, grid.comm()),
            "MPI_Allreduce");
  // Eigenpairs of T on one rank (every rank then uses the same bits).
  std::vector<double> w(static_cast<size_t>(n)), x(static_cast<size_t>(n) * wanted);
  int info = 0;
  if (grid.rank() == 0) {
    const int il = n - wanted + 1, iu = n;
    const int lwork = std::max(1, 18 * n), liwork = std::max(1, 10 * n);
    const double unused = 0.0;
    int found = 0, tryrac = 1;
    std::vector<double> work(static_cast<size_t>(lwork));
    std::vector<int> iwork(static_cast<size_t>(liwork)), support(2 * static_cast<size_t>(wanted));
    dstemr_("V", "I", &n, t.data(), t.data() + n, &unused, &unused, &il, &iu, &found, w.data(),
            x.data(), &n, &wanted, support.data(), &tryrac, work.data(), &lwork, iwork.data(),
            &liwork, &info, 1, 1);
    if (info == 0 && found != wanted) info = -1000 - found;
  }
  check_mpi(MPI_Bcast(&info, 1, MPI_INT, 0, grid.comm()), "MPI_Bcast");
  fail_if(info != 0, "LAPACK dstemr failed on the tridiagonal Gram matrix (info {})", info);
  check_mpi(MPI_Bcast(w.data(), wanted, MPI_DOUBLE, 0, grid.comm()), "MPI_Bcast");
  check_mpi(MPI_Bcast(x.data(), n * wanted, MPI_DOUBLE, 0, grid.comm()), "MPI_Bcast");

  TopEigenpairs result{std::vector<double>(static_cast<size_t>(wanted)),
                       DistMatrix(grid, n, vectors, block)};
  for (int i = 0; i < wanted; ++i) result.values[i] = w[wanted - 1 - i];  // DSTEMR: ascending
  result.vectors.fill([&](std::int64_t i, std::int64_t j) { return x[i + (wanted - 1 - j) * n]; });
  {
    const PblasTopologyGuard topology(grid.blacs_context());
    int lwork = -1;
    double query = 0.0;
    pdormtr_("L", "L", "N", &n, &vectors, c.data(), &kOne, &kOne, c.desc(), tau.data(),
             result.vectors.data(), &kOne, &kOne, result.vectors.desc(), &query, &lwork, &info, 1,
             1, 1);
    fail_if(info != 0, "pdormtr workspace query failed (info {})", info);
    std::vector<double> work(static_cast<size_t>(query) + 1);
    lwork = static_cast<int>(work.size());
    pdormtr_("L", "L", "N", &n, &vectors, c.data(), &kOne, &kOne, c.desc(), tau.data(),
             result.vectors.data(), &kOne, &kOne, result.vectors.desc(), work.data(), &lwork,
             &info, 1, 1, 1);
    fail_if(info != 0, "pdormtr failed (info {})", info);
  }
  return result;
}

/// Collective: ||B e_j|| for every column j, on every rank.
std::vector<double> column_norms(const DistMatrix& b) {
  std::vector<double> squares(static_cast<size_t>(b.cols()), 0.0);
  for (std::int64_t lj = 0; lj < b.local_cols(); ++lj) {
    double sum = 0.0;
    for (std::int64_t li = 0; li < b.local_rows(); ++li)
      sum += b.at_local(li, lj) * b.at_local(li, lj);
    squares[b.col_dim().global(lj)] = sum;
  }
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, squares.data(), static_cast<int>(squares.size()),
                          MPI_DOUBLE, MPI_SUM, b.grid().comm()),
            "MPI_Allreduce");
  for (double& x : squares) x = std::sqrt(x);
  return squares;
}

/// Flips (u_j, v_j) so that v_j's entry of largest magnitude (first row on a tie) is positive.
void fix_signs(DistMatrix& u, DistMatrix& v) {
  const std::int64_t count = v.cols();
  struct Candidate {
    double magnitude;
    int row;
  };
  std::vector<Candidate> best(static_cast<size_t>(count), Candidate{-1.0, INT_MAX});
  for (std::int64_t lj = 0; lj < v.local_cols(); ++lj) {
    Candidate& c = best[v.col_dim().global(lj)];
    // Local rows map to increasing global rows, so '>' keeps the first row of a tie.
    for (std::int64_t li = 0; li < v.local_rows(); ++li)
      if (std::abs(v.at_local(li, lj)) > c.magnitude)
        c = {std::abs(v.at_local(li, lj)), static_cast<int>(v.row_dim().global(li))};
  }
  // MPI_MAXLOC: the largest magnitude, the smallest row among equal ones.
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, best.data(), static_cast<int>(count), MPI_DOUBLE_INT,
                          MPI_MAXLOC, v.grid().comm()),
            "MPI_Allreduce");
  std::vector<double> sign(static_cast<size_t>(count), 0.0);
  for (std::int64_t j = 0; j < count; ++j) {
    const std::int64_t i = best[j].row;
    if (v.row_dim().owner(i) == v.row_dim().me && v.col_dim().owner(j) == v.col_dim().me)
      sign[j] = v.at_local(v.row_dim().local(i), v.col_dim().local(j)) < 0.0 ? -1.0 : 1.0;
  }
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, sign.data(), static_cast<int>(count), MPI_DOUBLE, MPI_SUM,
                          v.grid().comm()),
            "MPI_Allreduce");
  // u and v have `count` columns with the same block: column j lives on the same grid column.
  for (DistMatrix* x : {&u, &v})
    for (std::int64_t lj = 0; lj < x->local_cols(); ++lj) {
      if (sign[x->col_dim().global(lj)] > 0.0) continue;
      for (std::int64_t li = 0; li < x->local_rows(); ++li)
        x->at_local(li, lj) = -x->at_local(li, lj);
    }
}

TruncatedSvd leading_columns_of_full_svd(const DistMatrix& a, std::int64_t count) {
  const Svd full = svd(a);
  TruncatedSvd result{DistMatrix(a.grid(), a.rows(), count, a.block()),
                      DistMatrix(a.grid(), a.cols(), count, a.block()),
                      std::vector<double>(full.s.begin(), full.s.begin() + count), true};
  copy_block(full.u, 0, 0, a.rows(), count, result.u, 0, 0);
  DistMatrix vt(a.grid(), count, a.cols(), a.block());
  copy_block(full.vt, 0, 0, count, a.cols(), vt, 0, 0);
  result.v = transposed(vt);
  fix_signs(result.u, result.v);
  return result;
}
}  // namespace

TruncatedSvd top_singular_vectors(const DistMatrix& a, std::int64_t count,
                                  UnresolvedSubspace policy) {
  const std::int64_t m = a.rows(), n = a.cols(), smaller = std::min(m, n);
  fail_if(count < 1 || count > smaller,
          "top_singular_vectors: {} singular vectors asked of a {}x{} matrix (1 to {} exist)",
          count, m, n, smaller);
  fail_if(!all_finite(a), "top_singular_vectors: the {}x{} matrix has a non-finite entry", m, n);

  // Eigenvectors of the smaller Gram matrix give V (A^T A, when n <= m) or U (A A^T).
  const bool right_first = n <= m;
  const int wanted = static_cast<int>(count + (count < smaller ? 1 : 0));  // + lambda_{count+1}
  DistMatrix gram = lower_gram(a, right_first);
  TopEigenpairs eig = top_eigenpairs(gram, wanted, static_cast<int>(count));
  const double lambda_1 = eig.values[0];
  const double lambda_count = eig.values[count - 1];
  const double lambda_next = count < smaller ? std::max(0.0, eig.values[count]) : 0.0;
  const double relative_gap = lambda_1 > 0.0 ? (lambda_count - lambda_next) / lambda_1 : 0.0;
  if (!(relative_gap >= kGramNoise / kSubspaceTolerance)) {
    fail_if(policy == UnresolvedSubspace::kFail,
            "top_singular_vectors: the top-{} singular subspace of the {}x{} matrix is undefined "
            "or ill-conditioned: (s_{}^2 - s_{}^2) / s_1^2 = {:.3g} < {:.3g} (rank below {}, or "
            "too small a gap)",
            count, m, n, count, count + 1, relative_gap, kGramNoise / kSubspaceTolerance, count);
    return leading_columns_of_full_svd(a, count);
  }

  const ProcessGrid& grid = a.grid();
  DistMatrix first = std::move(eig.vectors);  // smaller x count, descending
  orthonormalize_columns(first);  // the eigenvectors are orthonormal to rounding; make it exact
  DistMatrix second(grid, right_first ? m : n, count, a.block());
  gemm(right_first ? 'N' : 'T', 'N', 1.0, a, first, 0.0, second);  // A V or A^T U
  std::vector<double> s = column_norms(second);
  orthonormalize_columns(second);  // = second diag(s)^-1 up to rounding; R's diagonal > 0
  DistMatrix& u = right_first ? second : first;
  DistMatrix& v = right_first ? first : second;
  TruncatedSvd result{std::move(u), std::move(v), std::move(s), false};
  fix_signs(result.u, result.v);
  return result;
}

}  // namespace cdmf
