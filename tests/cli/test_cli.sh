#!/usr/bin/env bash
# End-to-end tests of the cdmf executable (DESIGN.md section 4), run through mpiexec.
#
#   test_cli.sh CDMF MPIEXEC PREFLAGS SOURCE_DIR [all|end_to_end|bad_input]
#
# CDMF: the cdmf binary; MPIEXEC: mpiexec/mpirun; PREFLAGS: extra mpiexec flags separated by
# ';' or spaces (e.g. "--allow-run-as-root;--oversubscribe"), may be empty; SOURCE_DIR: the
# project root (for tests/data). Work files go to a fresh directory under the current
# directory (CTest runs this in the build tree), removed when every check passes.
#
# end_to_end: generate -> train (deep) -> cross-grid agreement -> predict -> inspect -> --init
#             restart -> MovieLens ids -> config file.
# bad_input:  each bad input gives a non-zero exit, exactly one "cdmf: error:" line naming the
#             file (and line) or option, within a timeout; an unwritable output path fails
#             before the data is read, and a failed generate leaves no --out directory.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cli_test_args cli "end_to_end bad_input" "$@"
echo "cdmf CLI tests ($SECTION): $CDMF, work directory $WORK"

# --------------------------------------------------------------------------------------------
# End to end
# --------------------------------------------------------------------------------------------
M=30 N=24 R=3
DEEP=(--model deep --depth 3 --width 30 --init-scale 0.5 --lr 10 --iters 300 --log-every 50)
TRAIN_DEEP=(train --data gen/train.tsv --test gen/test.tsv --truth gen/truth.h5 "${DEEP[@]}")

e2e_generate() {
  mpi 2 generate --rows $M --cols $N --rank $R --observed 0.3 --seed 7 --out gen
  test -s gen/train.tsv
  test -s gen/test.tsv
  test -s gen/truth.h5
  local want_train want_test
  want_train=$("$PYTHON" -c "print(round(0.3 * $M * $N))")
  want_test=$((M * N - want_train))
  local got_train got_test
  got_train=$(wc -l < gen/train.tsv)
  got_test=$(wc -l < gen/test.tsv)
  echo "note: train.tsv $got_train lines (want $want_train), test.tsv $got_test (want $want_test)"
  [[ $got_train -eq $want_train && $got_test -eq $want_test ]]
}

e2e_train() {
  mpi 2 "${TRAIN_DEEP[@]}" --metrics run.csv --summary run.json --output out.h5 > train.log
  "$PYTHON" - <<'EOF'
import csv, json, math
s = json.load(open("run.json"))
for key in ["model", "iterations", "seconds", "train_loss", "test_loss", "test_rmse",
            "recovery_error", "ranks"]:
    assert key in s, f"summary lacks {key}"
assert s["model"] == "deep" and s["ranks"] == 2 and s["iterations"] == 300, s
for key in ["seconds", "train_loss", "test_loss", "test_rmse", "recovery_error"]:
    assert isinstance(s[key], float) and math.isfinite(s[key]), (key, s[key])
header = open("run.csv").readline().strip()
want = "iteration,seconds,train_loss,test_loss,train_rmse,test_rmse,recovery_error"
assert header == want, header
rows = list(csv.DictReader(open("run.csv")))
assert [int(r["iteration"]) for r in rows] == list(range(0, 301, 50)), [r["iteration"] for r in rows]
first, last = float(rows[0]["train_loss"]), float(rows[-1]["train_loss"])
assert last < first, (first, last)
assert abs(last - s["train_loss"]) <= 1e-12 * abs(last), (last, s["train_loss"])
print(f"note: train loss {first:.4e} -> {last:.4e}; test rmse {s['test_rmse']:.4f}, "
      f"recovery error {s['recovery_error']:.4f}")
EOF
  test -s out.h5
}

# e2e_same_loss TAG N [ARGS...]: the deep run on N ranks gives the 2-rank losses.
e2e_same_loss() {
  local tag=$1 n=$2
  shift 2
  mpi "$n" "${TRAIN_DEEP[@]}" --quiet --summary "run_$tag.json" "$@" > "train_$tag.log"
  same_summary "run_$tag.json" run.json 1e-8 train_loss test_loss recovery_error
}

e2e_predict() {
  mpi 2 predict --checkpoint out.h5 --pairs gen/test.tsv --out pred.tsv > predict.log
  "$PYTHON" - <<'EOF'
import json, math
truth = [l.split("\t") for l in open("gen/test.tsv").read().splitlines()]
pred = [l.split("\t") for l in open("pred.tsv").read().splitlines()]
assert len(pred) == len(truth), (len(pred), len(truth))
assert all(p[:2] == t[:2] for p, t in zip(pred, truth)), "pairs not in input order"
rmse = math.sqrt(sum((float(p[2]) - float(t[2])) ** 2 for p, t in zip(pred, truth)) / len(truth))
want = json.load(open("run.json"))["test_rmse"]
err = abs(rmse - want) / want
print(f"note: {len(pred)} predictions; rmse {rmse!r} vs summary test_rmse {want!r} (rel {err:.1e})")
assert err <= 1e-8
EOF
}

e2e_inspect() {
  mpi 2 inspect out.h5 > inspect.txt
  cat inspect.txt
  grep -Eq "^model +deep: $M x $N, 3 factors, width 30\$" inspect.txt
  grep -Eq '^iteration +300$' inspect.txt
  grep -Eq "^  W1 +30 x $N " inspect.txt
  grep -Eq '^  W2 +30 x 30 ' inspect.txt
  grep -Eq "^  W3 +$M x 30 " inspect.txt
  grep -Fq "singular values of the end-to-end matrix (top 10 of $N):" inspect.txt
  "$PYTHON" - <<'EOF'
import re
s = [float(m.group(1)) for m in re.finditer(r"^  s\d+ +(\S+)$", open("inspect.txt").read(), re.M)]
assert len(s) == 10 and all(a >= b >= 0 for a, b in zip(s, s[1:])), s
print(f"note: top singular values {s[0]:.4g} {s[1]:.4g} {s[2]:.4g} {s[3]:.4g} ...")
EOF
}

e2e_init() {
  mpi 2 train --data gen/train.tsv --test gen/test.tsv --truth gen/truth.h5 --model deep --lr 10 \
    --iters 0 --init out.h5 --summary run_init.json > train_init.log
  grep -q '"iterations": 0,' run_init.json
  same_summary run_init.json run.json 1e-10 train_loss test_loss recovery_error
}

e2e_movielens() {
  # Every 5th rating is held out; the header goes to both files.
  awk 'NR == 1 { print > "ml_train.csv"; print > "ml_test.csv"; next }
       NR % 5 == 0 { print > "ml_test.csv"; next } { print > "ml_train.csv" }' \
    "$SRC/tests/data/ratings_small.csv"
  # With biases, so that predict answers the test's cold-start pairs (movies unseen in training).
  local narrow=(train --data ml_train.csv --test ml_test.csv --model narrow --rank 3 --depth 3
    --init-scale 1 --lr 100 --iters 20 --log-every 10 --quiet --biases)
  mpi 2 "${narrow[@]}" --strategy dense --metrics ml.csv --summary ml.json --output ml.h5 \
    > ml_train.log
  # The sparse strategy (the default for thin chains) must give the same run.
  mpi 2 "${narrow[@]}" --strategy sparse --summary ml_sparse.json > ml_train_sparse.log
  same_summary ml_sparse.json ml.json 1e-8 train_loss test_loss
  mpi 2 predict --checkpoint ml.h5 --pairs ml_test.csv --out ml_pred.tsv > ml_predict.log
  "$PYTHON" - <<'EOF'
import csv, json, math
s = json.load(open("ml.json"))
# The training file alone defines the problem; test pairs with unseen ids are cold start.
users = {r["userId"] for r in csv.DictReader(open("ml_train.csv"))}
movies = {r["movieId"] for r in csv.DictReader(open("ml_train.csv"))}
assert (s["rows"], s["cols"]) == (len(users), len(movies)), (s["rows"], s["cols"])
assert s["model"] == "narrow" and s["iterations"] == 20, s
rows = list(csv.DictReader(open("ml.csv")))
assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
test = list(csv.DictReader(open("ml_test.csv")))
pred = [l.split("\t") for l in open("ml_pred.tsv").read().splitlines()]
assert len(pred) == len(test), (len(pred), len(test))
assert all([p[0], p[1]] == [t["userId"], t["movieId"]] for p, t in zip(pred, test)), \
    "predictions do not carry the original userId/movieId in input order"
assert max(int(p[1]) for p in pred) > len(movies)  # really ids, not dense indices
values = [float(p[2]) for p in pred]
assert all(math.isfinite(v) for v in values)
warm = [(v, t) for v, t in zip(values, test) if t["userId"] in users and t["movieId"] in movies]
assert s["cold_test_entries"] == len(test) - len(warm) > 0, s["cold_test_entries"]
rmse = math.sqrt(sum((v - float(t["rating"])) ** 2 for v, t in warm) / len(warm))
err = abs(rmse - s["test_rmse"]) / s["test_rmse"]
print(f"note: {s['rows']} users x {s['cols']} movies; {len(pred)} predictions with original ids "
      f"({s['cold_test_entries']} cold start); warm rmse vs test_rmse rel {err:.1e}")
assert err <= 1e-8
EOF
}

e2e_config() {
  cat > run.toml <<'EOF'
# cdmf train options; flags on the command line override them
data = "gen/train.tsv"
test = "gen/test.tsv"
model = "deep"
depth = 3
width = 30
init-scale = 0.5
lr = 10.0
iters = 7
quiet = true
summary = "run_config.json"
EOF
  mpi 2 train --config run.toml --iters 3 > config.log
  local line
  line=$(grep '^configuration: ' config.log)
  echo "note: ${line:0:110}..."
  "$PYTHON" - "${line#configuration: }" <<'EOF'
import json, sys
c = json.loads(sys.argv[1])
want = {"data": "gen/train.tsv", "test": "gen/test.tsv", "model": "deep", "depth": 3,
        "width": 30, "init_scale": 0.5, "lr": 10.0, "iters": 3}
bad = {k: (c.get(k), v) for k, v in want.items() if c.get(k) != v}
assert not bad, bad
s = json.load(open("run_config.json"))
assert s["iterations"] == 3, s["iterations"]
EOF
  if grep -q '^iter ' config.log; then
    echo "progress lines printed although the file sets quiet = true"
    return 1
  fi
}

if [[ $SECTION == all || $SECTION == end_to_end ]]; then
  check "generate ${M}x${N} rank $R: files and train/test line counts" e2e_generate
  check "train deep (2 ranks): summary JSON keys, metrics CSV, loss decreases" e2e_train
  check "same losses on 1 rank" e2e_same_loss n1 1
  check "same losses on 4 ranks" e2e_same_loss n4 4
  check "same losses on 2 ranks, --grid 2x1" e2e_same_loss g2x1 2 --grid 2x1
  check "same losses on 2 ranks, --grid 1x2" e2e_same_loss g1x2 2 --grid 1x2
  check "predict test pairs: order kept, RMSE = summary test_rmse" e2e_predict
  check "inspect: model, shapes, singular values" e2e_inspect
  check "--init out.h5 --iters 0 reproduces the final losses" e2e_init
  check "MovieLens: narrow model (dense = sparse), predictions keep ids" e2e_movielens
  check "--config run.toml with a flag overriding it" e2e_config
fi

# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------
bad_setup() {
  mkdir -p bad
  "$PYTHON" - <<'EOF'
import os, random
random.seed(3)
def write(name, lines):
    with open("bad/" + name, "w") as f:
        f.writelines(line + "\n" for line in lines)
# 300 entries of a 20 x 15 matrix; the bad line is line 291, in the part rank 1 reads.
cells = random.sample([(i, j) for i in range(20) for j in range(15)], 300)
good = [f"{i}\t{j}\t{random.uniform(-1, 1):.6f}" for i, j in cells]
write("good.tsv", good)
def with_line(text):
    lines = list(good)
    lines[290] = text
    return lines
i, j = cells[290]
write("malformed.tsv", with_line(f"{i}\tseven\t0.5"))
write("dup.tsv", with_line(f"{cells[10][0]}\t{cells[10][1]}\t0.25"))
write("nan.tsv", with_line(f"{i}\t{j}\tnan"))
write("oor_pairs.tsv", with_line(f"35\t{j}\t0"))
# rows 0..9 except line 291 (row 12), for --rows 10.
cells10 = random.sample([(i, j) for i in range(10) for j in range(30)], 300)
lines = [f"{i}\t{j}\t{random.uniform(-1, 1):.6f}" for i, j in cells10]
lines[290] = f"12\t{cells10[290][1]}\t0.5"
write("range.tsv", lines)
write("empty.tsv", [])
write("one_row.tsv", [f"0\t{j}\t{random.uniform(-1, 1):.6f}" for j in range(15)])
write("notes.txt", ["this is not an HDF5 file"])
ratings = open(os.environ["SRC"] + "/tests/data/ratings_small.csv").read().splitlines()[:300]
ratings[290] = "3,abc,4.0,1234567890"
write("ml_bad.csv", ratings)
write("bad.toml", ["lr = 1.0", "bogus-option = 3"])
EOF
  mpi 2 generate --rows 30 --cols 24 --rank 2 --seed 1 --out bad/gen > bad/generate.log
  mpi 2 train --data bad/gen/train.tsv --lr 1 --iters 0 --quiet --output bad/f.h5 > bad/f.log
  test "$(stat -c %s bad/f.h5)" -gt 4096
  head -c 4096 bad/f.h5 > bad/trunc.h5
}

# expect_error_before_data PATTERN ARGS...: expect_error, and the run stopped before it read the
# data (rank 0 prints "data: ..." once it has): output paths are checked at start-up.
expect_error_before_data() {
  expect_error "$@"
  if grep -q '^data: ' out.txt; then
    echo "the error came after the data was read"
    return 1
  fi
}

# generate_fails_cleanly PATTERN ARGS...: cdmf generate ARGS fails naming PATTERN and leaves no
# --out directory behind (every option is checked before it is created).
generate_fails_cleanly() {
  local pattern=$1
  shift
  expect_error "$pattern" generate "$@" --out never_created
  [[ ! -e never_created ]] || { echo "--out never_created was created"; return 1; }
}

if [[ $SECTION == all || $SECTION == bad_input ]]; then
  export SRC
  T=(train --model deep --lr 1 --iters 2 --quiet)
  check "setup: bad-input files, a factor file and a truncated copy" bad_setup
  cd bad
  check "malformed line" expect_error "malformed.tsv:291:" "${T[@]}" --data malformed.tsv
  check "index outside explicit --rows 10" expect_error "range.tsv:291:" "${T[@]}" --data range.tsv --rows 10
  check "duplicate entry" expect_error "dup.tsv:291:" "${T[@]}" --data dup.tsv
  check "NaN value" expect_error "nan.tsv:291:" "${T[@]}" --data nan.tsv
  check "NaN value in --test" expect_error "nan.tsv:291:" "${T[@]}" --data good.tsv --test nan.tsv
  check "malformed MovieLens line" expect_error "ml_bad.csv:291:" "${T[@]}" --data ml_bad.csv
  check "empty file" expect_error "empty.tsv" "${T[@]}" --data empty.tsv
  check "missing file" expect_error "missing.tsv" "${T[@]}" --data missing.tsv
  check "--init of a text file" expect_error "notes.txt" "${T[@]}" --data good.tsv --init notes.txt
  check "--init of a truncated .h5" expect_error "trunc.h5" "${T[@]}" --data good.tsv --init trunc.h5
  check "--init of a truth file (not a checkpoint)" expect_error "gen/truth.h5" "${T[@]}" --data good.tsv --init gen/truth.h5
  check "--init with the wrong shape" expect_error "f.h5" "${T[@]}" --data good.tsv --rows 20 --cols 15 --init f.h5
  check "--init of another model" expect_error "f.h5" train --lr 1 --iters 2 --data good.tsv --model narrow --rank 2 --init f.h5
  check "--truth with the wrong shape" expect_error "gen/truth.h5" "${T[@]}" --data good.tsv --rows 20 --cols 15 --truth gen/truth.h5
  check "--rank too large for narrow" expect_error "--rank 8" train --data good.tsv --model narrow --rank 8 --lr 1
  check "--lr 0" expect_error "--lr" train --data good.tsv --lr 0
  check "--lr -1" expect_error "--lr" train --data good.tsv --lr -1
  check "--grid 3x1 on 2 ranks" expect_error "--grid 3x1" "${T[@]}" --data good.tsv --grid 3x1
  check "more ranks than the data can use (1 row, --grid 2x1)" expect_error "more ranks than the data can use" "${T[@]}" --data one_row.tsv --grid 2x1
  check "--format bogus" expect_error "bogus" "${T[@]}" --data good.tsv --format bogus
  check "--model bogus" expect_error "bogus" train --data good.tsv --lr 1 --model bogus
  check "--strategy bogus" expect_error "--strategy" "${T[@]}" --data good.tsv --strategy bogus
  check "unknown option" expect_error "--bogus-option" "${T[@]}" --data good.tsv --bogus-option 3
  check "missing --data" expect_error "--data" train --lr 1
  check "--config with an unknown key" expect_error "bad.toml" train --data good.tsv --config bad.toml
  check "--config of a missing file" expect_error "nonexistent.toml" train --data good.tsv --lr 1 --config nonexistent.toml
  check "--metrics in a missing directory (rank 0 only writes)" expect_error_before_data "--metrics no_such_dir/m.csv: directory no_such_dir does not exist" "${T[@]}" --data good.tsv --metrics no_such_dir/m.csv
  check "--output in a missing directory, before the data is read" expect_error_before_data "--output no_such_dir/f.h5" "${T[@]}" --data good.tsv --output no_such_dir/f.h5
  check "--summary under a regular file, before the data is read" expect_error_before_data "--summary good.tsv/s.json" "${T[@]}" --data good.tsv --summary good.tsv/s.json
  check "generate --rank above min(rows, cols): no --out left behind" generate_fails_cleanly "--rank 20" --rows 10 --cols 10 --rank 20
  check "generate with more ranks than the matrix can use: no --out left" generate_fails_cleanly "more ranks than the data can use" --rows 1 --cols 1 --rank 1 --observed 1
  check "generate --out of an existing file" expect_error "--out notes.txt" generate --rows 10 --cols 10 --rank 2 --out notes.txt
  check "predict --out in a missing directory" expect_error "--out no_such_dir/p.tsv" predict --checkpoint f.h5 --pairs good.tsv --out no_such_dir/p.tsv
  check "predict a pair outside the model" expect_error "oor_pairs.tsv:291:" predict --checkpoint f.h5 --pairs oor_pairs.tsv --out p.tsv
  cd ..
fi

finish
