"""Turning rows into sequences and splitting them by ``seq_ix``, so fitting sees training only.

Why by sequence: rows of one sequence are strongly related, so a row-level split leaks a
validation sequence's level, volatility and regime into whatever is fitted (quantiles,
k-means, pair choices, scalers). Split sequence ids first, then fit on the training ids.
"""

from __future__ import annotations

import numpy as np


def rows_to_sequences(
    values: np.ndarray, seq_ix: np.ndarray, step_in_seq: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Group (rows, columns) values into (sequences, time, columns), one entry per ``seq_ix``.

    Sequences come out in ascending ``seq_ix`` order; rows within a sequence in ``step_in_seq``
    order when given, else in file order. Every sequence must have the same number of rows.
    Returns (sequence ids, sequences).
    """
    values = np.asarray(values)
    seq_ix = np.asarray(seq_ix).reshape(-1)
    if values.ndim != 2 or len(values) != len(seq_ix):
        raise ValueError(f"need values (rows, columns) and one seq_ix per row; got {values.shape} and {seq_ix.shape}")
    if len(seq_ix) == 0:
        raise ValueError("no rows to group")
    keys = [seq_ix] if step_in_seq is None else [np.asarray(step_in_seq).reshape(-1), seq_ix]
    order = np.lexsort(keys) if step_in_seq is not None else np.argsort(seq_ix, kind="stable")
    ids, counts = np.unique(seq_ix, return_counts=True)
    if not np.all(counts == counts[0]):
        raise ValueError(f"sequences differ in length ({counts.min()} to {counts.max()} rows); cannot stack them")
    return ids, values[order].reshape(len(ids), counts[0], values.shape[1])


def split_sequence_ids(ids: np.ndarray, valid_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle sequence ids with a fixed seed and split them into (train ids, validation ids)."""
    ids = np.unique(np.asarray(ids))
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be between 0 and 1, got {valid_fraction}")
    if len(ids) < 2:
        raise ValueError(f"need at least two sequences to split, got {len(ids)}")
    shuffled = np.random.default_rng(seed).permutation(ids)
    n_valid = min(len(ids) - 1, max(1, int(round(len(ids) * valid_fraction))))
    return np.sort(shuffled[n_valid:]), np.sort(shuffled[:n_valid])


def take_sequences(ids: np.ndarray, sequences: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The sequences whose id is in ``wanted``, in ``wanted`` order (ids as from rows_to_sequences)."""
    ids = np.asarray(ids)
    position = {key: index for index, key in enumerate(ids.tolist())}
    missing = [key for key in np.asarray(wanted).tolist() if key not in position]
    if missing:
        raise KeyError(f"sequence ids not present: {missing[:10]}")
    return sequences[[position[key] for key in np.asarray(wanted).tolist()]]
