"""Cross-validation folds grouped by sequence, and the out-of-fold bookkeeping every family shares.

A fold is a set of whole sequences: rows of one sequence are strongly dependent (the same hidden
regime, overlapping targets), so splitting a sequence across folds would leak. Folds are drawn
from the distinct ``seq_ix`` values with a seeded permutation, so the same data and seed always
give the same folds.

Folds can also be balanced by a per-sequence statistic (``balance_by``; ``stratify_folds`` in a
family config): sequences sorted by it are dealt out a block of ``n_folds`` at a time, each
block in a seeded random order, so every fold gets one sequence of each block and the folds'
statistics agree. Why: with few sequences, one fold may get the few loud ones (large targets,
which dominate B's weighted Pearson) and score apart from the others, so CV says little; the
record carries the folds' spread (``summarize``) to show it.
"""

from __future__ import annotations

import numpy as np

from harness import metrics
from models.config import ConfigError

DEFAULT_FOLDS = 5
STRATIFY = ("target_scale",)
"""Per-sequence statistics folds can be balanced by (``sequence_statistic``)."""


def group_folds(seq_ix: np.ndarray, n_folds: int = DEFAULT_FOLDS, seed: int = 0,
                balance_by: np.ndarray | None = None) -> np.ndarray:
    """Fold number (0..n_folds-1) of each sequence, grouped by ``seq_ix`` value; with
    ``balance_by`` (one value per sequence) the folds are balanced by it.

    Sequences sharing a ``seq_ix`` (possible only when files are concatenated) share a fold
    (and, when balancing, their mean statistic).
    """
    seq_ix = np.asarray(seq_ix)
    groups, inverse = np.unique(seq_ix, return_inverse=True)
    if n_folds < 2:
        raise ConfigError(f"cross-validation needs at least 2 folds, got {n_folds}")
    if len(groups) < n_folds:
        raise ConfigError(f"{len(groups)} distinct sequences cannot make {n_folds} folds; use fewer folds or more data")
    rng = np.random.default_rng(seed)
    fold_of_group = np.empty(len(groups), dtype=np.int64)
    if balance_by is None:
        order = rng.permutation(len(groups))
        fold_of_group[order] = np.arange(len(groups)) % n_folds
        return fold_of_group[inverse]
    values = np.asarray(balance_by, dtype=np.float64)
    if values.shape != seq_ix.shape or not np.isfinite(values).all():
        raise ValueError(f"balance_by needs one finite value per sequence ({seq_ix.shape}), got {values.shape}")
    statistic = np.bincount(inverse, weights=values) / np.bincount(inverse)
    order = np.lexsort((rng.random(len(groups)), statistic))  # ties in a seeded random order
    dealt = np.concatenate([rng.permutation(n_folds) for _ in range(-(-len(groups) // n_folds))])[: len(groups)]
    fold_of_group[order] = dealt
    return fold_of_group[inverse]


def check_stratify(value: str | None) -> None:
    """ConfigError unless ``value`` is None or a known statistic (for configs' ``__post_init__``)."""
    if value is not None and value not in STRATIFY:
        raise ConfigError(f"train.stratify_folds must be null or one of {list(STRATIFY)}, got {value!r}")


def sequence_statistic(name: str, targets: np.ndarray, scored: np.ndarray) -> np.ndarray:
    """One value per sequence to balance folds by: ``target_scale`` is the root mean square of
    the scored targets (S, T, K), over steps and outputs."""
    check_stratify(name)
    y = np.asarray(targets[:, scored], dtype=np.float64)
    return np.sqrt(np.nanmean(y * y, axis=(1, 2)))


def folds_for(data, n_folds: int, seed: int, stratify: str | None = None) -> np.ndarray:
    """Fold number of each sequence of ``data`` (a ``SequenceSet``), balanced by the statistic
    ``stratify`` names (``STRATIFY``) or plainly random (None)."""
    balance = None if stratify is None else sequence_statistic(stratify, data.targets, data.scored)
    return group_folds(data.seq_ix, n_folds, seed, balance)


def fold_split(n_sequences: int, n_folds: int, fold: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(fit positions, held-out positions) of fold ``fold`` over sequences 0..n_sequences-1."""
    if not 0 <= fold < n_folds:
        raise ConfigError(f"fold must lie in 0..{n_folds - 1}, got {fold}")
    folds = group_folds(np.arange(n_sequences), n_folds, seed)
    return np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)


def summarize(competition, y: np.ndarray, oof: np.ndarray, row_fold: np.ndarray, **extra) -> dict:
    """Fold scores and their spread (a range that is large beside the OOF score says the folds
    disagree: more data, or ``stratify_folds``), the OOF score and per-output OOF scores of
    pooled rows, with the harness's metric."""
    metric = competition.metric
    n_folds = int(row_fold.max()) + 1
    folds = [metrics.score(competition, y[row_fold == f], oof[row_fold == f])[metric] for f in range(n_folds)]
    pooled = metrics.score(competition, y, oof)
    spread = {"min": float(min(folds)), "max": float(max(folds)), "range": float(max(folds) - min(folds)),
              "std": float(np.std(folds))}
    return {"n_folds": n_folds, "fold_scores": folds, "fold_spread": spread, "oof_score": pooled[metric],
            "oof_rows": int(len(y)),
            "oof_per_output": {name: pooled[name] for name in competition.prediction_names}, **extra}
