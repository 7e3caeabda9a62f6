#!/usr/bin/python3
"""A problem for the cost study of `cdmf adapt` (docs/adaptation.md): an m x n base kept
factored (a cdmf factor file: W1 k x n, W2 m x k, rank --base-rank) and s samples with Gaussian
inputs and targets, so that nothing m x n is ever written or read.

  make_cost_problem.py --size N --samples S --out DIR    (DIR/base.h5, DIR/samples.h5)
"""
import argparse
import os

import h5py
import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--samples", type=int, default=1024)
    p.add_argument("--base-rank", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    n = m = a.size
    k = a.base_rank
    os.makedirs(a.out, exist_ok=True)
    with h5py.File(os.path.join(a.out, "base.h5"), "w") as f:
        for key, value in {"format": "cdmf-checkpoint", "model": "shallow", "cdmf_version": "",
                           "created": "", "config": "{}"}.items():
            f.attrs[key] = value
        for key, value in {"format_version": 1, "rows": m, "cols": n, "depth": 2, "width": k,
                           "iteration": 0}.items():
            f.attrs[key] = np.int64(value)
        f["/factors/W1"] = rng.standard_normal((k, n)) / np.sqrt(n)
        f["/factors/W2"] = rng.standard_normal((m, k)) / np.sqrt(k)
    with h5py.File(os.path.join(a.out, "samples.h5"), "w") as f:
        f["/inputs"] = rng.standard_normal((a.samples, n))
        f["/targets"] = rng.standard_normal((a.samples, m))


if __name__ == "__main__":
    main()
