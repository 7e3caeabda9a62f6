#!/bin/bash
# forward_stop.sh LAUNCHER ARGS...: runs an MPI launch (mpirun/mpiexec/srun ... cdmf train ...)
# so that SIGTERM and SIGINT stop it the way SIGUSR1 does: every rank checkpoints and the
# exit status is cdmf's 75, not the launcher's 1.
#
# Why: Open MPI 4.1's mpirun forwards SIGUSR1/SIGUSR2 to the ranks and waits for them, but on
# SIGTERM or SIGINT it tears the job down at once and exits 1 (the ranks have no time to
# write their checkpoint), so a restart chain that continues on 75 stops. This wrapper takes
# TERM, INT, USR1 and USR2 itself and sends SIGUSR1 to the launcher, which every launcher
# forwards to every rank; then it waits for the launcher and exits with its status.
#
#     jobs/forward_stop.sh mpirun -n 4 cdmf train ... --checkpoint-dir ck
#     kill -TERM <pid of forward_stop.sh>     # or Ctrl-C: checkpoint, exit status 75
#
# The launcher runs in its own process group (job control on), so a Ctrl-C on the terminal
# reaches this script only, never mpirun directly.
set -u
if [[ $# -lt 1 ]]; then
  echo "usage: $0 LAUNCHER ARGS... (e.g. mpirun -n 4 cdmf train ...)" >&2
  exit 2
fi

launcher=""
pending=""
forward() {
  echo "forward_stop.sh: received $1: sending SIGUSR1 (checkpoint and stop) to $2" >&2
  # A signal before the launch is sent once it has started.
  if [[ -n $launcher ]]; then kill -USR1 "$launcher" 2> /dev/null; else pending=1; fi
}
trap 'forward SIGTERM "$1"' TERM
trap 'forward SIGINT "$1"' INT
trap 'forward SIGUSR1 "$1"' USR1
trap 'forward SIGUSR2 "$1"' USR2

set -m
"$@" &
launcher=$!
set +m
[[ -n $pending ]] && kill -USR1 "$launcher" 2> /dev/null
# `wait` returns early when a trap runs: wait again until the launcher has really exited.
while true; do
  wait "$launcher"
  status=$?
  kill -0 "$launcher" 2> /dev/null || break
done
exit "$status"
