"""Lagged values and differences: the cheapest temporal features, read straight from history.

Before a sequence has k rows, the row k steps back is the first row (see ``features.base``),
so a lag repeats row 0 and a difference is x_t - x_0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Transform
from .numerics import lagged

DEFAULT_LAGS = (1, 2, 5, 10, 20, 50, 100)
DEFAULT_PERIODS = (1, 5, 10, 20)


def _positive_ints(values: Sequence[int], what: str) -> tuple[int, ...]:
    result = tuple(int(value) for value in values)
    if not result:
        raise ValueError(f"{what}: give at least one value")
    if any(value < 1 for value in result) or len(set(result)) != len(result):
        raise ValueError(f"{what}: values must be distinct positive integers, got {list(values)}")
    return result


class _LaggedBlock(Transform):
    """Outputs laid out period-major: for each period, all input columns."""

    suffix = "lag"

    def __init__(self, periods: Sequence[int]) -> None:
        super().__init__()
        self.periods = _positive_ints(periods, type(self).__name__)

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        return [f"{name}__{self.suffix}{period}" for period in self.periods for name in input_names]

    def _stacked_lags(self, sequences: np.ndarray) -> np.ndarray:
        return np.stack([lagged(sequences, period) for period in self.periods], axis=2)


class Lags(_LaggedBlock):
    """x[t - k] for each lag k."""

    kind = "lags"
    suffix = "lag"

    def __init__(self, lags: Sequence[int] = DEFAULT_LAGS) -> None:
        super().__init__(lags)
        self.lags = self.periods

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        count, steps, _ = sequences.shape
        return self._stacked_lags(sequences).reshape(count, steps, -1)

    def step(self, out: np.ndarray) -> None:
        np.copyto(out, self._lagged_flat)


class _ChangeBlock(_LaggedBlock):
    """Reads the current row once per period, then the old rows: two equal flat blocks."""

    def __init__(self, periods: Sequence[int]) -> None:
        super().__init__(periods)
        self.lags = (0,) * len(self.periods) + self.periods

    def _on_bind(self) -> None:
        half = len(self.periods) * self.n_inputs
        self._now = self._lagged_flat[:half]
        self._old = self._lagged_flat[half:]


class Differences(_ChangeBlock):
    """x[t] - x[t - k] for each period k (the change over k steps)."""

    kind = "differences"
    suffix = "diff"

    def __init__(self, periods: Sequence[int] = DEFAULT_PERIODS) -> None:
        super().__init__(periods)

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        count, steps, _ = sequences.shape
        return (sequences[:, :, None, :] - self._stacked_lags(sequences)).reshape(count, steps, -1)

    def step(self, out: np.ndarray) -> None:
        np.subtract(self._now, self._old, out)


class RateOfChange(_ChangeBlock):
    """(x[t] - x[t - k]) / max(|x[t - k]|, floor): the relative change over k steps.

    The floor keeps the ratio finite when the old value is (near) zero.
    """

    kind = "rate_of_change"
    suffix = "roc"

    def __init__(self, periods: Sequence[int] = DEFAULT_PERIODS, floor: float = 1e-8) -> None:
        super().__init__(periods)
        if not floor > 0:
            raise ValueError(f"RateOfChange: floor must be positive, got {floor}")
        self.floor = float(floor)

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        count, steps, _ = sequences.shape
        old = self._stacked_lags(sequences)
        change = sequences[:, :, None, :] - old
        scale = np.fmax(np.abs(old), self.floor)
        return np.divide(change, scale).reshape(count, steps, -1)

    def _on_bind(self) -> None:
        super()._on_bind()
        self._scale = np.zeros(len(self._old))
        self._floor = np.full(len(self._old), self.floor)

    def step(self, out: np.ndarray) -> None:
        scale = self._scale
        np.subtract(self._now, self._old, out)
        np.abs(self._old, scale)
        np.fmax(scale, self._floor, scale)
        np.divide(out, scale, out)


class Derivatives(Transform):
    """First and second discrete derivatives: x[t] - x[t-1] and (x[t] - x[t-1]) - (x[t-1] - x[t-2])."""

    kind = "derivatives"

    def __init__(self) -> None:
        super().__init__()
        self.lags = (0, 1, 1, 2)  # [x, x1] minus [x1, x2] is [first derivative, previous one]

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        return [f"{name}__d1" for name in input_names] + [f"{name}__d2" for name in input_names]

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        back_one = lagged(sequences, 1)
        first = sequences - back_one
        second = first - (back_one - lagged(sequences, 2))
        return np.concatenate([first, second], axis=2)

    def _on_bind(self) -> None:
        half = 2 * self.n_inputs
        self._newer = self._lagged_flat[:half]
        self._older = self._lagged_flat[half:]

    def _on_out(self, out: np.ndarray) -> None:
        self._first_out = out[: self.n_inputs]
        self._second_out = out[self.n_inputs :]

    def step(self, out: np.ndarray) -> None:
        if out is not self._out_seen:
            self._watch_out(out)
        np.subtract(self._newer, self._older, out)
        np.subtract(self._first_out, self._second_out, self._second_out)
