#!/usr/bin/python3
"""The few-shot teacher-student study of docs/adaptation.md.

For every seed: make_teacher_student.py writes the problem; then `cdmf adapt` runs for every
number of samples s, rank r and adapter (lora, deep, deep-compressed) with Adam, and this
script records the relative test error of the update

    ||DeltaW - DeltaW*||_F / ||DeltaW*||_F  ~  sqrt(2 * test_loss) / ||DeltaW*||_F

(the test targets carry no noise and the inputs are isotropic, so the test loss measures the
update's error alone): its best value over the logged iterations, its final value (computed
exactly from the adapter file), and the numerical rank of the learned update (the summary's
update_rank). Writes one CSV row per run and prints a table of means over seeds.

  run_study.py --cdmf build/cdmf --out DIR [--seeds 0 1 2 3 4] [--size 64] [--jobs 2]

A run whose summary is already in DIR/runs is not run again (the runs are deterministic), so an
interrupted study continues where it stopped, and a larger grid reuses a smaller one's runs.
"""
import argparse
import csv
import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
# The problem always holds every sample count (nested draws of 1,024), whatever --samples runs,
# so that a study on a subset of s reuses, and is reused by, one on the full grid.
PROBLEM_SAMPLES = [16, 32, 64, 128, 256, 1024]


def delta_of(path):
    with h5py.File(path) as f:
        factors = [f[f"/factors/W{l + 1}"][()] for l in range(len(f["/factors"]))]
    delta = factors[0]
    for w in factors[1:]:
        delta = w @ delta
    return delta


def run_one(a, problem, seed, s, r, adapter):
    tag = f"seed{seed}_s{s}_r{r}_{adapter}"
    out = os.path.join(a.out, "runs", tag)
    cmd = ["mpiexec", "-n", "1", "--allow-run-as-root", "--oversubscribe", a.cdmf, "adapt",
           "--base", f"{problem}/base.h5", "--samples", f"{problem}/train_s{s}.h5",
           "--test-samples", f"{problem}/test.h5", "--adapter", adapter, "--rank", str(r),
           "--lr", str(a.lr), "--gamma", str(a.gamma), "--iters", str(a.iters),
           "--log-every", str(a.log_every), "--seed", str(seed), "--quiet",
           "--output", out + ".h5", "--metrics", out + ".csv", "--summary", out + ".json"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    # Runs are deterministic: one whose summary exists (an earlier, interrupted study) is kept.
    if not os.path.exists(out + ".json"):
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    with h5py.File(f"{problem}/update.h5") as f:
        update = f["/W"][()]
    with h5py.File(f"{problem}/base.h5") as f:
        weight_norm = np.linalg.norm(f["/W"][()] + update)
    norm = np.linalg.norm(update)
    rows = list(csv.DictReader(open(out + ".csv")))
    best = min(float(row["test_loss"]) for row in rows)
    summary = json.load(open(out + ".json"))
    final_distance = np.linalg.norm(delta_of(out + ".h5") - update)
    return {"seed": seed, "s": s, "r": r, "adapter": adapter,
            "best_rel_error": math.sqrt(2 * best) / norm, "final_rel_error": final_distance / norm,
            # The error relative to the whole adapted layer W0 + DeltaW* (one reading of the
            # reference's figures): the same distance over a larger norm.
            "final_rel_error_weight": final_distance / weight_norm,
            "update_rank": summary["update_rank"], "seconds": summary["seconds"],
            "best_iteration": summary["best_iteration"]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cdmf", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--samples", type=int, nargs="+", default=[16, 32, 64, 128, 256, 1024])
    p.add_argument("--ranks", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    p.add_argument("--adapters", nargs="+", default=["lora", "deep", "deep-compressed"])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--gamma", type=float, default=0.1)
    p.add_argument("--iters", type=int, default=3000)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--problem-args", default="",
                   help="more options of make_teacher_student.py, e.g. '--update-scale n'")
    a = p.parse_args()
    os.makedirs(os.path.join(a.out, "runs"), exist_ok=True)
    jobs = []
    for seed in a.seeds:
        problem = os.path.join(a.out, f"problem_seed{seed}")
        subprocess.run([sys.executable, os.path.join(HERE, "make_teacher_student.py"), "--rows",
                        str(a.size), "--cols", str(a.size), "--seed", str(seed), "--samples",
                        *map(str, PROBLEM_SAMPLES), "--out", problem, *a.problem_args.split()],
                       check=True)
        jobs += [(problem, seed, s, r, ad) for s in a.samples for r in a.ranks for ad in a.adapters]
    with ThreadPoolExecutor(a.jobs) as pool:
        results = list(pool.map(lambda j: run_one(a, *j), jobs))
    with open(os.path.join(a.out, "study.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(results[0]))
        w.writeheader()
        w.writerows(results)
    print(f"{len(results)} runs; means over seeds {a.seeds}: best / final relative error (update rank)")
    for s in a.samples:
        print(f"s = {s}")
        for ad in a.adapters:
            cells = []
            for r in a.ranks:
                sel = [x for x in results if x["s"] == s and x["r"] == r and x["adapter"] == ad]
                cells.append(f"r{r}: {np.mean([x['best_rel_error'] for x in sel]):.3f}/"
                             f"{np.mean([x['final_rel_error'] for x in sel]):.3f} "
                             f"({np.mean([x['update_rank'] for x in sel]):.1f})")
            print(f"  {ad:16s} " + "  ".join(cells))
    print("final error relative to the whole layer, ||DeltaW - DeltaW*||_F / ||W0 + DeltaW*||_F "
          "(mean over seeds; min-max)")
    for s in a.samples:
        for ad in a.adapters:
            cells = []
            for r in a.ranks:
                vals = [x["final_rel_error_weight"] for x in results
                        if x["s"] == s and x["r"] == r and x["adapter"] == ad]
                cells.append(f"r{r}: {np.mean(vals):.3f} ({min(vals):.3f}-{max(vals):.3f})")
            print(f"  s = {s:4d} {ad:16s} " + "  ".join(cells))


if __name__ == "__main__":
    main()
