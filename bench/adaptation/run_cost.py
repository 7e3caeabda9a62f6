#!/usr/bin/python3
"""The cost study of `cdmf adapt` (docs/adaptation.md, "Cost"): seconds per step of each
adapter on 1 and 2 ranks, from the summaries' phase_seconds, with the start-up phases (read,
compress) and the peak memory per rank; the CPU seconds of each run (all ranks, from the
children's rusage) say how much of the wall time was this run's own work on a shared machine.

  run_cost.py --cdmf build/cdmf --linear DIR --sizes 1000 4000 20000 --out OUT
      (DIR/cost<size>/{base.h5,samples.h5} from make_cost_problem.py)
  run_cost.py --cdmf build/cdmf --linear DIR --sizes 4000 --adapters deep-compressed \
      --init-structure implicit --out OUT      (one adapter, its init chosen)
  run_cost.py --cdmf build/cdmf --entries BASE.h5 DATA --out OUT
      (entries: e.g. a `cdmf train --preset ratings` base and MovieLens ratings)
"""
import argparse
import json
import os
import resource
import subprocess
import sys


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(a, label, ranks, adapter, inputs, iters):
    tag = f"{label}_{adapter}_{ranks}"
    summary = os.path.join(a.out, tag + ".json")
    cmd = [a.mpirun, "-n", str(ranks), a.cdmf, "adapt", *inputs, "--adapter", adapter,
           "--rank", str(a.rank), "--lr", str(a.lr), "--iters", str(iters), "--log-every", str(iters),
           "--output", os.path.join(a.out, tag + ".h5"), "--summary", summary, "--quiet"]
    if a.init_structure and adapter == "deep-compressed":
        cmd += ["--init-structure", a.init_structure]
    before = cpu_seconds()
    with open(os.path.join(a.out, tag + ".log"), "w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)
    cpu = cpu_seconds() - before
    s = json.load(open(summary))
    phases = s["phase_seconds"]
    row = (f"| {label} | {adapter} | {ranks} | {phases['train'] / s['iterations']:.3f} | "
           f"{phases.get('read', 0.0):.1f} | {phases.get('compress', 0.0):.1f} | "
           f"{s.get('init_structure') or '-'} | {s['peak_memory_bytes']['max_rank'] / 1e6:.0f} MB | {cpu:.1f} |")
    print(row, flush=True)
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cdmf", required=True)
    p.add_argument("--mpirun", default="mpirun")
    p.add_argument("--linear", help="directory of the cost<size> problems")
    p.add_argument("--sizes", type=int, nargs="*", default=[1000, 4000, 20000])
    p.add_argument("--entries", nargs=2, metavar=("BASE", "DATA"))
    p.add_argument("--adapters", nargs="*", default=["lora", "deep", "deep-compressed"])
    p.add_argument("--ranks", type=int, nargs="*", default=[1, 2])
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--iters", type=int, default=40)
    p.add_argument("--iters-large", type=int, default=10, help="steps at sizes >= 10,000")
    p.add_argument("--init-structure", choices=["auto", "dense", "implicit"],
                   help="deep-compressed's init (default: adapt's, auto)")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    if bool(a.linear) == bool(a.entries):
        sys.exit("give --linear DIR or --entries BASE DATA")
    os.makedirs(a.out, exist_ok=True)
    print("| problem | adapter | ranks | s/step | read s | compress s | init | peak/rank | CPU s (run) |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    if a.linear:
        for size in a.sizes:
            d = os.path.join(a.linear, f"cost{size}")
            inputs = ["--base", os.path.join(d, "base.h5"), "--samples", os.path.join(d, "samples.h5")]
            iters = a.iters_large if size >= 10000 else a.iters
            for adapter in a.adapters:
                for ranks in a.ranks:
                    rows.append(run(a, f"linear {size}", ranks, adapter, inputs, iters))
    else:
        inputs = ["--base", a.entries[0], "--data", a.entries[1], "--loss-normalization", "observed"]
        for adapter in a.adapters:
            for ranks in a.ranks:
                rows.append(run(a, "entries", ranks, adapter, inputs, a.iters))
    with open(os.path.join(a.out, "cost.md"), "w") as f:
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
