/// The fused pass's kernels compiled with -mavx2 -mfma (CMakeLists.txt), run only where the CPU has both.
#include "fused_pass_kernel.hpp"

namespace cdmf {

double fused_pass_avx2(const FusedPassArgs& args) { return run_fused_pass(args); }

}  // namespace cdmf
