#!/usr/bin/env bash
# Sets up cdmf and runs the whole test suite (MPI tests on 1, 2 and 4 ranks, CLI tests).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
cd "$here/build"
ctest --output-on-failure --timeout 900 "$@"
