#!/usr/bin/env bash
# Many ranks: a small problem trained on 8 and 16 ranks (oversubscribed) gives the run of one
# rank to rounding (1e-10 relative, factor by factor and in the final losses), for the sparse
# strategy (compressed, narrow) and the dense one (deep), on near-square and one-sided grids.
#
#   test_many_ranks.sh CDMF MPIEXEC PREFLAGS SOURCE_DIR
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cli_test_args many_ranks "all" "$@"
echo "cdmf many-rank tests: $CDMF, work directory $WORK"

M=64 N=48 R=3
# Runs whose factors move well away from their init in 300 iterations (relative recovery
# error from 1.0 to 0.01-0.1).
COMMON=(--data gen/train.tsv --test gen/test.tsv --truth gen/truth.h5 --iters 300 --log-every 100
        --quiet)
MODELS=(
  "compressed --rank 3 --init-scale 0.3 --gamma 0.3 --lr 50"
  "narrow --rank 3 --init-scale 0.3 --lr 100"
  "deep --width 64 --init-scale 0.3 --lr 100"
)

# same_factors A.h5 B.h5 TOL: every factor agrees to TOL (relative Frobenius norm).
same_factors() {
  "$PYTHON" - "$1" "$2" "$3" <(factors_dump "$1") <(factors_dump "$2") <<'PY'
import math, re, sys
tol = float(sys.argv[3])

def datasets(path):
    # A dataset's values are the lines "      (i,j): v," at its DATA's indentation (six
    # spaces); attribute values (checksum, lr_multiplier) are indented deeper.
    out, values = {}, None
    for line in open(path):
        m = re.search(r'^   DATASET "(\w+)"', line)
        if m:
            values = out.setdefault(m.group(1), [])
        elif values is not None and re.match(r"^      \(\d+(,\d+)*\):", line):
            values += [float(x) for x in line.split(":", 1)[1].replace(",", " ").split()]
    return out

a, b = datasets(sys.argv[4]), datasets(sys.argv[5])
assert sorted(a) == sorted(b) and a, (sorted(a), sorted(b))
worst = 0.0
for name in a:
    assert len(a[name]) == len(b[name]) > 0, name
    diff = math.sqrt(sum((x - y) ** 2 for x, y in zip(a[name], b[name])))
    norm = math.sqrt(sum(y * y for y in b[name]))
    worst = max(worst, diff / max(norm, 1e-300))
print(f"note:   {sys.argv[1]} vs {sys.argv[2]}: {len(a)} factors, largest relative difference {worst:.1e} (tol {tol:g})")
sys.exit(0 if worst <= tol else 1)
PY
}

many_generate() {
  mpi 1 generate --rows $M --cols $N --rank $R --observed 0.3 --seed 11 --out gen > /dev/null
  test -s gen/train.tsv
}

# many_model NAME: the model on 1 rank, then on 8 (2x4, 8x1) and 16 (4x4) ranks.
many_model() {
  local spec=($1) name=$1
  name=${spec[0]}
  mpi 1 train --model "${spec[@]}" "${COMMON[@]}" --summary "$name-1.json" --output "$name-1.h5"
  for run in "8 2x4" "8 8x1" "16 4x4"; do
    local ranks=${run% *} grid=${run#* }
    timeout 300 "$MPIEXEC" -n "$ranks" "${PREFLAGS[@]}" "$CDMF" train --model "${spec[@]}" \
      "${COMMON[@]}" --grid "$grid" --summary "$name-$grid.json" --output "$name-$grid.h5"
    [[ $(json_get "$name-$grid.json" ranks) -eq $ranks ]]
    same_summary "$name-$grid.json" "$name-1.json" 1e-10 train_loss test_loss recovery_error
    same_factors "$name-$grid.h5" "$name-1.h5" 1e-10
  done
}

check "generate a $M x $N rank-$R problem" many_generate
for model in "${MODELS[@]}"; do
  check "${model%% *}: 8 ranks (2x4, 8x1) and 16 ranks (4x4) equal 1 rank to 1e-10" \
    many_model "$model"
done
finish
