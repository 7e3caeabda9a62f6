#!/usr/bin/python3
"""The MovieLens recommender adaptation study of docs/adaptation.md (issue 10, study 2).

Split: the ratings sorted by timestamp; the oldest 80% train the base (`cdmf train`); the
newest 20% arrive later: the first s of them adapt the base, the rest of them are the test set.
For every s:
  - no adaptation: the base alone on the test set;
  - `cdmf adapt --data` with lora, deep and deep-compressed at every rank r: the step size and
    the number of iterations are chosen on a validation split of the s adaptation ratings (a
    seeded 20%, early stopping with --patience on it keeps the best iteration), then the adapter
    is fitted on all s ratings with that step size for that many iterations and scored on test;
  - retraining from scratch: `cdmf train` with the base's settings on the oldest 80% plus the s.
Prints one table of test RMSE (predictions from `cdmf predict`, clipped to [0.5, 5]) and seconds
(the wall time of the final `adapt` or `train` command; the step-size search costs len(--lrs)
more adapt runs).

By default the base has no biases (the first version of the study ran before `adapt` honored a
base's biases): the script centers every rating on the mean of the oldest 80% (so that the chain
starts from the mean, which is what the preset's biases are for) and adds the mean back before
scoring. With --biases the base and the retraining are `cdmf train --preset ratings` (fitted
biases, docs/realdata.md) on the raw ratings, and the adapters learn an update of that base
(its biases enter as offsets; `predict --base --adapter` adds them back). It writes triplet files with
0-based indices over all users and movies of the file, so the base is m x n for every user and
movie ever seen: rows of users who appear only in the newest 20% are the base's untrained rows,
which the adapter has to learn.

  movielens_study.py --cdmf build/cdmf --ratings DIR/ratings.csv --out OUT [--samples ...]
                     [--ranks 4 16 64] [--adapters lora deep deep-compressed] [--jobs 2]
                     [--biases]
"""
import argparse
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# The base: the ratings preset of docs/realdata.md without its biases (centered data instead)
# and with GD lr 10: without biases lr 50 diverged (retraining on the oldest 80% + 5,000) and
# validated worse on the oldest 80% (best validation RMSE 0.983; lr 30 0.888, 20 0.883, 10 0.879).
BIASED_BASE_OPTIONS = ["--preset", "ratings"]
BASE_OPTIONS = ["--model", "compressed", "--depth", "3", "--rank", "50", "--width", "-1",
                "--init-scale", "1", "--gamma", "0.3", "--optimizer", "gd", "--lr", "10",
                "--loss-normalization", "observed", "--validation", "0.1", "--patience", "6",
                "--iters", "2000", "--log-every", "5", "--strategy", "sparse"]


def mpirun(a, args, done, ranks=1):
    """Runs one cdmf command under mpiexec; returns its wall seconds, also kept in `done`.wall.
    The commands are deterministic: one whose record exists (an interrupted study) is not run
    again."""
    if os.path.exists(done + ".wall"):
        return float(open(done + ".wall").read())
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    cmd = ["mpiexec", "-n", str(ranks), "--allow-run-as-root", "--oversubscribe", a.cdmf, *args]
    start = time.monotonic()
    finished = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    if finished.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{finished.stdout}")
    seconds = time.monotonic() - start
    with open(done + ".wall", "w") as f:
        f.write(f"{seconds}\n")
    return seconds


def write_triplets(path, rows):
    np.savetxt(path, rows, fmt=["%d", "%d", "%.6f"], delimiter=" ")


def rmse(predictions, test, mean, warm):
    """Test RMSE of `cdmf predict` output (row, col, centered prediction) against the centered
    test ratings: on all of them, and on the warm ones (users with a rating the model was fitted
    on: the rest, users never seen, get the mean plus an untrained row from every method)."""
    got = np.loadtxt(predictions, ndmin=2)
    lookup = {(int(r), int(c)): v for r, c, v in got}
    pred = np.array([lookup[(int(r), int(c))] for r, c, _ in test]) + mean
    error = np.clip(pred, 0.5, 5.0) - (test[:, 2] + mean)
    return float(np.sqrt(np.mean(error ** 2))), float(np.sqrt(np.mean(error[warm] ** 2)))


def scored(row, predictions, a, s, mean):
    """Adds the test RMSEs of `predictions` (of the test set of s) to the result row."""
    test = np.loadtxt(f"{a.out}/test_s{s}.txt", ndmin=2)
    seen = np.loadtxt(f"{a.out}/seen_s{s}.txt", ndmin=2)
    warm = np.isin(test[:, 0], seen[:, 0])
    row["test_rmse"], row["warm_rmse"] = rmse(predictions, test, mean, warm)
    row["warm_count"], row["test_count"] = int(warm.sum()), len(test)
    return row


def split(a):
    """Writes the base, adaptation and test files; returns the sizes and the mean."""
    raw = np.loadtxt(a.ratings, delimiter=",", skiprows=1)
    raw = raw[np.argsort(raw[:, 3], kind="stable")]  # by timestamp, ties in file order
    users, rows = np.unique(raw[:, 0], return_inverse=True)
    movies, cols = np.unique(raw[:, 1], return_inverse=True)
    cut = int(round(0.8 * len(raw)))
    mean = 0.0 if a.biases else float(raw[:cut, 2].mean())
    entries = np.column_stack([rows, cols, raw[:, 2] - mean])
    old, new = entries[:cut], entries[cut:]
    write_triplets(os.path.join(a.out, "old.txt"), old)
    rng = np.random.default_rng(a.seed)
    for s in a.samples:
        adapt, test = new[:s], new[s:]
        write_triplets(os.path.join(a.out, f"adapt_s{s}.txt"), adapt)
        write_triplets(os.path.join(a.out, f"test_s{s}.txt"), test)
        write_triplets(os.path.join(a.out, f"seen_s{s}.txt"), np.vstack([old, adapt]))
        held = rng.permutation(s) < s // 5  # 20% of the adaptation ratings validate
        write_triplets(os.path.join(a.out, f"fit_s{s}.txt"), adapt[~held])
        write_triplets(os.path.join(a.out, f"val_s{s}.txt"), adapt[held])
    known_users = set(old[:, 0].astype(int))
    new_users = float(np.mean([int(u) not in known_users for u in new[:, 0]]))
    return {"ratings": len(raw), "users": len(users), "movies": len(movies), "old": cut,
            "new": len(new), "mean": mean, "new_by_unseen_users": new_users}


def adapter_options(a, adapter, r):
    opts = ["--adapter", adapter, "--rank", str(r), "--loss-normalization", "observed",
            "--seed", str(a.seed), "--quiet"]
    if adapter == "deep-compressed":
        # The overparameterized adapter's width (>= every r here): its first gradient is dense
        # (h x n factors, O(m n h) a product); min(m, n) = 610 took 50-70 s a run on the
        # shared machine, the default max(m, n) = 9,724 would build 9,724-wide factors.
        opts += ["--width", str(a.width), "--gamma", str(a.gamma)]
    return opts


def run_adapter(a, s, adapter, r, mean):
    d, tag = a.out, f"s{s}_{adapter}_r{r}"
    base = os.path.join(d, "base.h5")
    search = []
    for lr in a.lrs:
        out = os.path.join(d, "runs", f"{tag}_lr{lr:g}")
        mpirun(a, ["adapt", "--base", base, "--data", f"{d}/fit_s{s}.txt", "--test",
                   f"{d}/val_s{s}.txt", *adapter_options(a, adapter, r), "--lr", str(lr),
                   "--iters", str(a.iters), "--log-every", str(a.log_every), "--patience",
                   str(a.patience), "--output", out + ".h5", "--summary", out + ".json"], out)
        summary = json.load(open(out + ".json"))
        # The loss is normalized by the training count: as an RMSE over the validation ratings.
        val = np.sqrt(2 * summary["best_test_loss"] * summary["train_entries"] / (s // 5))
        search.append((val, lr, max(summary["best_iteration"], 1)))
    val_rmse, lr, iters = min(search)
    out = os.path.join(d, "runs", tag)
    seconds = mpirun(a, ["adapt", "--base", base, "--data", f"{d}/adapt_s{s}.txt",
                         *adapter_options(a, adapter, r), "--lr", str(lr), "--iters", str(iters),
                         "--log-every", str(iters), "--output", out + ".h5", "--summary",
                         out + ".json"], out)
    mpirun(a, ["predict", "--base", base, "--adapter", out + ".h5", "--pairs",
               f"{d}/test_s{s}.txt", "--out", out + ".pred"], out + ".pred")
    rank = json.load(open(out + ".json")).get("update_rank")
    return scored({"s": s, "method": adapter, "r": r, "lr": lr, "iters": iters,
                   "val_rmse": float(val_rmse), "seconds": seconds, "update_rank": rank},
                  out + ".pred", a, s, mean)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cdmf", required=True)
    p.add_argument("--ratings", required=True, help="MovieLens ratings.csv")
    p.add_argument("--out", required=True)
    p.add_argument("--samples", type=int, nargs="+", default=[250, 500, 1000, 2000, 5000])
    p.add_argument("--ranks", type=int, nargs="+", default=[4, 16, 64])
    p.add_argument("--adapters", nargs="+", default=["lora", "deep", "deep-compressed"])
    p.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-3, 1e-2, 3e-2],
                   help="Adam step sizes searched on the validation split")
    p.add_argument("--iters", type=int, default=1000, help="bound of the search runs")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--gamma", type=float, default=0.1)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--biases", action="store_true",
                   help="the base and the retraining are --preset ratings (fitted biases) on raw ratings")
    a = p.parse_args()
    base_options = BIASED_BASE_OPTIONS if a.biases else BASE_OPTIONS
    os.makedirs(os.path.join(a.out, "runs"), exist_ok=True)
    info = split(a)
    mean = info["mean"]
    print(f"{info['ratings']} ratings, {info['users']} users x {info['movies']} movies; base on the "
          f"oldest {info['old']}, {info['new']} newer ({100 * info['new_by_unseen_users']:.1f}% "
          f"by users absent from the base's ratings); "
          + ("raw ratings, a base with fitted biases" if a.biases else f"ratings centered on {mean:.4f}"), flush=True)
    size = ["--rows", str(info["users"]), "--cols", str(info["movies"]), "--format", "triplets"]

    base = os.path.join(a.out, "base.h5")
    base_seconds = mpirun(a, ["train", "--data", f"{a.out}/old.txt", *size, *base_options,
                              "--seed", str(a.seed), "--quiet", "--output", base, "--summary",
                              os.path.join(a.out, "base.json")], base)
    print(f"base: {base_seconds:.1f} s", flush=True)

    def no_adaptation(s):
        out = os.path.join(a.out, "runs", f"s{s}_none")
        mpirun(a, ["predict", "--checkpoint", base, "--pairs", f"{a.out}/test_s{s}.txt", "--out",
                   out + ".pred"], out + ".pred")
        return scored({"s": s, "method": "none", "r": 0, "seconds": 0.0}, out + ".pred", a, s, mean)

    def retrain(s):
        out = os.path.join(a.out, "runs", f"s{s}_retrain")
        seconds = mpirun(a, ["train", "--data", f"{a.out}/seen_s{s}.txt", *size, *base_options,
                             "--seed", str(a.seed), "--quiet", "--output", out + ".h5",
                             "--summary", out + ".json"], out)
        mpirun(a, ["predict", "--checkpoint", out + ".h5", "--pairs", f"{a.out}/test_s{s}.txt",
                   "--out", out + ".pred"], out + ".pred")
        return scored({"s": s, "method": "retrain", "r": 50, "seconds": seconds}, out + ".pred",
                      a, s, mean)

    jobs = [lambda s=s: no_adaptation(s) for s in a.samples]
    jobs += [lambda s=s: retrain(s) for s in a.samples]
    jobs += [lambda s=s, ad=ad, r=r: run_adapter(a, s, ad, r, mean)
             for s in a.samples for ad in a.adapters for r in a.ranks]
    with ThreadPoolExecutor(a.jobs) as pool:
        results = list(pool.map(lambda job: job(), jobs))
    tag = "_".join(map(str, a.samples))
    with open(os.path.join(a.out, f"study_s{tag}.json"), "w") as f:
        json.dump({"split": info, "base_seconds": base_seconds, "runs": results}, f, indent=1)

    print("test RMSE all / warm users (seconds of the final adapt or train) [lr, iterations]")

    def cell(x):
        tuned = f" [{x['lr']:g}, {x['iters']}]" if "lr" in x else ""
        return f"{x['test_rmse']:.4f} / {x['warm_rmse']:.4f} ({x['seconds']:.1f} s){tuned}"

    for s in a.samples:
        sel = {(x["method"], x["r"]): x for x in results if x["s"] == s}
        none = sel[("none", 0)]
        print(f"s = {s} (test {none['test_count']}, warm {none['warm_count']}): no adaptation "
              f"{cell(none)}; retrain {cell(sel[('retrain', 50)])}")
        for ad in a.adapters:
            print(f"  {ad:16s} " + "  ".join(f"r{r}: {cell(sel[(ad, r)])}" for r in a.ranks))


if __name__ == "__main__":
    main()
