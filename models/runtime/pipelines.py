"""Feature pipelines described by plain JSON, so a manifest, an artifact and a solution rebuild one thing.

A step is ``{"kind": <Transform.kind>, **constructor arguments}``; ``chain`` and ``concat`` take
``"steps"``. The kinds are the ``kind`` names the transforms declare in ``features``, so a config
reads like the feature library it uses. The fitted state (if any transform has one) is saved with
the pipeline's own ``save`` and restored with ``load_state``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from features.base import Transform
from features.compose import Chain, Concat, Identity, Select
from features.lags import Derivatives, Differences, Lags
from features.orderbook import OrderBookFeatures
from features.pipeline import Pipeline
from features.rolling import ExpandingZScore, RollingExtrema, RollingMoments
from features.smoothing import EMA

from .transforms import LogRatio, Product

BUILDER = "models.runtime.pipelines:build"

_SIMPLE: dict[str, type[Transform]] = {
    cls.kind: cls
    for cls in (Identity, Select, Lags, Differences, Derivatives, EMA, RollingMoments, ExpandingZScore,
                RollingExtrema, OrderBookFeatures, LogRatio, Product)
}
_COMPOSITE: dict[str, type[Transform]] = {Chain.kind: Chain, Concat.kind: Concat}


def known_kinds() -> list[str]:
    """Every step kind a pipeline config may use."""
    return sorted(_SIMPLE) + sorted(_COMPOSITE)


def build_step(step: dict[str, Any]) -> Transform:
    """One transform from its JSON description."""
    if not isinstance(step, dict) or "kind" not in step:
        raise ValueError(f"a pipeline step is a dict with a 'kind', got {step!r}")
    options = {key: value for key, value in step.items() if key != "kind"}
    kind = step["kind"]
    if kind in _COMPOSITE:
        members = options.pop("steps", None)
        if not members or options:
            raise ValueError(f"a {kind!r} step takes only a non-empty 'steps' list, got {step!r}")
        return _COMPOSITE[kind]([build_step(member) for member in members])
    if kind not in _SIMPLE:
        raise ValueError(f"unknown pipeline step kind {kind!r}; known kinds: {', '.join(known_kinds())}")
    try:
        return _SIMPLE[kind](**options)
    except TypeError as exc:
        raise ValueError(f"pipeline step {step!r}: {exc}") from exc


def build(input_names: Sequence[str], steps: Sequence[dict[str, Any]], name: str = "pipeline") -> Pipeline:
    """A (not yet fitted) pipeline of ``steps`` side by side over the named input columns."""
    if not steps:
        raise ValueError("a pipeline needs at least one step")
    transforms = [build_step(step) for step in steps]
    return Pipeline(name, input_names, transforms, builder=BUILDER, options={"steps": [dict(s) for s in steps]})


def load(path: str | Path, input_names: Sequence[str], steps: Sequence[dict[str, Any]]) -> Pipeline:
    """Rebuild a pipeline from its steps and restore the fitted state saved at ``path``."""
    pipeline = build(input_names, steps)
    return pipeline.load_state(path)
