#pragma once
/// The sparse strategy's inner loop (DESIGN.md section 2, layer 4): one sweep over the local
/// observations, grouped by row, computing the residual r = P_i . B_j - value and, when asked,
/// the accumulations Y_i += s B_j and Z_j += s A_i with s = r * inv_n.
///
/// Rows of every panel are padded to `stride` doubles (a multiple of 4, zeros beyond the
/// width) so that the kernel works on whole 4-double vectors. Within a row, P_i, A_i and the
/// running Y_i stay in registers; four observations share one transposed reduction of their
/// dot products. Widths up to kMaxFixedStride run a kernel specialised on the stride; wider
/// panels run the same arithmetic with runtime loops.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cdmf {

/// Local observations in compressed-row form, sorted by (local row, local column).
struct RowGroupedEntries {
  std::vector<std::int64_t> row_start;  // local_rows + 1 offsets into col/value
  std::vector<std::int32_t> col;        // local column of each entry
  std::vector<double> value;
  std::int64_t local_rows() const { return static_cast<std::int64_t>(row_start.size()) - 1; }
  size_t size() const { return value.size(); }
};

/// Whether entries are in (row, column) order, columns non-decreasing within a row, as
/// observations come from distribute(): their grouping by row then needs no sort.
template <typename Index>
bool in_row_order(const std::vector<Index>& rows, const std::vector<Index>& cols) {
  for (size_t e = 1; e < rows.size(); ++e)
    if (rows[e - 1] > rows[e] || (rows[e - 1] == rows[e] && cols[e - 1] > cols[e])) return false;
  return true;
}

/// Builds the grouping from entries given by local row and column (any order); `local_rows`
/// bounds the rows. Entries of a row keep ascending column order, so the sums are
/// independent of the input order.
RowGroupedEntries group_by_row(const std::vector<std::int32_t>& rows,
                               const std::vector<std::int32_t>& cols,
                               const std::vector<double>& values, std::int64_t local_rows);

struct FusedPassPanels {
  const double* p;   // local rows x stride: P = A M
  const double* bt;  // local columns x stride: B^T
  const double* a;   // local rows x stride: A (read only when gradients are accumulated)
  std::int64_t stride;
};

/// Rounds a width up to the padded stride the pass uses.
constexpr std::int64_t padded_stride(std::int64_t width) { return (width + 3) / 4 * 4; }

constexpr std::int64_t kMaxFixedStride = 64;

/// Which compilation of the kernels runs: `automatic` picks the best this CPU runs (avx2+fma
/// on x86-64 CPUs that have both, whatever flags the build used), so a default build is as
/// fast as a -march=native one; the others are for tests and benchmarks.
enum class FusedPassTarget { automatic, generic, avx2 };
bool fused_pass_target_available(FusedPassTarget target);
/// "avx2+fma" or "generic" (`automatic`: the one it picks).
const char* fused_pass_target_name(FusedPassTarget target = FusedPassTarget::automatic);

/// Sum of squared residuals; with `y` (local rows x stride) and `z` (local columns x stride)
/// non-null, also adds the gradient accumulations to them. `force_runtime_width` runs the
/// runtime-loop kernel whatever the stride (for tests of that kernel). One process always runs
/// the same kernel, so its results are bitwise reproducible on the same grid.
double fused_pass(const RowGroupedEntries& entries, const FusedPassPanels& panels, double inv_n,
                  double* y, double* z, bool force_runtime_width = false,
                  FusedPassTarget target = FusedPassTarget::automatic);

}  // namespace cdmf
