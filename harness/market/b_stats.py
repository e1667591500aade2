"""The statistics of ``shared/calibration.md``'s B table, as small pure functions.

Each takes (sequences, steps) arrays (one column, sequences in rows, time along axis 1) or
pooled vectors, so they are easy to check on hand-made cases and to run on a file's columns.
Correlations across time are taken within sequences and pooled over all of them, with the
pooled mean: that is how a per-sequence level shows up (at long lags the autocorrelation
tends to the level's share of the variance), as in the real table.
"""

from __future__ import annotations

import numpy as np


def _as_2d(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"expected a (sequences, steps) array, got shape {a.shape}")
    return a


def pooled_autocorr(x: np.ndarray, lag: int) -> float:
    """Pearson correlation of (x[s, i], x[s, i + lag]) pairs pooled over sequences s and steps i."""
    a = _as_2d(x)
    if not 1 <= lag < a.shape[1]:
        raise ValueError(f"lag must be in 1..{a.shape[1] - 1}, got {lag}")
    return float(np.corrcoef(a[:, :-lag].ravel(), a[:, lag:].ravel())[0, 1])


def level_share(x: np.ndarray) -> float:
    """Std of the per-sequence means over the pooled std (0: no per-sequence level)."""
    a = _as_2d(x)
    return float(a.mean(axis=1).std() / a.std())


def excess_kurtosis(x: np.ndarray) -> float:
    """Fourth standardized moment minus 3 (0 for a normal), pooled."""
    v = np.asarray(x, dtype=np.float64).ravel()
    c = v - v.mean()
    return float(np.mean(c**4) / np.mean(c**2) ** 2 - 3.0)


def skewness(x: np.ndarray) -> float:
    v = np.asarray(x, dtype=np.float64).ravel()
    c = v - v.mean()
    return float(np.mean(c**3) / np.mean(c**2) ** 1.5)


def abs_quantiles(x: np.ndarray, qs: tuple[float, ...] = (0.5, 0.9, 0.99)) -> tuple[float, ...]:
    v = np.abs(np.asarray(x, dtype=np.float64).ravel())
    return tuple(float(q) for q in np.quantile(v, qs))


def top_weight_share(y: np.ndarray, top: float = 0.2) -> float:
    """Share of the metric weight sum(|y|) carried by the ``top`` fraction of rows by |y|."""
    w = np.sort(np.abs(np.asarray(y, dtype=np.float64).ravel()))[::-1]
    if w.size == 0 or w.sum() == 0:
        raise ValueError("weight share needs at least one non-zero value")
    n = int(round(top * w.size))
    return float(w[:n].sum() / w.sum())


def large_move_persistence(x: np.ndarray, q: float = 0.95) -> float:
    """P(|x| at step i+1 above the pooled q-quantile | |x| at step i above it), within sequences."""
    a = np.abs(_as_2d(x))
    big = a > np.quantile(a, q)
    now, nxt = big[:, :-1], big[:, 1:]
    n = now.sum()
    if n == 0:
        raise ValueError("no value above the quantile")
    return float((now & nxt).sum() / n)


def column_corrs(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pearson correlation of each feature column (rows, F) with a target (rows,); 0 for a constant column."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64).ravel()
    if x.ndim != 2 or x.shape[0] != y.size:
        raise ValueError(f"features {x.shape} and target {y.shape} do not line up")
    xc = x - x.mean(axis=0)
    yc = y - y.mean()
    den = np.sqrt((xc * xc).sum(axis=0) * (yc * yc).sum())
    num = xc.T @ yc
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov distance: the largest gap between the empirical CDFs."""
    x = np.sort(np.asarray(a, dtype=np.float64).ravel())
    y = np.sort(np.asarray(b, dtype=np.float64).ravel())
    if x.size == 0 or y.size == 0:
        raise ValueError("KS needs two non-empty samples")
    grid = np.concatenate([x, y])
    fx = np.searchsorted(x, grid, side="right") / x.size
    fy = np.searchsorted(y, grid, side="right") / y.size
    return float(np.abs(fx - fy).max())
