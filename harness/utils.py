"""The grader's ``utils`` module as a candidate sees it: one per competition.

The organizers shipped a different ``utils.py`` with each competition, and a candidate may
import any name either defines: both hold ``DataPoint``, a dummy ``PredictionModel`` and
``ScorerStepByStep`` and import ``np``, ``pd``, ``tqdm`` and ``dataclass``; A's also imports
scikit-learn's ``r2_score``, B's defines ``weighted_pearson_correlation``. So the child does
not put a generic module on the path: :func:`install` builds a module named ``utils`` holding
exactly the names of that competition (``Competition.utils_names``), and a name the
competition's module lacks fails to import here as it does there. The heavy ones (``pd``,
``tqdm``, ``r2_score``) are imported on first use, so an unused name costs no start-up time.

The pieces re-use the harness's own (one replay loop, one metric), so a candidate's own
``__main__`` scoring agrees with ``python -m harness simulate`` to the last digit.
"""

from __future__ import annotations

import importlib
import sys
import types
from dataclasses import dataclass

import numpy as np

from harness import metrics
from harness.competitions import Competition
from harness.data import ParquetSource, TargetTap
from harness.replay import DataPoint, replay

__all__ = ["DataPoint", "ScorerStepByStep", "weighted_pearson_correlation", "install"]

_LAZY = {"pd": ("pandas", None), "tqdm": ("tqdm.auto", "tqdm"), "r2_score": ("sklearn.metrics", "r2_score")}


def weighted_pearson_correlation(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Weighted Pearson of one target: predictions clipped to ±6, weights max(|y|, 1e-8)."""
    return metrics.weighted_pearson(y_true, y_pred)


class ScorerStepByStep:
    """Replays a parquet file through ``model.predict`` in this process and scores it.

    Returns the organizers' keys: per-feature R² and ``mean_r2`` for next-state files, or
    ``t0``, ``t1`` and ``weighted_pearson`` for order-book files. No limits, no sandbox: use
    ``python -m harness simulate`` for the grader's conditions.
    """

    def __init__(self, dataset_path: str):
        self.dataset_path = str(dataset_path)
        self.source = ParquetSource(self.dataset_path)
        self.dim = self.source.competition.n_features

    def score(self, model, show_progress: bool = False) -> dict:  # noqa: ARG002 - reference signature
        comp = self.source.competition
        tap = TargetTap(comp)
        outcome = replay(model.predict, comp, tap(self.source.blocks()))
        if outcome.error is not None:
            raise ValueError(str(outcome.error))
        return metrics.score(comp, tap.targets(), outcome.predictions)


def _dummy_model(competition: Competition) -> type:
    """The starter pack's placeholder ``PredictionModel``: A's echoes the state, B's predicts zeros."""
    k = competition.n_outputs
    echo = not competition.target_columns

    class PredictionModel:
        def predict(self, data_point: DataPoint) -> np.ndarray | None:
            if not data_point.need_prediction:
                return None
            return np.array(data_point.state, dtype=np.float64) if echo else np.zeros(k)

    return PredictionModel


def module_for(competition: Competition) -> types.ModuleType:
    """A module named ``utils`` with exactly ``competition.utils_names``, nothing more."""
    eager = {"np": np, "dataclass": dataclass, "DataPoint": DataPoint, "ScorerStepByStep": ScorerStepByStep,
             "PredictionModel": _dummy_model(competition),
             "weighted_pearson_correlation": weighted_pearson_correlation}
    names = competition.utils_names
    unknown = [n for n in names if n not in eager and n not in _LAZY]
    if unknown:
        raise ValueError(f"internal: utils for {competition.key} names {unknown}, which harness.utils does not provide")
    module = types.ModuleType("utils", f"The grader's utils for competition {competition.key} ({competition.name}).")

    def lazy(name: str):
        if name in names and name in _LAZY:
            source, attr = _LAZY[name]
            value = importlib.import_module(source)
            value = getattr(value, attr) if attr else value
            setattr(module, name, value)
            return value
        raise AttributeError(f"module 'utils' has no attribute {name!r}")

    module.__dict__.update({n: eager[n] for n in names if n in eager})
    module.__getattr__ = lazy
    module.__all__ = list(names)  # what ``from utils import *`` takes there: every public name
    module.__dir__ = lambda: sorted(names)
    return module


def install(competition: Competition) -> types.ModuleType:
    """Make ``import utils`` give the competition's module in this process (the child calls it
    before importing the candidate, as the grader has imported its ``utils`` before)."""
    module = module_for(competition)
    sys.modules["utils"] = module
    return module
