"""Sequence-grouped folds: every row of a sequence lands in the same fold.

Rows of one sequence share its hidden regime, so a split by rows would leak it between the
fitting and the stopping set and make early stopping optimistic. Folds are a seeded
permutation of whole sequences cut into near-equal parts.
"""

from __future__ import annotations

import numpy as np


def sequence_folds(n_sequences: int, n_folds: int, seed: int = 0) -> list[np.ndarray]:
    """Positions 0..n_sequences-1 split into ``n_folds`` disjoint, sorted index arrays."""
    if n_folds < 2:
        raise ValueError(f"need at least 2 folds, got {n_folds}")
    if n_sequences < n_folds:
        raise ValueError(f"{n_sequences} sequences cannot fill {n_folds} folds")
    order = np.random.default_rng(seed).permutation(n_sequences)
    return [np.sort(part) for part in np.array_split(order, n_folds)]


def fold_split(n_sequences: int, n_folds: int, fold: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(fit positions, held-out positions) for fold ``fold`` of ``n_folds``."""
    folds = sequence_folds(n_sequences, n_folds, seed)
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold must lie in 0..{n_folds - 1}, got {fold}")
    held = folds[fold]
    fit = np.sort(np.concatenate([f for i, f in enumerate(folds) if i != fold]))
    return fit, held
