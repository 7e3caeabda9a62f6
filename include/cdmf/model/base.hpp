#pragma once
/// The frozen base W0 of an adaptation (DESIGN.md section 1, "Adaptation"): a dense m x n
/// block-cyclic matrix, or a chain kept factored (a cdmf factor file). Both are in the
/// layout's permuted spaces, like every model. The base only ever enters the measurements as
/// offsets: its values at the observed entries, or the product W0 X with the inputs.
#include <cstdint>
#include <optional>
#include <vector>

#include "cdmf/data/observations.hpp"
#include "cdmf/linalg/dist_matrix.hpp"
#include "cdmf/model/biases.hpp"
#include "cdmf/model/chain.hpp"

namespace cdmf {

struct Base {
  std::optional<DistMatrix> dense;  // m x n
  std::optional<Chain> factored;    // W0 = W_K ... W_1
  // A ratings model's mean and row/column biases (train --biases): its value at (i, j) is
  // the chain's plus mu + b_i + c_j. Entries only: they are offsets of observed pairs, not
  // weights a linear layer applies to its inputs (apply_base refuses them).
  std::optional<Biases> biases;
  std::int64_t rows() const;
  std::int64_t cols() const;
};

/// Collective: W0 at every local observation of `entries`, in their order (with the biases
/// when the base has them). A factored base
/// whose inner widths are thin is never multiplied out: the rows of P = W_K ... W_2 and the
/// columns of W_1 that the local entries touch are fetched (O((m/Pr + n/Pc) k) words) and
/// dotted; a wide chain (a deep model) is multiplied out once.
std::vector<double> base_values(const Base& base, const Observations& entries);

/// Collective: y - W0_ij for every observation, so that the sparse and dense strategies fit
/// the update DeltaW unchanged (predictions add W0_ij back).
void subtract_base(const Base& base, Observations& entries);

/// Collective: W0 X for X (n x s, rows in the permuted column space), m x s (rows in the
/// permuted row space); a factored base applies its factors one at a time (thin products).
DistMatrix apply_base(const Base& base, const DistMatrix& x);

}  // namespace cdmf
