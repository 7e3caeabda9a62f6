#include "cdmf/model/base.hpp"

#include <algorithm>
#include <unordered_map>

#include "cdmf/core/error.hpp"

namespace cdmf {

std::int64_t Base::rows() const { return dense ? dense->rows() : factored->rows(); }
std::int64_t Base::cols() const { return dense ? dense->cols() : factored->cols(); }

namespace {

/// Positions of the distinct values of `indices`, sorted: the rows (or columns) to fetch.
template <typename Index>
std::vector<std::int64_t> distinct(const std::vector<Index>& of) {
  std::vector<std::int64_t> indices(of.begin(), of.end());
  std::sort(indices.begin(), indices.end());
  indices.erase(std::unique(indices.begin(), indices.end()), indices.end());
  return indices;
}

/// Collective: row i of `a` (all its columns) for every i of `rows`, row-major.
std::vector<double> fetch_rows(const DistMatrix& a, const std::vector<std::int64_t>& rows) {
  const std::int64_t k = a.cols();
  std::vector<std::int64_t> ri, ci;
  ri.reserve(rows.size() * k);
  ci.reserve(rows.size() * k);
  for (std::int64_t i : rows)
    for (std::int64_t c = 0; c < k; ++c) {
      ri.push_back(i);
      ci.push_back(c);
    }
  return sample_entries(a, ri, ci);
}

}  // namespace

namespace {
std::vector<double> chain_values(const Base& base, const Observations& entries);
}  // namespace

std::vector<double> base_values(const Base& base, const Observations& entries) {
  std::vector<double> values = chain_values(base, entries);
  if (base.biases)
    for (size_t e = 0; e < entries.size(); ++e) values[e] += base.biases->at(entries.rows[e], entries.cols[e]);
  return values;
}

namespace {
/// W0 without the biases at the local observations.
std::vector<double> chain_values(const Base& base, const Observations& entries) {
  if (base.dense) return sample_entries(*base.dense, entries.rows, entries.cols);
  const Chain& chain = *base.factored;
  const std::int64_t k = chain.factors.front().rows();
  if (chain.depth() < 2 || k > std::min(chain.rows(), chain.cols())) {
    const DistMatrix full = end_to_end(chain);  // a wide chain: its product is the smaller object
    return sample_entries(full, entries.rows, entries.cols);
  }
  // P = W_K ... W_2 (m x k), thin; B^T = W_1^T (n x k).
  DistMatrix p = chain.factors.back();
  for (int l = chain.depth() - 2; l >= 1; --l) {
    const DistMatrix& w = chain.factors[l];
    DistMatrix next(p.grid(), p.rows(), w.cols(), p.block());
    gemm('N', 'N', 1.0, p, w, 0.0, next);
    p = std::move(next);
  }
  const DistMatrix bt = transposed(chain.factors.front());
  const std::vector<std::int64_t> rows = distinct(entries.rows), cols = distinct(entries.cols);
  const std::vector<double> p_rows = fetch_rows(p, rows), b_rows = fetch_rows(bt, cols);
  std::unordered_map<std::int64_t, size_t> row_at, col_at;
  for (size_t r = 0; r < rows.size(); ++r) row_at[rows[r]] = r;
  for (size_t c = 0; c < cols.size(); ++c) col_at[cols[c]] = c;
  std::vector<double> values(entries.size());
  for (size_t e = 0; e < entries.size(); ++e) {
    const double* pi = &p_rows[row_at[entries.rows[e]] * k];
    const double* bj = &b_rows[col_at[entries.cols[e]] * k];
    double sum = 0.0;
    for (std::int64_t c = 0; c < k; ++c) sum += pi[c] * bj[c];
    values[e] = sum;
  }
  return values;
}
}  // namespace

void subtract_base(const Base& base, Observations& entries) {
  const std::vector<double> w0 = base_values(base, entries);
  for (size_t e = 0; e < entries.size(); ++e) entries.values[e] -= w0[e];
}

DistMatrix apply_base(const Base& base, const DistMatrix& x) {
  fail_if(base.biases.has_value(), "a base with biases (a ratings model) has no linear-layer form");
  fail_if(x.rows() != base.cols(), "the inputs have {} features but the base has {} columns",
          x.rows(), base.cols());
  if (base.dense) {
    DistMatrix y(x.grid(), base.rows(), x.cols(), x.block());
    gemm('N', 'N', 1.0, *base.dense, x, 0.0, y);
    return y;
  }
  DistMatrix z = x;
  for (const DistMatrix& w : base.factored->factors) {
    DistMatrix next(x.grid(), w.rows(), z.cols(), x.block());
    gemm('N', 'N', 1.0, w, z, 0.0, next);
    z = std::move(next);
  }
  return z;
}

}  // namespace cdmf
