"""Ridge regression from sufficient statistics, so cross-validation costs one pass over the data.

Each fold's sums (X'X, X'y, column sums) are accumulated once; the model for "every fold but
f" is the total minus fold f, solved in closed form. Columns are shifted by a fixed reference
row before accumulating (sums of squares of raw prices would lose digits when centred), and the
penalty is applied on the standardized scale, so one ``alpha`` means the same for lags, order
book ratios and products. The intercept is never penalized.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RidgeStats:
    """Sums over rows of (x - shift) and y: count, sum x, sum y, X'X, X'y."""

    shift: np.ndarray
    count: float
    sum_x: np.ndarray
    sum_y: np.ndarray
    xx: np.ndarray
    xy: np.ndarray

    @classmethod
    def empty(cls, shift: np.ndarray, n_outputs: int) -> "RidgeStats":
        d = len(shift)
        return cls(np.asarray(shift, dtype=np.float64), 0.0, np.zeros(d), np.zeros(n_outputs),
                   np.zeros((d, d)), np.zeros((d, n_outputs)))

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        """Accumulate rows ``x`` (N, D) with targets ``y`` (N, K)."""
        if len(x) == 0:
            return
        centred = x - self.shift
        self.count += len(x)
        self.sum_x += centred.sum(axis=0)
        self.sum_y += y.sum(axis=0)
        self.xx += centred.T @ centred
        self.xy += centred.T @ y

    def __add__(self, other: "RidgeStats") -> "RidgeStats":
        return RidgeStats(self.shift, self.count + other.count, self.sum_x + other.sum_x, self.sum_y + other.sum_y,
                          self.xx + other.xx, self.xy + other.xy)

    def __sub__(self, other: "RidgeStats") -> "RidgeStats":
        return RidgeStats(self.shift, self.count - other.count, self.sum_x - other.sum_x, self.sum_y - other.sum_y,
                          self.xx - other.xx, self.xy - other.xy)

    @property
    def mean_y(self) -> np.ndarray:
        return self.sum_y / self.count

    def solve(self, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """(coef (D, K), intercept (K,)) of the ridge fit on raw (unshifted) inputs."""
        if self.count < 2:
            raise ValueError("a ridge fit needs at least two rows")
        if alpha < 0:
            raise ValueError(f"ridge alpha must be >= 0, got {alpha}")
        n = self.count
        mean_x = self.sum_x / n
        mean_y = self.sum_y / n
        sxx = self.xx - n * np.outer(mean_x, mean_x)
        sxy = self.xy - n * np.outer(mean_x, mean_y)
        variance = np.maximum(np.diag(sxx) / n, 0.0)
        scale = np.sqrt(variance)
        scale[scale == 0] = 1.0  # constant columns: their coefficient is driven to 0 by the penalty
        # Solve on standardized columns z = x / scale: (Z'Z + alpha n I) b = Z'y, then coef = b / scale.
        zz = sxx / np.outer(scale, scale)
        zy = sxy / scale[:, None]
        penalty = max(alpha, 1e-12) * n
        coef_z = _solve_symmetric(zz + penalty * np.eye(len(scale)), zy)
        coef = coef_z / scale[:, None]
        intercept = mean_y - (mean_x + self.shift) @ coef
        return coef, intercept


def _solve_symmetric(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve a symmetric positive definite system (Cholesky), falling back to least squares."""
    try:
        factor = np.linalg.cholesky(matrix)
        return np.linalg.solve(factor.T, np.linalg.solve(factor, rhs))
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(matrix, rhs, rcond=None)[0]


ROW_CHUNK = 65536
"""Rows per block when building designs from a cached row matrix (bounded memory)."""


def _blocks(n_rows: int):
    for start in range(0, n_rows, ROW_CHUNK):
        yield np.arange(start, min(start + ROW_CHUNK, n_rows))


def fold_stats(x: np.ndarray, y: np.ndarray, row_fold: np.ndarray, template, n_folds: int) -> list[RidgeStats]:
    """Per-fold sums of ``template``'s design (a ``LinearHead``) over the rows of each fold, in one pass."""
    stats: list[RidgeStats] | None = None
    for rows in _blocks(len(x)):
        design = template.design_batch(x[rows].astype(np.float64))
        if stats is None:
            stats = [RidgeStats.empty(design.mean(axis=0), y.shape[1]) for _ in range(n_folds)]
        for f in range(n_folds):
            mine = row_fold[rows] == f
            stats[f].add(design[mine], y[rows[mine]])
    if stats is None:
        raise ValueError("no rows to fit a ridge on")
    return stats


def total_of(stats: list[RidgeStats]) -> RidgeStats:
    total = stats[0]
    for part in stats[1:]:
        total = total + part
    return total


def out_of_fold(x: np.ndarray, row_fold: np.ndarray, template, models: dict) -> dict:
    """OOF predictions (N, K) per key of ``models`` (key -> one (coef, intercept) per fold).

    Each block's design is built once and each fold's rows are gathered once; every key's model
    for that fold is then one matrix product.
    """
    k = template.n_outputs
    keys = list(models)
    n_folds = len(models[keys[0]])
    coefs = [np.concatenate([models[key][f][0] for key in keys], axis=1) for f in range(n_folds)]
    intercepts = [np.concatenate([models[key][f][1] for key in keys]) for f in range(n_folds)]
    stacked = np.empty((len(x), len(keys) * k))
    for rows in _blocks(len(x)):
        design = template.design_batch(x[rows].astype(np.float64))
        fold = row_fold[rows]
        for f in range(n_folds):
            mine = fold == f
            if mine.any():
                stacked[rows[mine]] = design[mine] @ coefs[f] + intercepts[f]
    return {key: stacked[:, i * k : (i + 1) * k] for i, key in enumerate(keys)}


def predict_all(heads: list, x: np.ndarray) -> list[np.ndarray]:
    """Predictions (N, K) of several heads sharing one design, on every row (one product per block)."""
    coef = np.concatenate([h.coef for h in heads], axis=1)
    intercept = np.concatenate([h.intercept for h in heads])
    k = heads[0].n_outputs
    out = np.empty((len(x), len(heads) * k))
    for rows in _blocks(len(x)):
        out[rows] = heads[0].design_batch(x[rows].astype(np.float64)) @ coef + intercept
    return [out[:, i * k : (i + 1) * k] for i in range(len(heads))]
