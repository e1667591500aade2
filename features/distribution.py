"""Distribution transforms fitted on training rows: a quantile transform and Yeo-Johnson.

Fitting uses scikit-learn (QuantileTransformer, PowerTransformer) on training rows only; what
ships is their numbers (quantiles and references; lambdas, means and scales), re-applied with
numpy in both forms, because a per-row call into scikit-learn costs far more than the
per-call budget and a pickle of estimator objects ties a solution to one library version.
Tests check the numpy re-application against scikit-learn's own ``transform``.

Quantile mapping, as scikit-learn defines it: linear interpolation of the training
quantiles onto the reference grid, averaged with the same interpolation run backwards so a
value equal to a repeated quantile maps to the middle of that run; values at or beyond the
extremes map to 0 or 1 (for normal output, within 1e-7 of them), then the normal quantile
function is applied and clipped. Streaming finds each column's segment for all columns in
one ``searchsorted`` over complex keys (real part: column index, imaginary part: knot),
which numpy orders lexicographically.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .base import Transform
from .numerics import training_rows

if TYPE_CHECKING:  # scikit-learn is needed to fit, not to stream: imported where it is used
    from sklearn.preprocessing import PowerTransformer, QuantileTransformer

BOUNDS_THRESHOLD = 1e-7
"""scikit-learn's margin at the extremes of the quantile map (normal output)."""


def _normal_quantile() -> Callable[..., np.ndarray]:
    """scipy's normal quantile function (imported on first use: scipy.special is slow to import)."""
    from scipy.special import ndtri

    return ndtri


def _normal_clip() -> tuple[float, float]:
    """Where scikit-learn clips normal output: the quantiles of BOUNDS_THRESHOLD - eps and its mirror."""
    ndtri = _normal_quantile()
    return float(ndtri(BOUNDS_THRESHOLD - np.spacing(1))), float(ndtri(1 - (BOUNDS_THRESHOLD - np.spacing(1))))


def _required(state: dict[str, np.ndarray], key: str, owner: str) -> np.ndarray:
    if key not in state:
        raise ValueError(f"{owner}: fitted state lacks {key!r} (has {sorted(state)})")
    return np.asarray(state[key], dtype=np.float64)


def knot_table(quantiles: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the distinct quantiles as knots, and per knot (knot, left, slope, middle).

    Between knots u[m] < u[m+1] the map is left[m] + (x - u[m]) * slope[m]; exactly at a knot
    it is middle[m], the mean of the references at the first and last repeat of that knot.
    Columns are padded to a common length by repeating their last knot with slope 0.
    Returns the complex search keys (columns * knots,) and the table (4, columns * knots).
    """
    count, width = quantiles.shape
    columns = []
    for column in range(width):
        values = quantiles[:, column]
        knots = np.unique(values)
        first = np.searchsorted(values, knots, side="left")
        last = np.searchsorted(values, knots, side="right") - 1
        left = references[last]
        middle = 0.5 * (references[last] + references[first])
        slope = np.zeros(len(knots))
        if len(knots) > 1:
            slope[:-1] = (references[first[1:]] - left[:-1]) / (knots[1:] - knots[:-1])
        columns.append((knots, left, slope, middle))
    length = max(len(knots) for knots, *_ in columns)
    keys = np.empty(width * length, dtype=np.complex128)
    table = np.empty((4, width * length))
    for column, (knots, left, slope, middle) in enumerate(columns):
        padding = length - len(knots)
        block = slice(column * length, (column + 1) * length)
        keys[block] = column + 1j * np.concatenate([knots, np.repeat(knots[-1:], padding)])
        table[0, block] = np.concatenate([knots, np.repeat(knots[-1:], padding)])
        table[1, block] = np.concatenate([left, np.repeat(left[-1:], padding)])
        table[2, block] = np.concatenate([slope, np.zeros(padding)])
        table[3, block] = np.concatenate([middle, np.repeat(middle[-1:], padding)])
    return keys, table


class QuantileNormalizer(Transform):
    """scikit-learn's quantile transform of each column, fitted on training rows."""

    kind = "quantile_normalizer"
    needs_fit = True

    def __init__(
        self,
        n_quantiles: int = 100,
        output_distribution: str = "normal",
        subsample: int = 100_000,
        max_rows: int = 1_000_000,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if output_distribution not in ("normal", "uniform"):
            raise ValueError(
                f"QuantileNormalizer: output_distribution must be 'normal' or 'uniform', got {output_distribution!r}"
            )
        if int(n_quantiles) < 2:
            raise ValueError(f"QuantileNormalizer: n_quantiles must be at least 2, got {n_quantiles}")
        self.n_quantiles = int(n_quantiles)
        self.output_distribution = output_distribution
        self.subsample = int(subsample)
        self.max_rows = int(max_rows)
        self.seed = int(seed)

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        suffix = "qnormal" if self.output_distribution == "normal" else "quniform"
        return [f"{name}__{suffix}" for name in input_names]

    def fitted_sklearn(self, sequences: np.ndarray) -> QuantileTransformer:
        """The scikit-learn estimator this transform mirrors, fitted on the same rows."""
        from sklearn.preprocessing import QuantileTransformer

        rows = training_rows(np.asarray(sequences, dtype=np.float64), self.max_rows, self.seed)
        return QuantileTransformer(
            n_quantiles=min(self.n_quantiles, len(rows)),
            output_distribution=self.output_distribution,
            subsample=self.subsample,
            random_state=self.seed,
        ).fit(rows)

    def _learn(self, sequences: np.ndarray) -> None:
        fitted = self.fitted_sklearn(sequences)
        quantiles = np.asarray(fitted.quantiles_, dtype=np.float64)
        self._set_quantiles(quantiles, np.asarray(fitted.references_, dtype=np.float64))

    def _set_quantiles(self, quantiles: np.ndarray, references: np.ndarray) -> None:
        if quantiles.ndim != 2 or quantiles.shape[1] != self.n_inputs or references.shape != (quantiles.shape[0],):
            raise ValueError(
                f"{self.describe()}: quantiles {quantiles.shape} and references {references.shape} "
                f"do not fit {self.n_inputs} inputs"
            )
        self._quantiles = quantiles
        self._references = references
        self._keys, self._table = knot_table(quantiles, references)
        self._low = quantiles[0].copy()
        self._high = quantiles[-1].copy()
        self._column_index = np.arange(self.n_inputs, dtype=np.float64)

    def fitted_state(self) -> dict[str, np.ndarray]:
        self._require_fitted()
        return {"quantiles": self._quantiles.copy(), "references": self._references.copy()}

    def load_fitted_state(self, state: dict[str, np.ndarray]) -> None:
        owner = self.describe()
        self._set_quantiles(_required(state, "quantiles", owner), _required(state, "references", owner))
        self._fitted = True
        self._runner = None

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        query = self._column_index + 1j * sequences
        index = np.searchsorted(self._keys, query, side="right") - 1
        knot, left, slope, middle = np.take(self._table, index, axis=1, mode="wrap")
        value = sequences - knot
        value *= slope
        value += left
        np.copyto(value, middle, where=sequences == knot)
        if self.output_distribution == "normal":
            np.copyto(value, 1.0, where=(sequences + BOUNDS_THRESHOLD) > self._high)
            np.copyto(value, 0.0, where=(sequences - BOUNDS_THRESHOLD) < self._low)
            _normal_quantile()(value, out=value)
            np.clip(value, *_normal_clip(), out=value)
        else:
            np.copyto(value, 1.0, where=sequences >= self._high)
            np.copyto(value, 0.0, where=sequences <= self._low)
        return value

    def _on_bind(self) -> None:
        width = self.n_inputs
        self._query = self._column_index.astype(np.complex128)
        self._query_imaginary = self._query.imag
        self._index = np.zeros(width, dtype=np.intp)
        self._params = np.zeros((4, width))
        self._knot, self._left, self._slope, self._middle = self._params
        self._shifted = np.zeros(width)
        self._mask = np.zeros(width, dtype=bool)
        self._normal = self.output_distribution == "normal"
        self._ndtri = _normal_quantile()
        low, high = _normal_clip()
        self._clip_low = np.full(width, low)
        self._clip_high = np.full(width, high)

    def step(self, out: np.ndarray) -> None:
        current = self._current
        np.copyto(self._query_imaginary, current)
        np.subtract(np.searchsorted(self._keys, self._query, side="right"), 1, self._index)
        self._table.take(self._index, axis=1, out=self._params, mode="wrap")
        np.subtract(current, self._knot, out)
        np.multiply(out, self._slope, out)
        np.add(out, self._left, out)
        mask = self._mask
        np.equal(current, self._knot, mask)
        np.copyto(out, self._middle, where=mask)
        if self._normal:
            shifted = self._shifted
            np.greater(np.add(current, BOUNDS_THRESHOLD, out=shifted), self._high, mask)
            np.copyto(out, 1.0, where=mask)
            np.less(np.subtract(current, BOUNDS_THRESHOLD, out=shifted), self._low, mask)
            np.copyto(out, 0.0, where=mask)
            self._ndtri(out, out=out)
            np.fmax(out, self._clip_low, out)
            np.fmin(out, self._clip_high, out)
        else:
            np.copyto(out, 1.0, where=np.greater_equal(current, self._high, mask))
            np.copyto(out, 0.0, where=np.less_equal(current, self._low, mask))


class YeoJohnson(Transform):
    """scikit-learn's Yeo-Johnson power transform (then standardised), fitted on training rows."""

    kind = "yeo_johnson"
    needs_fit = True

    def __init__(self, max_rows: int = 200_000, seed: int = 0) -> None:
        super().__init__()
        self.max_rows = int(max_rows)
        self.seed = int(seed)

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        return [f"{name}__yeojohnson" for name in input_names]

    def fitted_sklearn(self, sequences: np.ndarray) -> PowerTransformer:
        """The scikit-learn estimator this transform mirrors, fitted on the same rows."""
        from sklearn.preprocessing import PowerTransformer

        return PowerTransformer(method="yeo-johnson", standardize=True).fit(self._fit_rows(sequences))

    def _fit_rows(self, sequences: np.ndarray) -> np.ndarray:
        return training_rows(np.asarray(sequences, dtype=np.float64), self.max_rows, self.seed)

    def _learn(self, sequences: np.ndarray) -> None:
        from scipy import stats
        from sklearn.preprocessing import PowerTransformer, StandardScaler

        rows = self._fit_rows(sequences)
        lambdas = np.asarray(PowerTransformer(method="yeo-johnson", standardize=True).fit(rows).lambdas_)
        # The standardisation PowerTransformer applies after the power map, recomputed from
        # public pieces (scipy's map, then StandardScaler) rather than read from a private field.
        powered = np.column_stack([stats.yeojohnson(rows[:, column], lam) for column, lam in enumerate(lambdas)])
        scaler = StandardScaler().fit(powered)
        self._set_parameters(lambdas, np.asarray(scaler.mean_), np.asarray(scaler.scale_))

    def _set_parameters(self, lambdas: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> None:
        for name, values in (("lambdas", lambdas), ("mean", mean), ("scale", scale)):
            if values.shape != (self.n_inputs,):
                raise ValueError(
                    f"{self.describe()}: fitted {name} has shape {values.shape}, expected ({self.n_inputs},)"
                )
        self._lambdas = lambdas.astype(np.float64)
        self._mean = mean.astype(np.float64)
        self._scale = scale.astype(np.float64)
        # scipy's rule: lambda within machine epsilon of 0 (x >= 0) or 2 (x < 0) means log1p.
        epsilon = np.finfo(np.float64).eps
        self._log_positive = np.abs(self._lambdas) < epsilon
        self._log_negative = ~(np.abs(self._lambdas - 2.0) > epsilon)
        self._has_log = bool(self._log_positive.any() or self._log_negative.any())
        self._positive_power = self._lambdas.copy()
        self._negative_power = 2.0 - self._lambdas
        self._positive_power[self._log_positive] = 1.0
        self._negative_power[self._log_negative] = 1.0

    def fitted_state(self) -> dict[str, np.ndarray]:
        self._require_fitted()
        return {"lambdas": self._lambdas.copy(), "mean": self._mean.copy(), "scale": self._scale.copy()}

    def load_fitted_state(self, state: dict[str, np.ndarray]) -> None:
        owner = self.describe()
        self._set_parameters(
            _required(state, "lambdas", owner), _required(state, "mean", owner), _required(state, "scale", owner)
        )
        self._fitted = True
        self._runner = None

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        positive = sequences >= 0
        power = np.where(positive, self._positive_power, self._negative_power)
        magnitude = np.log1p(np.abs(sequences))
        value = np.expm1(power * magnitude)
        value /= power
        if self._has_log:
            np.copyto(value, magnitude, where=np.where(positive, self._log_positive, self._log_negative))
        np.copysign(value, sequences, value)
        value -= self._mean
        value /= self._scale
        return value

    def _on_bind(self) -> None:
        width = self.n_inputs
        self._positive = np.zeros(width, dtype=bool)
        self._power = np.zeros(width)
        self._magnitude = np.zeros(width)
        self._use_log = np.zeros(width, dtype=bool)

    def step(self, out: np.ndarray) -> None:
        current = self._current
        positive = np.greater_equal(current, 0.0, self._positive)
        power = self._power
        np.copyto(power, self._negative_power)
        np.copyto(power, self._positive_power, where=positive)
        magnitude = np.log1p(np.abs(current, out=self._magnitude), self._magnitude)
        np.multiply(power, magnitude, out)
        np.expm1(out, out)
        np.divide(out, power, out)
        if self._has_log:
            np.copyto(self._use_log, self._log_negative)
            np.copyto(self._use_log, self._log_positive, where=positive)
            np.copyto(out, magnitude, where=self._use_log)
        np.copysign(out, current, out)
        np.subtract(out, self._mean, out)
        np.divide(out, self._scale, out)
