#pragma once
/// Adapters (DESIGN.md section 1, "Adaptation"): a chain DeltaW = W_K ... W_1 that models a
/// low-rank update of a frozen base, X = W0 + DeltaW. The base is never part of the chain;
/// the measurement (strategy) carries it as an offset.
///
///   lora             A (r x n) Gaussian / sqrt(n), B (m x r) zero; the alpha / r scale is
///                    folded into A, so DeltaW = B A exactly, with lr multiplier alpha / r on
///                    A (the same Adam steps as the scaled form, Adam being scale-invariant)
///   deep             depth L, width r, every factor eps * orthogonal (the `narrow` init)
///   deep-compressed  the `compressed` chain (width k = 2 (r / 2)) built from the first
///                    gradient of an overparameterized depth-L adapter of width h
///                    (model/compression.hpp); gamma on the outer factors
#include <cstdint>
#include <string>

#include "cdmf/data/observations.hpp"
#include "cdmf/model/chain.hpp"
#include "cdmf/model/structured_init.hpp"
#include "cdmf/strategy/linear_strategy.hpp"
#include "cdmf/strategy/strategy.hpp"

namespace cdmf {

enum class AdapterKind { kLora, kDeep, kDeepCompressed };
std::string adapter_name(AdapterKind kind);
/// "lora", "deep", "deep-compressed"; throws Error otherwise.
AdapterKind parse_adapter_kind(const std::string& name);
/// The chain model an adapter is stored as (the `model` attribute of its files): lora is a
/// `shallow` chain, deep a `narrow` one, deep-compressed a `compressed` one.
ModelKind adapter_model_kind(AdapterKind kind);

struct AdapterConfig {
  AdapterKind kind = AdapterKind::kLora;
  std::int64_t rank = 8;     // r
  int depth = 3;             // L (deep, deep-compressed)
  double init_scale = 1e-3;  // eps (deep, deep-compressed)
  double gamma = 0.01;       // outer lr multiplier (deep-compressed)
  double alpha = 0.0;        // LoRA alpha (0: r, scale 1)
  std::int64_t width = 0;    // h of the overparameterized adapter (0: max(m, n))
  std::uint64_t seed = 0;
};

/// Throws a one-line Error for impossible settings on an m x n base: rank < 1 or above
/// min(m, n), an odd rank for deep-compressed, depth < 2, non-positive scales.
void validate_adapter(const AdapterConfig& config, std::int64_t rows, std::int64_t cols);

/// Width of the adapter chain: r, or 2 (r / 2) for deep-compressed.
std::int64_t adapter_width(const AdapterConfig& config);

/// Collective: the adapter at init. `loss` is the measurement's strategy, needed by
/// deep-compressed only, for the first gradient of the overparameterized adapter (whose
/// width h makes it a dense problem: h x n factors exist during the construction).
Chain make_adapter(const ProcessGrid& grid, const IndexLayout& layout, const AdapterConfig& config,
                   Strategy* loss = nullptr);

/// The overparameterized depth-L adapter deep-compressed starts from (exposed for tests).
Chain overparameterized_adapter(const ProcessGrid& grid, const IndexLayout& layout,
                                const AdapterConfig& config);

/// deep-compressed at scale: the overparameterized adapter's init is the structured one
/// (signed permutations of width h = --width or max(m, n), drawn from the seed), compressed
/// without any h x n or h x h matrix (model/structured_init.hpp): from the sparse first
/// gradient of the entries measurement (`train` holds y - W0_ij, PARPACK), or from the thin
/// factors of the linear layer's (thin QR of X and a small SVD).
StructuredInit structured_adapter_init(const IndexLayout& layout, const AdapterConfig& config);
Chain make_implicit_adapter(const ProcessGrid& grid, const IndexLayout& layout, const AdapterConfig& config,
                            const Observations& train, double normalization,
                            ImplicitCompressionReport* report = nullptr);
Chain make_implicit_adapter(const ProcessGrid& grid, const IndexLayout& layout, const AdapterConfig& config,
                            const LinearStrategy& samples);

/// Number of trained scalars: the sum of the factor sizes.
std::int64_t trainable_parameters(const Chain& chain);

}  // namespace cdmf
