"""Regime features: where this sequence sits relative to the training set, updated causally.

Each starts from the warm-up rows (the first rows a sequence shows before predictions are
scored) and keeps updating with every row, never looking ahead:

* RegimeSummary: the running mean level and RMS one-step change; from them the relative
  volatility (RMS change over its training-set value, :class:`RelativeVolatility`) and the
  regime cluster (:class:`RegimeCluster`);
* TrendSlope: least-squares slope over a rolling window, in training standard deviations
  per window;
* MeanReversionDistance: (x - 50-step mean) / 50-step std (a RollingMoments z-score).

Running sums follow the same ``+=`` / ``cumsum`` rule as ``features.rolling`` so the two
forms agree bit for bit.
"""

from __future__ import annotations

import numpy as np

from .base import Transform
from .numerics import lagged
from .rolling import RollingMoments

REGIME_OUTPUTS = ("relative_volatility", "cluster")


def _scale_or_one(values: np.ndarray) -> np.ndarray:
    """Training scales, with 1 where a column never moved (so ratios stay finite)."""
    scale = np.asarray(values, dtype=np.float64).copy()
    scale[~(scale > 0) | ~np.isfinite(scale)] = 1.0
    return scale


def _load_array(state: dict[str, np.ndarray], key: str, shape: tuple[int, ...], owner: str) -> np.ndarray:
    if key not in state:
        raise ValueError(f"{owner}: fitted state lacks {key!r} (has {sorted(state)})")
    array = np.asarray(state[key], dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{owner}: fitted {key!r} has shape {array.shape}, expected {shape}")
    return array


class MeanReversionDistance(RollingMoments):
    """Distance of each column from its rolling mean, in rolling standard deviations."""

    kind = "mean_reversion_distance"

    def __init__(self, window: int = 50, std_floor: float = 1e-12) -> None:
        super().__init__(outputs=[("zscore", int(window))], std_floor=std_floor)


def _trend_coefficients(steps: int, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step: rows in the window n, sum of their step indices, and window * 12 / (n^2 (n^2 - 1)).

    The slope over rows s = t-n+1..t is (n * sum(s*y) - sum(s) * sum(y)) / (n^2 (n^2 - 1) / 12).
    Both forms read these numbers from this one function, so they use identical constants.
    """
    step = np.arange(steps, dtype=np.float64)
    count = np.minimum(step + 1.0, float(window))
    index_sum = count * (2.0 * step - count + 1.0) / 2.0
    denominator = count * count * (count * count - 1.0)
    factor = np.zeros(steps)
    np.divide(12.0 * float(window), denominator, out=factor, where=denominator > 0)
    return count, index_sum, factor


class TrendSlope(Transform):
    """Least-squares slope of each column over a rolling window, as training stds per window."""

    kind = "trend_slope"
    needs_fit = True

    def __init__(self, window: int = 100) -> None:
        super().__init__()
        if int(window) < 2:
            raise ValueError(f"TrendSlope: window must be at least 2, got {window}")
        self.span = int(window)
        self.lags = (0, self.span)

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        return [f"{name}__trend_{self.span}" for name in input_names]

    def _learn(self, sequences: np.ndarray) -> None:
        self._inverse_scale = 1.0 / _scale_or_one(np.std(sequences, axis=(0, 1)))

    def fitted_state(self) -> dict[str, np.ndarray]:
        self._require_fitted()
        return {"inverse_scale": self._inverse_scale.copy()}

    def load_fitted_state(self, state: dict[str, np.ndarray]) -> None:
        self._inverse_scale = _load_array(state, "inverse_scale", (self.n_inputs,), self.describe())
        self._fitted = True
        self._runner = None

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        steps = sequences.shape[1]
        first = sequences[:, :1]
        centered = sequences - first
        leaving = lagged(sequences, self.span) - first
        time = np.arange(steps, dtype=np.float64)[:, None]
        weighted = np.cumsum(centered * time - leaving * (time - self.span), axis=1)
        total = np.cumsum(centered - leaving, axis=1)
        count, index_sum, factor = _trend_coefficients(steps, self.span)
        slope = weighted * count[:, None] - total * index_sum[:, None]
        slope *= factor[:, None]
        slope *= self._inverse_scale
        return slope

    # Flat layout: gathered block [y | y leaving]; running state [sum of t*y | sum of y].
    def _on_bind(self) -> None:
        width = self.n_inputs
        self._width = width
        self._pair = self._centered_flat
        self._now = self._centered_flat[:width]
        self._leaving = self._centered_flat[width:]
        self._terms = np.zeros(2 * width)
        self._change = np.zeros(2 * width)
        self._state = np.zeros(2 * width)
        self._scaled = np.zeros(2 * width)
        self._table_length = 0
        self._build_tables(1024)

    def _build_tables(self, length: int) -> None:
        """Per step, flat rows of the constants the step multiplies by (same values as batch)."""
        width = self._width
        step = np.arange(length, dtype=np.float64)[:, None]
        count, index_sum, factor = _trend_coefficients(length, self.span)
        self._time_rows = np.concatenate(
            [np.repeat(step, width, axis=1), np.repeat(step - self.span, width, axis=1)], axis=1
        )
        self._moment_rows = np.concatenate(
            [np.repeat(count[:, None], width, axis=1), np.repeat(index_sum[:, None], width, axis=1)], axis=1
        )
        self._factor_rows = np.repeat(factor[:, None], width, axis=1)
        self._table_length = length

    def step(self, out: np.ndarray) -> None:
        width = self._width
        step = self._context.step
        if step >= self._table_length:
            self._build_tables(2 * step + 2)
        change = self._change
        terms = np.multiply(self._pair, self._time_rows[step], self._terms)
        np.subtract(terms[:width], terms[width:], change[:width])
        np.subtract(self._now, self._leaving, change[width:])
        if step == 0:
            np.copyto(self._state, change)
        else:
            np.add(self._state, change, self._state)
        scaled = np.multiply(self._state, self._moment_rows[step], self._scaled)
        np.subtract(scaled[:width], scaled[width:], out)
        np.multiply(out, self._factor_rows[step], out)
        np.multiply(out, self._inverse_scale, out)


def _running_summary(sequences: np.ndarray) -> np.ndarray:
    """(sequences, time, 2 * inputs): running mean of x - x[0], then running RMS one-step change.

    Batch mirror of RegimeSummary's running sums (cumsum of the same terms, divided by the
    same counts: t + 1 rows, max(t, 1) changes).
    """
    steps = sequences.shape[1]
    change = sequences - lagged(sequences, 1)
    terms = np.concatenate([sequences - sequences[:, :1], change * change], axis=2)
    summary = np.cumsum(terms, axis=1)
    summary /= _summary_counts(steps, sequences.shape[2])
    width = sequences.shape[2]
    np.sqrt(summary[:, :, width:], summary[:, :, width:])
    return summary


def _summary_counts(steps: int, width: int) -> np.ndarray:
    """Per step, [t + 1 repeated per column | max(t, 1) repeated per column]."""
    step = np.arange(steps, dtype=np.float64)[:, None]
    rows = np.repeat(step + 1.0, width, axis=1)
    changes = np.repeat(np.maximum(step, 1.0), width, axis=1)
    return np.concatenate([rows, changes], axis=1)


class RegimeSummary(Transform):
    """A running per-sequence summary (mean level, RMS one-step change) and the regime it shows.

    Outputs, in the order given by ``outputs``:

    * ``"relative_volatility"``: per column, the RMS one-step change so far over its
      training value (``<col>__relvol``), then their mean over columns (``relvol_mean``);
    * ``"cluster"``: the nearest k-means centre (``regime_cluster``, 0..k-1 as a float),
      optionally followed by squared distances to every centre. KMeans is fitted on the
      standardised summaries of training sequences at the end of the warm-up (row
      ``warmup - 1``, or the last row if shorter; pass the competition's warm-up length,
      ``harness.competitions.<X>.warmup_steps``); afterwards every row is assigned from
      the summary of the rows so far.

    Both outputs share the running sums, which is why they live in one transform;
    :class:`RelativeVolatility` and :class:`RegimeCluster` are the single-output forms.
    """

    kind = "regime_summary"
    needs_fit = True

    def __init__(
        self,
        warmup: int,
        outputs: tuple[str, ...] = REGIME_OUTPUTS,
        n_clusters: int = 8,
        with_distances: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.outputs = tuple(outputs)
        unknown = [output for output in self.outputs if output not in REGIME_OUTPUTS]
        if not self.outputs or unknown or len(set(self.outputs)) != len(self.outputs):
            raise ValueError(
                f"{type(self).__name__}: outputs must be distinct names from {REGIME_OUTPUTS}, got {list(outputs)}"
            )
        if int(n_clusters) < 1 or int(warmup) < 1:
            raise ValueError(
                f"{type(self).__name__}: n_clusters and warmup must be positive, got {n_clusters}, {warmup}"
            )
        self.n_clusters = int(n_clusters)
        self.warmup = int(warmup)
        self.with_distances = bool(with_distances)
        self.seed = int(seed)
        self._volatility = "relative_volatility" in self.outputs
        self._cluster = "cluster" in self.outputs
        self.lags = (1,)

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        names: list[str] = []
        for output in self.outputs:
            if output == "relative_volatility":
                names += [f"{name}__relvol" for name in input_names] + ["relvol_mean"]
            else:
                names += ["regime_cluster"]
                if self.with_distances:
                    names += [f"regime_distance{index}" for index in range(self.n_clusters)]
        return names

    # ---------------------------------------------------------------------------- fitting
    def _learn(self, sequences: np.ndarray) -> None:
        count, steps, width = sequences.shape
        if self._volatility:
            change = sequences[:, 1:] - sequences[:, :-1]
            if change.size == 0:
                raise ValueError(f"{self.describe()}.fit: training sequences need at least two steps")
            self._inverse_volatility = 1.0 / _scale_or_one(np.sqrt(np.mean(change * change, axis=(0, 1))))
        if self._cluster:
            if count < self.n_clusters:
                raise ValueError(
                    f"{self.describe()}.fit: {count} training sequences cannot make {self.n_clusters} clusters"
                )
            row = min(self.warmup, steps) - 1
            summary = _running_summary(sequences)[:, row]
            summary[:, :width] += sequences[:, 0]  # the mean level itself, not relative to row 0
            center = summary.mean(axis=0)
            scale = _scale_or_one(summary.std(axis=0))
            from sklearn.cluster import KMeans  # fitting only: a solution that loads state never imports it

            model = KMeans(n_clusters=self.n_clusters, n_init=4, random_state=self.seed)
            model.fit((summary - center) / scale)
            self._center = center
            self._inverse_scale = 1.0 / scale
            self._centroids = np.asarray(model.cluster_centers_, dtype=np.float64)

    def fitted_state(self) -> dict[str, np.ndarray]:
        self._require_fitted()
        state: dict[str, np.ndarray] = {}
        if self._volatility:
            state["inverse_volatility"] = self._inverse_volatility.copy()
        if self._cluster:
            state["center"] = self._center.copy()
            state["inverse_scale"] = self._inverse_scale.copy()
            state["centroids"] = self._centroids.copy()
        return state

    def load_fitted_state(self, state: dict[str, np.ndarray]) -> None:
        owner = self.describe()
        width = self.n_inputs
        if self._volatility:
            self._inverse_volatility = _load_array(state, "inverse_volatility", (width,), owner)
        if self._cluster:
            self._center = _load_array(state, "center", (2 * width,), owner)
            self._inverse_scale = _load_array(state, "inverse_scale", (2 * width,), owner)
            self._centroids = _load_array(state, "centroids", (self.n_clusters, 2 * width), owner)
        self._fitted = True
        self._runner = None

    def _sequence_centroids(self, first_rows: np.ndarray) -> np.ndarray:
        """Centroids moved so that summary * inverse_scale can be compared with them directly.

        With s the summary relative to row 0, the standardised summary is
        (s + [x0, 0] - center) * inverse_scale; folding the per-sequence part into the
        centroids once per sequence saves two numpy calls per row.
        """
        anchor = np.concatenate([first_rows, np.zeros_like(first_rows)], axis=-1) - self._center
        return self._centroids - (anchor * self._inverse_scale)[..., None, :]

    # ------------------------------------------------------------------------------ batch
    def _batch_width(self) -> int:
        return 6 * self.n_inputs + self.n_outputs

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        out = np.empty(sequences.shape[:2] + (self.n_outputs,))
        self._transform_chunk(sequences, out)
        return out

    def _transform_chunk(self, sequences: np.ndarray, out: np.ndarray) -> None:
        width = self.n_inputs
        summary = _running_summary(sequences)
        position = 0
        for output in self.outputs:
            if output == "relative_volatility":
                ratio = summary[:, :, width:] * self._inverse_volatility
                out[:, :, position : position + width] = ratio
                out[:, :, position + width] = np.add.reduce(ratio, axis=2) / width
                position += width + 1
                continue
            summary *= self._inverse_scale
            moved = self._sequence_centroids(sequences[:, 0])
            distances = np.empty(summary.shape[:2] + (self.n_clusters,))
            offsets = np.empty_like(summary)
            for cluster in range(self.n_clusters):
                np.subtract(summary, moved[:, None, cluster, :], offsets)
                offsets *= offsets
                np.add.reduce(offsets, axis=2, out=distances[:, :, cluster])
            out[:, :, position] = np.argmin(distances, axis=2)
            if self.with_distances:
                out[:, :, position + 1 : position + 1 + self.n_clusters] = distances
            position += 1 + (self.n_clusters if self.with_distances else 0)

    # -------------------------------------------------------------------------- streaming
    # Flat layout: running state [sum of y | sum of squared changes]; dividing by
    # [t + 1 | max(t, 1)] gives [mean level - x0 | squared change RMS] in one call.
    def _on_bind(self) -> None:
        width = self.n_inputs
        self._back_one = self._lagged[0]
        self._change = np.zeros(2 * width)
        self._change_level = self._change[:width]
        self._change_squared = self._change[width:]
        self._state = np.zeros(2 * width)
        self._summary = np.zeros(2 * width)
        self._rms = self._summary[width:]
        self._moved_centroids = np.zeros((self.n_clusters, 2 * width))
        self._offsets = np.zeros((self.n_clusters, 2 * width))
        self._distances = np.zeros(self.n_clusters)
        self._count_rows = _summary_counts(1024, width)

    def _on_out(self, out: np.ndarray) -> None:
        position = 0
        for output in self.outputs:
            if output == "relative_volatility":
                self._ratio_out = out[position : position + self.n_inputs]
                self._mean_position = position + self.n_inputs
                position += self.n_inputs + 1
            else:
                self._cluster_position = position
                self._distances_out = out[position + 1 : position + 1 + self.n_clusters]
                position += 1 + (self.n_clusters if self.with_distances else 0)

    def step(self, out: np.ndarray) -> None:
        if out is not self._out_seen:
            self._watch_out(out)
        step = self._context.step
        if step >= len(self._count_rows):
            self._count_rows = _summary_counts(2 * step + 2, self.n_inputs)
        change = self._change
        np.copyto(self._change_level, self._centered_current)
        squared = np.subtract(self._current, self._back_one, self._change_squared)
        np.multiply(squared, squared, squared)
        if step == 0:
            np.copyto(self._state, change)
            if self._cluster:
                self._moved_centroids[:] = self._sequence_centroids(self._first)
        else:
            np.add(self._state, change, self._state)
        summary = np.divide(self._state, self._count_rows[step], self._summary)
        np.sqrt(self._rms, self._rms)
        if self._volatility:
            ratio = np.multiply(self._rms, self._inverse_volatility, self._ratio_out)
            out[self._mean_position] = np.add.reduce(ratio) / self.n_inputs
        if self._cluster:
            np.multiply(summary, self._inverse_scale, summary)
            offsets = np.subtract(summary, self._moved_centroids, self._offsets)
            np.multiply(offsets, offsets, offsets)
            distances = np.add.reduce(offsets, axis=1, out=self._distances)
            out[self._cluster_position] = distances.argmin()
            if self.with_distances:
                np.copyto(self._distances_out, distances)


class RelativeVolatility(RegimeSummary):
    """RMS one-step change so far over its training value, per column, plus the column mean."""

    kind = "relative_volatility"

    def __init__(self) -> None:
        super().__init__(warmup=1, outputs=("relative_volatility",))


class RegimeCluster(RegimeSummary):
    """The k-means regime (fitted on training warm-up summaries) nearest to the running summary."""

    kind = "regime_cluster"

    def __init__(self, warmup: int, n_clusters: int = 8, with_distances: bool = False, seed: int = 0) -> None:
        super().__init__(
            warmup=warmup, outputs=("cluster",), n_clusters=n_clusters, with_distances=with_distances, seed=seed
        )
