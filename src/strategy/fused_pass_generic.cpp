/// The fused pass's kernels compiled with the build's own flags (the baseline of the target, or -march=native).
#include "fused_pass_kernel.hpp"

namespace cdmf {

double fused_pass_generic(const FusedPassArgs& args) { return run_fused_pass(args); }

}  // namespace cdmf
