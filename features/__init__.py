"""wunderbench feature library: every feature defined once, with streaming and batch forms proven equal.

Quick use (see README.md beside this file)::

    from features import preset_pipeline
    pipeline = preset_pipeline("next_state", A.feature_columns).fit(train_sequences)
    pipeline.save("features_a.npz")                    # ship this file in the solution zip
    pipeline = preset_pipeline("next_state", A.feature_columns).load_state("features_a.npz")  # in solution.py
    vector = pipeline.update(row, sequence_id=seq_ix)   # once per row; resets on a new seq_ix

Importing this package loads numpy only (scipy and scikit-learn are imported where they are
needed: fitting, and a few batch forms), so a solution starts quickly. All imports inside
the package are relative, so the folder can be copied next to a solution.py.
"""

from .autocorr import RollingAutocorrelation
from .base import TRANSFORMS, StreamContext, Transform
from .compose import Chain, Concat, Identity, Select
from .cross import CrossFeatures
from .distribution import QuantileNormalizer, YeoJohnson
from .lags import Derivatives, Differences, Lags, RateOfChange
from .orderbook import OrderBookFeatures, OrderBookLayout
from .pipeline import Pipeline
from .pairs import LogRatio, Product
from .pipelines import PRESETS, build, preset_pipeline, resolve
from .regime import MeanReversionDistance, RegimeCluster, RegimeSummary, RelativeVolatility, TrendSlope
from .rolling import ExpandingZScore, RollingExtrema, RollingMoments
from .smoothing import EMA
from .spectral import SpectralPower
from .splits import rows_to_sequences, split_sequence_ids, take_sequences

__all__ = [
    "EMA",
    "PRESETS",
    "Chain",
    "Concat",
    "CrossFeatures",
    "Derivatives",
    "Differences",
    "ExpandingZScore",
    "Identity",
    "Lags",
    "MeanReversionDistance",
    "OrderBookFeatures",
    "OrderBookLayout",
    "Pipeline",
    "QuantileNormalizer",
    "RateOfChange",
    "RegimeCluster",
    "RegimeSummary",
    "RelativeVolatility",
    "RollingAutocorrelation",
    "RollingExtrema",
    "RollingMoments",
    "Select",
    "SpectralPower",
    "StreamContext",
    "Transform",
    "TrendSlope",
    "YeoJohnson",
    "TRANSFORMS",
    "LogRatio",
    "Product",
    "build",
    "preset_pipeline",
    "resolve",
    "rows_to_sequences",
    "split_sequence_ids",
    "take_sequences",
]
