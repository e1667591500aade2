"""Each competition's simple baseline, computed on whole arrays: the gate's default score bar.

A: the mean of the sequence's states so far (about 0.17 on the organizers' data).
B: a constant, which weighted Pearson scores 0 by definition.
The same rules exist as runnable candidates in ``solutions/a_mean_so_far`` and
``solutions/b_constant``; a test checks that both agree.
"""

from __future__ import annotations

import numpy as np

from harness import metrics
from harness.competitions import SEQUENCE_LENGTH, Competition
from harness.data import ParquetSource, targets_of


def mean_so_far_predictions(competition: Competition, source: ParquetSource, sequences: int | None) -> np.ndarray:
    comp = competition
    feats = np.concatenate([b.values[:, 3 : 3 + comp.n_features] for b in source.blocks(max_sequences=sequences)])
    seqs = feats.reshape(-1, SEQUENCE_LENGTH, comp.n_features)
    means = np.cumsum(seqs, axis=1) / np.arange(1, SEQUENCE_LENGTH + 1)[None, :, None]
    return means[:, comp.first_scored_step : comp.last_scored_step + 1].reshape(-1, comp.n_features)


def baseline_predictions(competition: Competition, source: ParquetSource, sequences: int | None) -> np.ndarray:
    """The simple baseline's predictions for the scored rows of the first ``sequences``."""
    if competition.metric == "weighted_pearson":
        rows = min(source.num_sequences, sequences or source.num_sequences) * competition.scored_steps_per_sequence
        return np.zeros((rows, competition.n_outputs))
    return mean_so_far_predictions(competition, source, sequences)


def baseline_score(competition: Competition, source: ParquetSource, sequences: int | None = None) -> float:
    """The headline score of the competition's simple baseline on the first ``sequences``."""
    y = targets_of(competition, source.blocks(max_sequences=sequences))
    return metrics.score(competition, y, baseline_predictions(competition, source, sequences))[competition.metric]
