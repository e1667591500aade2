"""How far fold scores spread under random and stratified folds, for fixed out-of-fold predictions.

Usage: ``python benchmarks/fold_spread.py runs/<name>-<stamp>.oof.npz [--seeds 30] [--folds 5]``

The predictions stay fixed (those of one training run), so the spread measured is what the
partition alone adds to the fold scores: for each seed, the range (max - min) of the fold
scores under ``models.cv.group_folds`` drawn at random and balanced by the sequences' target
RMS (``stratify_folds: "target_scale"``). Not in ``make bench``: it needs a run's OOF file.
"""

from __future__ import annotations

import argparse

import numpy as np

from harness import competitions as C, metrics
from models.cv import group_folds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("oof", help="a run's .oof.npz (seq_ix, prediction, target)")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    with np.load(args.oof) as data:
        seq, y, p = data["seq_ix"], data["target"].astype(np.float64), data["prediction"].astype(np.float64)
    comp = C.B if y.shape[1] == C.B.n_outputs else C.A
    ids, inverse = np.unique(seq, return_inverse=True)
    rms = np.sqrt(np.bincount(inverse, weights=(y * y).mean(axis=1)) / np.bincount(inverse))
    print(f"{args.oof}: {len(ids)} sequences, {comp.key}, {args.folds} folds, {args.seeds} seeds")
    print(f"{'folds':14s} {'mean range':>10s} {'p90 range':>10s}")
    for name, balance in (("random", None), ("target_scale", rms)):
        ranges = []
        for seed in range(args.seeds):
            fold = group_folds(ids, args.folds, seed, balance)[inverse]
            scores = [metrics.score(comp, y[fold == k], p[fold == k])[comp.metric] for k in range(args.folds)]
            ranges.append(max(scores) - min(scores))
        print(f"{name:14s} {np.mean(ranges):10.3f} {np.percentile(ranges, 90):10.3f}")


if __name__ == "__main__":
    main()
