"""Transforms of named column pairs (batch and streaming forms do the same arithmetic, so they
agree bit for bit).

``LogRatio``: log(a / b) of named column pairs, e.g. bid against ask size or buy against sell
volume. Order-book ratios such as (a - b) / (a + b) saturate; their logarithm stays additive,
so a moving average of it is a moving average of order-flow, which a linear head can use.

``Product``: a * b of named column pairs, e.g. an order-flow average times a price gap (a
volatility proxy): a signal whose effect scales with volatility is a product, which a linear
head (or a ridge skip under a recurrent net) can use only when the product is a column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Transform


class _ColumnPairs(Transform):
    """A transform of (a, b) pairs of named input columns: the names are resolved once, and each
    row gathers both sides of every pair into reused buffers (``_gather``)."""

    def __init__(self, pairs: Sequence[Sequence[str]], prefix: str) -> None:
        super().__init__()
        self.pairs = tuple((str(a), str(b)) for a, b in pairs)
        if not self.pairs:
            raise ValueError(f"{type(self).__name__} needs at least one (a, b) pair")
        self.prefix = str(prefix)

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        missing = sorted({name for pair in self.pairs for name in pair} - set(input_names))
        if missing:
            raise ValueError(f"{type(self).__name__}: columns {missing} are not among the inputs")
        self._left = np.array([input_names.index(a) for a, _ in self.pairs], dtype=np.intp)
        self._right = np.array([input_names.index(b) for _, b in self.pairs], dtype=np.intp)
        return [f"{self.prefix}{a}_{b}" for a, b in self.pairs]

    def _on_bind(self) -> None:
        self._a = np.zeros(len(self.pairs))
        self._b = np.zeros(len(self.pairs))

    def _gather(self) -> tuple[np.ndarray, np.ndarray]:
        np.take(self._current, self._left, out=self._a)
        np.take(self._current, self._right, out=self._b)
        return self._a, self._b


class LogRatio(_ColumnPairs):
    """log(max(a, floor) / max(b, floor)) for each (a, b) pair of input column names."""

    kind = "log_ratio"

    def __init__(self, pairs: Sequence[Sequence[str]], floor: float = 1e-12, prefix: str = "lr_") -> None:
        super().__init__(pairs, prefix)
        if not floor > 0:
            raise ValueError(f"LogRatio: floor must be positive, got {floor}")
        self.floor = float(floor)

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        top = np.maximum(sequences[..., self._left], self.floor)
        bottom = np.maximum(sequences[..., self._right], self.floor)
        return np.log(top / bottom)

    def step(self, out: np.ndarray) -> None:
        a, b = self._gather()
        np.maximum(a, self.floor, out=a)
        np.maximum(b, self.floor, out=b)
        np.divide(a, b, out=a)
        np.log(a, out=out)


class Product(_ColumnPairs):
    """a * b for each (a, b) pair of input column names."""

    kind = "product"

    def __init__(self, pairs: Sequence[Sequence[str]], prefix: str = "x_") -> None:
        super().__init__(pairs, prefix)

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        return sequences[..., self._left] * sequences[..., self._right]

    def step(self, out: np.ndarray) -> None:
        a, b = self._gather()
        np.multiply(a, b, out=out)
