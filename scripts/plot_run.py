#!/usr/bin/python3
"""Turns a cdmf metrics CSV (train --metrics RUN.csv) into PNG pictures read at a glance.

Usage: scripts/plot_run.py RUN.csv [--out DIR] [--title TEXT]

Writes into DIR (default: next to RUN.csv, named after it):
  RUN-loss.png        train, validation and test RMSE (or loss) over iterations and over seconds
  RUN-spectrum.png    the top singular values of the end-to-end matrix over iterations
                      (columns sigma_1.. of --diagnostics)
  RUN-rank.png        the numerical rank of W_l(t) - W_l(0) per factor over iterations
                      (columns rank_W1.. of --diagnostics)
The last two only when the run logged diagnostics. Prints the paths written. Matplotlib from
Debian (python3-matplotlib), no display needed.
"""
import argparse
import csv
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_columns(path):
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        sys.exit(f"plot_run: error: {path} has no metrics rows")
    columns = {}
    for name in rows[0].keys():
        values = []
        for row in rows:
            text = row[name]
            values.append(float(text) if text not in ("", None) else math.nan)
        columns[name] = values
    for required in ("iteration", "seconds", "train_loss"):
        if required not in columns:
            sys.exit(f"plot_run: error: {path} has no column '{required}' (not a cdmf metrics file?)")
    return columns


def known(values):
    return any(math.isfinite(v) for v in values)


def plot_curves(columns, out, title):
    # RMSE reads in rating units; the loss when no RMSE was logged.
    sets = [("train", "train_rmse"), ("validation", "validation_rmse"), ("test", "test_rmse")]
    if not any(name in columns and known(columns[name]) for _, name in sets):
        sets = [("train", "train_loss"), ("validation", "validation_loss"), ("test", "test_loss")]
    metric = "RMSE" if sets[0][1].endswith("rmse") else "loss"
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, x_name, x_label in ((axes[0], "iteration", "iteration"), (axes[1], "seconds", "seconds")):
        for label, name in sets:
            if name in columns and known(columns[name]):
                axis.plot(columns[x_name], columns[name], label=label, marker=".", markersize=3)
        axis.set_xlabel(x_label)
        axis.set_ylabel(metric)
        axis.grid(True, alpha=0.3)
        if metric == "loss":
            axis.set_yscale("log")
        axis.legend()
    best = columns.get("validation_loss")
    if best and known(best):
        finite = [(v, k) for k, v in enumerate(best) if math.isfinite(v)]
        _, k = min(finite)
        axes[0].axvline(columns["iteration"][k], color="gray", linestyle="--", linewidth=1)
        axes[0].text(columns["iteration"][k], axes[0].get_ylim()[1], " best", va="top", color="gray")
    figure.suptitle(f"{title}: {metric} over iterations and seconds")
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)


def plot_series(columns, prefix, out, title, ylabel, log):
    names = sorted((n for n in columns if n.startswith(prefix)), key=lambda n: int(n[len(prefix):]))
    names = [n for n in names if known(columns[n])]
    if not names:
        return False
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for name in names:
        axis.plot(columns["iteration"], columns[name], label=name, marker=".", markersize=3)
    axis.set_xlabel("iteration")
    axis.set_ylabel(ylabel)
    if log:
        axis.set_yscale("log")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize="small", ncol=2)
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics")
    parser.add_argument("--out", default="")
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    columns = read_columns(args.metrics)
    stem = os.path.splitext(os.path.basename(args.metrics))[0]
    out_dir = args.out or os.path.dirname(os.path.abspath(args.metrics))
    os.makedirs(out_dir, exist_ok=True)
    title = args.title or stem
    written = [os.path.join(out_dir, stem + "-loss.png")]
    plot_curves(columns, written[0], title)
    spectrum = os.path.join(out_dir, stem + "-spectrum.png")
    if plot_series(columns, "sigma_", spectrum, f"{title}: top singular values of the end-to-end matrix",
                   "singular value", True):
        written.append(spectrum)
    rank = os.path.join(out_dir, stem + "-rank.png")
    if plot_series(columns, "rank_W", rank, f"{title}: numerical rank of W_l(t) - W_l(0)",
                   "numerical rank", False):
        written.append(rank)
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
