"""The ``PredictionModel`` every trained solution exposes, written once.

A trained model here is a one-row model: ``reset()`` starts a sequence and ``update(row, need)``
feeds the next row and returns its prediction (or None when ``need`` is false). The grader
calls ``predict`` once per row of every sequence in file order, so the only state kept here is
which sequence is running: the model is reset whenever ``seq_ix`` changes. The returned vector
is a copy, because a candidate's caller may keep it while the model reuses its buffers.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class RowModel(Protocol):
    def reset(self) -> None: ...

    def update(self, row: np.ndarray, need: bool = True) -> np.ndarray | None: ...


class SequenceModel:
    """Base of the solutions' ``PredictionModel``: ``predict(data_point)`` over a ``RowModel``."""

    def __init__(self, model: RowModel) -> None:
        self.model = model
        self.seq_ix = None

    def predict(self, data_point) -> np.ndarray | None:
        if data_point.seq_ix != self.seq_ix:
            self.seq_ix = data_point.seq_ix
            self.model.reset()
        out = self.model.update(data_point.state, bool(data_point.need_prediction))
        return None if out is None else out.copy()
