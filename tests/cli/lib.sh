# shellcheck shell=bash
# Helpers for the bash tests of the cdmf executable (sourced by test_cli.sh, test_restart.sh
# and tests/slurm/test_slurm.sh): each check runs in a subshell with errexit, prints PASS/FAIL
# with its time, and the script ends with "N passed, M failed". The checks need CDMF, MPIEXEC,
# PREFLAGS (array) and WORK, set by the script or by cli_test_args; sets PYTHON when unset.

PASSED=0
FAILED=0
START=$EPOCHREALTIME
PYTHON=${PYTHON:-python3}
export OPENBLAS_NUM_THREADS=1
# Open MPI waits odls_base_sigkill_timeout (1 s) after a rank exits non-zero before it reports;
# every failing run pays it, so shorten it.
export OMPI_MCA_odls_base_sigkill_timeout=${OMPI_MCA_odls_base_sigkill_timeout:-0}

# cli_test_args NAME "SECTION..." ARGS...: the arguments of the CLI test scripts,
# "CDMF MPIEXEC PREFLAGS SOURCE_DIR [SECTION]" (PREFLAGS separated by ';' or spaces, may be
# empty; SECTION one of the listed ones, default "all"), into CDMF, MPIEXEC, PREFLAGS, SRC and
# SECTION; then makes WORK (a fresh directory NAME_SECTION.* under the current one) and enters it.
cli_test_args() {
  local name=$1 sections=$2
  shift 2
  if [[ $# -lt 4 ]]; then
    echo "usage: $0 CDMF MPIEXEC PREFLAGS SOURCE_DIR [all|${sections// /|}]" >&2
    exit 2
  fi
  CDMF=$(realpath "$1")
  MPIEXEC=$2
  IFS='; ' read -r -a PREFLAGS <<< "$3"
  SRC=$(realpath "$4")
  SECTION=${5:-all}
  [[ " all $sections " == *" $SECTION "* ]] || { echo "unknown section '$SECTION'" >&2; exit 2; }
  WORK=$(mktemp -d "$PWD/${name}_${SECTION}.XXXXXX")
  cd "$WORK"
}

# json_get FILE KEY: one value of a JSON object.
json_get() {
  "$PYTHON" -c "import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"
}

# same_summary A.json B.json TOL KEY...: the KEYs of two summaries agree to TOL (relative).
same_summary() {
  "$PYTHON" - "$@" <<'EOF'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
tol, ok = float(sys.argv[3]), True
print(f"note: {sys.argv[1]}: grid {a['grid']}, {a['iterations']} iterations")
for key in sys.argv[4:]:
    err = abs(a[key] - b[key]) / max(abs(b[key]), 1e-300)
    ok = ok and err <= tol
    print(f"note:   {key} {a[key]!r} vs {b[key]!r}: relative difference {err:.1e} (tol {tol:g})")
sys.exit(0 if ok else 1)
EOF
}

# factors_dump FILE: every factor of a factor file or checkpoint, exactly (17 digits).
factors_dump() {
  h5dump -m %.17g -g /factors "$1" | sed 1d
}

# same_outputs A.csv B.csv A.h5 B.h5: the metrics agree bit for bit but for the clock (column
# 2) and the factor files hold the same factors.
same_outputs() {
  cmp <(cut -d, -f1,3- "$1") <(cut -d, -f1,3- "$2")
  cmp <(factors_dump "$3") <(factors_dump "$4")
}

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

# expect_error PATTERN ARGS...: cdmf ARGS on 2 ranks fails with exit status 1 (not by timeout,
# not by a signal, not with a parser's own code) and exactly one "cdmf: error:" line, which
# contains PATTERN.
expect_error() {
  local pattern=$1 rc=0
  shift
  timeout 60 "$MPIEXEC" -n 2 "${PREFLAGS[@]}" "$CDMF" "$@" > out.txt 2>&1 || rc=$?
  cat out.txt
  [[ $rc -ne 124 ]] || { echo "timed out (hang)"; return 1; }
  [[ $rc -ne 0 ]] || { echo "exit code 0"; return 1; }
  [[ $rc -eq 1 ]] || { echo "exit code $rc, not 1"; return 1; }
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
