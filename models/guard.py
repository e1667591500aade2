"""The weak-target guard: shrink outputs that cross-validation says are barely predictable.

A target whose out-of-fold score is below ``threshold`` gets y = mean + s * (y - mean), with
``mean`` the training mean of the target and ``s`` in [0, 1] the least-squares factor on the
out-of-fold predictions: s = sum((y - m)(p - m)) / sum((p - m)^2), clipped. For R² (A) this
is the best shrinkage of a noisy prediction toward the mean; for B's weighted Pearson a
scale does not change the correlation, so the guard only matters there through the clip at ±6.
Targets at or above the threshold are left exactly as they are.
"""

from __future__ import annotations

import numpy as np

from models.runtime.predictor import Guard

DEFAULT_THRESHOLD = 0.0


def fit_guard(oof: np.ndarray, y: np.ndarray, train_mean: np.ndarray, scores: np.ndarray,
              threshold: float = DEFAULT_THRESHOLD) -> Guard:
    """A guard from out-of-fold predictions ``oof`` and targets ``y`` (rows, K) of scored rows."""
    oof = np.asarray(oof, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if oof.shape != y.shape or oof.ndim != 2:
        raise ValueError(f"out-of-fold predictions {oof.shape} and targets {y.shape} must be equal (rows, K) arrays")
    index, means, scales = [], [], []
    for k in np.flatnonzero(np.asarray(scores) < threshold):
        mean = float(train_mean[k])
        spread = oof[:, k] - mean
        denominator = float(spread @ spread)
        scale = 0.0 if denominator == 0 else float(np.clip((y[:, k] - mean) @ spread / denominator, 0.0, 1.0))
        index.append(int(k))
        means.append(mean)
        scales.append(scale)
    return Guard(np.array(index, dtype=np.intp), np.array(means), np.array(scales))


def describe(guard: Guard, names: tuple[str, ...]) -> dict[str, float]:
    """Output name -> shrink factor, for the run record."""
    return {names[int(k)]: float(s) for k, s in zip(guard.index, guard.scale)}
