#!/usr/bin/env bash
# End-to-end tests of `cdmf adapt` (DESIGN.md sections 3 and 4), run through mpiexec.
#
#   test_adapt.sh CDMF MPIEXEC PREFLAGS SOURCE_DIR [all|adapt_end_to_end|adapt_restart|adapt_bad_input]
#
# adapt_end_to_end: the linear layer and the entries measurement with every adapter, a dense
#                   and a factored base, on 1, 2 and 4 ranks (the same run to rounding);
#                   --patience writes the best adapter; --export-peft read back (B A = DeltaW);
#                   predict --base --adapter against the adapter file; inspect of an adapter;
#                   a base with biases (train --biases): entries and predict add them, the
#                   linear layer refuses it; deep-compressed from the implicit init.
# adapt_restart:    a restart from a checkpoint is the uninterrupted run bit for bit on the
#                   same grid, and to 1e-10 from 4 ranks to 2.
# adapt_bad_input:  every bad input of the issue: one "cdmf: error:" line, non-zero exit.
# Samples files are made with h5py (python3-h5py).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cli_test_args cli_adapt "adapt_end_to_end adapt_restart adapt_bad_input" "$@"
echo "cdmf adapt tests ($SECTION): $CDMF, work directory $WORK"
# An interpreter that has h5py (Debian's python3-h5py).
for candidate in "$PYTHON" python3 /usr/bin/python3; do
  if "$candidate" -c "import h5py, numpy" 2> /dev/null; then
    PYTHON=$candidate
    break
  fi
done

# make_problem: a 24 x 20 teacher-student problem (base.h5, samples s32.h5 and test.h5, the
# update in update.h5), entries of W0 + DeltaW* (entries.tsv, entries_test.tsv), a factored
# base trained by cdmf (fbase.h5) and bad files.
make_problem() {
  "$PYTHON" "$SRC/bench/adaptation/make_teacher_student.py" --rows 24 --cols 20 --samples 32 \
    --test-samples 64 --seed 5 --out . > problem.log
  mv train_s32.h5 s32.h5
  "$PYTHON" - << 'EOF'
import h5py, numpy as np
rng = np.random.default_rng(1)
w = h5py.File("base.h5")["/W"][()] + h5py.File("update.h5")["/W"][()]
cells = rng.permutation(24 * 20)
with open("entries.tsv", "w") as f:
    for c in cells[:200]: f.write(f"{c // 20}\t{c % 20}\t{w[c // 20, c % 20]:.17g}\n")
with open("entries_test.tsv", "w") as f:
    for c in cells[200:300]: f.write(f"{c // 20}\t{c % 20}\t{w[c // 20, c % 20]:.17g}\n")
def samples(name, x, y):
    with h5py.File(name, "w") as f:
        f["/inputs"] = x
        f["/targets"] = y
x, y = rng.standard_normal((10, 20)), rng.standard_normal((10, 24))
samples("wide.h5", rng.standard_normal((10, 21)), y)
samples("counts.h5", x, rng.standard_normal((11, 24)))
x_nan = x.copy(); x_nan[3, 4] = np.nan
samples("nan.h5", x_nan, y)
y_inf = y.copy(); y_inf[2, 1] = np.inf
samples("inf.h5", x, y_inf)
samples("s3.h5", x[:3], y[:3])
with h5py.File("other_base.h5", "w") as f:
    f["/W"] = h5py.File("base.h5")["/W"][()] * 1.001
with h5py.File("small_base.h5", "w") as f:
    f["/W"] = np.zeros((10, 20))
EOF
  mpi 2 train --data entries.tsv --model shallow --rank 3 --init-scale 0.5 --lr 50 --iters 20 \
    --quiet --output fbase.h5 > fbase.log
}

# Without --lr, --iters and --log-every, which runs set (an option may be given once).
LINEAR=(adapt --base base.h5 --samples s32.h5 --test-samples test.h5 --gamma 0.1 --quiet)
ENTRIES=(adapt --data entries.tsv --test entries_test.tsv --gamma 0.1 --quiet
  --loss-normalization observed)
STEPS=(--lr 3e-3 --iters 150 --log-every 25)

linear_runs() {
  for adapter in lora deep deep-compressed; do
    for ranks in 1 2 4; do
      mpi $ranks "${LINEAR[@]}" "${STEPS[@]}" --adapter $adapter --rank 4 --output lin_${adapter}_$ranks.h5 \
        --summary lin_${adapter}_$ranks.json --metrics lin_${adapter}_$ranks.csv \
        > lin_${adapter}_$ranks.log
    done
    same_summary lin_${adapter}_1.json lin_${adapter}_2.json 1e-9 train_loss test_loss
    same_summary lin_${adapter}_4.json lin_${adapter}_2.json 1e-9 train_loss test_loss
  done
  "$PYTHON" - << 'EOF'
import csv, json, h5py, numpy as np
update = h5py.File("update.h5")["/W"][()]
for adapter in ["lora", "deep", "deep-compressed"]:
    s = json.load(open(f"lin_{adapter}_2.json"))
    rows = list(csv.DictReader(open(f"lin_{adapter}_2.csv")))
    assert float(rows[-1]["train_loss"]) < 0.5 * float(rows[0]["train_loss"]), (adapter, rows[0], rows[-1])
    f = h5py.File(f"lin_{adapter}_2.h5")
    assert f.attrs["format"] in (b"cdmf-adapter", "cdmf-adapter"), f.attrs["format"]
    for key in ["adapter", "rank", "init_scale", "gamma", "alpha", "measurement", "base_fingerprint"]:
        assert key in f.attrs, key
    factors = [f[f"/factors/W{l + 1}"][()] for l in range(len(f["/factors"]))]
    delta = factors[0]
    for w in factors[1:]: delta = w @ delta
    sv = np.linalg.svd(delta, compute_uv=False)
    assert s["adapter"] == adapter and s["rank"] == 4 and s["measurement"] == "linear", s
    assert s["trainable_parameters"] == sum(w.size for w in factors), s
    assert np.allclose(s["update_singular_values"], sv[:16], rtol=1e-8, atol=1e-12 * sv[0]), (s["update_singular_values"], sv[:16])
    assert s["update_rank"] == int((sv > 1e-3 * sv[0]).sum())
    assert s["best_iteration"] is not None and s["best_test_loss"] > 0
    err = np.linalg.norm(delta - update) / np.linalg.norm(update)
    print(f"note: {adapter}: {len(factors)} factors, update rank {s['update_rank']}, relative error of DeltaW {err:.3f}")
EOF
}

entries_runs() {
  for base in base.h5 fbase.h5; do
    for adapter in lora deep deep-compressed; do
      local tag=${adapter}_${base%.h5}
      for ranks in 1 4; do
        mpi $ranks "${ENTRIES[@]}" "${STEPS[@]}" --base $base --adapter $adapter --rank 2 --output ent_${tag}_$ranks.h5 \
          --summary ent_${tag}_$ranks.json --metrics ent_${tag}_$ranks.csv > ent_${tag}_$ranks.log
      done
      same_summary ent_${tag}_4.json ent_${tag}_1.json 1e-9 train_loss test_loss
    done
  done
  # predict --base --adapter equals W0 + DeltaW from the files (dense base).
  mpi 2 predict --base base.h5 --adapter ent_deep-compressed_base_1.h5 --pairs entries_test.tsv \
    --out pred.tsv > pred.log
  "$PYTHON" - << 'EOF'
import csv, h5py, numpy as np
f = h5py.File("ent_deep-compressed_base_1.h5")
factors = [f[f"/factors/W{l + 1}"][()] for l in range(len(f["/factors"]))]
delta = factors[0]
for w in factors[1:]: delta = w @ delta
w = h5py.File("base.h5")["/W"][()] + delta
pred = [l.split("\t") for l in open("pred.tsv").read().splitlines()]
assert len(pred) == 100, len(pred)
worst = max(abs(float(v) - w[int(i), int(j)]) for i, j, v in pred)
assert worst < 1e-12 * np.abs(w).max(), worst
rows = list(csv.DictReader(open("ent_deep-compressed_base_1.csv")))
assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"]), (rows[0], rows[-1])
print(f"note: predict --base --adapter: 100 pairs, max difference {worst:.1e}")
EOF
  mpi 2 predict --base fbase.h5 --adapter ent_lora_fbase_1.h5 --pairs entries_test.tsv \
    --out fpred.tsv > fpred.log
  test "$(wc -l < fpred.tsv)" -eq 100
}

implicit_init() {
  # deep-compressed from the implicit structured init (--init-structure implicit), both
  # measurements: the same run on 1, 2 and 4 ranks; auto stays dense at this size.
  for ranks in 1 2 4; do
    mpi $ranks "${LINEAR[@]}" "${STEPS[@]}" --adapter deep-compressed --rank 4 --init-structure implicit \
      --output ilin_$ranks.h5 --summary ilin_$ranks.json --metrics ilin_$ranks.csv > ilin_$ranks.log
    mpi $ranks "${ENTRIES[@]}" "${STEPS[@]}" --base base.h5 --adapter deep-compressed --rank 2 \
      --init-structure implicit --output ient_$ranks.h5 --summary ient_$ranks.json --metrics ient_$ranks.csv \
      > ient_$ranks.log
  done
  for m in ilin ient; do
    same_summary ${m}_1.json ${m}_2.json 1e-9 train_loss test_loss
    same_summary ${m}_4.json ${m}_2.json 1e-9 train_loss test_loss
  done
  grep -q "compress: implicit structured init (signed permutations, width 24)" ilin_2.log
  grep -q "compress: PARPACK in" ient_2.log
  "$PYTHON" - << 'EOF2'
import csv, json
for name, want in [("ilin_2", "implicit"), ("ient_2", "implicit"), ("lin_deep-compressed_2", "dense"), ("lin_lora_2", None)]:
    s = json.load(open(name + ".json"))
    assert s["init_structure"] == want, (name, s["init_structure"])
for name in ["ilin_2", "ient_2"]:
    rows = list(csv.DictReader(open(name + ".csv")))
    first, last = float(rows[0]["train_loss"]), float(rows[-1]["train_loss"])
    assert last < 0.5 * first, (name, first, last)
    print(f"note: {name}: train loss {first:.4e} -> {last:.4e}")
EOF2
}

biases_base() {
  # A ratings model (train --biases) as the base: adapt's offsets hold mu + b_i + c_j, and
  # predict --base --adapter gives the same values; a linear layer refuses such a base.
  mpi 2 train --data entries.tsv --model shallow --rank 3 --init-scale 0.5 --lr 50 --iters 20 \
    --biases --quiet --output bbase.h5 > bbase.log
  mpi 2 "${ENTRIES[@]}" --lr 3e-2 --iters 60 --log-every 60 --base bbase.h5 --adapter lora --rank 2 \
    --output bent.h5 --metrics bent.csv --summary bent.json > bent.log
  mpi 2 predict --base bbase.h5 --adapter bent.h5 --pairs entries.tsv --out bpred.tsv > bpred.log
  "$PYTHON" - << 'EOF2'
import csv, h5py, numpy as np
b = h5py.File("bbase.h5")
assert "/biases" in b
chain = [b[f"/factors/W{l + 1}"][()] for l in range(len(b["/factors"]))]
w0 = chain[1] @ chain[0] + b["/biases"].attrs["mu"] + b["/biases/rows"][()][:, None] + b["/biases/cols"][()][None, :]
a = h5py.File("bent.h5")
delta = a["/factors/W2"][()] @ a["/factors/W1"][()]
entries = [l.split("\t") for l in open("entries.tsv").read().splitlines()]
pred = {(int(i), int(j)): float(v) for i, j, v in (l.split("\t") for l in open("bpred.tsv").read().splitlines())}
worst = max(abs(pred[int(i), int(j)] - (w0 + delta)[int(i), int(j)]) for i, j, _ in entries)
assert worst < 1e-12 * np.abs(w0).max(), worst
# adapt's view: LoRA starts at DeltaW = 0, so its first train loss is the base's own (with its
# biases); its last is the loss of the predictions (loss normalization: observed entries).
rows = list(csv.DictReader(open("bent.csv")))
assert int(rows[0]["iteration"]) == 0 and int(rows[-1]["iteration"]) == 60, rows
y = np.array([float(v) for _, _, v in entries])
first = sum((float(v) - w0[int(i), int(j)]) ** 2 for i, j, v in entries) / (2 * len(entries))
last = sum((float(v) - pred[int(i), int(j)]) ** 2 for i, j, v in entries) / (2 * len(entries))
assert abs(float(rows[0]["train_loss"]) - first) < 1e-10 * first, (rows[0], first)
assert abs(float(rows[-1]["train_loss"]) - last) < 1e-9 * last, (rows[-1], last)
assert last < first
without = sum((float(v) - (chain[1] @ chain[0])[int(i), int(j)]) ** 2 for i, j, v in entries) / (2 * len(entries))
print(f"note: base with biases: train loss {first:.4e} at init ({without:.4e} without its biases), {last:.4e} after 60 steps; predict agrees to {worst:.1e}")
EOF2
  expect_error "bbase.h5: a ratings model with biases (train --biases) cannot be the base of a linear layer" \
    adapt --base bbase.h5 --samples s32.h5 --adapter lora --rank 2 --lr 1e-3 --iters 5 --output l.h5
}

patience_keeps_best() {
  # A large step overfits 32 noisy samples; --patience stops and writes the best iterate.
  mpi 2 "${LINEAR[@]}" --adapter lora --rank 16 --lr 3e-2 --iters 3000 --log-every 10 \
    --patience 5 --output best.h5 --summary best.json --metrics best.csv > best.log
  "$PYTHON" - << 'EOF'
import csv, json, h5py, numpy as np
s = json.load(open("best.json"))
rows = list(csv.DictReader(open("best.csv")))
best = min(rows, key=lambda r: float(r["test_loss"]))
assert s["stop_reason"] == "early_stopping", s["stop_reason"]
assert s["best_iteration"] == int(best["iteration"]) and s["written_iterate"] == "best", s
f = h5py.File("best.h5")
assert f.attrs["iteration"] == s["best_iteration"]
# The written adapter's test loss is the best row's (recomputed here from the files).
delta = f["/factors/W2"][()] @ f["/factors/W1"][()]
t = h5py.File("test.h5")
x, y = t["/inputs"][()], t["/targets"][()]
r = x @ (h5py.File("base.h5")["/W"][()] + delta).T - y
loss = (r ** 2).sum() / (2 * x.shape[0])
assert abs(loss - float(best["test_loss"])) < 1e-9 * loss, (loss, best)
assert float(rows[-1]["test_loss"]) > float(best["test_loss"])
print(f"note: stopped at {rows[-1]['iteration']}, best test loss {loss:.4e} at {s['best_iteration']}")
EOF
}

peft_export() {
  mpi 2 "${LINEAR[@]}" "${STEPS[@]}" --adapter deep-compressed --rank 4 --output peft.h5 \
    --export-peft peft --target-module layers.0.mlp.up_proj > peft.log
  "$PYTHON" - << 'EOF'
import json, struct, h5py, numpy as np
raw = open("peft/adapter_model.safetensors", "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + n])
def tensor(name):
    e = header["base_model.model.layers.0.mlp.up_proj." + name]
    a, b = e["data_offsets"]
    assert e["dtype"] == "F32"
    return np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4").reshape(e["shape"])
A, B = tensor("lora_A.weight"), tensor("lora_B.weight")
f = h5py.File("peft.h5")
factors = [f[f"/factors/W{l + 1}"][()] for l in range(len(f["/factors"]))]
delta = factors[0]
for w in factors[1:]: delta = w @ delta
err = np.abs(B.astype(float) @ A.astype(float) - delta).max() / np.abs(delta).max()
assert A.shape == (4, 20) and B.shape == (24, 4) and err < 1e-6, (A.shape, B.shape, err)
c = json.load(open("peft/adapter_config.json"))
assert c["peft_type"] == "LORA" and c["r"] == 4 and c["lora_alpha"] == 4
assert c["target_modules"] == ["layers.0.mlp.up_proj"]
print(f"note: B A vs DeltaW: max relative difference {err:.1e}")
EOF
  mpi 1 inspect peft.h5 > inspect.log
  grep -q "adapter        deep-compressed rank 4" inspect.log
  grep -q "update rank" inspect.log
}

if [[ $SECTION == all || $SECTION == adapt_end_to_end ]]; then
  check "make the teacher-student problem and a factored base" make_problem
  check "linear layer: lora, deep, deep-compressed on 1, 2, 4 ranks" linear_runs
  check "entries: dense and factored base, three adapters, 1 vs 4 ranks; predict" entries_runs
  check "deep-compressed from the implicit init, both measurements, 1, 2, 4 ranks" implicit_init
  check "a base with biases: adapt and predict add them; a linear layer refuses it" biases_base
  check "--patience writes the best adapter on the test set" patience_keeps_best
  check "--export-peft read back: B A = DeltaW; inspect of an adapter" peft_export
fi

restart_same_grid() {
  local run=("${LINEAR[@]}" --adapter deep-compressed --rank 4 --lr 3e-3 --log-every 20)
  mpi 2 "${run[@]}" --iters 120 --output full.h5 --metrics full.csv > full.log
  mpi 2 "${run[@]}" --iters 60 --checkpoint-dir ck --output part.h5 > part.log
  mpi 2 "${run[@]}" --iters 120 --checkpoint-dir ck --restart auto --output resumed.h5 --metrics resumed.csv \
    > resumed.log
  grep -q "restart: continuing from" resumed.log
  same_outputs resumed.csv full.csv resumed.h5 full.h5
}

restart_other_ranks() {
  local run=("${ENTRIES[@]}" --base base.h5 --adapter lora --rank 2 --lr 3e-3 --log-every 20)
  mpi 2 "${run[@]}" --iters 120 --output full4.h5 --summary full.json > full.log
  mpi 4 "${run[@]}" --iters 60 --checkpoint-dir ck4 --output part4.h5 > part4.log
  mpi 2 "${run[@]}" --iters 120 --checkpoint-dir ck4 --restart auto --output resumed4.h5 --summary resumed.json \
    > resumed.log
  grep -q "restart: continuing from" resumed.log
  same_summary resumed.json full.json 1e-10 train_loss test_loss
}

if [[ $SECTION == all || $SECTION == adapt_restart ]]; then
  check "make the teacher-student problem" make_problem
  check "restart on the same grid is bit for bit the uninterrupted run" restart_same_grid
  check "restart from 4 ranks on 2 agrees to 1e-10" restart_other_ranks
fi

if [[ $SECTION == all || $SECTION == adapt_bad_input ]]; then
  check "make the teacher-student problem" make_problem
  A=(adapt --base base.h5 --lr 1e-3 --iters 5 --output a.h5)
  check "samples of the wrong width" expect_error "wide.h5: samples of 21 inputs" \
    "${A[@]}" --adapter lora --rank 2 --samples wide.h5
  check "inputs and targets with different sample counts" \
    expect_error "counts.h5: /inputs holds 10 samples but /targets holds 11" \
    "${A[@]}" --adapter lora --rank 2 --samples counts.h5
  check "NaN in the inputs" \
    expect_error "nan.h5: /inputs holds a non-finite value (NaN or Inf) at sample 3, column 4" \
    "${A[@]}" --adapter lora --rank 2 --samples nan.h5
  check "Inf in the targets" expect_error "inf.h5: /targets holds a non-finite value" \
    "${A[@]}" --adapter lora --rank 2 --samples inf.h5
  check "rank above min(m, n)" expect_error "--rank 21 exceeds min(rows, cols) = 20" \
    "${A[@]}" --adapter deep --rank 21 --samples s32.h5
  check "odd rank for deep-compressed" expect_error "--rank 3 is odd" \
    "${A[@]}" --adapter deep-compressed --rank 3 --samples s32.h5
  check "base and data that disagree in shape" \
    expect_error "entries.tsv: the data is 24 x 20 but the base small_base.h5 is 10 x 20" \
    adapt --base small_base.h5 --lr 1e-3 --output a.h5 --adapter lora --rank 2 --data entries.tsv
  check "base and samples that disagree in shape" \
    expect_error "s32.h5: samples of 20 inputs and 24 targets do not fit the 10 x 20 base" \
    adapt --base small_base.h5 --lr 1e-3 --output a.h5 --adapter lora --rank 2 --samples s32.h5
  mpi 2 "${A[@]}" --adapter lora --rank 2 --samples s32.h5 --quiet --checkpoint-dir ck_base \
    > good.log
  check "an adapter applied to another base (predict)" expect_error "fitted to another base" \
    predict --base other_base.h5 --adapter a.h5 --pairs entries.tsv --out p.tsv
  check "an adapter as a --checkpoint (not a model)" expect_error "a.h5: a cdmf adapter" \
    predict --checkpoint a.h5 --pairs entries.tsv --out p.tsv
  check "--restart of a checkpoint written for another base" expect_error "another base" \
    adapt --base other_base.h5 --lr 1e-3 --iters 5 --adapter lora --rank 2 --samples s32.h5 \
    --output b.h5 --restart auto --checkpoint-dir ck_base
  check "--adapter bogus" expect_error "unknown adapter 'bogus'" \
    "${A[@]}" --adapter bogus --rank 2 --samples s32.h5
  check "both --samples and --data" expect_error "not both" \
    "${A[@]}" --adapter lora --rank 2 --samples s32.h5 --data entries.tsv
  check "--export-peft without --target-module" expect_error "--target-module" \
    "${A[@]}" --adapter lora --rank 2 --samples s32.h5 --export-peft peft
  check "--init-structure implicit below the width max(m, n)" \
    expect_error "the structured init needs a width h >= max(m, n) = 24 (got 20)" \
    "${A[@]}" --adapter deep-compressed --rank 4 --samples s32.h5 --init-structure implicit --width 20
  check "--init-structure implicit with fewer samples than r / 2" \
    expect_error "3 samples cannot determine the top 4 singular directions" \
    "${A[@]}" --adapter deep-compressed --rank 8 --samples s3.h5 --init-structure implicit
  check "--init-structure of an unknown kind" expect_error "--init-structure must be auto, dense or implicit" \
    "${A[@]}" --adapter deep-compressed --rank 4 --samples s32.h5 --init-structure haar
  check "missing --base" expect_error "--base is required" \
    adapt --lr 1e-3 --rank 2 --samples s32.h5 --output a.h5
  check "a base that is neither /W nor a factor file" expect_error "s32.h5: not a base" \
    adapt --base s32.h5 --lr 1e-3 --output a.h5 --adapter lora --rank 2 --samples s32.h5
fi

finish
