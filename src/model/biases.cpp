#include "cdmf/model/biases.hpp"

#include <mpi.h>

#include "cdmf/core/error.hpp"

namespace cdmf {

std::vector<double> Biases::rows_original(const IndexLayout& layout) const {
  std::vector<double> result(rows.size());
  for (size_t i = 0; i < result.size(); ++i)
    result[i] = rows[static_cast<size_t>(layout.permuted_row(static_cast<std::int64_t>(i)))];
  return result;
}

std::vector<double> Biases::cols_original(const IndexLayout& layout) const {
  std::vector<double> result(cols.size());
  for (size_t j = 0; j < result.size(); ++j)
    result[j] = cols[static_cast<size_t>(layout.permuted_col(static_cast<std::int64_t>(j)))];
  return result;
}

Biases Biases::from_original(const IndexLayout& layout, double mu,
                             const std::vector<double>& rows_original,
                             const std::vector<double>& cols_original) {
  fail_if(static_cast<std::int64_t>(rows_original.size()) != layout.rows() ||
              static_cast<std::int64_t>(cols_original.size()) != layout.cols(),
          "biases of {} rows and {} columns for a {} x {} problem", rows_original.size(),
          cols_original.size(), layout.rows(), layout.cols());
  Biases biases;
  biases.mu = mu;
  biases.rows.resize(rows_original.size());
  biases.cols.resize(cols_original.size());
  for (size_t i = 0; i < rows_original.size(); ++i)
    biases.rows[static_cast<size_t>(layout.permuted_row(static_cast<std::int64_t>(i)))] =
        rows_original[i];
  for (size_t j = 0; j < cols_original.size(); ++j)
    biases.cols[static_cast<size_t>(layout.permuted_col(static_cast<std::int64_t>(j)))] =
        cols_original[j];
  return biases;
}

Biases fit_biases(const ProcessGrid& grid, const Observations& train, std::int64_t rows,
                  std::int64_t cols, const BiasFit& fit) {
  fail_if(!(fit.regularization >= 0.0), "--bias-reg must be non-negative (got {})",
          fit.regularization);
  fail_if(fit.sweeps < 1, "--bias-sweeps must be at least 1 (got {})", fit.sweeps);
  const MPI_Comm comm = grid.comm();
  const auto m = static_cast<size_t>(rows), n = static_cast<size_t>(cols);
  Biases biases;
  biases.rows.assign(m, 0.0);
  biases.cols.assign(n, 0.0);

  // Counts per row and column, and the global mean, in one allreduce: [counts_r, counts_c, sum].
  std::vector<double> sums(m + n + 1, 0.0);
  for (size_t e = 0; e < train.size(); ++e) {
    sums[static_cast<size_t>(train.rows[e])] += 1.0;
    sums[m + static_cast<size_t>(train.cols[e])] += 1.0;
    sums[m + n] += train.values[e];
  }
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, sums.data(), static_cast<int>(sums.size()), MPI_DOUBLE,
                          MPI_SUM, comm),
            "MPI_Allreduce");
  const std::vector<double> counts(sums.begin(), sums.begin() + static_cast<std::ptrdiff_t>(m + n));
  fail_if(train.global_count <= 0, "cannot fit biases without training entries");
  biases.mu = sums[m + n] / static_cast<double>(train.global_count);

  std::vector<double> part;
  for (int sweep = 0; sweep < fit.sweeps; ++sweep) {
    for (const bool row_side : {true, false}) {
      const size_t size = row_side ? m : n, base = row_side ? 0 : m;
      part.assign(size, 0.0);
      for (size_t e = 0; e < train.size(); ++e) {
        const auto i = static_cast<size_t>(train.rows[e]), j = static_cast<size_t>(train.cols[e]);
        const double other = row_side ? biases.cols[j] : biases.rows[i];
        part[row_side ? i : j] += train.values[e] - biases.mu - other;
      }
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, part.data(), static_cast<int>(size), MPI_DOUBLE,
                              MPI_SUM, comm),
                "MPI_Allreduce");
      std::vector<double>& target = row_side ? biases.rows : biases.cols;
      for (size_t k = 0; k < size; ++k) {
        const double denominator = counts[base + k] + fit.regularization;
        target[k] = denominator > 0.0 ? part[k] / denominator : 0.0;
      }
    }
  }
  return biases;
}

void set_bias_offsets(Observations& obs, const Biases& biases) {
  obs.offsets.resize(obs.size());
  for (size_t e = 0; e < obs.size(); ++e) obs.offsets[e] = biases.at(obs.rows[e], obs.cols[e]);
}

}  // namespace cdmf
