"""Exponential moving averages: smooth levels that forget the past at a chosen rate.

e[0] = x[0]; e[t] = e[t-1] + alpha * (x[t] - e[t-1]), alpha = 2 / (span + 1). The batch form
runs this same recursion over time (vectorized over sequences and columns) rather than an
IIR filter routine, so both forms do identical arithmetic and agree bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Transform

DEFAULT_SPANS = (5, 20, 50)


class EMA(Transform):
    """Exponential moving averages of every input column, one block per span."""

    kind = "ema"
    batch_element_budget = 1 << 24  # a recursion over time: fewer, larger chunks cost less Python

    def __init__(self, spans: Sequence[float] = DEFAULT_SPANS) -> None:
        super().__init__()
        self.spans = tuple(float(span) for span in spans)
        if not self.spans or any(not span >= 1 for span in self.spans):
            raise ValueError(f"EMA: spans must be at least 1, got {list(spans)}")
        self._alpha = (2.0 / (np.asarray(self.spans) + 1.0))[:, None]
        self.lags = (0,) * len(self.spans)  # the current row once per span: one flat block

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        return [f"{name}__ema{span:g}" for span in self.spans for name in input_names]

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        count, steps, width = sequences.shape
        out = np.empty((count, steps, len(self.spans), width))
        level = np.empty((count, len(self.spans), width))
        level[:] = sequences[:, :1, :]
        out[:, 0] = level
        change = np.empty_like(level)
        alpha = self._alpha
        for step in range(1, steps):
            np.subtract(sequences[:, step, None, :], level, change)
            np.multiply(change, alpha, change)
            np.add(level, change, level)
            out[:, step] = level
        return out.reshape(count, steps, -1)

    def _on_bind(self) -> None:
        size = len(self.spans) * self.n_inputs
        self._level = np.zeros(size)
        self._change = np.zeros(size)
        self._alpha_flat = np.repeat(self._alpha[:, 0], self.n_inputs)

    def step(self, out: np.ndarray) -> None:
        level = self._level
        if self._context.step == 0:
            np.copyto(level, self._lagged_flat)
        else:
            change = self._change
            np.subtract(self._lagged_flat, level, change)
            np.multiply(change, self._alpha_flat, change)
            np.add(level, change, level)
        np.copyto(out, level)
