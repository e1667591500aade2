"""Rolling and expanding window statistics: mean, standard deviation, z-score, min, max.

Means and variances come from running sums of values centred on the sequence's first row
(y = x - x[0]): streaming adds ``new - old`` each row, batch takes ``cumsum`` of the same
``new - old`` terms, so the two forms are bit-for-bit equal. Centring on the first row keeps
the sums small for series that stay near their starting level, which limits the
cancellation in var = E[y^2] - E[y]^2; variances below zero from rounding are clipped to 0.
Before a window is full it covers the rows available (n = min(t + 1, window)); a window of
``None`` is expanding (all rows so far).

Minimum and maximum are exact (no rounding), so they are computed directly: over the recent
window when streaming, and with scipy's O(T) running-extremum filters in batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Transform
from .numerics import SEQUENCE_START, available_counts, lagged, window_label

DEFAULT_WINDOWS = (5, 10, 20, 50, 100)
MOMENT_STATS = ("mean", "std", "zscore")
EXTREMUM_STATS = ("min", "max")

Window = int | None


def _windows(windows: Sequence[Window], what: str, allow_expanding: bool) -> tuple[Window, ...]:
    result: list[Window] = []
    for window in windows:
        if window is None and allow_expanding:
            result.append(None)
        elif window is not None and int(window) >= 1:
            result.append(int(window))
        else:
            allowed = "positive integers or None" if allow_expanding else "positive integers"
            raise ValueError(f"{what}: windows must be {allowed}, got {window!r}")
    if not result or len(set(result)) != len(result):
        raise ValueError(f"{what}: give at least one window and no repeats, got {list(windows)}")
    return tuple(result)


class CountTable:
    """Per step, a flat row of window fill counts: min(t + 1, w) for each position's window.

    ``windows`` gives, per position of the flat state, its window (None = all rows so far).
    Rows are built for 1024 steps and doubled on demand, so a lookup is one index.
    """

    def __init__(self, windows: Sequence[Window], length: int = 1024) -> None:
        self.windows = tuple(windows)
        self._build(length)

    def _build(self, length: int) -> None:
        self.table = np.stack([available_counts(length, window) for window in self.windows], axis=1)

    def at(self, step: int) -> np.ndarray:
        if step >= len(self.table):
            self._build(2 * step + 2)
        return self.table[step]


class RollingMoments(Transform):
    """Mean, standard deviation and z-score of each column over rolling or expanding windows.

    z-score = (x - mean) / max(std, std_floor). ``outputs`` picks (stat, window) pairs and
    their order; by default every stat for every window, stat-major. A window of ``None`` is
    expanding, so ``RollingMoments(outputs=[("zscore", None)])`` is the causal per-sequence
    z-score and ``outputs=[("zscore", 50)]`` the distance from a 50-step mean over its std.
    """

    kind = "rolling_moments"

    def __init__(
        self,
        windows: Sequence[Window] = DEFAULT_WINDOWS,
        stats: Sequence[str] = ("mean", "std"),
        outputs: Sequence[tuple[str, Window]] | None = None,
        std_floor: float = 1e-12,
    ) -> None:
        super().__init__()
        if outputs is None:
            pairs = [(stat, window) for stat in stats for window in _windows(windows, "RollingMoments", True)]
        else:
            pairs = [(str(stat), window) for stat, window in outputs]
        if not pairs:
            raise ValueError("RollingMoments: no outputs requested")
        for stat, _ in pairs:
            if stat not in MOMENT_STATS:
                raise ValueError(f"RollingMoments: unknown stat {stat!r}; use one of {MOMENT_STATS}")
        if len(set(pairs)) != len(pairs):
            raise ValueError(f"RollingMoments: repeated outputs in {pairs}")
        if not std_floor > 0:
            raise ValueError(f"RollingMoments: std_floor must be positive, got {std_floor}")
        self.outputs = tuple((stat, None if window is None else int(window)) for stat, window in pairs)
        self.std_floor = float(std_floor)
        ordered: list[Window] = []
        for _, window in self.outputs:
            if window not in ordered:
                ordered.append(window)
        self.windows = _windows(ordered, "RollingMoments", True)
        self._stats_used = {stat for stat, _ in self.outputs}
        self._needs_variance = bool(self._stats_used & {"std", "zscore"})
        # Gathered block: the current row once per window, then each window's leaving row
        # (for an expanding window, the row before the sequence, whose centred value is 0).
        self._leaving_lags = tuple(SEQUENCE_START if window is None else window for window in self.windows)
        self.lags = (0,) * len(self.windows) + self._leaving_lags

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        width = len(input_names)
        windows = len(self.windows)
        select = []
        names = []
        for stat, window in self.outputs:
            block = (MOMENT_STATS.index(stat) * windows + self.windows.index(window)) * width
            select.extend(range(block, block + width))
            names.extend(f"{name}__{stat}_{window_label(window)}" for name in input_names)
        self._select = np.asarray(select, dtype=np.intp)
        return names

    # ------------------------------------------------------------------------------ batch
    def _batch_width(self) -> int:
        return max(self.n_outputs, 8 * self.n_inputs)

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        out = np.empty(sequences.shape[:2] + (self.n_outputs,))
        self._transform_chunk(sequences, out)
        return out

    def _transform_chunk(self, sequences: np.ndarray, out: np.ndarray) -> None:
        """One window at a time, the same operations as ``step`` in the same order."""
        steps, width = sequences.shape[1], sequences.shape[2]
        first = sequences[:, :1, :]
        centered = sequences - first
        centered_squares = centered * centered
        position = {pair: index * width for index, pair in enumerate(self.outputs)}
        for window, lag in zip(self.windows, self._leaving_lags):
            counts = available_counts(steps, window)[:, None]
            # The leaving value of an expanding window is exactly 0, and y - 0 is y bit for
            # bit, so the subtraction is skipped; a lagged copy of y equals lagged(x) - x[0].
            expanding = lag == SEQUENCE_START
            mean = np.cumsum(centered if expanding else centered - lagged(centered, lag), axis=1)
            mean /= counts
            if ("mean", window) in position:
                start = position[("mean", window)]
                np.add(mean, first, out[:, :, start : start + width])
            if not self._needs_variance:
                continue
            squares = centered_squares if expanding else centered_squares - lagged(centered_squares, lag)
            std = np.cumsum(squares, axis=1)
            std /= counts
            std -= mean * mean
            np.fmax(std, 0.0, std)
            np.sqrt(std, std)
            if ("std", window) in position:
                start = position[("std", window)]
                out[:, :, start : start + width] = std
            if ("zscore", window) in position:
                start = position[("zscore", window)]
                np.fmax(std, self.std_floor, std)
                np.divide(centered - mean, std, out[:, :, start : start + width])

    # -------------------------------------------------------------------------- streaming
    # Flat layout of this transform's gathered block: [y tiled once per window | leaving rows].
    # Running state is [sums | sums of squares]; dividing it by [counts | counts] gives
    # [means | mean squares] in one call.
    def _on_bind(self) -> None:
        size = len(self.windows) * self.n_inputs
        self._size = size
        halves = 2 if self._needs_variance else 1
        self._state = np.zeros(halves * size)
        self._results = np.zeros(len(MOMENT_STATS) * size)
        per_position = [window for window in self.windows for _ in range(self.n_inputs)]
        self._counts = CountTable(per_position * halves)
        self._with_mean = "mean" in self._stats_used
        self._with_zscore = "zscore" in self._stats_used
        used = [stat for stat in MOMENT_STATS if stat in self._stats_used]
        # Outputs in canonical order (stat-major, windows as given) are computed straight into
        # the output vector; any other order goes through an internal buffer and one take.
        self._direct = list(self.outputs) == [(stat, window) for stat in used for window in self.windows]

    def _on_out(self, out: np.ndarray) -> None:
        size = self._size
        halves = len(self._state) // size
        block = self._centered_flat
        change = np.zeros(halves * size)
        squares = np.zeros(2 * size)
        moments = np.zeros(halves * size)
        targets = {stat: self._results[index * size : (index + 1) * size] for index, stat in enumerate(MOMENT_STATS)}
        if self._direct:
            used = [stat for stat in MOMENT_STATS if stat in self._stats_used]
            targets.update({stat: out[index * size : (index + 1) * size] for index, stat in enumerate(used)})
        # Everything step() touches, unpacked in one go (attribute lookups cost per row).
        self._plan = (
            block[:size], block[size:], block, squares, squares[:size], squares[size:],
            change, change[:size], change[size:], moments, moments[:size], moments[size:],
            np.zeros(size), np.zeros(size), np.full(size, self.std_floor),
            targets["mean"], targets["std"], targets["zscore"], self._first_flat[:size],
        )

    def step(self, out: np.ndarray) -> None:
        if out is not self._out_seen:
            self._watch_out(out)
        (now, leaving, gathered, squares, squares_now, squares_leaving, change, change_sum, change_squares,
         moments, mean, mean_square, scratch, zeros, floor, mean_out, std_out, zscore_out, first_block) = self._plan
        step = self._context.step
        table = self._counts.table
        if step >= len(table):
            self._counts.at(step)  # grows the table
            table = self._counts.table
        np.subtract(now, leaving, change_sum)
        if self._needs_variance:
            np.multiply(gathered, gathered, squares)
            np.subtract(squares_now, squares_leaving, change_squares)
        if step == 0:
            np.copyto(self._state, change)
        else:
            np.add(self._state, change, self._state)
        np.divide(self._state, table[step], moments)
        if self._with_mean:
            np.add(mean, first_block, mean_out)
        if self._needs_variance:
            np.multiply(mean, mean, scratch)
            np.subtract(mean_square, scratch, std_out)
            np.fmax(std_out, zeros, std_out)
            np.sqrt(std_out, std_out)
            if self._with_zscore:
                np.subtract(now, mean, zscore_out)
                np.fmax(std_out, floor, scratch)
                np.divide(zscore_out, scratch, zscore_out)
        if not self._direct:
            self._results.take(self._select, out=out, mode="wrap")


class ExpandingZScore(RollingMoments):
    """(x - mean so far) / std so far, per sequence and column: a causal per-sequence z-score."""

    kind = "expanding_zscore"

    def __init__(self, std_floor: float = 1e-12) -> None:
        super().__init__(outputs=[("zscore", None)], std_floor=std_floor)


class RollingExtrema(Transform):
    """Minimum and maximum of each column over rolling windows (rows available so far)."""

    kind = "rolling_extrema"

    def __init__(self, windows: Sequence[int] = DEFAULT_WINDOWS, stats: Sequence[str] = EXTREMUM_STATS) -> None:
        super().__init__()
        self.windows = _windows(windows, "RollingExtrema", False)
        self.stats = tuple(stats)
        if not self.stats or any(stat not in EXTREMUM_STATS for stat in self.stats):
            raise ValueError(f"RollingExtrema: stats must be among {EXTREMUM_STATS}, got {list(stats)}")
        self.window = max(self.windows)  # type: ignore[type-var]

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        return [
            f"{name}__{stat}_{window}" for stat in self.stats for window in self.windows for name in input_names
        ]

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        from scipy.ndimage import maximum_filter1d, minimum_filter1d

        count, steps, _ = sequences.shape
        blocks = []
        for stat in self.stats:
            running = minimum_filter1d if stat == "min" else maximum_filter1d
            for window in self.windows:
                blocks.append(running(sequences, int(window), axis=1, mode="nearest", origin=(int(window) - 1) // 2))
        return np.stack(blocks, axis=2).reshape(count, steps, -1)

    def _on_bind(self) -> None:
        self._reducers = [np.minimum if stat == "min" else np.maximum for stat in self.stats]
        self._starts = [self.window - int(window) for window in self.windows]  # type: ignore[arg-type]

    def _on_out(self, out: np.ndarray) -> None:
        grid = out.reshape(len(self.stats), len(self.windows), self.n_inputs)
        self._plan = [
            (reducer.reduce, start, grid[stat_index, window_index])
            for stat_index, reducer in enumerate(self._reducers)
            for window_index, start in enumerate(self._starts)
        ]

    def step(self, out: np.ndarray) -> None:
        if out is not self._out_seen:
            self._watch_out(out)
        recent = self._context.window(self.window)
        for reduce, start, target in self._plan:
            reduce(recent[start:], axis=0, out=target)
