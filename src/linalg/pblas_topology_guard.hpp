#pragma once
/// Private to src/linalg: keeps ScaLAPACK routines from changing later PBLAS products.
#include "cdmf/linalg/scalapack.hpp"

namespace cdmf {

/// PDGEQRF/PDORGQR leave PBLAS's process-wide row-broadcast topology changed ('D'), other
/// ScaLAPACK routines (PDGESVD, PDSYNTRD, PDORMTR) may too, and the topology decides the order
/// in which PDGEMM accumulates. Restoring every topology after a ScaLAPACK routine keeps products
/// independent of which routines ran before: a restarted run (no QR at init) must match, bit
/// for bit, the run that was never interrupted. Scope one guard around each ScaLAPACK call.
class PblasTopologyGuard {
 public:
  explicit PblasTopologyGuard(int context) : context_(context) {
    for (int k = 0; k < 6; ++k) saved_[k] = *PB_Ctop(&context_, kOps[k / 3], kScopes[k % 3], "!");
  }
  ~PblasTopologyGuard() {
    for (int k = 0; k < 6; ++k) {
      const char top[2] = {saved_[k], '\0'};
      PB_Ctop(&context_, kOps[k / 3], kScopes[k % 3], top);
    }
  }
  PblasTopologyGuard(const PblasTopologyGuard&) = delete;
  PblasTopologyGuard& operator=(const PblasTopologyGuard&) = delete;

 private:
  static constexpr const char* kOps[2] = {"B", "C"};
  static constexpr const char* kScopes[3] = {"R", "C", "A"};
  int context_;
  char saved_[6];
};

}  // namespace cdmf
