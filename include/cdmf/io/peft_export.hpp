#pragma once
/// Export of an adapter to the PEFT LoRA layout (DESIGN.md sections 1 and 4):
/// DIR/adapter_model.safetensors with base_model.model.<NAME>.lora_A.weight = A = W_1 (k x n)
/// and .lora_B.weight = B = W_K ... W_2 (m x k), float32, so that DeltaW = B A; and
/// DIR/adapter_config.json with peft_type "LORA", r = k, lora_alpha = k (scale 1) and
/// target_modules [NAME].
///
/// safetensors: an 8-byte little-endian header length N, N bytes of JSON (per tensor dtype,
/// shape, data_offsets [begin, end) into the data; padded with spaces to a multiple of 8),
/// then the raw little-endian row-major data.
#include <string>

#include "cdmf/data/layout.hpp"
#include "cdmf/model/chain.hpp"

namespace cdmf {

/// Collective: A and B are gathered to rank 0 (O((m + n) k) values, the size of the file),
/// which writes both files (each to a temporary name, then renamed); every rank throws the
/// same Error when that fails. Creates DIR when missing.
void export_peft(const IndexLayout& layout, const Chain& adapter, const std::string& directory,
                 const std::string& target_module);

}  // namespace cdmf
