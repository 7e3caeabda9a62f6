#pragma once
/// Adapter files (DESIGN.md section 3): a factor file (factor_file.hpp, the same writer) with
/// format "cdmf-adapter", format_version 1 and the root attributes adapter, rank, depth,
/// init_scale, gamma, alpha, measurement, base_fingerprint (rows, cols as every factor file);
/// /factors/W1..WK hold DeltaW = W_K ... W_1 exactly.
///
/// `depth` is the factor file's own attribute, the number K of stored factors (the reader of
/// every factor file counts /factors by it), so it is written once with that meaning; the
/// adapter's depth L follows from it: K for lora (2) and deep, K - 2 for deep-compressed
/// ([V^T, L inner factors, U]). Files of the first version also hold `adapter_depth` (L):
/// they are read, and refused in one line if it disagrees with K.
#include <mpi.h>

#include <string>

#include "cdmf/io/factor_file.hpp"
#include "cdmf/model/adapter.hpp"

namespace cdmf {

struct AdapterFileInfo {
  FactorFileInfo factors;
  std::string adapter;  // lora, deep, deep-compressed
  std::int64_t rank = 0;
  std::int64_t depth = 0;
  double init_scale = 0.0, gamma = 0.0, alpha = 0.0;
  std::string measurement;  // entries or linear
  std::string base_fingerprint;
};

/// What an adapter file records besides the factors.
struct AdapterMeta {
  AdapterConfig config;
  std::string measurement;
  std::string base_fingerprint;
  std::int64_t iteration = 0;
  std::string config_json = "{}";
};

/// Collective: writes the adapter atomically (write_factor_file with the adapter's format and
/// attributes).
void write_adapter_file(const ProcessGrid& grid, const IndexLayout& layout, const std::string& path,
                        const Chain& adapter, const AdapterMeta& meta, const IdMap& row_ids = {},
                        const IdMap& col_ids = {});

/// The adapter's depth L (lora: 2) from the number of factors of its chain.
std::int64_t adapter_depth(AdapterKind kind, std::int64_t factor_count);

/// Collective: opens and checks an adapter file (format "cdmf-adapter", the factor file
/// checks, every adapter attribute present). Errors name the file.
AdapterFileInfo read_adapter_info(MPI_Comm comm, const std::string& path);

/// Collective: whether `path` is an HDF5 file whose format attribute says "cdmf-adapter"
/// (false for anything else, including a missing or unreadable file: its readers report those).
bool is_adapter_file(MPI_Comm comm, const std::string& path);

/// Throws unless the adapter was fitted to a base with fingerprint `base_fingerprint`.
void check_adapter_base(const AdapterFileInfo& info, const std::string& base_path,
                        const std::string& base_fingerprint);

}  // namespace cdmf
