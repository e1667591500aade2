"""Transforms that cannot explode, whatever the data's sign or scale.

Why: a log with a tiny floor (``log(max(v, 1e-12))``) turns a zero or negative volume into
about -27.6, a value no training row near it prepared the model for; on a market whose
volumes are sometimes <= 0 such features dominate a linear head. These maps grow like a log
for large magnitudes, are smooth and odd through 0, and are defined for every finite input:

* ``signed_log1p``: sign(x) * log1p(|x| / scale) per input column;
* ``signed_log_ratio``: signed_log1p(a) - signed_log1p(b) per (a, b) pair of named columns,
  which for large positive a and b is log(a / b), the log size ratio, and stays bounded by the
  magnitudes' logs elsewhere.

Both forms run the same element-wise numpy calls in the same order, so they agree bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Transform
from .pairs import _ColumnPairs


def _check_scale(owner: str, scale: float) -> float:
    if not (isinstance(scale, (int, float)) and np.isfinite(scale) and scale > 0):
        raise ValueError(f"{owner}: scale must be a positive number (the magnitude where the log starts), got {scale!r}")
    return float(scale)


def _signed_log1p(x: np.ndarray, scale: float, buffer: np.ndarray, out: np.ndarray) -> np.ndarray:
    """sign(x) * log1p(|x| / scale) into ``out`` through ``buffer`` (same shape as x)."""
    np.abs(x, out=buffer)
    if scale != 1.0:
        np.divide(buffer, scale, out=buffer)
    np.log1p(buffer, out=buffer)
    return np.copysign(buffer, x, out=out)


class SignedLog1p(Transform):
    """sign(x) * log1p(|x| / scale) of every input column (``slog_<name>``)."""

    kind = "signed_log1p"

    def __init__(self, scale: float = 1.0, prefix: str = "slog_") -> None:
        super().__init__()
        self.scale = _check_scale("SignedLog1p", scale)
        self.prefix = str(prefix)

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        return [f"{self.prefix}{name}" for name in input_names]

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        return _signed_log1p(sequences, self.scale, np.empty_like(sequences), np.empty_like(sequences))

    def _on_bind(self) -> None:
        self._buffer = np.zeros(self.n_inputs)

    def step(self, out: np.ndarray) -> None:
        _signed_log1p(self._current, self.scale, self._buffer, out)


class SignedLogRatio(_ColumnPairs):
    """signed_log1p(a) - signed_log1p(b) for each (a, b) pair of input column names (``slr_a_b``)."""

    kind = "signed_log_ratio"

    def __init__(self, pairs: Sequence[Sequence[str]], scale: float = 1.0, prefix: str = "slr_") -> None:
        super().__init__(pairs, prefix)
        self.scale = _check_scale("SignedLogRatio", scale)

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        a = np.ascontiguousarray(sequences[..., self._left])
        b = np.ascontiguousarray(sequences[..., self._right])
        _signed_log1p(a, self.scale, np.empty_like(a), a)
        _signed_log1p(b, self.scale, np.empty_like(b), b)
        return a - b

    def _on_bind(self) -> None:
        super()._on_bind()
        self._buffer = np.zeros(len(self.pairs))

    def step(self, out: np.ndarray) -> None:
        a, b = self._gather()
        _signed_log1p(a, self.scale, self._buffer, a)
        _signed_log1p(b, self.scale, self._buffer, b)
        np.subtract(a, b, out=out)
