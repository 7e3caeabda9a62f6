#!/usr/bin/env bash
# Installs what cdmf needs from Debian 12 packages (when missing) and builds it in build/.
# Usage: scripts/setup.sh [build-dir]   (run as root on a fresh machine; idempotent)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$here/build}"

packages=(build-essential cmake pkg-config libopenmpi-dev openmpi-bin libscalapack-openmpi-dev
          libopenblas-dev libparpack2-dev libhdf5-openmpi-dev hdf5-tools libgtest-dev libcli11-dev
          nlohmann-json3-dev libfmt-dev python3 python3-numpy python3-h5py
          python3-matplotlib)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" </dev/null >/dev/null
fi

# Root and oversubscription flags are for tests on small machines (4 ranks on 2 cores).
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCDMF_NATIVE=ON \
      -DMPIEXEC_PREFLAGS="--allow-run-as-root;--oversubscribe" >/dev/null
cmake --build "$build" -j "$(nproc)"
