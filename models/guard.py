"""The weak-output guard: what to do with an output that cross-validation says is not predicted.

What helps depends on the metric, so the rule does too (``competition.metric``):

* R² (A): an output whose out-of-fold score is below ``threshold`` gets
  y = mean + s * (y - mean), with ``mean`` the training mean of the target and ``s`` in [0, 1]
  the least-squares factor on the out-of-fold predictions: s = sum((y - m)(p - m)) /
  sum((p - m)^2), clipped. For R² that is the best shrinkage of a noisy prediction toward the mean.
* Weighted Pearson (B): a scale does not change a correlation, so shrinking toward a constant
  does nothing useful (it only moves predictions inside the metric's clip). An output whose
  out-of-fold correlation is NEGATIVE (below ``min(threshold, 0)``) is replaced by the fallback,
  the training mean (s = 0: a constant correlates 0, better than a negative correlation); a
  positive correlation, however weak, is never touched and nothing is ever shrunk.

Outputs not guarded are left exactly as they are (bit-identical predictions).
"""

from __future__ import annotations

import numpy as np

from harness.competitions import Competition
from models.runtime.predictor import Guard

DEFAULT_THRESHOLD = 0.0
CORRELATION_METRICS = ("weighted_pearson",)
"""Metrics that a scale leaves unchanged: the guard replaces, never shrinks."""


def fit_guard(oof: np.ndarray, y: np.ndarray, train_mean: np.ndarray, scores: np.ndarray,
              threshold: float = DEFAULT_THRESHOLD, *, competition: Competition) -> Guard:
    """A guard from out-of-fold predictions ``oof``, targets ``y`` (rows, K) of scored rows and
    the per-output out-of-fold ``scores``, by ``competition``'s metric's rule."""
    oof = np.asarray(oof, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if oof.shape != y.shape or oof.ndim != 2:
        raise ValueError(f"out-of-fold predictions {oof.shape} and targets {y.shape} must be equal (rows, K) arrays")
    correlation = competition.metric in CORRELATION_METRICS
    below = min(threshold, 0.0) if correlation else threshold
    index, means, scales = [], [], []
    for k in np.flatnonzero(np.asarray(scores) < below):
        mean = float(train_mean[k])
        if correlation:
            scale = 0.0  # replaced by the fallback: the training mean
        else:
            spread = oof[:, k] - mean
            denominator = float(spread @ spread)
            scale = 0.0 if denominator == 0 else float(np.clip((y[:, k] - mean) @ spread / denominator, 0.0, 1.0))
        index.append(int(k))
        means.append(mean)
        scales.append(scale)
    return Guard(np.array(index, dtype=np.intp), np.array(means), np.array(scales))


def describe(guard: Guard, names: tuple[str, ...]) -> dict[str, float]:
    """Output name -> shrink factor (0: replaced by the training mean), for the run record."""
    return {names[int(k)]: float(s) for k, s in zip(guard.index, guard.scale)}
