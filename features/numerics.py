"""Small array helpers shared by the batch forms of the transforms.

The batch forms must perform, element for element, the same floating-point operations the
streaming forms perform one row at a time; these helpers build the lagged and count arrays
that make that possible (for example a lagged copy that repeats the first row, exactly as
the streaming history does before it has seen enough rows).
"""

from __future__ import annotations

import numpy as np

SEQUENCE_START = -1
"""A lag meaning "the row before the sequence began": by first-row fill, the first row."""


def lagged(sequences: np.ndarray, lag: int) -> np.ndarray:
    """The row ``lag`` steps back for every step, repeating the first row where none exists.

    ``sequences`` has shape (sequences, time, ...); the result has the same shape, with
    ``result[:, t] == sequences[:, max(t - lag, 0)]`` (``SEQUENCE_START``: always row 0). This is the batch mirror of
    :class:`features.base.StreamContext`, whose history is filled with the first row.
    """
    if lag == SEQUENCE_START:
        return np.repeat(sequences[:, :1], sequences.shape[1], axis=1)
    if lag < 0:
        raise ValueError(f"a lag must be zero or positive, got {lag}")
    if lag == 0:
        return sequences
    steps = sequences.shape[1]
    shift = min(lag, steps)
    result = np.empty_like(sequences)
    result[:, :shift] = sequences[:, :1]
    result[:, shift:] = sequences[:, : steps - shift]
    return result


def available_counts(steps: int, window: int | None) -> np.ndarray:
    """How many rows a window of ``window`` rows holds at each step (None: all rows so far)."""
    counts = np.arange(1, steps + 1, dtype=np.float64)
    if window is not None:
        np.minimum(counts, float(window), out=counts)
    return counts


def window_label(window: int | None) -> str:
    """The text a window contributes to an output column name ("all" for an expanding one)."""
    return "all" if window is None else str(window)


def training_rows(sequences: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """Training sequences as (rows, columns), subsampled without replacement (seeded) when large.

    Fitting a scaler or choosing pairs needs rows, not sequences; a fixed-seed subsample keeps
    fitting fast and deterministic.
    """
    rows = sequences.reshape(-1, sequences.shape[2])
    if len(rows) > max_rows:
        chosen = np.sort(np.random.default_rng(seed).choice(len(rows), size=max_rows, replace=False))
        rows = rows[chosen]
    return rows
