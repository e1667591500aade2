"""The named pipelines: the next-state (A) pipeline and the derived-LOB (B) pipeline.

Builders take the input column names (read them from ``harness.competitions``; this package
must not import the harness, because it is copied into solution zips) and return a
:class:`~features.pipeline.Pipeline` that records its builder and options, so a saved file
rebuilds it with :func:`load_pipeline`.

Why these transforms for A: per-row cost is set by the number of numpy calls, not by the
number of outputs (see ``features.base``), so A favours transforms that yield many columns
per call (differences, EMAs, rolling moments over several windows at once) and keeps one
regime cluster id, the relative volatility and the cross pairs. The transforms left out
of A (lags, min/max, autocorrelation, spectral power, trend slope, quantile and
Yeo-Johnson maps) are in the library, with the same parity guarantees, for pipelines with a
larger budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .compose import Chain, Concat, Identity, Select
from .cross import CrossFeatures
from .distribution import YeoJohnson
from .lags import Differences
from .orderbook import OrderBookFeatures, OrderBookLayout
from .pipeline import Pipeline
from .regime import RegimeSummary
from .rolling import RollingMoments
from .smoothing import EMA
from .storage import load_fitted


def next_state_pipeline(
    input_names: Sequence[str],
    warmup: int,
    n_pairs: int = 8,
    n_clusters: int = 8,
) -> Pipeline:
    """The A pipeline: about ten features per input column plus regime and cross features.

    Per input column: the value; changes over 1 and 5 steps; EMAs over spans 5 and 20; the
    standard deviation over 50 steps and over the sequence so far; the distance from the
    50-step mean in 50-step standard deviations (mean reversion) and the expanding
    per-sequence z-score; the RMS one-step change relative to training. Plus: products and
    ratios of the ``n_pairs`` most correlated training pairs, the mean relative volatility,
    and a k-means regime id fitted on training sequences' summaries at the end of ``warmup``
    rows (pass ``harness.competitions.A.warmup_steps``).
    """
    options = {"warmup": int(warmup), "n_pairs": int(n_pairs), "n_clusters": int(n_clusters)}
    transforms = [
        Identity(),
        Differences((1, 5)),
        EMA((5, 20)),
        RollingMoments(windows=(50, None), stats=("std", "zscore")),
        CrossFeatures(n_pairs=int(n_pairs)),
        RegimeSummary(warmup=int(warmup), n_clusters=int(n_clusters)),
    ]
    return Pipeline("next_state", input_names, transforms, builder="next_state", options=options)


def lob_pipeline(
    input_names: Sequence[str],
    mid_change_periods: Sequence[int] = (1, 5, 20),
    smoothing_spans: Sequence[int] = (5, 20),
    volatility_window: int = 20,
    zscore_window: int = 100,
) -> Pipeline:
    """The B pipeline: raw book, derived book features, and smoothed order-flow signals.

    Stage one: the raw columns, :class:`OrderBookFeatures`, and the book and trade
    volumes through a Yeo-Johnson map fitted on training rows (volumes are heavy-tailed).
    Stage two: all of those, plus, for the flow signals (first mid change, top-level and
    total depth imbalance, pressure and trade imbalance, trade volume, top spread), EMAs, a
    rolling standard deviation and a rolling z-score.
    """
    options = {
        "mid_change_periods": [int(period) for period in mid_change_periods],
        "smoothing_spans": [int(span) for span in smoothing_spans],
        "volatility_window": int(volatility_window),
        "zscore_window": int(zscore_window),
    }
    layout = OrderBookLayout.from_names(input_names)
    levels = layout.levels
    book = OrderBookFeatures(mid_change_periods=options["mid_change_periods"], prefix="ob_")
    volume_columns = [
        list(input_names)[index] for index in layout.bid_volumes + layout.ask_volumes + layout.trade_volumes
    ]
    flows = [
        f"ob_mid_change{options['mid_change_periods'][0]}",
        "ob_imbalance0",
        f"ob_cum_imbalance{levels - 1}",
        "ob_pressure_imbalance",
        "ob_trade_imbalance",
        "ob_trade_volume",
        "ob_spread0",
    ]
    smoothing = Concat(
        [
            EMA(options["smoothing_spans"]),
            RollingMoments(outputs=[("std", options["volatility_window"]), ("zscore", options["zscore_window"])]),
        ]
    )
    volumes = Chain([Select(volume_columns), YeoJohnson()])
    stages = Chain([Concat([Identity(), book, volumes]), Concat([Identity(), Chain([Select(flows), smoothing])])])
    return Pipeline("lob", input_names, [stages], builder="lob", options=options)


PIPELINE_BUILDERS: dict[str, Callable[..., Pipeline]] = {
    "next_state": next_state_pipeline,
    "lob": lob_pipeline,
}


def build_pipeline(builder: str, input_names: Sequence[str], **options: Any) -> Pipeline:
    """Build a named pipeline ("next_state" or "lob") over the given input columns."""
    if builder not in PIPELINE_BUILDERS:
        raise KeyError(f"unknown pipeline {builder!r}; known: {sorted(PIPELINE_BUILDERS)}")
    return PIPELINE_BUILDERS[builder](input_names, **options)


def load_pipeline(path: str | Path) -> Pipeline:
    """Rebuild a named pipeline from its saved file and load its fitted state (no pickle)."""
    spec, state = load_fitted(path)
    builder = spec.get("builder")
    if builder is None:
        raise ValueError(
            f"{path} was saved from a hand-assembled pipeline; build it again and call load_state(path)"
        )
    pipeline = build_pipeline(builder, spec["input_names"], **spec.get("options", {}))
    if list(pipeline.output_names) != list(spec.get("output_names", [])):
        raise ValueError(f"{path}: the {builder!r} pipeline built today has different outputs from the saved one")
    pipeline.load_fitted_state(state)
    return pipeline
