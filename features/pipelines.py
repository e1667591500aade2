"""Pipelines from plain JSON steps, and the named feature presets.

A step is ``{"kind": <Transform.kind>, **constructor arguments}``; ``chain`` and ``concat`` take
``"steps"``. Every transform registers its kind in ``features.base.TRANSFORMS`` (one registry),
so any transform of the library can be named by a manifest, a preset or a saved model alike.

A preset is a named list of steps, written here once, so a manifest says
``{"features": {"preset": "b_book", "extra": [...]}}`` instead of pasting the steps. Presets are
functions of the input column names (the order-book presets find their columns by name).

Why ``next_state`` fixes ``warmup`` at 100: this package must not import the harness (it is
copied into solution zips); a test pins it to ``harness.competitions.A.warmup_steps``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import autocorr, cross, distribution, lags, orderbook, pairs, regime, robust, rolling, smoothing, spectral  # noqa: F401
from .base import TRANSFORMS, Transform
from .compose import _Composite
from .orderbook import OrderBookLayout
from .pipeline import Pipeline

A_WARMUP = 100
"""A's warm-up rows (``harness.competitions.A.warmup_steps``; a test keeps the two equal)."""


def known_kinds() -> list[str]:
    """Every step kind a pipeline may use."""
    return sorted(TRANSFORMS)


def build_step(step: dict[str, Any]) -> Transform:
    """One transform from its JSON description; ValueError names the step and the fix."""
    if not isinstance(step, dict) or "kind" not in step:
        raise ValueError(f"a pipeline step is a dict with a 'kind', got {step!r}")
    options = {key: value for key, value in step.items() if key != "kind"}
    kind = step["kind"]
    if kind not in TRANSFORMS:
        raise ValueError(f"unknown pipeline step kind {kind!r}; known kinds: {', '.join(known_kinds())}")
    cls = TRANSFORMS[kind]
    if issubclass(cls, _Composite):
        members = options.pop("steps", None)
        if not members or options:
            raise ValueError(f"a {kind!r} step takes only a non-empty 'steps' list, got {step!r}")
        return cls([build_step(member) for member in members])
    try:
        return cls(**options)
    except TypeError as exc:
        raise ValueError(f"pipeline step {step!r}: {exc}") from exc


def build(input_names: Sequence[str], steps: Sequence[dict[str, Any]], name: str = "pipeline") -> Pipeline:
    """A (not yet fitted) pipeline of ``steps`` side by side over the named input columns."""
    if not steps:
        raise ValueError("a pipeline needs at least one step")
    return Pipeline(name, input_names, [build_step(step) for step in steps], steps=[dict(s) for s in steps])


def load(path: str | Path, input_names: Sequence[str], steps: Sequence[dict[str, Any]]) -> Pipeline:
    """Rebuild a pipeline from its steps and restore the fitted state saved at ``path``."""
    return build(input_names, steps).load_state(path)


# ------------------------------------------------------------------------------------ presets
def _step(kind: str, **options: Any) -> dict[str, Any]:
    return {"kind": kind, **options}


def _chain(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "chain", "steps": list(steps)}


def _concat(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "concat", "steps": list(steps)}


def next_state_steps(input_names: Sequence[str]) -> list[dict[str, Any]]:
    """A: about ten features per input column plus regime and cross features.

    Per column: the value; changes over 1 and 5 steps; EMAs over spans 5 and 20; the standard
    deviation over 50 steps and over the sequence so far; the distance from the 50-step mean in
    50-step standard deviations and the expanding z-score; the RMS one-step change relative to
    training. Plus products and ratios of the 8 most correlated training pairs, the mean relative
    volatility, and a k-means regime id fitted on summaries at the end of the warm-up. Per-row
    cost is set by the number of numpy calls, so A favours transforms that yield many columns.
    """
    return [_step("identity"), _step("differences", periods=[1, 5]), _step("ema", spans=[5, 20]),
            _step("rolling_moments", windows=[50, None], stats=["std", "zscore"]), _step("cross_features", n_pairs=8),
            _step("regime_summary", warmup=A_WARMUP, n_clusters=8)]


def lob_steps(input_names: Sequence[str]) -> list[dict[str, Any]]:
    """B: raw book, derived book features, and smoothed order-flow signals.

    Stage one: the raw columns, the order-book features, and the book and trade volumes through
    a Yeo-Johnson map fitted on training rows (volumes are heavy-tailed). Stage two: all of
    those, plus EMAs, a 20-step standard deviation and a 100-step z-score of the flow signals.
    """
    layout = OrderBookLayout.from_names(input_names)
    names = list(input_names)
    volumes = [names[i] for i in layout.bid_volumes + layout.ask_volumes + layout.trade_volumes]
    flows = ["ob_mid_change1", "ob_imbalance0", f"ob_cum_imbalance{layout.levels - 1}", "ob_pressure_imbalance",
             "ob_trade_imbalance", "ob_trade_volume", "ob_spread0"]
    smoothing_ = _concat(_step("ema", spans=[5, 20]), _step("rolling_moments", outputs=[["std", 20], ["zscore", 100]]))
    stage_one = _concat(_step("identity"), _step("order_book", mid_change_periods=[1, 5, 20], prefix="ob_"),
                        _chain(_step("select", columns=volumes), _step("yeo_johnson")))
    stage_two = _concat(_step("identity"), _chain(_step("select", columns=flows), smoothing_))
    return [_chain(stage_one, stage_two)]


B_FLOWS = ["ob_imbalance0", "ob_imbalance1", "ob_cum_imbalance5", "ob_pressure_imbalance", "ob_trade_imbalance",
           "ob_microprice", "ob_mid", "ob_spread0", "ob_trade_volume"]


def b_book_steps(input_names: Sequence[str]) -> list[dict[str, Any]]:
    """B, for linear and tree heads: the raw row; order-book features with EMAs of the flow
    signals and z-scores and volatilities of the mid; log size ratios (bid/ask, buy/sell) and
    their EMAs; EMAs of the first trade prices."""
    mid = _step("rolling_moments", outputs=[["zscore", 20], ["zscore", 100], ["zscore", None], ["std", 20], ["std", 100]])
    book = _chain(_step("order_book", mid_change_periods=[1, 5, 20, 50, 100]),
                  _concat(_step("identity"),
                          _chain(_step("select", columns=list(B_FLOWS)), _step("ema", spans=[5, 20, 100])),
                          _chain(_step("select", columns=["ob_mid"]), mid)))
    return [_step("identity"), book,
            _step("log_ratio", pairs=[["v0", "v6"], ["dv0", "dv1"], ["v1", "v7"]]),
            _chain(_step("log_ratio", pairs=[["v0", "v6"], ["dv0", "dv1"]], prefix="lre_"),
                   _step("ema", spans=[5, 10, 20, 50, 100, 200])),
            _chain(_step("select", columns=["dp0", "dp1"]), _step("ema", spans=[5, 20, 100, 300]))]


def b_book_products_steps(input_names: Sequence[str]) -> list[dict[str, Any]]:
    """``b_book`` plus order-flow averages times the second bid price (a signal whose effect
    scales with the price level is a product, which a linear skip can use only as a column)."""
    products = [["lr_v0_v6", "p1"]] + [[f"lre_v0_v6__ema{span}", "p1"] for span in (5, 10, 20, 50)]
    return [_chain(_concat(*b_book_steps(input_names)), _concat(_step("identity"), _step("product", pairs=products)))]


def a_lags_ema_steps(input_names: Sequence[str]) -> list[dict[str, Any]]:
    """A, for tree heads: the state, 15 lags, EMAs over 5, 20 and 100 steps, and the expanding
    mean, standard deviation and z-score."""
    return [_step("identity"), _step("lags", lags=list(range(1, 16))), _step("ema", spans=[5, 20, 100]),
            _step("rolling_moments", outputs=[["mean", None], ["std", None], ["zscore", None]])]


def a_robust_steps(input_names: Sequence[str]) -> list[dict[str, Any]]:
    """A, tuned on no market: the state, changes over 1 and 5 steps, 5 lags, EMAs over 5, 20 and
    100 steps, the expanding mean and the expanding and 50-step standard deviations. Nothing
    divides by a statistic that can be near 0 (no z-scores, no ratios), so no feature can
    explode on a market whose scale or volatility differs from the simulator's."""
    return [_step("identity"), _step("differences", periods=[1, 5]), _step("lags", lags=[1, 2, 3, 4, 5]),
            _step("ema", spans=[5, 20, 100]), _step("rolling_moments", outputs=[["mean", None], ["std", None], ["std", 50]])]


def b_robust_steps(input_names: Sequence[str]) -> list[dict[str, Any]]:
    """B, tuned on no market: prices and their 1- and 5-step changes; every volume through a
    signed log1p; signed log ratios of bid against ask volume per level and of the first two
    trade volumes, with EMAs of the level-0, level-1 and trade ratios; EMAs of the trade prices.
    No log with a tiny floor and no imbalance over a sum that can be near 0, so zero or
    negative volumes give ordinary values (``features.robust``)."""
    layout = OrderBookLayout.from_names(input_names)
    names = list(input_names)
    prices = [names[i] for i in layout.bid_prices + layout.ask_prices + layout.trade_prices]
    volumes = [names[i] for i in layout.bid_volumes + layout.ask_volumes + layout.trade_volumes]
    levels = [[names[b], names[a]] for b, a in zip(layout.bid_volumes, layout.ask_volumes)]
    trades = [[names[i] for i in layout.trade_volumes[:2]]] if len(layout.trade_volumes) >= 2 else []
    flows = levels[:2] + trades
    steps = [_step("select", columns=prices), _chain(_step("select", columns=prices), _step("differences", periods=[1, 5])),
             _chain(_step("select", columns=volumes), _step("signed_log1p")),
             _step("signed_log_ratio", pairs=levels + trades),
             _chain(_step("signed_log_ratio", pairs=flows, prefix="slre_"), _step("ema", spans=[5, 20, 100]))]
    if layout.trade_prices:
        steps.append(_chain(_step("select", columns=[names[i] for i in layout.trade_prices]),
                            _step("ema", spans=[5, 20, 100])))
    return steps


PRESETS: dict[str, Callable[[Sequence[str]], list[dict[str, Any]]]] = {
    "next_state": next_state_steps,
    "lob": lob_steps,
    "a_lags_ema": a_lags_ema_steps,
    "b_book": b_book_steps,
    "b_book_products": b_book_products_steps,
    "a_robust": a_robust_steps,
    "b_robust": b_robust_steps,
}

COMPETITION_PRESETS: dict[str, tuple[str, ...]] = {
    "A": ("next_state", "a_lags_ema", "a_robust"),
    "B": ("lob", "b_book", "b_book_products", "b_robust"),
}
"""The presets that fit each competition's inputs, by competition key (what a search such as
``models auto`` tries besides the raw row); every preset is listed under exactly one."""

ROBUST_PRESETS: dict[str, str] = {"A": "a_robust", "B": "b_robust"}
"""Per competition key, the preset tuned on no market (no feature can explode)."""


def resolve(input_names: Sequence[str], preset: str | None = None,
            extra: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The steps of ``preset`` (none when None) followed by ``extra`` steps side by side."""
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown feature preset {preset!r}; known presets: {', '.join(sorted(PRESETS))}")
    steps = (PRESETS[preset](input_names) if preset is not None else []) + [dict(step) for step in extra]
    if not steps:
        raise ValueError("features: name a \"preset\" or give \"extra\" steps")
    return steps


def preset_pipeline(name: str, input_names: Sequence[str]) -> Pipeline:
    """The (not yet fitted) pipeline of a preset over the named input columns."""
    return build(input_names, resolve(input_names, name), name=name)
