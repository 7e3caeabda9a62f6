#!/usr/bin/env bash
# End-to-end tests of the real-ratings path (issue 11) on the shipped MovieLens samples
# (tests/data/ratings_20k.csv, ratings_small.csv), through mpiexec.
#
#   test_ratings.sh CDMF MPIEXEC PREFLAGS SOURCE_DIR [all|preset|plots]
#
# preset: `train --preset ratings` end to end (every preset setting echoed, a flag overrides
#         one), its model beats the bias-only baseline computed here, `predict` answers every
#         pair (cold-start pairs from the mean and the known bias, finite, clipped), `inspect`
#         shows the biases; the best model is the one written; a restart continues bit for bit.
# plots:  scripts/plot_run.py turns a run with --validation and --diagnostics into non-empty
#         PNG pictures.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cli_test_args test_ratings "preset plots" "$@"
# Matplotlib and NumPy come from Debian's python3 (scripts/setup.sh installs them).
PYTHON=/usr/bin/python3

# Every 5th rating is held out (the header goes to both files); some test movies are unseen
# in training: cold-start pairs.
split_sample() {
  awk 'NR == 1 { print > "train.csv"; print > "test.csv"; next }
       NR % 5 == 0 { print > "test.csv"; next } { print > "train.csv" }' \
    "$SRC/tests/data/${1:-ratings_small.csv}"
}

ratings_preset() {
  split_sample ratings_20k.csv  # 132 users: the chain has something to learn beyond biases
  mpi 2 train --data train.csv --test test.csv --preset ratings --iters 100 \
    --metrics run.csv --summary run.json --output model.h5 > train.log
  # Every preset setting is in the echoed configuration; --iters (a flag) overrides the preset.
  "$PYTHON" - <<'PY'
import json, re
line = next(l for l in open("train.log") if l.startswith("configuration: "))
c = json.loads(line[len("configuration: "):])
want = {"preset": "ratings", "model": "compressed", "depth": 3, "width": -1, "init_scale": 1.0,
        "gamma": 0.3, "optimizer": "gd", "lr": 50.0, "loss_normalization": "observed",
        "biases": True, "bias_reg": 3.0, "validation": 0.1, "patience": 6, "iters": 100,
        "log_every": 5, "clip": True, "rank": 50, "strategy": "sparse"}
bad = {k: (c.get(k), v) for k, v in want.items() if c.get(k) != v}
assert not bad, bad
PY
  mpi 2 predict --checkpoint model.h5 --pairs test.csv --out pred.tsv > predict.log
  mpi 1 inspect model.h5 > inspect.txt
  grep -q '^biases         mu ' inspect.txt
  grep -q '^clip           predictions clipped to \[0.5, 5\]' inspect.txt
  "$PYTHON" - <<'PY'
import csv, json, math, re
train = list(csv.DictReader(open("train.csv")))
test = list(csv.DictReader(open("test.csv")))
# The bias-only baseline: mu + b_u + c_i, 10 regularized alternating sweeps (lambda 3).
mu = sum(float(r["rating"]) for r in train) / len(train)
b, c = {}, {}
for _ in range(10):
    for side, own, other, key_own, key_other in ((b, "userId", c, "userId", "movieId"),
                                                 (c, "movieId", b, "movieId", "userId")):
        sums, counts = {}, {}
        for r in train:
            k = r[key_own]
            sums[k] = sums.get(k, 0.0) + float(r["rating"]) - mu - other.get(r[key_other], 0.0)
            counts[k] = counts.get(k, 0) + 1
        side.clear()
        side.update({k: sums[k] / (counts[k] + 3.0) for k in sums})
def baseline(r):
    return min(5.0, max(0.5, mu + b.get(r["userId"], 0.0) + c.get(r["movieId"], 0.0)))
pred = [l.split("\t") for l in open("pred.tsv").read().splitlines()]
assert len(pred) == len(test), (len(pred), len(test))
assert all([p[0], p[1]] == [t["userId"], t["movieId"]] for p, t in zip(pred, test))
values = [float(p[2]) for p in pred]
assert all(math.isfinite(v) and 0.5 <= v <= 5.0 for v in values)
rmse = lambda xs: math.sqrt(sum((x - float(t["rating"])) ** 2 for x, t in zip(xs, test)) / len(test))
model, base = rmse(values), rmse([baseline(t) for t in test])
s = json.load(open("run.json"))
cold = int(re.search(r"\((\d+) cold-start pairs", open("predict.log").read()).group(1))
print(f"note: preset test RMSE {model:.4f} vs bias-only baseline {base:.4f}; best iteration "
      f"{s['best_iteration']} of {s['iterations']}; {cold} cold-start pairs")
assert model < base, (model, base)
assert s["best_iteration"] <= s["iterations"] and s["validation_entries"] > 0
assert s["cold_test_entries"] == cold > 0, (s["cold_test_entries"], cold)
assert s["cold_test_rmse"] > 0
assert s["stop_reason"] in ("early_stopping", "max_iters"), s["stop_reason"]
PY
  # The written model is the best logged iteration's.
  h5dump -a /iteration model.h5 | grep -q "(0): $(json_get run.json best_iteration)\$"
}

# A pair with an unseen movie (and one with an unseen user) is answered from the biases: the
# same value whatever the chain, finite. The 18 users of the small sample need a smaller step
# than the preset's (README).
ratings_cold_start() {
  split_sample
  mpi 2 train --data train.csv --preset ratings --lr 5 --iters 30 --output model.h5 --quiet > train.log
  printf 'userId,movieId,rating,timestamp\n1,999999,0,0\n999999,1,0,0\n999998,999999,0,0\n' > cold.csv
  mpi 2 predict --checkpoint model.h5 --pairs cold.csv --out cold.tsv > predict.log
  grep -q "(3 cold-start pairs" predict.log
  "$PYTHON" - <<'PY'
import math, subprocess
def h5(path):  # a 1-D dataset, every value exactly
    out = subprocess.run(["h5dump", "-A", "0", "-y", "-w", "0", "-m", "%.17g", "-d", path,
                          "model.h5"], check=True, capture_output=True, text=True).stdout
    body = out[out.index("DATA {") + 6:]
    body = body[:body.index("}")]
    return [float(x) for x in body.replace("\n", " ").split(",") if x.strip()]
mu_text = subprocess.run(["h5dump", "-m", "%.17g", "-a", "/biases/mu", "model.h5"], check=True,
                         capture_output=True, text=True).stdout
mu = float(mu_text[mu_text.index("(0):") + 4:].split()[0])
rows, users = h5("/biases/rows"), h5("/ids/rows")
cols, movies = h5("/biases/cols"), h5("/ids/cols")
b1 = rows[users.index(1.0)]
c1 = cols[movies.index(1.0)]
want = [mu + b1, mu + c1, mu]
got = [float(l.split("\t")[2]) for l in open("cold.tsv").read().splitlines()]
assert all(math.isfinite(g) for g in got), got
assert all(abs(g - min(5.0, max(0.5, w))) <= 1e-12 for g, w in zip(got, want)), (got, want)
print(f"note: cold-start predictions {got} = mu + known bias")
PY
}

# A checkpointed run with biases and a validation split continues bit for bit: the metrics
# (but for the clock) and the factors of 20 + 20 iterations are those of 40 straight.
ratings_restart() {
  split_sample
  local t=(train --data train.csv --test test.csv --preset ratings --lr 5 --rank 3 --patience 0
    --log-every 5 --quiet)
  mpi 2 "${t[@]}" --iters 40 --metrics straight.csv --output straight.h5 > straight.log
  mpi 2 "${t[@]}" --iters 20 --checkpoint-dir ck > first.log
  mpi 2 "${t[@]}" --iters 40 --checkpoint-dir ck --restart auto --metrics continued.csv \
    --output continued.h5 > continued.log
  grep -q "restart: continuing from" continued.log
  same_outputs continued.csv straight.csv continued.h5 straight.h5
  cmp <(h5dump -A 0 -m %.17g -g /biases continued.h5 | sed 1d) \
      <(h5dump -A 0 -m %.17g -g /biases straight.h5 | sed 1d)
  head -1 straight.csv | grep -q ',validation_loss,validation_rmse$'
  echo "note: $(($(wc -l < straight.csv) - 1)) metrics rows and the factors and biases agree bit for bit"
}

# Bad values of the ratings options: one line on every rank, exit 1.
ratings_bad_options() {
  split_sample
  expect_error "--preset must be 'ratings'" train --data train.csv --preset bogus
  expect_error "--validation must be in [0, 1)" train --data train.csv --preset ratings --validation 1
  expect_error "--width must be positive" train --data train.csv --preset ratings --width -2
  expect_error "--bias-reg must be non-negative" train --data train.csv --preset ratings --bias-reg -1
}

ratings_plots() {
  split_sample
  mpi 2 train --data train.csv --test test.csv --preset ratings --rank 3 --lr 5 --iters 40 \
    --patience 0 --diagnostics --metrics run.csv --quiet > train.log
  "$PYTHON" "$SRC/scripts/plot_run.py" run.csv --out plots > plots.txt
  for picture in run-loss run-spectrum run-rank; do
    [[ -s plots/$picture.png ]] || { echo "plots/$picture.png missing or empty"; return 1; }
    # A PNG signature, and more than a blank canvas.
    head -c 8 "plots/$picture.png" | od -An -tx1 | grep -q "89 50 4e 47 0d 0a 1a 0a"
    [[ $(stat -c %s "plots/$picture.png") -gt 10000 ]]
  done
  echo "note: $(wc -l < plots.txt) pictures: $(tr '\n' ' ' < plots.txt)"
}

if [[ $SECTION == all || $SECTION == preset ]]; then
  check "train --preset ratings (20k sample): beats the bias-only baseline" ratings_preset
  check "predict: cold-start pairs answered from mu and the known bias" ratings_cold_start
  check "restart with biases and validation continues bit for bit" ratings_restart
  check "bad --preset, --validation, --width, --bias-reg: one line, exit 1" ratings_bad_options
fi
if [[ $SECTION == all || $SECTION == plots ]]; then
  check "plot_run.py: loss, spectrum and rank pictures of a run" ratings_plots
fi

finish
