"""Rolling spectral power: how much of each column's recent motion sits in a few frequency bands.

Over the last ``window`` rows (the first row repeated before the sequence began), each
window is centred on its newest value and projected on the discrete Fourier basis; the
power of bin k is (C_k^2 + S_k^2) / window^2 and a band's power is the sum over its bins.
Bins 1..window/2 (the constant bin 0 is left out, so centring changes nothing but rounding).

The projection is a matrix product. Streaming multiplies the basis by one (window, columns)
slice; batch multiplies all windows at once with BLAS. The two sum the same terms in
different orders, so they agree to rounding (about 1e-15 relative to the window's values)
rather than bit for bit; centring on the newest value keeps that small even when the series
sits far from zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .base import Transform


def default_bands(window: int) -> tuple[tuple[int, int], ...]:
    """Three bands of bins (inclusive): the slowest quarter, the next quarter, the fast half."""
    half = window // 2
    quarter = max(1, half // 4)
    middle = max(quarter + 1, half // 2)
    bands = [(1, quarter), (quarter + 1, middle), (middle + 1, half)]
    return tuple((low, high) for low, high in bands if low <= high)


class SpectralPower(Transform):
    """Band powers of each column over a rolling window (bands are inclusive bin ranges)."""

    kind = "spectral_power"

    def __init__(self, window: int = 32, bands: Sequence[tuple[int, int]] | None = None) -> None:
        super().__init__()
        if int(window) < 4:
            raise ValueError(f"SpectralPower: window must be at least 4, got {window}")
        self.window = int(window)
        self.bands = tuple((int(low), int(high)) for low, high in (bands or default_bands(self.window)))
        half = self.window // 2
        for low, high in self.bands:
            if not 1 <= low <= high <= half:
                raise ValueError(f"SpectralPower: band ({low}, {high}) must satisfy 1 <= low <= high <= {half}")
        bins = [k for low, high in self.bands for k in range(low, high + 1)]
        self._band_starts = np.cumsum([0] + [high - low + 1 for low, high in self.bands[:-1]]).astype(np.intp)
        position = np.arange(self.window)
        angle = 2.0 * np.pi * np.outer(bins, position) / self.window
        # Rows: cosine of every bin, then sine of every bin, scaled so squares divide by window^2.
        self._basis = np.vstack([np.cos(angle), np.sin(angle)]) / self.window
        self._bins = len(bins)

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        return [f"{name}__power{low}-{high}_{self.window}" for low, high in self.bands for name in input_names]

    def _transform_into(self, sequences: np.ndarray, out: np.ndarray) -> None:
        count, steps, width = sequences.shape
        chunk = max(1, self.batch_element_budget // (steps * width * self.window))
        for start in range(0, count, chunk):
            stop = min(start + chunk, count)
            out[start:stop] = self._transform_batch(sequences[start:stop])

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        count, steps, width = sequences.shape
        padded = np.concatenate([np.repeat(sequences[:, :1], self.window - 1, axis=1), sequences], axis=1)
        windows = sliding_window_view(padded, self.window, axis=1)  # (count, steps, width, window)
        centered = windows - sequences[:, :, :, None]
        coefficients = centered.reshape(-1, self.window) @ self._basis.T
        squares = coefficients * coefficients
        power = squares[:, : self._bins] + squares[:, self._bins :]
        bands = np.add.reduceat(power, self._band_starts, axis=1)
        return bands.reshape(count, steps, width, len(self.bands)).transpose(0, 1, 3, 2).reshape(count, steps, -1)

    def _on_bind(self) -> None:
        width = self.n_inputs
        self._centered_window = np.zeros((self.window, width))
        self._coefficients = np.zeros((2 * self._bins, width))
        self._power = np.zeros((self._bins, width))
        self._cosine_part = self._coefficients[: self._bins]
        self._sine_part = self._coefficients[self._bins :]

    def _on_out(self, out: np.ndarray) -> None:
        self._out_grid = out.reshape(len(self.bands), self.n_inputs)

    def step(self, out: np.ndarray) -> None:
        if out is not self._out_seen:
            self._watch_out(out)
        np.subtract(self._context.window(self.window), self._current, self._centered_window)
        coefficients = np.matmul(self._basis, self._centered_window, out=self._coefficients)
        np.multiply(coefficients, coefficients, coefficients)
        np.add(self._cosine_part, self._sine_part, self._power)
        np.add.reduceat(self._power, self._band_starts, axis=0, out=self._out_grid)
