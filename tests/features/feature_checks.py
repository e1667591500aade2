"""Shared pieces of the feature tests: the transform catalogue, data strategies, comparisons.

Every transform the library offers appears in ``CATALOGUE`` (small windows so short test
sequences fill them, plus the issue's default parameters), so parity, causality and reset
are each checked for all of them by one parametrized test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from features.base import Transform
from features.pipelines import build_step

PARITY_TOLERANCE = 1e-9
"""Streaming and batch must agree to |s - b| <= 1e-9 * max(1, |b|) (float64)."""

WIDTH = 3
NAMES = tuple(f"c{index}" for index in range(WIDTH))
SMALL_BOOK_NAMES = ("p0", "p1", "p2", "p3", "v0", "v1", "v2", "v3", "dp0", "dp1", "dv0", "dv1")


@dataclass(frozen=True)
class Case:
    """One transform configuration: its pipeline step (the JSON a manifest would hold, so every
    check below also proves the transform is usable from a manifest), its inputs, and the longest
    test sequence."""

    name: str
    step: dict
    input_names: tuple[str, ...] = NAMES
    max_steps: int = 40

    def build(self) -> Transform:
        """A new instance, built from the step through the one registry of kinds."""
        return build_step(self.step)

    def fresh(self) -> Transform:
        """A new, set-up (and, if needed, fitted) instance, equal to every other fresh one."""
        transform = self.build()
        transform.setup(self.input_names)
        if not transform.is_fitted:
            transform.load_fitted_state(fitted_state(self))
        return transform


_FITTED: dict[str, dict[str, np.ndarray]] = {}


def training_sequences(input_names: tuple[str, ...]) -> np.ndarray:
    """Fixed training data: random walks with some discrete columns and repeated values."""
    rng = np.random.default_rng(1234)
    data = rng.normal(size=(16, 60, len(input_names))).cumsum(axis=1)
    if input_names == SMALL_BOOK_NAMES:
        return book_rows(rng, 16 * 60, levels=2, trades=2).reshape(16, 60, -1)
    data[:, :, 0] = np.round(data[:, :, 0])  # repeated values exercise the quantile plateaus
    return data


def fitted_state(case: Case) -> dict[str, np.ndarray]:
    """Fit each case once per session (fitting is deterministic)."""
    if case.name not in _FITTED:
        transform = case.build()
        transform.setup(case.input_names)
        transform.fit(training_sequences(case.input_names))
        _FITTED[case.name] = transform.fitted_state()
    return _FITTED[case.name]


CATALOGUE: tuple[Case, ...] = (
    Case("identity", {"kind": "identity"}),
    Case("select", {"kind": "select", "columns": ["c2", "c0"]}),
    Case("lags", {"kind": "lags", "lags": [1, 2, 5]}),
    Case("lags_default", {"kind": "lags"}, max_steps=130),
    Case("differences", {"kind": "differences", "periods": [1, 3]}),
    Case("differences_default", {"kind": "differences"}),
    Case("rate_of_change", {"kind": "rate_of_change", "periods": [1, 4]}),
    Case("derivatives", {"kind": "derivatives"}),
    Case("ema", {"kind": "ema", "spans": [1, 3, 10]}),
    Case("ema_default", {"kind": "ema"}, max_steps=80),
    Case("rolling_moments", {"kind": "rolling_moments", "windows": [1, 3, 7, None], "stats": ["mean", "std", "zscore"]}),
    Case("rolling_moments_selected", {"kind": "rolling_moments", "outputs": [["zscore", None], ["mean", 4], ["std", 2]]}),
    Case("rolling_moments_default", {"kind": "rolling_moments"}, max_steps=130),
    Case("expanding_zscore", {"kind": "expanding_zscore"}),
    Case("mean_reversion", {"kind": "mean_reversion_distance", "window": 5}),
    Case("rolling_extrema", {"kind": "rolling_extrema", "windows": [1, 4, 9]}),
    Case("rolling_extrema_default", {"kind": "rolling_extrema"}, max_steps=130),
    Case("autocorrelation", {"kind": "rolling_autocorrelation", "lags": [1, 3], "window": 8}),
    Case("autocorrelation_default", {"kind": "rolling_autocorrelation"}, max_steps=150),
    Case("spectral", {"kind": "spectral_power", "window": 8}),
    Case("spectral_bands", {"kind": "spectral_power", "window": 16, "bands": [[1, 2], [3, 8]]}),
    Case("trend_slope", {"kind": "trend_slope", "window": 6}),
    Case("relative_volatility", {"kind": "relative_volatility"}),
    Case("regime_cluster", {"kind": "regime_cluster", "warmup": 10, "n_clusters": 3, "with_distances": True}),
    Case("regime_summary", {"kind": "regime_summary", "warmup": 10, "n_clusters": 2}),
    Case("cross_features", {"kind": "cross_features", "n_pairs": 2}),
    Case("quantile_normal", {"kind": "quantile_normalizer", "n_quantiles": 20}),
    Case("quantile_uniform", {"kind": "quantile_normalizer", "n_quantiles": 20, "output_distribution": "uniform"}),
    Case("yeo_johnson", {"kind": "yeo_johnson"}),
    Case("order_book", {"kind": "order_book"}, input_names=SMALL_BOOK_NAMES),
    Case("log_ratio", {"kind": "log_ratio", "pairs": [["c0", "c1"], ["c2", "c0"]]}),
    Case("product", {"kind": "product", "pairs": [["c0", "c1"], ["c1", "c2"]]}),
    Case("signed_log1p", {"kind": "signed_log1p"}),
    Case("signed_log1p_scaled", {"kind": "signed_log1p", "scale": 0.01}),
    Case("signed_log_ratio", {"kind": "signed_log_ratio", "pairs": [["c0", "c1"], ["c2", "c0"]], "scale": 3.0}),
    Case("concat", {"kind": "concat", "steps": [{"kind": "differences", "periods": [1]}, {"kind": "ema", "spans": [2]},
                                                {"kind": "rolling_moments", "windows": [3, None], "stats": ["std"]}]}),
    Case("chain", {"kind": "chain", "steps": [{"kind": "differences", "periods": [1, 2]}, {"kind": "concat", "steps": [
        {"kind": "identity"}, {"kind": "ema", "spans": [3]}, {"kind": "lags", "lags": [2]}]}]}),
)


def case_ids() -> list[str]:
    return [case.name for case in CATALOGUE]


# --------------------------------------------------------------------------------- data
_value = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
_special = st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e6, -1e6, 1e-9, 5e-324, 123.456])


@st.composite
def sequences(draw: st.DrawFn, width: int, max_steps: int) -> np.ndarray:
    """A (steps, width) float64 sequence: random scale, walks, constant stretches, extremes.

    Short sequences (down to one row) test the first rows; constant stretches, repeated
    values, zeros and +-1e6 spikes test the degenerate cases.
    """
    steps = draw(st.integers(min_value=1, max_value=max_steps))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    style = draw(st.sampled_from(["noise", "walk", "steps"]))
    if style == "noise":
        data = rng.normal(scale=scale, size=(steps, width))
    elif style == "walk":
        data = rng.normal(scale=scale, size=(steps, width)).cumsum(axis=0) + rng.normal(scale=100 * scale, size=width)
    else:
        data = np.round(rng.normal(scale=3, size=(steps, width)).cumsum(axis=0)) * scale
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        start = draw(st.integers(min_value=0, max_value=steps - 1))
        length = draw(st.integers(min_value=1, max_value=steps))
        column = draw(st.integers(min_value=0, max_value=width - 1))
        data[start : start + length, column] = draw(st.one_of(_value, _special))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        row = draw(st.integers(min_value=0, max_value=steps - 1))
        data[row] = draw(hnp.arrays(np.float64, width, elements=st.one_of(_value, _special)))
    return data


def book_rows(rng: np.random.Generator, count: int, levels: int, trades: int) -> np.ndarray:
    """Order-book-like rows: bids below asks around a walking mid, volumes with zeros, sparse trades."""
    mid = 100.0 + rng.normal(scale=0.05, size=count).cumsum()
    tick = 0.01
    offsets = tick * (np.arange(levels) + 0.5 + rng.integers(0, 2, size=(count, levels)))
    bids = mid[:, None] - offsets
    asks = mid[:, None] + offsets
    volumes = rng.exponential(10.0, size=(count, 2 * levels)) * (rng.random((count, 2 * levels)) > 0.1)
    traded = rng.random((count, trades)) > 0.6
    trade_prices = np.where(traded, mid[:, None] + rng.normal(scale=tick, size=(count, trades)), 0.0)
    trade_volumes = np.where(traded, rng.exponential(3.0, size=(count, trades)), 0.0)
    return np.concatenate([bids, asks, volumes, trade_prices, trade_volumes], axis=1)


@st.composite
def book_sequences(draw: st.DrawFn, levels: int, trades: int, max_steps: int) -> np.ndarray:
    """Order-book sequences, sometimes with arbitrary rows (empty sides, crossed books, zeros)."""
    steps = draw(st.integers(min_value=1, max_value=max_steps))
    rng = np.random.default_rng(draw(st.integers(min_value=0, max_value=2**32 - 1)))
    data = book_rows(rng, steps, levels, trades)
    width = data.shape[1]
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        row = draw(st.integers(min_value=0, max_value=steps - 1))
        data[row] = draw(hnp.arrays(np.float64, width, elements=st.one_of(_value, _special)))
    return data


def inputs_for(case: Case) -> st.SearchStrategy[np.ndarray]:
    if case.input_names == SMALL_BOOK_NAMES:
        return book_sequences(levels=2, trades=2, max_steps=case.max_steps)
    return sequences(width=len(case.input_names), max_steps=case.max_steps)


# ---------------------------------------------------------------------------- comparisons
def stream(transform: Transform, sequence: np.ndarray) -> np.ndarray:
    """Run the streaming form over one sequence from a reset, copying each output."""
    transform.reset()
    return np.array([transform.update(row).copy() for row in sequence]).reshape(len(sequence), -1)


def assert_parity(streamed: np.ndarray, batched: np.ndarray, tolerance: float = PARITY_TOLERANCE) -> None:
    """Equal to tolerance * max(1, |batch|); non-finite values must match exactly."""
    if streamed.shape != batched.shape:
        raise AssertionError(f"shapes differ: stream {streamed.shape}, batch {batched.shape}")
    finite = np.isfinite(batched)
    if not np.array_equal(finite, np.isfinite(streamed)) or not np.array_equal(streamed[~finite], batched[~finite]):
        raise AssertionError("non-finite outputs differ between stream and batch")
    error = np.abs(streamed[finite] - batched[finite]) / np.maximum(1.0, np.abs(batched[finite]))
    if error.size and error.max() > tolerance:
        worst = np.unravel_index(np.argmax(np.where(finite, np.abs(streamed - batched), -1)), batched.shape)
        raise AssertionError(
            f"stream and batch differ by {error.max():.3g} (relative) at {worst}: "
            f"stream {streamed[worst]!r}, batch {batched[worst]!r}"
        )
