"""The grader's ``utils`` module as a candidate sees it.

The sandbox puts this file on the candidate's path as ``utils``, so that
``from utils import DataPoint, ScorerStepByStep`` works as with the organizers' starter pack.
It re-exports the harness's own pieces (one replay loop, one metric), so a candidate's own
``__main__`` scoring agrees with ``python -m harness simulate`` to the last digit.
"""

from __future__ import annotations

import numpy as np

from harness import metrics
from harness.data import ParquetSource, TargetTap
from harness.replay import DataPoint, replay

__all__ = ["DataPoint", "ScorerStepByStep", "weighted_pearson_correlation"]


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
