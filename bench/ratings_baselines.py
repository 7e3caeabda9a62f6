#!/usr/bin/python3
"""Baselines for rating prediction that a user compares cdmf with (issue 11, docs/realdata.md).

A seeded 90/10 split of the ratings (by rating, uniformly), a validation set carved from the
training part (10% of it, seeded), every regularization tuned on validation, each model then
scored once on test:

  global mean                 X_ij = mu
  user and item biases        X_ij = mu + b_i + c_j, L2 lambda on b, c (alternating sweeps)
  ALS with biases, rank r     X_ij = mu + b_i + c_j + p_i . q_j, weighted-lambda ALS (each row's
                              penalty lambda * its number of ratings), biases solved jointly with
                              the factors as an extra column

Usage: bench/ratings_baselines.py RATINGS.csv [--seed 1] [--ranks 5,10,20,50]
                                  [--write-split DIR]   (DIR/train.csv, DIR/test.csv: MovieLens
                                                         CSV files of the split, for cdmf train)
NumPy only (Debian python3-numpy).
"""
import argparse
import os
import sys
import time

import numpy as np


def read_ratings(path):
    data = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(0, 1, 2, 3))
    return data[:, 0].astype(np.int64), data[:, 1].astype(np.int64), data[:, 2], data[:, 3]


def split(count, fraction, rng):
    """A random subset of `fraction` of range(count) (a boolean mask)."""
    mask = np.zeros(count, dtype=bool)
    mask[rng.choice(count, size=int(round(fraction * count)), replace=False)] = True
    return mask


def rmse(pred, y):
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def fit_biases(u, i, y, m, n, lam, sweeps=15):
    mu = float(y.mean())
    b, c = np.zeros(m), np.zeros(n)
    cnt_u = np.bincount(u, minlength=m)
    cnt_i = np.bincount(i, minlength=n)
    # A row or column without fitted ratings keeps bias 0 (as cdmf's fit_biases).
    den_u = np.maximum(cnt_u + lam, 1e-300)
    den_i = np.maximum(cnt_i + lam, 1e-300)
    for _ in range(sweeps):
        b = np.bincount(u, weights=y - mu - c[i], minlength=m) / den_u
        c = np.bincount(i, weights=y - mu - b[u], minlength=n) / den_i
    return mu, b, c


def groups(index, size):
    order = np.argsort(index, kind="stable")
    starts = np.searchsorted(index[order], np.arange(size + 1))
    return order, starts


def als_side(index, other, resid, factors_other, size, lam, grouped):
    """Solves each row's [bias, p] against [1, q_other] for targets `resid`, penalty lam * count."""
    order, starts = grouped
    r = factors_other.shape[1]
    out = np.zeros((size, r + 1))
    feats = np.hstack([np.ones((factors_other.shape[0], 1)), factors_other])
    eye = np.eye(r + 1)
    for row in range(size):
        sel = order[starts[row]:starts[row + 1]]
        if sel.size == 0:
            continue
        f = feats[other[sel]]
        a = f.T @ f + lam * sel.size * eye
        out[row] = np.linalg.solve(a, f.T @ resid[sel])
    return out[:, 0], out[:, 1:]


def fit_als(u, i, y, m, n, rank, lam, rng, sweeps=12):
    mu = float(y.mean())
    p = rng.normal(scale=0.1, size=(m, rank))
    q = rng.normal(scale=0.1, size=(n, rank))
    b, c = np.zeros(m), np.zeros(n)
    gu, gi = groups(u, m), groups(i, n)
    for _ in range(sweeps):
        b, p = als_side(u, i, y - mu - c[i], q, m, lam, gu)
        c, q = als_side(i, u, y - mu - b[u], p, n, lam, gi)
    return mu, b, c, p, q


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ratings")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ranks", default="5,10,20,50")
    parser.add_argument("--write-split", default="")
    args = parser.parse_args()

    users, movies, ratings, stamps = read_ratings(args.ratings)
    rng = np.random.default_rng(args.seed)
    test = split(ratings.size, 0.1, rng)
    if args.write_split:
        os.makedirs(args.write_split, exist_ok=True)
        for name, mask in (("train", ~test), ("test", test)):
            with open(os.path.join(args.write_split, name + ".csv"), "w") as out:
                out.write("userId,movieId,rating,timestamp\n")
                for a, b_, r, s in zip(users[mask], movies[mask], ratings[mask], stamps[mask]):
                    out.write(f"{a},{b_},{r:g},{int(s)}\n")
    # Dense indices from the training part; test pairs with an id unseen there are cold start
    # (scored from what is known: the mean and the known bias).
    train_idx = np.flatnonzero(~test)
    valid = np.zeros(ratings.size, dtype=bool)
    valid[train_idx[split(train_idx.size, 0.1, rng)]] = True
    fit = ~test & ~valid
    uid, u = np.unique(users[~test], return_inverse=True)
    mid, i = np.unique(movies[~test], return_inverse=True)
    m, n = uid.size, mid.size
    ui = np.full(ratings.size, -1)
    ii = np.full(ratings.size, -1)
    ui[~test], ii[~test] = u, i
    pos_u = np.searchsorted(uid, users[test]).clip(0, m - 1)
    pos_i = np.searchsorted(mid, movies[test]).clip(0, n - 1)
    ui[test] = np.where(uid[pos_u] == users[test], pos_u, -1)
    ii[test] = np.where(mid[pos_i] == movies[test], pos_i, -1)
    cold = test & ((ui < 0) | (ii < 0))
    print(f"{ratings.size} ratings, {m} users x {n} movies in training; "
          f"{fit.sum()} fit, {valid.sum()} validation, {test.sum()} test "
          f"({cold.sum()} cold-start pairs); seed {args.seed}")

    uf, if_, yf = ui[fit], ii[fit], ratings[fit]
    uv, iv, yv = ui[valid], ii[valid], ratings[valid]
    ut, it, yt = ui[test], ii[test], ratings[test]
    lo, hi = ratings.min(), ratings.max()

    def predict(mu, b, c, p=None, q=None, uu=None, ii_=None):
        known_u, known_i = uu >= 0, ii_ >= 0
        pred = mu + np.where(known_u, b[uu.clip(0)], 0.0) + np.where(known_i, c[ii_.clip(0)], 0.0)
        if p is not None:
            both = known_u & known_i
            pred = pred + np.where(both, np.einsum("ij,ij->i", p[uu.clip(0)], q[ii_.clip(0)]), 0.0)
        return np.clip(pred, lo, hi)

    mu = float(yf.mean())
    print(f"global mean          test RMSE {rmse(np.full(yt.size, mu), yt):.4f}")

    def tune(fit, lambdas):
        """The model of the lambda with the lowest validation RMSE: (score, lambda, model)."""
        best = None
        for lam in lambdas:
            model = fit(lam)
            score = rmse(predict(*model, uu=uv, ii_=iv), yv)
            if best is None or score < best[0]:
                best = (score, lam, model)
        return best

    start = time.time()
    score, lam, model = tune(lambda lam: fit_biases(uf, if_, yf, m, n, lam),
                             (0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0))
    print(f"biases (lambda {lam:g})  validation RMSE {score:.4f}  "
          f"test RMSE {rmse(predict(*model, uu=ut, ii_=it), yt):.4f}  ({time.time() - start:.1f} s)")

    for rank in (int(r) for r in args.ranks.split(",")):
        start = time.time()
        score, lam, model = tune(
            lambda lam: fit_als(uf, if_, yf, m, n, rank, lam, np.random.default_rng(args.seed)),
            (0.02, 0.05, 0.1, 0.2, 0.3))
        print(f"ALS+biases rank {rank:<3d} (lambda {lam:g})  validation RMSE {score:.4f}  "
              f"test RMSE {rmse(predict(*model, uu=ut, ii_=it), yt):.4f}  ({time.time() - start:.1f} s)")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
