#!/usr/bin/env bash
# Sets up cdmf and runs the default example job on all local cores: a synthetic 200 x 200
# rank-5 matrix with 30% of its entries observed, recovered by the deep (depth 3,
# overparameterized) factorization trained by gradient descent from a small orthogonal init.
# Outputs land in example-run/ (metrics.csv, summary.json, model.h5, and the pictures of the
# run: metrics-loss.png, metrics-spectrum.png, metrics-rank.png).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
out="${CDMF_EXAMPLE_DIR:-$here/example-run}"
ranks="$(nproc)"
cdmf="$here/build/cdmf"
mpirun -n "$ranks" "$cdmf" generate --rows 200 --cols 200 --rank 5 --observed 0.3 --seed 1 \
  --out "$out/data"
mpirun -n "$ranks" "$cdmf" train --data "$out/data/train.tsv" --test "$out/data/test.tsv" \
  --truth "$out/data/truth.h5" --model deep --depth 3 --init-scale 1e-3 --lr 600 \
  --iters 20000 --tol 1e-10 --log-every 1000 --diagnostics --metrics "$out/metrics.csv" \
  --summary "$out/summary.json" --output "$out/model.h5"
mpirun -n "$ranks" "$cdmf" inspect "$out/model.h5" --top 8
/usr/bin/python3 "$here/scripts/plot_run.py" "$out/metrics.csv" --title "example run"
echo "example: outputs in $out"
