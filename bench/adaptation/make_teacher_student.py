#!/usr/bin/python3
"""Few-shot teacher-student problems for `cdmf adapt` (docs/adaptation.md).

A frozen base W0 (m x n, Gaussian / sqrt(n)), a true update DeltaW* of rank `--update-rank`
(Gaussian factors, by default scaled so its singular values are of order 1), inputs x ~ N(0, I_n) and
targets y = (W0 + DeltaW*) x + noise * N(0, I_m). Writes into DIR:
  base.h5                 /W (m x n)
  update.h5               /W (m x n): DeltaW*, for the relative error of a learned update
  train_s<S>.h5           /inputs (S x n), /targets (S x m), for every S of --samples (nested:
                          the first S of one draw of max(S) samples)
  test.h5                 --test-samples samples without noise (so the test loss measures the
                          update's error alone: E||(DeltaW - DeltaW*) x||^2 = ||DeltaW - DeltaW*||_F^2)
Needs python3-numpy and python3-h5py (Debian packages, scripts/setup.sh).
"""
import argparse
import os

import h5py
import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=64)
    p.add_argument("--cols", type=int, default=64)
    p.add_argument("--update-rank", type=int, default=4)
    p.add_argument("--noise", type=float, default=0.1)
    # Readings of the "true update of rank 4, noise 0.1" (docs/adaptation.md, "Levels"):
    # mn: DeltaW* = U V / sqrt(m n), singular values of order 1 (the study's setting);
    # n: U V / sqrt(n), entries of the scale of W0's times sqrt(rank).
    p.add_argument("--update-scale", choices=["mn", "n"], default="mn")
    # entry: noise * N(0, 1) on every target entry; sample: a noise vector of norm ~ noise per sample.
    p.add_argument("--noise-per", choices=["entry", "sample"], default="entry")
    p.add_argument("--samples", type=int, nargs="+", default=[16, 32, 64, 128, 256, 1024])
    p.add_argument("--test-samples", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    m, n, k = a.rows, a.cols, a.update_rank
    w0 = rng.standard_normal((m, n)) / np.sqrt(n)
    update = rng.standard_normal((m, k)) @ rng.standard_normal((k, n))
    update /= np.sqrt(m * n) if a.update_scale == "mn" else np.sqrt(n)
    os.makedirs(a.out, exist_ok=True)
    with h5py.File(os.path.join(a.out, "base.h5"), "w") as f:
        f["/W"] = w0
    with h5py.File(os.path.join(a.out, "update.h5"), "w") as f:
        f["/W"] = update
    teacher = w0 + update
    s_max = max(a.samples)
    x = rng.standard_normal((s_max, n))
    noise = a.noise if a.noise_per == "entry" else a.noise / np.sqrt(m)
    y = x @ teacher.T + noise * rng.standard_normal((s_max, m))
    for s in a.samples:
        with h5py.File(os.path.join(a.out, f"train_s{s}.h5"), "w") as f:
            f["/inputs"] = x[:s]
            f["/targets"] = y[:s]
    xt = rng.standard_normal((a.test_samples, n))
    with h5py.File(os.path.join(a.out, "test.h5"), "w") as f:
        f["/inputs"] = xt
        f["/targets"] = xt @ teacher.T
    print(f"{a.out}: base {m} x {n}, update rank {k}, ||DeltaW*||_F = {np.linalg.norm(update):.4f}, "
          f"samples {a.samples}, test {a.test_samples}")


if __name__ == "__main__":
    main()
