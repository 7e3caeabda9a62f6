#include "cdmf/strategy/strategy.hpp"

#include <algorithm>

namespace cdmf {

void shape_like_factors(const Chain& chain, std::vector<DistMatrix>& gradient) {
  const bool reusable = gradient.size() == chain.factors.size() &&
                        std::equal(gradient.begin(), gradient.end(), chain.factors.begin(),
                                   [](const DistMatrix& g, const DistMatrix& w) { return g.same_layout(w); });
  if (reusable) return;
  gradient.clear();
  for (const DistMatrix& w : chain.factors) gradient.emplace_back(w.grid(), w.rows(), w.cols(), w.block());
}

DistMatrix Strategy::first_factor_gradient(const Chain& chain) {
  std::vector<DistMatrix> gradient;
  evaluate(chain, &gradient, false);
  return std::move(gradient.front());
}

}  // namespace cdmf
