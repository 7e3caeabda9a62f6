#!/usr/bin/env bash
# The jobs/ scripts on a real Slurm: installs Debian's slurm-wlm and munge when missing, starts
# a private single-node cluster on localhost (munged, slurmctld, slurmd; slurm.conf, state and
# logs in a temporary directory, its own ports), submits the scripts with small problems, and
# stops the daemons it started however it ends.
#
#   test_slurm.sh CDMF SOURCE_DIR
#
# Needs root (package installation, slurmd). Checks:
#  - single_run.sbatch, with srun and with mpirun: the job completes with the expected summary,
#    and both launchers give the same run;
#  - sweep.sbatch as a job array: every task writes its results for its value;
#  - restart_chain.sbatch (dependency chain): the batch shell gets SIGUSR1 as
#    `#SBATCH --signal=B:USR1@...` would send it, cdmf checkpoints and exits 75, the dependent
#    job continues with --restart auto and ends with the uninterrupted run's result, bit for bit;
#  - the same with CHAIN=requeue (the job requeues itself);
#  - a real time limit: --time=2 --signal=B:USR1@80 stops the run with a checkpoint (status 75)
#    before Slurm would kill it.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 CDMF SOURCE_DIR" >&2
  exit 2
fi
CDMF=$(realpath "$1")
SRC=$(realpath "$2")
JOBS=$SRC/jobs
if [[ $(id -u) -ne 0 ]]; then
  echo "test_slurm.sh must run as root (it installs packages and starts slurmd)" >&2
  exit 1
fi
WORK=$(mktemp -d "$PWD/slurm.XXXXXX")
MPIEXEC=mpirun
PREFLAGS=(--allow-run-as-root)
source "$SRC/tests/cli/lib.sh"
cd "$WORK"
echo "cdmf Slurm tests: $CDMF, work directory $WORK"

# --------------------------------------------------------------------------------------------
# The cluster
# --------------------------------------------------------------------------------------------
STATE=$WORK/cluster
export SLURM_CONF=$STATE/slurm.conf
DAEMONS=()  # PIDs of slurmctld and slurmd (our children); munged's is in its pid file

stop_cluster() {
  set +e
  (( ${#DAEMONS[@]} )) || return 0  # stopped already
  if [[ -f $SLURM_CONF ]] && command -v scancel > /dev/null; then
    scancel --user=root 2> /dev/null
    # Let the jobs' step daemons finish before slurmd goes.
    for _ in $(seq 60); do
      [[ -z $(squeue -h 2> /dev/null) ]] && break
      sleep 0.5
    done
  fi
  for pid in "${DAEMONS[@]}"; do kill "$pid" 2> /dev/null; done
  for pid in "${DAEMONS[@]}"; do wait "$pid" 2> /dev/null; done
  if [[ -f $STATE/munge/munged.pid ]]; then
    local munged
    munged=$(cat "$STATE/munge/munged.pid")
    kill "$munged" 2> /dev/null
    for _ in $(seq 50); do kill -0 "$munged" 2> /dev/null || break; sleep 0.1; done
  fi
  DAEMONS=()
}
trap stop_cluster EXIT
trap 'exit 130' INT TERM  # through the EXIT trap: the daemons go with the test

start_cluster() {
  local t0=$SECONDS
  if ! command -v slurmctld > /dev/null || ! command -v munged > /dev/null; then
    echo "installing slurm-wlm and munge"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge < /dev/null > apt.log 2>&1 ||
      { apt-get update -qq > /dev/null &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge < /dev/null >> apt.log 2>&1; } ||
      { tail -n 20 apt.log; return 1; }
  fi
  mkdir -p "$STATE"/{munge,run,ctld,spool,log}
  chmod 0755 "$WORK" "$STATE"  # munged runs as user munge and must reach its directories
  # munged: a private key and log directory (0700) and a socket directory all may enter.
  chown munge:munge "$STATE/munge" "$STATE/run"
  chmod 0700 "$STATE/munge"
  chmod 0755 "$STATE/run"
  if [[ -f /etc/munge/munge.key ]]; then
    cp /etc/munge/munge.key "$STATE/munge/munge.key"
  else
    head -c 1024 /dev/urandom > "$STATE/munge/munge.key"
  fi
  chown munge:munge "$STATE/munge/munge.key"
  chmod 0400 "$STATE/munge/munge.key"
  setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged \
    --socket="$STATE/run/munge.socket.2" --key-file="$STATE/munge/munge.key" \
    --log-file="$STATE/munge/munged.log" --pid-file="$STATE/munge/munged.pid" \
    --seed-file="$STATE/munge/munged.seed"

  local host port
  host=$(hostname -s)
  port=$((20000 + ($$ % 5000) * 2))  # private ports: no clash with another Slurm here
  cat > "$SLURM_CONF" <<EOF
ClusterName=cdmftest
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$STATE/run/munge.socket.2
CryptoType=crypto/munge
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/log/jobcomp.txt
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ReturnToService=2
KillWait=30
SlurmctldDebug=debug
$(slurmd -C | head -n 1)
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  slurmctld -D -f "$SLURM_CONF" > "$STATE/log/slurmctld.out" 2>&1 &
  DAEMONS+=($!)
  slurmd -D -f "$SLURM_CONF" > "$STATE/log/slurmd.out" 2>&1 &
  DAEMONS+=($!)
  for _ in $(seq 120); do
    [[ $(sinfo -h -o %T 2> /dev/null) == idle ]] && break
    sleep 0.25
  done
  if [[ $(sinfo -h -o %T 2> /dev/null) != idle ]]; then
    sinfo
    tail -n 20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log"
    return 1
  fi
  echo "cluster up in $((SECONDS - t0)) s: $(sinfo -h -o '%P %D node %N %c CPUs %T')"
}
start_cluster

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

# wait_jobs ID...: until none of the jobs is pending or running (at most 240 s).
wait_jobs() {
  local ids deadline=$((SECONDS + 240))
  ids=$(IFS=,; echo "$*")
  while [[ -n $(squeue -h -j "$ids" 2> /dev/null) ]]; do
    (( SECONDS < deadline )) || { echo "jobs $ids still queued:"; squeue; return 1; }
    sleep 0.5
  done
}

# job_state ID: "STATE EXITCODE" of a finished job, e.g. "COMPLETED 0:0".
job_state() {
  scontrol show job "$1" | tr ' ' '\n' | awk -F= '/^JobState=/ { s = $2 } /^ExitCode=/ { e = $2 } END { print s, e }'
}

# same_run DIR_A DIR_B: metrics (but for the clock) and final factors identical.
same_run() {
  same_outputs "$1/metrics.csv" "$2/metrics.csv" "$1/model.h5" "$2/model.h5"
  echo "note: $2 = $1: $(($(wc -l < "$1/metrics.csv") - 1)) metrics rows and the factors identical"
}

# The problems: 30 x 24 rank 3, generated by the first job into DATA.
DATA=$WORK/data
GENERATE="--rows 30 --cols 24 --rank 3 --observed 0.3 --seed 7"
DEEP="--model deep --depth 3 --width 30 --init-scale 0.5 --lr 10 --log-every 1000"
ENV="ALL,CDMF=$CDMF,DATA=$DATA,GENERATE=$GENERATE"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------

single_run() {
  local launch=$1 out=$WORK/single_$1 job
  job=$(sbatch --parsable -o "single_$launch.log" \
    --export="$ENV,OUT=$out,LAUNCH=$launch,TRAIN=$DEEP --iters 30000" "$JOBS/single_run.sbatch")
  wait_jobs "$job"
  cat "single_$launch.log"
  [[ $(job_state "$job") == "COMPLETED 0:0" ]] || { echo "job $job: $(job_state "$job")"; return 1; }
  grep -q '^stopped (max_iters) after 30000 iterations in ' "single_$launch.log"
  [[ $(json_get "$out/summary.json" iterations) -eq 30000 && $(json_get "$out/summary.json" ranks) -eq 2 ]]
  [[ $(json_get "$out/summary.json" stop_reason) == max_iters ]]
  test -s "$out/model.h5"
  echo "note: job $job ($launch): $(job_state "$job"), train loss $(json_get "$out/summary.json" train_loss)," \
    "$(json_get "$out/summary.json" seconds) s of training"
  if [[ $launch == mpirun ]]; then same_run "$WORK/single_srun" "$out"; fi
}

sweep() {
  local job
  job=$(sbatch --parsable --array=0-2 -o "sweep_%a.log" \
    --export="$ENV,OUT=$WORK/sweep,PARAM=rank,VALUES=1 2 3,TRAIN=--model compressed --init-scale 0.5 --lr 10 --iters 500 --log-every 100" \
    "$JOBS/sweep.sbatch")
  wait_jobs "$job"
  local task
  for task in 0 1 2; do
    local value=$((task + 1)) dir=$WORK/sweep/rank-$((task + 1))
    [[ $(job_state "${job}_$task") == "COMPLETED 0:0" ]] || { cat "sweep_$task.log"; return 1; }
    grep -q "^sweep task $task: --rank $value -> $dir\$" "sweep_$task.log"
    "$PYTHON" - "$dir/summary.json" "$value" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["config"]["rank"] == int(sys.argv[2]) and s["model"] == "compressed", s["config"]
assert s["iterations"] == 500 and s["stop_reason"] == "max_iters", s
print(f"note: task rank {sys.argv[2]}: test rmse {s['test_rmse']:.4f}")
EOF
    test -s "$dir/metrics.csv" && test -s "$dir/model.h5"
  done
}

# chain MODE: restart_chain.sbatch stopped by SIGUSR1 to its batch shell after some progress,
# continued by the next job (dependency) or by itself (requeue); compared with single_srun.
chain() {
  local mode=$1 run=$WORK/chain_$1 first
  first=$(sbatch --parsable -o "chain_${mode}_%j.log" \
    --export="$ENV,RUN=$run,CHAIN=$mode,CHAIN_SBATCH_ARGS=-o $WORK/chain_${mode}_%j.log,TRAIN=$DEEP --iters 30000" \
    "$JOBS/restart_chain.sbatch")
  for _ in $(seq 600); do
    [[ -f $run/metrics.csv && $(wc -l < "$run/metrics.csv") -ge 3 ]] && break
    sleep 0.05
  done
  # What `#SBATCH --signal=B:USR1@...` sends before the time limit, now.
  scancel --signal=USR1 --batch "$first"
  # Until the chain is over: no job queued and the chain's log says how it ended (a requeued
  # job can be missing from squeue for a moment while Slurm requeues it, so an empty queue
  # alone is not the end). Slurm holds a requeued job back for about two minutes (reason
  # BeginTime, which it shows only once the first run has finished completing, which can take
  # a while): whenever it does, let the job start at once.
  for _ in $(seq 600); do
    local state
    state=$(squeue -h -o '%i %T %r' 2> /dev/null) || { sleep 0.5; continue; }  # a busy slurmctld
    if [[ -z $state ]] &&
      grep -qE 'finished the run|failed|MAX_LINKS|cannot submit' "$run/chain.log"; then
      break
    fi
    if [[ $mode == requeue && $state == *"$first PENDING BeginTime"* ]]; then
      scontrol update JobId="$first" StartTime=now || true
    fi
    sleep 0.5
  done
  cat "$run/chain.log"
  grep -q "job $first: received SIGUSR1: asking cdmf to checkpoint and stop" "$run/chain.log"
  grep -q "job $first: cdmf checkpointed and stopped before the end (status 75)" "$run/chain.log"
  grep -q "cdmf finished the run: results in $run" "$run/chain.log"
  grep -h '^cdmf: interrupted at iteration [0-9]* (received SIGUSR1): checkpoint .* written; continue with --restart auto (exit status 75)$' chain_"${mode}"_*.log
  grep -h '^restart: continuing from ' chain_"${mode}"_*.log
  if [[ $mode == dependency ]]; then
    local second third
    second=$(grep -o "job $first: next link queued: job [0-9]*" "$run/chain.log" | awk '{ print $NF }')
    third=$(grep -o "job $second: next link queued: job [0-9]*" "$run/chain.log" | awk '{ print $NF }')
    echo "note: jobs $first ($(job_state "$first")), $second ($(job_state "$second")), $third ($(job_state "$third"))"
    [[ $(job_state "$first") == "FAILED 75:0" && $(job_state "$second") == "COMPLETED 0:0" ]]
    [[ $(job_state "$third") == CANCELLED* ]]
  else
    echo "note: job $first: $(job_state "$first"), $(scontrol show job "$first" | grep -o 'Restarts=[0-9]*')"
    [[ $(job_state "$first") == "COMPLETED 0:0" ]]
    scontrol show job "$first" | grep -q 'Restarts=1'
  fi
  [[ $(json_get "$run/summary.json" iterations) -eq 30000 && $(json_get "$run/summary.json" stop_reason) == max_iters ]]
  same_run "$WORK/single_srun" "$run"
}

time_limit() {
  # slurmctld looks at time limits every 30 s and sends the --signal warning at the first look
  # within warn time + 30 s of the limit: up to a minute early. With --time=1 and @50 that is the
  # first look after the start, which can come before the batch shell is up: a CI run never saw
  # the USR1 and was stopped by the SIGTERM at the limit. --time=2 and @80 put the warning 10-40 s
  # into the job (27 s in a run here, slurmctld's send_job_warn_signal), when cdmf is training.
  local run=$WORK/limit job t0=$SECONDS
  job=$(sbatch --parsable --time=2 --signal=B:USR1@80 -o "limit_%j.log" \
    --export="$ENV,RUN=$run,MAX_LINKS=1,TRAIN=$DEEP --iters 1000000000" "$JOBS/restart_chain.sbatch")
  wait_jobs "$job"
  cat "$run/chain.log"
  if ! grep -q "job $job: received SIGUSR1: asking cdmf to checkpoint and stop" "$run/chain.log"; then
    echo "job $job: no SIGUSR1 reached the batch shell; slurmctld says:"
    grep -E "JobId=$job([^0-9]|$)" "$STATE/log/slurmctld.log" | tail -n 20
    return 1
  fi
  grep -q '^cdmf: interrupted at iteration [0-9]* (received SIGUSR1)' "limit_$job.log"
  [[ $(job_state "$job") == "FAILED 75:0" ]] || { echo "job $job: $(job_state "$job")"; return 1; }
  local stopped
  stopped=$(json_get "$run/summary.json" iterations)
  test -s "$run/checkpoints/$(printf 'checkpoint-%010d.h5' "$stopped")"
  echo "note: the 120 s job stopped $((SECONDS - t0)) s after its submission (Slurm's USR1, then a checkpoint at iteration $stopped)"
}

check "single_run.sbatch with srun: completes with the expected summary" single_run srun
check "single_run.sbatch with mpirun: the same run" single_run mpirun
check "sweep.sbatch as a job array: each task writes its results" sweep
check "restart_chain.sbatch (dependency): USR1, checkpoint, exact continuation" chain dependency
check "restart_chain.sbatch (requeue): USR1, checkpoint, exact continuation" chain requeue
check "a real time limit: --signal=B:USR1@80 checkpoints before it" time_limit

stop_cluster  # before finish removes the work directory that holds the cluster's state
finish
