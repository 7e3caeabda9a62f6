#pragma once
/// The fused pass's kernels, compiled once per instruction set (fused_pass_generic.cpp with the
/// build's flags, fused_pass_avx2.cpp with -mavx2 -mfma) and chosen at run time for the CPU
/// (fused_pass.cpp). Everything here has internal linkage and uses no library template, so no
/// inline function compiled for AVX2 can be picked by the linker for code that runs on a CPU
/// without it (the one-definition rule would otherwise let it).
#include <cstdint>
#include <cstring>
#include <utility>

#include "cdmf/strategy/fused_pass.hpp"

namespace cdmf {

/// The pass's inputs as plain pointers (the kernels' translation units touch no std::vector).
struct FusedPassArgs {
  const std::int64_t* row_start;
  const std::int32_t* col;
  const double* value;
  std::int64_t rows;
  FusedPassPanels panels;
  double inv_n;
  double* y;
  double* z;
  bool force_runtime_width;
  double* scratch;  // 24 * stride / 4 doubles (6 rows of registers), 32-byte aligned
};

/// One kernel family per instruction set: defined in fused_pass_<set>.cpp.
double fused_pass_generic(const FusedPassArgs& args);
double fused_pass_avx2(const FusedPassArgs& args);

// Vec4 values cross no function boundary outside this header (all internal linkage), so the
// warning that returning them without AVX changes the ABI does not concern anyone.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace {

/// Four doubles as one value (GCC/Clang vector extension: one AVX2 register where the
/// translation unit targets AVX2, SSE2 pairs otherwise). Loads and stores go through memcpy: rows need not be 32-byte aligned.
typedef double Vec4 __attribute__((vector_size(32)));

inline Vec4 load4(const double* p) {
  Vec4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store4(double* p, Vec4 v) { std::memcpy(p, &v, sizeof v); }
inline double lane_sum(Vec4 v) { return (v[0] + v[1]) + (v[2] + v[3]); }

/// [lane_sum(a0), lane_sum(a1), lane_sum(a2), lane_sum(a3)] by a transposed reduction: six
/// shuffles and adds for four dot products instead of four separate horizontal sums.
inline Vec4 lane_sums(Vec4 a0, Vec4 a1, Vec4 a2, Vec4 a3) {
  const Vec4 u01 = __builtin_shufflevector(a0, a1, 0, 4, 2, 6) + __builtin_shufflevector(a0, a1, 1, 5, 3, 7);
  const Vec4 u23 = __builtin_shufflevector(a2, a3, 0, 4, 2, 6) + __builtin_shufflevector(a2, a3, 1, 5, 3, 7);
  return __builtin_shufflevector(u01, u23, 0, 1, 4, 5) + __builtin_shufflevector(u01, u23, 2, 3, 6, 7);
}

/// The pass over `kChunks` 4-double chunks per row (kChunks = 0: `runtime_chunks`, with the
/// row registers in `scratch`). The same operations in the same order either way (the
/// compiler may still fuse multiply-adds differently in the unrolled and the looped code).
template <int kChunks, bool kGradient>
double grouped_pass(const FusedPassArgs& args, int runtime_chunks, Vec4* scratch) {
  const FusedPassPanels& panels = args.panels;
  const double inv_n = args.inv_n;
  double* const y = args.y;
  double* const z = args.z;
  const int chunks = kChunks > 0 ? kChunks : runtime_chunks;
  const std::int64_t stride = 4 * static_cast<std::int64_t>(chunks);
  // P_i, A_i, and Y_i in up to four partial sums: with few chunks, one running sum would chain
  // the FMA latency through every observation of the row; with many, the chunks are
  // independent chains already and more sums would only spill registers.
  const int partial_sums = chunks <= 2 ? 4 : (chunks <= 4 ? 2 : 1);
  Vec4 fixed_registers[kChunks > 0 ? 6 * kChunks : 1];
  Vec4* const pi = kChunks > 0 ? fixed_registers : scratch;
  Vec4* const ai = pi + chunks;
  Vec4* const yi[4] = {ai + chunks, ai + 2 * chunks, ai + 3 * chunks, ai + 4 * chunks};
  const std::int64_t* const row_start = args.row_start;
  const std::int32_t* const col = args.col;
  const double* const value = args.value;
  const double* const bt = panels.bt;
  Vec4 sse4 = {0.0, 0.0, 0.0, 0.0};
  double sse1 = 0.0;

  // Y_i += s B_j (into partial sum `lane`), Z_j += s A_i for one observation with scaled
  // residual s.
  const auto accumulate = [&](const double* bj, std::int32_t j, double s, int lane) {
    double* zj = z + j * stride;
    Vec4* const y_lane = yi[lane % partial_sums];
    for (int c = 0; c < chunks; ++c) {
      y_lane[c] += s * load4(bj + 4 * c);
      store4(zj + 4 * c, load4(zj + 4 * c) + s * ai[c]);
    }
  };

  const std::int64_t rows = args.rows;
  for (std::int64_t i = 0; i < rows; ++i) {
    std::int64_t e = row_start[i];
    const std::int64_t end = row_start[i + 1];
    if (e == end) continue;
    for (int c = 0; c < chunks; ++c) {
      pi[c] = load4(panels.p + i * stride + 4 * c);
      if (kGradient) {
        ai[c] = load4(panels.a + i * stride + 4 * c);
        for (int t = 0; t < partial_sums; ++t) yi[t][c] = Vec4{0.0, 0.0, 0.0, 0.0};
      }
    }
    for (; e + 4 <= end; e += 4) {
      const double* b0 = bt + col[e] * stride;
      const double* b1 = bt + col[e + 1] * stride;
      const double* b2 = bt + col[e + 2] * stride;
      const double* b3 = bt + col[e + 3] * stride;
      Vec4 d0 = {0.0, 0.0, 0.0, 0.0}, d1 = d0, d2 = d0, d3 = d0;
      for (int c = 0; c < chunks; ++c) {
        d0 += pi[c] * load4(b0 + 4 * c);
        d1 += pi[c] * load4(b1 + 4 * c);
        d2 += pi[c] * load4(b2 + 4 * c);
        d3 += pi[c] * load4(b3 + 4 * c);
      }
      const Vec4 r = lane_sums(d0, d1, d2, d3) - load4(value + e);
      sse4 += r * r;
      if (kGradient) {
        const Vec4 s = r * inv_n;
        accumulate(b0, col[e], s[0], 0);
        accumulate(b1, col[e + 1], s[1], 1);
        accumulate(b2, col[e + 2], s[2], 2);
        accumulate(b3, col[e + 3], s[3], 3);
      }
    }
    for (; e < end; ++e) {
      const double* bj = bt + col[e] * stride;
      Vec4 d = {0.0, 0.0, 0.0, 0.0};
      for (int c = 0; c < chunks; ++c) d += pi[c] * load4(bj + 4 * c);
      const double r = lane_sum(d) - value[e];
      sse1 += r * r;
      if (kGradient) accumulate(bj, col[e], r * inv_n, 0);
    }
    if (kGradient) {
      double* y_row = y + i * stride;
      for (int c = 0; c < chunks; ++c) {
        Vec4 sum = yi[0][c];
        if (partial_sums == 2) sum += yi[1][c];
        if (partial_sums == 4) sum += yi[1][c] + (yi[2][c] + yi[3][c]);
        store4(y_row + 4 * c, load4(y_row + 4 * c) + sum);
      }
    }
  }
  return lane_sum(sse4) + sse1;
}

using Pass = double (*)(const FusedPassArgs&, int, Vec4*);

template <bool kGradient, int... Chunks>
struct PassTable {
  static constexpr Pass value[sizeof...(Chunks)] = {&grouped_pass<Chunks + 1, kGradient>...};
};

template <bool kGradient, int... Chunks>
Pass fixed_pass(int chunks, std::integer_sequence<int, Chunks...>) {
  return PassTable<kGradient, Chunks...>::value[chunks - 1];
}

/// The kernel for the panels' stride: specialised up to kMaxFixedStride, looped beyond.
inline double run_fused_pass(const FusedPassArgs& args) {
  constexpr int kFixedKernels = static_cast<int>(kMaxFixedStride / 4);
  const int chunks = static_cast<int>(args.panels.stride / 4);
  const bool gradient = args.y != nullptr;
  Vec4* const scratch = reinterpret_cast<Vec4*>(args.scratch);
  if (chunks <= kFixedKernels && !args.force_runtime_width) {
    const auto sequence = std::make_integer_sequence<int, kFixedKernels>{};
    const Pass pass = gradient ? fixed_pass<true>(chunks, sequence) : fixed_pass<false>(chunks, sequence);
    return pass(args, chunks, scratch);
  }
  return gradient ? grouped_pass<0, true>(args, chunks, scratch) : grouped_pass<0, false>(args, chunks, scratch);
}

}  // namespace
}  // namespace cdmf
