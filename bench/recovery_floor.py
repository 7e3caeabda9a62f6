#!/usr/bin/python3
"""The recovery error no solver can beat on a `cdmf generate --format hdf5` instance.

A row of the truth X = U V^T with fewer observed entries than the rank r is not determined by
the data: even a solver that knows V exactly sees only the part of the row's coefficients U_i
that the observed columns V_J reach; the rest (the null space of V_J, r - k_i dimensions) is
free, and the truth's rows are drawn independently, so the data says nothing about it. This
script counts those rows and computes the relative Frobenius error of the minimum-norm fit of
each row given the exact V (the fit gradient descent from a small init approximates), which is
what that missing part costs:

    /usr/bin/python3 bench/recovery_floor.py DIR      # DIR/train.h5, DIR/truth.h5 (U, V)

Needs numpy and h5py (Debian: python3-numpy, python3-h5py).
"""
import sys

import h5py
import numpy as np


def main(directory):
    with h5py.File(directory + "/train.h5") as f:
        rows = f["rows"][()]
        cols = f["cols"][()]
    with h5py.File(directory + "/truth.h5") as f:
        u = f["U"][()]
        v = f["V"][()]
    m, r = u.shape
    counts = np.bincount(rows, minlength=m)
    print(f"{len(rows)} entries, {m} rows, {counts.mean():.1f} entries a row on average")
    for k in (0, 5, r - 1):
        print(f"  rows with at most {k} entries: {(counts <= k).sum()}")
    deficient = np.where(counts < r)[0]
    print(f"  rows with fewer entries than the rank {r}: {len(deficient)} ({100 * len(deficient) / m:.3f}%)")
    order = np.argsort(rows, kind="stable")
    sorted_rows, sorted_cols = rows[order], cols[order]
    start = np.searchsorted(sorted_rows, deficient)
    end = np.searchsorted(sorted_rows, deficient, side="right")
    gram = v.T @ v
    total = np.einsum("ij,jk,ik->", u, gram, u)  # ||U V^T||_F^2
    missing = 0.0
    for i, a, b in zip(deficient, start, end):
        null = np.eye(r)
        if b > a:
            _, s, wt = np.linalg.svd(v[sorted_cols[a:b]], full_matrices=True)
            null = wt[int((s > 1e-12 * s[0]).sum()):]
        c = null.T @ (null @ u[i])  # the part of row i's coefficients no observed entry sees
        missing += c @ gram @ c
    print(f"relative error of the minimum-norm fit with the exact column space: {np.sqrt(missing / total):.3e}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
