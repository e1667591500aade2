"""Cross-validation folds grouped by sequence, and the out-of-fold bookkeeping every family shares.

A fold is a set of whole sequences: rows of one sequence are strongly dependent (the same hidden
regime, overlapping targets), so splitting a sequence across folds would leak. Folds are drawn
from the distinct ``seq_ix`` values with a seeded permutation, so the same data and seed always
give the same folds.
"""

from __future__ import annotations

import numpy as np

from harness import metrics
from models.config import ConfigError

DEFAULT_FOLDS = 5


def group_folds(seq_ix: np.ndarray, n_folds: int = DEFAULT_FOLDS, seed: int = 0) -> np.ndarray:
    """Fold number (0..n_folds-1) of each sequence, grouped by ``seq_ix`` value.

    Sequences sharing a ``seq_ix`` (possible only when files are concatenated) share a fold.
    """
    seq_ix = np.asarray(seq_ix)
    groups, inverse = np.unique(seq_ix, return_inverse=True)
    if n_folds < 2:
        raise ConfigError(f"cross-validation needs at least 2 folds, got {n_folds}")
    if len(groups) < n_folds:
        raise ConfigError(f"{len(groups)} distinct sequences cannot make {n_folds} folds; use fewer folds or more data")
    order = np.random.default_rng(seed).permutation(len(groups))
    fold_of_group = np.empty(len(groups), dtype=np.int64)
    fold_of_group[order] = np.arange(len(groups)) % n_folds
    return fold_of_group[inverse]


def fold_split(n_sequences: int, n_folds: int, fold: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(fit positions, held-out positions) of fold ``fold`` over sequences 0..n_sequences-1."""
    if not 0 <= fold < n_folds:
        raise ConfigError(f"fold must lie in 0..{n_folds - 1}, got {fold}")
    folds = group_folds(np.arange(n_sequences), n_folds, seed)
    return np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)


def summarize(competition, y: np.ndarray, oof: np.ndarray, row_fold: np.ndarray, **extra) -> dict:
    """Fold scores, the OOF score and per-output OOF scores of pooled rows, with the harness's metric."""
    metric = competition.metric
    n_folds = int(row_fold.max()) + 1
    folds = [metrics.score(competition, y[row_fold == f], oof[row_fold == f])[metric] for f in range(n_folds)]
    pooled = metrics.score(competition, y, oof)
    return {"n_folds": n_folds, "fold_scores": folds, "oof_score": pooled[metric], "oof_rows": int(len(y)),
            "oof_per_output": {name: pooled[name] for name in competition.prediction_names}, **extra}
