#include "support/serial_reference.hpp"

#include <algorithm>
#include <numeric>

#include "cdmf/linalg/scalapack.hpp"
#include "cdmf/random/counter_rng.hpp"

namespace cdmf::test {

SerialMatrix multiply(const SerialMatrix& a, const SerialMatrix& b, bool trans_a, bool trans_b) {
  const std::int64_t m = trans_a ? a.cols : a.rows, k = trans_a ? a.rows : a.cols;
  const std::int64_t n = trans_b ? b.rows : b.cols;
  SerialMatrix c{m, n, std::vector<double>(static_cast<size_t>(m * n), 0.0)};
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t p = 0; p < k; ++p) {
      const double bpj = trans_b ? b(j, p) : b(p, j);
      for (std::int64_t i = 0; i < m; ++i) c(i, j) += (trans_a ? a(p, i) : a(i, p)) * bpj;
    }
  return c;
}

SerialMatrix serial_end_to_end(const std::vector<SerialMatrix>& factors) {
  SerialMatrix x = factors.front();
  for (size_t l = 1; l < factors.size(); ++l) x = multiply(factors[l], x);
  return x;
}

namespace {
/// dF/dW_l = (W_K..W_{l+1})^T S (W_{l-1}..W_1)^T for every l, each product formed from scratch.
std::vector<SerialMatrix> factor_gradients(const std::vector<SerialMatrix>& factors,
                                           const SerialMatrix& s) {
  std::vector<SerialMatrix> gradient;
  const size_t depth = factors.size();
  for (size_t l = 0; l < depth; ++l) {
    SerialMatrix left = s;
    for (size_t q = depth - 1; q > l; --q) left = multiply(factors[q], left, true, false);
    if (l == 0) {
      gradient.push_back(left);
      continue;
    }
    SerialMatrix right = factors[0];
    for (size_t q = 1; q < l; ++q) right = multiply(factors[q], right);
    gradient.push_back(multiply(left, right, false, true));
  }
  return gradient;
}
}  // namespace

SerialBiases serial_fit_biases(const EntryList& entries, std::int64_t m, std::int64_t n,
                               double regularization, int sweeps) {
  SerialBiases biases;
  biases.rows.assign(static_cast<size_t>(m), 0.0);
  biases.cols.assign(static_cast<size_t>(n), 0.0);
  for (double v : entries.values) biases.mu += v;
  biases.mu /= static_cast<double>(entries.size());
  // One side: bias[k] = sum over its entries of (v - mu - the other side's bias) / (count + lambda).
  const auto solve = [&](const std::vector<std::int64_t>& own, const std::vector<std::int64_t>& other_index,
                         const std::vector<double>& other, std::vector<double>& bias) {
    for (size_t k = 0; k < bias.size(); ++k) {
      double sum = 0.0, count = 0.0;
      for (size_t e = 0; e < entries.size(); ++e)
        if (own[e] == static_cast<std::int64_t>(k)) {
          sum += entries.values[e] - biases.mu - other[static_cast<size_t>(other_index[e])];
          count += 1.0;
        }
      bias[k] = count + regularization > 0.0 ? sum / (count + regularization) : 0.0;
    }
  };
  for (int sweep = 0; sweep < sweeps; ++sweep) {
    solve(entries.rows, entries.cols, biases.cols, biases.rows);
    solve(entries.cols, entries.rows, biases.rows, biases.cols);
  }
  return biases;
}

double serial_loss(const std::vector<SerialMatrix>& factors, const EntryList& entries,
                   double normalization, std::vector<SerialMatrix>* gradient,
                   const SerialBiases* biases) {
  const SerialMatrix x = serial_end_to_end(factors);
  SerialMatrix s{x.rows, x.cols, std::vector<double>(x.data.size(), 0.0)};
  double sse = 0.0;
  for (size_t e = 0; e < entries.size(); ++e) {
    const double bias = biases ? biases->mu + biases->rows[static_cast<size_t>(entries.rows[e])] +
                                     biases->cols[static_cast<size_t>(entries.cols[e])]
                               : 0.0;
    const double r = x(entries.rows[e], entries.cols[e]) + bias - entries.values[e];
    sse += r * r;
    s(entries.rows[e], entries.cols[e]) = r / normalization;
  }
  if (gradient) *gradient = factor_gradients(factors, s);
  return sse / (2.0 * normalization);
}

double serial_linear_loss(const std::vector<SerialMatrix>& factors, const SerialMatrix& base,
                          const SerialMatrix& inputs, const SerialMatrix& targets,
                          std::vector<SerialMatrix>* gradient) {
  SerialMatrix w = serial_end_to_end(factors);
  for (size_t e = 0; e < w.data.size(); ++e) w.data[e] += base.data[e];
  SerialMatrix r = multiply(w, inputs);
  double sse = 0.0;
  for (size_t e = 0; e < r.data.size(); ++e) {
    r.data[e] -= targets.data[e];
    sse += r.data[e] * r.data[e];
  }
  const double samples = static_cast<double>(inputs.cols);
  if (gradient) {
    SerialMatrix s = multiply(r, inputs, false, true);
    for (double& v : s.data) v /= samples;
    *gradient = factor_gradients(factors, s);
  }
  return sse / (2.0 * samples);
}

SerialMatrix serial_orth(SerialMatrix a) {
  const int m = static_cast<int>(a.rows), n = static_cast<int>(a.cols);
  std::vector<double> tau(static_cast<size_t>(n)), work(static_cast<size_t>(64 * n));
  int lwork = static_cast<int>(work.size()), info = 0;
  dgeqrf_(&m, &n, a.data.data(), &m, tau.data(), work.data(), &lwork, &info);
  dorgqr_(&m, &n, &n, a.data.data(), &m, tau.data(), work.data(), &lwork, &info);
  return a;
}

void serial_top_singular_vectors(SerialMatrix g, std::int64_t rank, SerialMatrix& left,
                                 SerialMatrix& right) {
  const int m = static_cast<int>(g.rows), n = static_cast<int>(g.cols), k = std::min(m, n);
  std::vector<double> s(static_cast<size_t>(k)), u(static_cast<size_t>(m) * k),
      vt(static_cast<size_t>(k) * n);
  std::vector<double> work(static_cast<size_t>(10 * (m + n) * 8));
  int lwork = static_cast<int>(work.size()), info = 0;
  dgesvd_("S", "S", &m, &n, g.data.data(), &m, s.data(), u.data(), &m, vt.data(), &k, work.data(),
          &lwork, &info, 1, 1);
  left = {g.rows, rank, {}};
  right = {g.cols, rank, {}};
  for (std::int64_t c = 0; c < rank; ++c)
    for (std::int64_t i = 0; i < g.rows; ++i) left.data.push_back(u[i + c * m]);
  for (std::int64_t c = 0; c < rank; ++c)
    for (std::int64_t j = 0; j < g.cols; ++j) right.data.push_back(vt[c + j * k]);
}

SerialMatrix projector(const SerialMatrix& v) { return multiply(v, v, false, true); }

SerialMatrix gather_original(const DistMatrix& x, const IndexLayout& layout, Space row_space,
                             Space col_space) {
  const std::vector<double> full = x.gather();
  SerialMatrix out{x.rows(), x.cols(), {}};
  if (full.empty() && x.rows() * x.cols() > 0) return out;
  out.data.assign(full.size(), 0.0);
  for (std::int64_t j = 0; j < x.cols(); ++j)
    for (std::int64_t i = 0; i < x.rows(); ++i)
      out(original_index(layout, row_space, i), original_index(layout, col_space, j)) =
          full[i + j * x.rows()];
  return out;
}

std::vector<SerialMatrix> gather_chain(const Chain& chain, const IndexLayout& layout) {
  std::vector<SerialMatrix> factors;
  const int depth = chain.depth();
  for (int l = 0; l < depth; ++l)
    factors.push_back(gather_original(chain.factors[l], layout,
                                      l == depth - 1 ? Space::kRows : Space::kInner,
                                      l == 0 ? Space::kCols : Space::kInner));
  return factors;
}

Observations owned_observations(const ProcessGrid& grid, const IndexLayout& layout,
                                const EntryList& all) {
  Observations obs;
  std::vector<size_t> order;
  for (size_t e = 0; e < all.size(); ++e)
    if (layout.owner(grid, layout.permuted_row(all.rows[e]), layout.permuted_col(all.cols[e])) ==
        grid.rank())
      order.push_back(e);
  for (size_t e : order) {
    obs.rows.push_back(layout.permuted_row(all.rows[e]));
    obs.cols.push_back(layout.permuted_col(all.cols[e]));
    obs.values.push_back(all.values[e]);
  }
  obs.global_count = static_cast<std::int64_t>(all.size());
  return obs;
}

EntryList random_entries(std::int64_t m, std::int64_t n, double fraction, std::uint64_t seed,
                         const SerialMatrix& truth) {
  EntryList list;
  list.file = "random";
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j)
      if (uniform_open(seed, 999, static_cast<std::uint64_t>(i * n + j)) < fraction) {
        list.rows.push_back(i);
        list.cols.push_back(j);
        list.values.push_back(truth(i, j));
        list.lines.push_back(static_cast<std::int64_t>(list.lines.size()) + 1);
      }
  return list;
}

}  // namespace cdmf::test
