#!/usr/bin/env bash
# Checkpoint and restart through the cdmf executable (DESIGN.md sections 3 and 5), under mpiexec.
#
#   test_restart.sh CDMF MPIEXEC PREFLAGS SOURCE_DIR [all|restart|signals|bad_checkpoint]
#
# CDMF: the cdmf binary; MPIEXEC: mpiexec/mpirun; PREFLAGS: extra mpiexec flags separated by
# ';' or spaces, may be empty; SOURCE_DIR: the project root. Work files go to a fresh directory
# under the current directory, removed when every check passes.
#
# restart:        a run stopped and continued with --restart auto equals the uninterrupted run
#                 bit for bit (metrics and factors) on 1, 2 and 4 ranks, dense and sparse, and
#                 to 1e-10 on another number of ranks (4 -> 2, 1 -> 4); inspect of a checkpoint.
# signals:        SIGUSR1 to mpirun, SIGUSR1 during start-up and --max-walltime checkpoint and
#                 exit with status 75, and the continuation equals the uninterrupted run;
#                 SIGKILL during a checkpoint write leaves the previous checkpoint loadable and
#                 the continuation exact.
# bad_checkpoint: every bad checkpoint or checkpoint option gives one error line and a
#                 non-zero exit on every rank, and the newest good checkpoint is unchanged.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cli_test_args restart "restart signals bad_checkpoint" "$@"
echo "cdmf restart tests ($SECTION): $CDMF, work directory $WORK"

# The exit status of a run stopped by a signal or --max-walltime (src/cli/commands.hpp).
INTERRUPTED=75

# same_run A B: A.csv/B.csv agree bit for bit but for the clock, A.h5/B.h5 hold the same factors.
same_run() {
  same_outputs "$1.csv" "$2.csv" "$1.h5" "$2.h5"
  echo "note: $(($(wc -l < "$1.csv") - 1)) metrics rows and the factors identical; last row:" \
    "$(tail -n 1 "$2.csv" | cut -d, -f1,3 | tr , ' ')"
}

# The problem: 30 x 24, rank 3, 30% observed.
mpi 2 generate --rows 30 --cols 24 --rank 3 --observed 0.3 --seed 7 --out gen > /dev/null
FILES=(--data gen/train.tsv --test gen/test.tsv --truth gen/truth.h5)
DEEP_MODEL=(--init-scale 0.5 --quiet --model deep --depth 3 --width 30)
DEEP=("${FILES[@]}" "${DEEP_MODEL[@]}" --optimizer momentum --lr 1)
COMPRESSED=("${FILES[@]}" --init-scale 0.5 --quiet --model compressed --rank 3 --gamma 0.5
  --optimizer adam --lr 0.01)

# --------------------------------------------------------------------------------------------
# restart
# --------------------------------------------------------------------------------------------

# bitwise NAME N MODEL...: 240 iterations uninterrupted vs 100 (checkpoints every 40) + restart.
bitwise() {
  local n=$2
  local tag="$1_np$n"
  shift 2
  local model=("$@")
  mpi "$n" train "${model[@]}" --iters 240 --log-every 20 --metrics "$tag.full.csv" \
    --output "$tag.full.h5" > /dev/null
  mpi "$n" train "${model[@]}" --iters 100 --log-every 20 --checkpoint-dir "ck_$tag" \
    --checkpoint-every 40 > first.log
  grep -q "^checkpoint: iteration 40 -> ck_$tag/checkpoint-0000000040.h5" first.log
  [[ "$(ls "ck_$tag")" == "$(printf 'checkpoint-%010d.h5\n' 40 80 100)" ]]
  mpi "$n" train "${model[@]}" --iters 240 --log-every 20 --checkpoint-dir "ck_$tag" \
    --restart auto --metrics "$tag.part.csv" --output "$tag.part.h5" > second.log
  grep -q "^restart: continuing from ck_$tag/checkpoint-0000000100.h5 at iteration 100" second.log
  same_run "$tag.full" "$tag.part"
}

# across FROM TO MODEL...: stopped on FROM ranks, continued on TO ranks: 1e-10.
across() {
  local from=$1 to=$2
  shift 2
  local model=("$@") tag="across_${from}_$to"
  mpi "$from" train "${model[@]}" --iters 240 --summary "$tag.full.json" > /dev/null
  mpi "$from" train "${model[@]}" --iters 100 --checkpoint-dir "ck_$tag" > /dev/null
  mpi "$to" train "${model[@]}" --iters 240 --checkpoint-dir "ck_$tag" --restart auto \
    --summary "$tag.part.json" > second.log
  grep -q "at iteration 100 .*written on $from ranks" second.log
  [[ $(json_get "$tag.part.json" ranks) -eq $to && $(json_get "$tag.part.json" iterations) -eq 240 ]]
  same_summary "$tag.part.json" "$tag.full.json" 1e-10 train_loss test_loss recovery_error
}

inspect_checkpoint() {
  mpi 2 train "${COMPRESSED[@]}" --iters 60 --log-every 10 --checkpoint-dir ck_inspect > /dev/null
  mpi 2 inspect ck_inspect/checkpoint-0000000060.h5 --top 8 --tail 3 > inspect.txt
  cat inspect.txt
  grep -Eq '^format +cdmf-checkpoint version 1 ' inspect.txt
  grep -Eq '^contents +checkpoint: factors, optimizer state, permutations, metrics history' inspect.txt
  grep -Eq '^model +compressed: 30 x 24, 5 factors, width 6$' inspect.txt
  grep -Eq '^iteration +60$' inspect.txt
  grep -Eq '^optimizer +adam, 60 steps \(first and second moments per factor\)$' inspect.txt
  grep -Eq '^integrity +every dataset read back, checksums match$' inspect.txt
  grep -Eq '^metrics +last 3 of 6 logged rows:$' inspect.txt
  grep -Eq '^  iter +50 ' inspect.txt
  grep -Fq 'singular values of the end-to-end matrix (top 8 of 24):' inspect.txt
  grep -Fq '"model": "compressed"' inspect.txt
  # rank <= 6: the factored route reports exact zeros past the 6 x 6 core.
  grep -Eq '^  s7 +0\.0000000000e\+00$' inspect.txt
}

if [[ $SECTION == all || $SECTION == restart ]]; then
  check "bitwise restart, 1 rank, deep (dense), momentum" bitwise deep 1 "${DEEP[@]}"
  check "bitwise restart, 2 ranks, deep (dense), momentum" bitwise deep 2 "${DEEP[@]}"
  check "bitwise restart, 4 ranks, deep (dense), momentum" bitwise deep 4 "${DEEP[@]}"
  check "bitwise restart, 2 ranks, compressed (sparse), adam" bitwise compressed 2 "${COMPRESSED[@]}"
  check "bitwise restart, 4 ranks, compressed (sparse), adam" bitwise compressed 4 "${COMPRESSED[@]}"
  check "restart on 4 -> 2 ranks agrees to 1e-10 (deep)" across 4 2 "${DEEP[@]}"
  check "restart on 1 -> 4 ranks agrees to 1e-10 (compressed)" across 1 4 "${COMPRESSED[@]}"
  check "inspect a checkpoint: state, metrics tail, factored spectrum" inspect_checkpoint
fi

# --------------------------------------------------------------------------------------------
# signals
# --------------------------------------------------------------------------------------------

# interrupted_then_continued TAG: the run in TAG.log/TAG.json (stopped at iteration N with a
# checkpoint in ck_TAG) continued to N + 300 equals an uninterrupted run of N + 300 iterations.
continued_equals_uninterrupted() {
  local tag=$1
  local stopped
  stopped=$(json_get "$tag.json" iterations)
  local target=$((stopped + 300))
  test -f "ck_$tag/$(printf 'checkpoint-%010d.h5' "$stopped")"
  mpi 2 train "${DEEP[@]}" --iters "$target" --log-every 100 --checkpoint-dir "ck_$tag" \
    --restart auto --metrics "$tag.part.csv" --output "$tag.part.h5" > "$tag.continued.log"
  mpi 2 train "${DEEP[@]}" --iters "$target" --log-every 100 --metrics "$tag.full.csv" \
    --output "$tag.full.h5" > /dev/null
  same_run "$tag.full" "$tag.part"
}

signal_under_mpirun() {
  local rc=0
  "$MPIEXEC" -n 2 "${PREFLAGS[@]}" "$CDMF" train "${DEEP[@]}" --iters 100000000 --log-every 100 \
    --checkpoint-dir ck_usr1 --metrics usr1.csv --summary usr1.json > usr1.log 2>&1 &
  local launcher=$!
  # Signal once training is under way (a few metrics rows written).
  for _ in $(seq 600); do  # up to 30 s: start-up on a busy machine
    [[ -f usr1.csv && $(wc -l < usr1.csv) -ge 5 ]] && break
    sleep 0.05
  done
  kill -USR1 "$launcher"
  wait "$launcher" || rc=$?
  grep -v '^--\|^$' usr1.log | tail -n 4
  [[ $rc -eq $INTERRUPTED ]] || { echo "exit status $rc, expected $INTERRUPTED"; return 1; }
  local stopped
  stopped=$(json_get usr1.json iterations)
  grep -q "^cdmf: interrupted at iteration $stopped (received SIGUSR1): checkpoint ck_usr1/$(printf 'checkpoint-%010d.h5' "$stopped") written; continue with --restart auto (exit status 75)$" usr1.log
  [[ $(json_get usr1.json stop_reason) == signal && $(json_get usr1.json stop_signal) == SIGUSR1 ]]
  echo "note: SIGUSR1 stopped the run at iteration $stopped, exit status $rc"
  continued_equals_uninterrupted usr1
}

# A stop signal during start-up (here MPI_Init of a singleton, well before training) is
# remembered: the run checkpoints at its first boundary, iteration 0, and exits 75.
signal_during_startup() {
  local rc=0
  "$CDMF" train "${DEEP[@]}" --iters 100000000 --checkpoint-dir ck_early --summary early.json \
    > early.log 2>&1 &
  local pid=$!
  # Once main has installed its handler (the SigCgt mask of /proc/PID/status has SIGUSR1's
  # bit, 1 << 9): a signal before that kills the process, whatever the machine's load.
  until (( 0x$(awk '/^SigCgt:/ { print $2 }' "/proc/$pid/status" 2> /dev/null || echo 0) & 0x200 )); do
    kill -0 "$pid" 2> /dev/null || { cat early.log; echo "cdmf ended before installing its handler"; return 1; }
  done
  kill -USR1 "$pid"
  wait "$pid" || rc=$?
  cat early.log
  [[ $rc -eq $INTERRUPTED ]] || { echo "exit status $rc, expected $INTERRUPTED"; return 1; }
  grep -q '^cdmf: interrupted at iteration 0 (received SIGUSR1): checkpoint ck_early/checkpoint-0000000000.h5 written' early.log
}

# SIGTERM or SIGINT to Open MPI's mpirun tears the job down at once (exit 1, no checkpoint):
# jobs/forward_stop.sh takes them and sends SIGUSR1 instead, so the job checkpoints and its
# status is 75. With job control on, the background wrapper receives SIGINT (a shell without
# it starts background jobs with SIGINT ignored) and puts the launcher in a group of its own.
stop_through_forward_stop() {
  local signal=$1 tag=$2 rc=0
  set -m
  "$SRC/jobs/forward_stop.sh" "$MPIEXEC" -n 2 "${PREFLAGS[@]}" "$CDMF" train "${DEEP[@]}" \
    --iters 100000000 --log-every 100 --checkpoint-dir "ck_$tag" --metrics "$tag.csv" \
    --summary "$tag.json" > "$tag.log" 2>&1 &
  local wrapper=$!
  set +m
  # Signal once training is under way (a few metrics rows written).
  for _ in $(seq 600); do
    [[ -f $tag.csv && $(wc -l < "$tag.csv") -ge 5 ]] && break
    sleep 0.05
  done
  kill "-$signal" "$wrapper"
  wait "$wrapper" || rc=$?
  grep -v '^--\|^$' "$tag.log" | tail -n 4
  [[ $rc -eq $INTERRUPTED ]] || { echo "exit status $rc, expected $INTERRUPTED"; return 1; }
  grep -q "^forward_stop.sh: received SIG$signal: sending SIGUSR1" "$tag.log"
  [[ $(json_get "$tag.json" stop_reason) == signal ]]
  echo "note: SIG$signal to forward_stop.sh stopped the run at iteration $(json_get "$tag.json" iterations), exit status $rc"
  continued_equals_uninterrupted "$tag"
}

walltime() {
  local rc=0 t0=$SECONDS
  mpi 2 train "${DEEP[@]}" --iters 100000000 --log-every 100 --checkpoint-dir ck_wall \
    --max-walltime 00:00:02 --checkpoint-every-seconds 0.5 --keep-checkpoints 10 \
    --summary wall.json > wall.log 2>&1 || rc=$?
  [[ $rc -eq $INTERRUPTED ]] || { cat wall.log; echo "exit status $rc, expected $INTERRUPTED"; return 1; }
  grep -q "(--max-walltime 00:00:02 reached): checkpoint ck_wall/" wall.log
  local written
  written=$(grep -c '^checkpoint: iteration' wall.log)
  echo "note: $written checkpoints (every 0.5 s of wall time, and the final one)"
  (( written >= 3 )) && [[ $(ls ck_wall | wc -l) -eq $written ]]
  [[ $(json_get wall.json stop_reason) == walltime ]]
  (( SECONDS - t0 < 10 )) || { echo "took $((SECONDS - t0)) s"; return 1; }
  echo "note: stopped at iteration $(json_get wall.json iterations) after $(json_get wall.json seconds) s of training"
  continued_equals_uninterrupted wall
}

# A checkpoint write killed half-way (SIGKILL to every rank while the temporary exists) leaves
# the previous checkpoints loadable; the continuation removes the temporary and is exact.
killed_during_write() {
  local model=(--data big/train.tsv --model deep --depth 3 --width 200 --init-scale 0.5
    --optimizer adam --lr 0.001 --quiet)
  mpi 2 generate --rows 200 --cols 200 --rank 4 --observed 0.3 --seed 3 --out big > /dev/null
  rm -rf ck_kill
  "$MPIEXEC" -n 2 "${PREFLAGS[@]}" "$CDMF" train "${model[@]}" --iters 100000 --log-every 1 \
    --checkpoint-dir ck_kill --checkpoint-every 1 --keep-checkpoints 2 > kill.log 2>&1 &
  local launcher=$! files
  # Two complete checkpoints: the ranks are running and writing one every iteration.
  until files=(ck_kill/checkpoint-*.h5); [[ -e ${files[1]:-} ]]; do
    kill -0 "$launcher" 2> /dev/null || { cat kill.log; return 1; }
    sleep 0.01
  done
  local ranks
  mapfile -t ranks < <(pgrep -P "$launcher")
  [[ ${#ranks[@]} -eq 2 ]]
  # Catch a write in progress without guessing its duration: spin (glob and kill are builtins,
  # nothing forks) until a temporary holds data, freeze both ranks, and if the temporary is still
  # there the write had not been renamed into place: kill them. Otherwise the write finished in
  # between; let them go on to the next checkpoint and try again.
  local temporary="" tries=0 found
  local deadline=$((SECONDS + 300))
  shopt -s nullglob
  while [[ -z $temporary ]] && ((SECONDS < deadline)); do
    found=(ck_kill/.checkpoint-*.h5.tmp.*)
    [[ ${#found[@]} -gt 0 && -s ${found[0]} ]] || continue
    kill -STOP "${ranks[@]}"
    tries=$((tries + 1))
    if [[ -e ${found[0]} ]]; then
      temporary=${found[0]}
      kill -KILL "${ranks[@]}"
    else
      kill -CONT "${ranks[@]}"
    fi
  done
  shopt -u nullglob
  wait "$launcher" || true
  [[ -n $temporary ]] || { echo "no write caught in progress in 300 s ($tries tries)"; return 1; }
  echo "note: caught a write in progress on try $tries"
  local complete=(ck_kill/checkpoint-*.h5) newest  # names sort by iteration
  newest=$(basename "${complete[-1]}")
  echo "note: killed while writing $temporary ($(stat -c %s "$temporary") bytes); newest complete: $newest"
  for file in ck_kill/checkpoint-*.h5; do
    mpi 2 inspect "$file" > /dev/null
  done
  local at=$((10#${newest:11:10}))  # checkpoint-NNNNNNNNNN.h5
  mpi 2 train "${model[@]}" --iters $((at + 5)) --log-every 1 --checkpoint-dir ck_kill \
    --restart auto --metrics kill.part.csv --output kill.part.h5 > kill.continued.log
  grep -q "^checkpoint: removed $temporary, the temporary of an interrupted write$" kill.continued.log
  grep -q "^restart: continuing from ck_kill/$newest at iteration $at " kill.continued.log
  ! compgen -G "ck_kill/.checkpoint-*.h5.tmp.*" > /dev/null
  mpi 2 train "${model[@]}" --iters $((at + 5)) --log-every 1 --metrics kill.full.csv \
    --output kill.full.h5 > /dev/null
  same_run kill.full kill.part
}

if [[ $SECTION == all || $SECTION == signals ]]; then
  check "SIGUSR1 to mpirun: checkpoint, exit 75, exact continuation" signal_under_mpirun
  check "SIGUSR1 during start-up: remembered, checkpoint at iteration 0, exit 75" signal_during_startup
  check "SIGTERM through jobs/forward_stop.sh: checkpoint, exit 75, exact" stop_through_forward_stop TERM term
  check "SIGINT through jobs/forward_stop.sh: checkpoint, exit 75, exact" stop_through_forward_stop INT int
  check "--max-walltime 00:00:02: checkpoint, exit 75, exact continuation" walltime
  check "SIGKILL during a checkpoint write: previous one loads, exact" killed_during_write
fi

# --------------------------------------------------------------------------------------------
# bad checkpoints
# --------------------------------------------------------------------------------------------

GOOD=ck_good/checkpoint-0000000050.h5

bad_setup() {
  mpi 2 train "${DEEP[@]}" --iters 50 --checkpoint-dir ck_good --output factors.h5 > /dev/null
  test -s "$GOOD"
  md5sum "$GOOD" > good.md5
  local size
  size=$(stat -c %s "$GOOD")
  head -c $((size / 2)) "$GOOD" > truncated.h5
  # Flip 8 bytes inside the data of /factors/W2 (its offset as h5dump reports it).
  cp "$GOOD" corrupted.h5
  local offset
  offset=$(h5dump -p -H -d /factors/W2 "$GOOD" | awk '/OFFSET/ { print $2; exit }')
  "$PYTHON" - corrupted.h5 $((offset + 64)) <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    data = f.read(8)
    f.seek(int(sys.argv[2]))
    f.write(bytes(b ^ 0xFF for b in data))
EOF
  mkdir -p damaged && cp "$GOOD" damaged/checkpoint-0000000010.h5 && cp truncated.h5 damaged/checkpoint-0000000050.h5
  mkdir -p all_damaged && cp truncated.h5 all_damaged/checkpoint-0000000050.h5
  mpi 2 generate --rows 30 --cols 24 --rank 3 --observed 0.3 --seed 8 --out other > /dev/null
  echo "note: $GOOD: $size bytes; /factors/W2 data at offset $offset"
}

# good_unchanged: the newest good checkpoint has its original bytes and still loads.
good_unchanged() {
  md5sum -c --quiet good.md5
  mpi 2 inspect "$GOOD" > /dev/null
}

# bad NAME PATTERN ARGS...: the error, then the good checkpoint is intact.
bad() {
  expect_error "$@"
  good_unchanged
}

auto_skips_damaged() {
  mpi 2 train "${DEEP[@]}" --iters 60 --checkpoint-dir damaged --restart auto > skip.log 2>&1
  grep -q "^cdmf: warning: skipping damaged/checkpoint-0000000050.h5: cannot open (not an HDF5 file or truncated)$" skip.log
  grep -q "^restart: continuing from damaged/checkpoint-0000000010.h5 at iteration 50" skip.log
}

# A checkpoint directory on a file system that fills up: the next checkpoint fails with one
# error, the newest good one is intact and no temporary is left. A small tmpfs when this
# process may mount one (root), else a file-size limit (the same failed write, EFBIG).
full_disk() {
  local model=(--data big/train.tsv --model deep --depth 3 --width 120 --init-scale 0.5
    --optimizer adam --lr 0.001 --quiet)
  [[ -f big/train.tsv ]] || mpi 2 generate --rows 120 --cols 120 --rank 4 --observed 0.3 --seed 3 --out big > /dev/null
  mkdir -p full
  local limit=()
  if mount -t tmpfs -o size=2000k cdmf-test-full full 2> /dev/null; then
    trap 'umount "$WORK/full" 2> /dev/null || true' RETURN EXIT  # EXIT: a failed check ends its subshell
    echo "note: tmpfs of 2000 kB: room for one checkpoint, not for the reservation of a second"
  else
    limit=(ulimit -f 1000)
    echo "note: cannot mount a tmpfs here: a file-size limit of 1000 kB instead"
  fi
  mpi 2 train "${model[@]}" --iters 20 --checkpoint-dir full/ck > /dev/null
  local first=full/ck/checkpoint-0000000020.h5
  md5sum "$first" > first.md5
  echo "note: first checkpoint $(stat -c %s "$first") bytes"
  ( "${limit[@]:-true}"; expect_error "full/ck/checkpoint-0000000040.h5: not written" \
      train "${model[@]}" --iters 40 --checkpoint-every 40 --checkpoint-dir full/ck --restart auto )
  md5sum -c --quiet first.md5
  [[ "$(ls -A full/ck)" == checkpoint-0000000020.h5 ]] || { ls -la full/ck; return 1; }
  mpi 2 inspect "$first" > /dev/null
}

if [[ $SECTION == all || $SECTION == bad_checkpoint ]]; then
  T=(train "${DEEP[@]}" --iters 60)
  check "setup: a good checkpoint, truncated and corrupted copies" bad_setup
  check "--restart of a truncated checkpoint" bad "truncated.h5: cannot open (not an HDF5 file or truncated)" "${T[@]}" --restart truncated.h5
  check "--restart of a corrupted checkpoint (flipped data bytes)" bad "corrupted.h5: /factors/W2 is corrupted (checksum mismatch" "${T[@]}" --restart corrupted.h5
  check "--restart of a checkpoint of another model" bad "$GOOD: holds a 'deep' model, not 'narrow'" train "${FILES[@]}" --init-scale 0.5 --model narrow --rank 2 --lr 1 --optimizer momentum --restart "$GOOD"
  check "--restart of a checkpoint of another shape" bad "$GOOD: the checkpoint is for a 30 x 24 matrix but this problem is 40 x 24" "${T[@]}" --rows 40 --restart "$GOOD"
  check "--restart of a checkpoint of another data set" bad "$GOOD: the checkpoint was written for another data set" train --data other/train.tsv "${DEEP_MODEL[@]}" --optimizer momentum --lr 1 --iters 60 --restart "$GOOD"
  check "--restart with another step size" bad "$GOOD: the checkpoint was written with --lr 1.0 but this run has 2.0" train "${FILES[@]}" "${DEEP_MODEL[@]}" --optimizer momentum --lr 2 --iters 60 --restart "$GOOD"
  check "--restart with another optimizer" bad "$GOOD: holds the state of optimizer 'momentum', not 'adam'" train "${FILES[@]}" "${DEEP_MODEL[@]}" --optimizer adam --lr 1 --iters 60 --restart "$GOOD"
  check "--restart of a factor file (no restart state)" bad "factors.h5: a factor file without the restart state" "${T[@]}" --restart factors.h5
  check "--restart of a missing file" bad "missing.h5: no such file" "${T[@]}" --restart missing.h5
  check "--restart auto skips a damaged newest checkpoint with a warning" auto_skips_damaged
  check "--restart auto when every checkpoint is damaged" bad "--restart auto: none of the 1 checkpoints in all_damaged can be read" "${T[@]}" --checkpoint-dir all_damaged --restart auto
  check "--diagnostics from a checkpoint written without" bad "$GOOD: --diagnostics needs W_l(0)" "${T[@]}" --diagnostics --restart "$GOOD"
  check "--checkpoint-dir where a file is in the way" bad "checkpoint directory $GOOD/sub cannot be created" "${T[@]}" --checkpoint-dir "$GOOD/sub"
  check "--checkpoint-dir not writable (/proc)" bad "checkpoint directory /proc is not writable" "${T[@]}" --checkpoint-dir /proc
  check "--restart auto without --checkpoint-dir" bad "--restart auto needs --checkpoint-dir" "${T[@]}" --restart auto
  check "--checkpoint-every without --checkpoint-dir" bad "--checkpoint-every and --checkpoint-every-seconds need --checkpoint-dir" "${T[@]}" --checkpoint-every 5
  check "--keep-checkpoints 0" bad "--keep-checkpoints must be at least 1" "${T[@]}" --checkpoint-dir ck_keep --keep-checkpoints 0
  check "--max-walltime 90 (not HH:MM:SS)" bad "--max-walltime '90' is not HH:MM:SS" "${T[@]}" --max-walltime 90
  check "full disk during a checkpoint write" full_disk
fi

finish
