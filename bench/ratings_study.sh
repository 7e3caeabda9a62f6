#!/usr/bin/env bash
# The study of docs/realdata.md: `cdmf train --preset ratings` on a seeded 90/10 split of
# MovieLens ml-latest-small, at rhat 5, 10, 20, 50, 100 (depth 3) and depth 2 (rhat 50), on
# 2 ranks, each scored on the test part by `cdmf predict` (clipped, as a user gets it).
# Usage: [RHATS="5 10"] bench/ratings_study.sh RATINGS.csv OUT_DIR   (build/cdmf must exist; the split is
# written by bench/ratings_baselines.py, which also prints the baselines into
# OUT_DIR/baselines.txt: about 30 minutes of NumPy on a busy 2-core machine, skipped when that
# file and the split are there already)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ratings="$1"
out="$2"
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
cdmf="$here/build/cdmf"
python3_debian=/usr/bin/python3
if [[ ! -s "$out/baselines.txt" || ! -s "$out/train.csv" || ! -s "$out/test.csv" ]]; then
  "$python3_debian" "$here/bench/ratings_baselines.py" "$ratings" --write-split "$out" > "$out/baselines.txt"
fi
cat "$out/baselines.txt"
run() {  # run TAG [train options...]
  local tag="$1"
  shift
  local start end
  start=$(date +%s.%N)
  mpirun -n 2 "$cdmf" train --data "$out/train.csv" --test "$out/test.csv" --preset ratings \
    --quiet --metrics "$out/$tag.csv" --summary "$out/$tag.json" --output "$out/$tag.h5" "$@" \
    > "$out/$tag.log"
  end=$(date +%s.%N)
  mpirun -n 2 "$cdmf" predict --checkpoint "$out/$tag.h5" --pairs "$out/test.csv" \
    --out "$out/$tag-pred.tsv" > "$out/$tag-predict.log"
  "$python3_debian" - "$out" "$tag" "$start" "$end" <<'PY'
import csv, json, math, sys
out, tag, start, end = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
s = json.load(open(f"{out}/{tag}.json"))
test = list(csv.DictReader(open(f"{out}/test.csv")))
pred = [line.split("\t") for line in open(f"{out}/{tag}-pred.tsv").read().splitlines()]
rmse = math.sqrt(sum((float(p[2]) - float(t["rating"])) ** 2 for p, t in zip(pred, test)) / len(test))
c = s["config"]
print(f"{tag:10s} rhat {c['rank']:>3} depth {c['depth']}  best iteration {s['best_iteration']:>4} of "
      f"{s['iterations']:>4}  validation RMSE {s['best_validation_rmse']:.4f}  test RMSE {rmse:.4f}  "
      f"wall {end - start:5.1f} s (set-up {s['phase_seconds'].get('init', 0) + s['phase_seconds'].get('compress', 0):.1f} s)")
PY
}
for rank in ${RHATS:-5 10 20 50 100}; do run "rhat$rank" --rank "$rank"; done
run depth2 --rank 50 --depth 2
