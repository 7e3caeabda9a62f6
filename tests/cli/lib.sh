# shellcheck shell=bash
# Helpers for the bash tests of the cdmf executable (sourced by test_cli.sh, test_restart.sh
# and tests/slurm/test_slurm.sh): each check runs in a subshell with errexit, prints PASS/FAIL
# with its time, and the script ends with "N passed, M failed". Expects CDMF, MPIEXEC,
# PREFLAGS (array) and WORK to be set before it is sourced; sets PYTHON when unset.

PASSED=0
FAILED=0
START=$EPOCHREALTIME
PYTHON=${PYTHON:-python3}
export OPENBLAS_NUM_THREADS=1
# Open MPI waits odls_base_sigkill_timeout (1 s) after a rank exits non-zero before it reports;
# every failing run pays it, so shorten it.
export OMPI_MCA_odls_base_sigkill_timeout=${OMPI_MCA_odls_base_sigkill_timeout:-0}

# mpi N ARGS...: cdmf on N ranks (a hang becomes a failure after 120 s).
mpi() {
  local n=$1
  shift
  timeout 120 "$MPIEXEC" -n "$n" "${PREFLAGS[@]}" "$CDMF" "$@"
}

# check DESCRIPTION FUNCTION ARGS...: runs FUNCTION in a subshell with errexit, so any failing
# command or test fails the check; lines the function prints starting with "note:" are shown.
check() {
  local description=$1
  shift
  local t0=$EPOCHREALTIME rc=0 log
  log="$WORK/check_$((PASSED + FAILED + 1)).log"
  set +e
  (
    set -euo pipefail
    "$@"
  ) > "$log" 2>&1
  rc=$?
  set -e
  local seconds
  seconds=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  if [[ $rc -eq 0 ]]; then
    PASSED=$((PASSED + 1))
    printf 'PASS  %-66s %5s s\n' "$description" "$seconds"
    grep '^note:' "$log" | sed 's/^note:/        /' || true
  else
    FAILED=$((FAILED + 1))
    printf 'FAIL  %-66s %5s s  (exit %d)\n' "$description" "$seconds" "$rc"
    tail -n 40 "$log" | sed 's/^/        | /'
  fi
}

# expect_error PATTERN ARGS...: cdmf ARGS on 2 ranks fails (not by timeout, not by a signal)
# with exactly one "cdmf: error:" line, which contains PATTERN.
expect_error() {
  local pattern=$1 rc=0
  shift
  timeout 60 "$MPIEXEC" -n 2 "${PREFLAGS[@]}" "$CDMF" "$@" > out.txt 2>&1 || rc=$?
  cat out.txt
  [[ $rc -ne 124 ]] || { echo "timed out (hang)"; return 1; }
  [[ $rc -ne 0 ]] || { echo "exit code 0"; return 1; }
  if grep -q 'exited on signal' out.txt; then
    echo "a rank died of a signal (crash) instead of exiting with an error"
    return 1
  fi
  local count
  count=$(grep -c '^cdmf: error:' out.txt || true)
  [[ $count -eq 1 ]] || { echo "$count lines start with 'cdmf: error:'"; return 1; }
  local line
  line=$(grep '^cdmf: error:' out.txt)
  echo "note: exit $rc: $line"
  [[ $line == *"$pattern"* ]] || { echo "the error does not name '$pattern'"; return 1; }
}

# finish: the totals; removes WORK when every check passed, exits 1 otherwise.
finish() {
  local total
  total=$(awk -v a="$START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  echo "total time $total s"
  echo "$PASSED passed, $FAILED failed"
  if [[ $FAILED -ne 0 ]]; then
    echo "work files kept in $WORK"
    exit 1
  fi
  cd /
  rm -rf "$WORK"
}
