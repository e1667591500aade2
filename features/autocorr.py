"""Rolling autocorrelation: how much each column echoes itself k steps back, over a window.

Estimator, over the last n = min(t + 1, window) rows of y = x - x[0] (rows before the start
count as y = 0, like every lag here):

    r_k = (mean(y[s] * y[s - k]) - mean(y)^2) / var(y), clipped to [-1, 1]

All three sums run as ``s += new - old`` (streaming) and ``cumsum(new - old)`` (batch), so
the forms agree bit for bit. A window whose variance is negligible next to its mean square
(a constant stretch, up to rounding) gives 0 rather than amplified rounding noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Transform
from .numerics import available_counts, lagged
from .rolling import CountTable

DEFAULT_AUTOCORRELATION_LAGS = (1, 5, 10, 20)


class RollingAutocorrelation(Transform):
    """Autocorrelation of each column at several lags over a rolling window."""

    kind = "rolling_autocorrelation"

    def __init__(
        self,
        lags: Sequence[int] = DEFAULT_AUTOCORRELATION_LAGS,
        window: int = 100,
        relative_floor: float = 1e-10,
        absolute_floor: float = 1e-300,
    ) -> None:
        super().__init__()
        self.autocorrelation_lags = tuple(int(lag) for lag in lags)
        if not self.autocorrelation_lags or any(lag < 1 for lag in self.autocorrelation_lags):
            raise ValueError(f"RollingAutocorrelation: lags must be positive integers, got {list(lags)}")
        if len(set(self.autocorrelation_lags)) != len(self.autocorrelation_lags):
            raise ValueError(f"RollingAutocorrelation: repeated lags in {list(lags)}")
        self.span = int(window)
        if self.span <= max(self.autocorrelation_lags):
            raise ValueError(
                f"RollingAutocorrelation: window ({window}) must exceed the largest lag "
                f"({max(self.autocorrelation_lags)})"
            )
        self.relative_floor = float(relative_floor)
        self.absolute_floor = float(absolute_floor)
        count = len(self.autocorrelation_lags)
        # Gathered block, one row per lag k in each part: [y | y leaving | y k back | y leaving, k back].
        # Products of the first half with the second give the new and leaving lagged products;
        # the first half alone gives the window sums (kept once per lag, so every array is flat).
        self.lags = (
            (0,) * count
            + (self.span,) * count
            + self.autocorrelation_lags
            + tuple(self.span + lag for lag in self.autocorrelation_lags)
        )

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        return [f"{name}__acf{lag}_{self.span}" for lag in self.autocorrelation_lags for name in input_names]

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        count, steps, width = sequences.shape
        first = sequences[:, :1, :]
        centered = (sequences - first)[:, :, None, :]
        leaving = (lagged(sequences, self.span) - first)[:, :, None, :]
        echoes = np.stack([lagged(sequences, lag) - first for lag in self.autocorrelation_lags], axis=2)
        leaving_echoes = np.stack(
            [lagged(sequences, self.span + lag) - first for lag in self.autocorrelation_lags], axis=2
        )
        counts = available_counts(steps, self.span)[:, None, None]
        products = np.cumsum(centered * echoes - leaving * leaving_echoes, axis=1)
        total = np.cumsum(centered - leaving, axis=1)
        squares = np.cumsum(centered * centered - leaving * leaving, axis=1)
        products /= counts
        mean = total / counts
        mean_square = squares / counts
        mean_sq = mean * mean
        variance = mean_square - mean_sq
        floor = mean_square * self.relative_floor
        floor += self.absolute_floor
        denominator = np.fmax(variance, floor)
        result = products - mean_sq
        result /= denominator
        np.fmax(result, -1.0, result)
        np.fmin(result, 1.0, result)
        return np.broadcast_to(result, (count, steps, len(self.autocorrelation_lags), width)).reshape(count, steps, -1)

    def _on_bind(self) -> None:
        size = len(self.autocorrelation_lags) * self.n_inputs
        self._size = size
        block = self._centered_flat
        self._pairs_left = block[: 2 * size]
        self._pairs_right = block[2 * size :]
        self._now = block[:size]
        self._leaving = block[size : 2 * size]
        self._products = np.zeros(2 * size)
        self._squares = np.zeros(2 * size)
        self._change = np.zeros(3 * size)
        self._state = np.zeros(3 * size)
        self._moments = np.zeros(3 * size)
        self._mean_sq = np.zeros(size)
        self._denominator = np.zeros(size)
        self._relative = np.full(size, self.relative_floor)
        self._absolute = np.full(size, self.absolute_floor)
        self._minus_one = np.full(size, -1.0)
        self._plus_one = np.full(size, 1.0)
        self._counts = CountTable([self.span] * (3 * size))

    def step(self, out: np.ndarray) -> None:
        size = self._size
        change = self._change
        products = np.multiply(self._pairs_left, self._pairs_right, self._products)
        np.subtract(products[:size], products[size:], change[:size])
        np.subtract(self._now, self._leaving, change[size : 2 * size])
        squares = np.multiply(self._pairs_left, self._pairs_left, self._squares)
        np.subtract(squares[:size], squares[size:], change[2 * size :])
        step = self._context.step
        if step == 0:
            np.copyto(self._state, change)
        else:
            np.add(self._state, change, self._state)
        moments = np.divide(self._state, self._counts.at(step), self._moments)
        product_mean = moments[:size]
        mean = moments[size : 2 * size]
        mean_square = moments[2 * size :]
        mean_sq = np.multiply(mean, mean, self._mean_sq)
        denominator = self._denominator
        np.multiply(mean_square, self._relative, denominator)
        np.add(denominator, self._absolute, denominator)
        np.fmax(np.subtract(mean_square, mean_sq, out=mean), denominator, denominator)
        np.subtract(product_mean, mean_sq, out)
        np.divide(out, denominator, out)
        np.fmax(out, self._minus_one, out)
        np.fmin(out, self._plus_one, out)
