#include "cdmf/model/diagnostics.hpp"

#include <algorithm>

#include "cdmf/core/error.hpp"

namespace cdmf {

CompressibilityProbe::CompressibilityProbe(const Chain& initial, int top)
    : initial_(initial.factors), top_(top) {
  fail_if(top < 1, "the number of singular values to report must be positive (got {})", top);
}

std::vector<std::string> CompressibilityProbe::column_names() const {
  std::vector<std::string> names;
  for (size_t l = 0; l < initial_.size(); ++l) names.push_back("rank_W" + std::to_string(l + 1));
  for (int t = 0; t < top_; ++t) names.push_back("sigma_" + std::to_string(t + 1));
  return names;
}

int CompressibilityProbe::numerical_rank(const std::vector<double>& sigma, double relative) {
  if (sigma.empty() || !(sigma.front() > 0.0)) return 0;
  const double threshold = relative * sigma.front();
  return static_cast<int>(std::count_if(sigma.begin(), sigma.end(),
                                        [threshold](double s) { return s > threshold; }));
}

std::vector<double> CompressibilityProbe::measure(const Chain& current) const {
  fail_if(current.factors.size() != initial_.size(), "diagnostics: the chain changed shape");
  std::vector<double> values;
  for (size_t l = 0; l < initial_.size(); ++l) {
    DistMatrix change = current.factors[l];
    axpy(-1.0, initial_[l], change);
    values.push_back(numerical_rank(singular_values(change)));
  }
  const std::vector<double> sigma = singular_values(end_to_end(current));
  for (int t = 0; t < top_; ++t)
    values.push_back(static_cast<size_t>(t) < sigma.size() ? sigma[static_cast<size_t>(t)] : 0.0);
  return values;
}

}  // namespace cdmf
