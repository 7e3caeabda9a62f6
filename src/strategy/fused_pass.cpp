#include "cdmf/strategy/fused_pass.hpp"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <numeric>

#include "cdmf/core/counting_sort.hpp"
#include "cdmf/core/error.hpp"
#include "fused_pass_kernel.hpp"

namespace cdmf {

namespace {

/// The best kernel family this CPU runs, chosen once per process.
FusedPassTarget best_target() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2) return FusedPassTarget::avx2;
#endif
  return FusedPassTarget::generic;
}

}  // namespace

RowGroupedEntries group_by_row(const std::vector<std::int32_t>& rows,
                               const std::vector<std::int32_t>& cols,
                               const std::vector<double>& values, std::int64_t local_rows) {
  fail_if(values.size() > static_cast<size_t>(INT_MAX), "group_by_row: more than INT_MAX entries");
  RowGroupedEntries grouped;
  grouped.row_start.assign(static_cast<size_t>(local_rows + 1), 0);
  std::int64_t col_extent = 0;
  for (size_t e = 0; e < values.size(); ++e) {
    fail_if(rows[e] < 0 || rows[e] >= local_rows, "group_by_row: local row outside the panel");
    fail_if(cols[e] < 0, "group_by_row: negative local column");
    ++grouped.row_start[static_cast<size_t>(rows[e]) + 1];
    col_extent = std::max<std::int64_t>(col_extent, cols[e] + 1);
  }
  std::partial_sum(grouped.row_start.begin(), grouped.row_start.end(), grouped.row_start.begin());
  // Entries already in (row, column) order (observations come sorted so whenever the
  // strategy's blocks are the layout's) are copied as they are: the counting passes below read
  // a random entry per step.
  if (in_row_order(rows, cols)) {
    grouped.col = cols;
    grouped.value = values;
    return grouped;
  }
  // By row, columns ascending within each row: two stable counting passes.
  const std::vector<int> by_col =
      stable_order_by(values.size(), nullptr, col_extent, [&](int e) { return cols[static_cast<size_t>(e)]; });
  const std::vector<int> order =
      stable_order_by(values.size(), &by_col, local_rows, [&](int e) { return rows[static_cast<size_t>(e)]; });
  grouped.col.resize(values.size());
  grouped.value.resize(values.size());
  for (size_t e = 0; e < order.size(); ++e) {
    grouped.col[e] = cols[static_cast<size_t>(order[e])];
    grouped.value[e] = values[static_cast<size_t>(order[e])];
  }
  return grouped;
}

bool fused_pass_target_available(FusedPassTarget target) {
  return target != FusedPassTarget::avx2 || best_target() == FusedPassTarget::avx2;
}

const char* fused_pass_target_name(FusedPassTarget target) {
  if (target == FusedPassTarget::automatic) target = best_target();
  return target == FusedPassTarget::avx2 ? "avx2+fma" : "generic";
}

double fused_pass(const RowGroupedEntries& entries, const FusedPassPanels& panels, double inv_n,
                  double* y, double* z, bool force_runtime_width, FusedPassTarget target) {
  fail_if(panels.stride <= 0 || panels.stride % 4 != 0, "fused pass: stride must be a positive multiple of 4");
  fail_if(!fused_pass_target_available(target), "fused pass: this CPU does not run the avx2+fma kernels");
  if (target == FusedPassTarget::automatic) target = best_target();
  // Rows of registers for the looped kernel, 32-byte aligned as its vectors need.
  std::vector<double> scratch;
  double* aligned = nullptr;
  if (panels.stride > kMaxFixedStride || force_runtime_width) {
    scratch.assign(static_cast<size_t>(6 * panels.stride + 4), 0.0);
    const auto address = reinterpret_cast<std::uintptr_t>(scratch.data());
    aligned = scratch.data() + (32 - address % 32) % 32 / sizeof(double);
  }
  const FusedPassArgs args{entries.row_start.data(), entries.col.data(), entries.value.data(),
                           entries.local_rows(), panels, inv_n, y, z, force_runtime_width, aligned};
  return target == FusedPassTarget::avx2 ? fused_pass_avx2(args) : fused_pass_generic(args);
}

}  // namespace cdmf
