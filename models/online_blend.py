"""The online blend's rate, fitted out of fold: kept only where it beats the static blend.

An ensemble's static per-output weights are the best fixed mix over all sequences; within one
sequence a member may be better than it is on average (a regime it handles well). The online
blend (``models.runtime.online_weights``) starts each sequence at the static weights and moves
them by exponential weights as targets are revealed. Its one setting, the rate, is chosen from a
small grid that always holds 0 (the static blend itself), by the competition's metric over the
members' out-of-fold rows laid out as whole sequences.

Judged out of fold, twice nested: within each sequence-grouped fold of the OOF rows (the
ensemble's ``blend_folds``, the same folds the static weights are cross-validated on), the static
weights and the rate are fitted on the other folds and the held-out fold is blended with them.
That score is set against the static weights' cross-validated score with a paired bootstrap over
sequences; the rate fitted on all rows ships only when it is not 0 and the lower end of the
difference's 95% interval is above 0 (a gain the sequences do not bear out costs run time for
nothing).

Only a competition whose next row reveals the target (A) can blend online; B's targets never
reach the model (``Competition.next_row_reveals_target``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness import metrics
from harness.competitions import Competition
from models import cv
from models.config import ConfigError
from models.runtime.online_weights import losses_before, sequence_weights

DEFAULT_RATES = (0.0, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
"""Rates tried by default. The loss is the squared error over the target's variance, so a loss
gap of 0.05 a row between two members over 400 rows moves their weight ratio by exp(-20 * rate)."""

PriorFit = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(member predictions (M, N, K), targets (N, K)) -> static weights (M, K) summing to 1 per output."""


def refuse_unless_revealed(comp: Competition) -> None:
    """ConfigError unless ``comp``'s targets reach the model one row after each prediction."""
    if not comp.next_row_reveals_target:
        raise ConfigError(f"train.online: {comp.key}'s targets ({', '.join(comp.target_columns)}) never reach the "
                          f"model, so a blend cannot learn from them within a sequence; online blending is for "
                          f"competitions whose next row is the target (A). Remove 'online' from this ensemble")


def sequence_layout(seq_ix: np.ndarray, step: np.ndarray, comp: Competition) -> np.ndarray:
    """Row indices (S, T) that lay OOF rows out as whole sequences, steps in time order.

    ConfigError when a sequence lacks a scored step: the online blend replays every scored row
    of a sequence, as the grader does, so rows sampled out (``sample_stride``) cannot be blended.
    """
    order = np.lexsort((step, seq_ix))
    sequences, counts = np.unique(seq_ix, return_counts=True)
    per = comp.scored_steps_per_sequence
    steps = np.arange(comp.first_scored_step, comp.last_scored_step + 1)
    short = int((counts != per).sum())
    if not short:
        layout = order.reshape(len(sequences), per)
        short = int((step[layout] != steps).any(axis=1).sum())
        if not short:
            return layout
    raise ConfigError(f"train.online: {short} of {len(sequences)} sequences of the members' shared out-of-fold rows "
                      f"lack scored steps; the online blend replays whole sequences, so give every member all rows "
                      f"(\"sample_stride\": 1, the default)")


def loss_scale(y: np.ndarray) -> np.ndarray:
    """1 / variance of each output's targets (K,) over all rows of ``y`` (..., K); 1 where constant."""
    flat = y.reshape(-1, y.shape[-1])
    var = flat.var(axis=0)
    return 1.0 / np.where(var > 0, var, 1.0)


CHUNK_SEQUENCES = 32
"""Sequences blended at a time: the loss arrays are (members, chunk, steps, outputs) float64, so
fitting on all of A's train sequences never holds more than a chunk's worth of them."""


def _chunks(layout: np.ndarray):
    """Row indices (chunk, T) of consecutive chunks of the sequences in ``layout`` (S, T)."""
    for start in range(0, len(layout), CHUNK_SEQUENCES):
        yield layout[start : start + CHUNK_SEQUENCES]


@dataclass
class RateFit:
    """The static weights, loss scale and rate fitted on some sequences, with each rate's score there."""

    prior: np.ndarray
    inv_scale: np.ndarray
    rate: float
    scores: dict[float, float]

    def blend_into(self, out: np.ndarray, p: np.ndarray, y: np.ndarray, layout: np.ndarray) -> None:
        """Write the online blend of the sequences in ``layout`` (S, T) into their rows of ``out`` (N, K)
        (member predictions ``p`` (M, N, K), targets ``y`` (N, K))."""
        for rows in _chunks(layout):
            pc = p[:, rows]
            before = losses_before(pc, y[rows], self.inv_scale)
            out[rows] = (sequence_weights(self.prior, self.rate, before) * pc).sum(axis=0)


def fit_rate(comp: Competition, p: np.ndarray, y: np.ndarray, layout: np.ndarray, rates: list[float],
             fit_prior: PriorFit) -> RateFit:
    """Static weights on the sequences in ``layout``, then the rate (of ``rates``, 0 always among
    them) whose online blend of those sequences scores highest; ties go to the smaller rate."""
    flat = layout.reshape(-1)
    prior = fit_prior(p[:, flat], y[flat])
    inv_scale = loss_scale(y[flat])
    grid = sorted(set([0.0] + [float(r) for r in rates]))
    parts: dict[float, list] = {rate: [] for rate in grid}
    for rows in _chunks(layout):
        pc, yc = p[:, rows], y[rows]
        before = losses_before(pc, yc, inv_scale)
        starts = np.arange(len(rows)) * rows.shape[1]
        for rate in grid:
            blended = (sequence_weights(prior, rate, before) * pc).sum(axis=0)
            parts[rate].append(metrics.sequence_stats(comp, yc.reshape(-1, yc.shape[-1]),
                                                      blended.reshape(-1, yc.shape[-1]), starts))
    scores = {rate: metrics.score_from_stats(comp, metrics.SequenceStats.concat(parts[rate]))[comp.metric]
              for rate in grid}
    best = max(scores, key=lambda r: (scores[r], -r))
    return RateFit(prior, inv_scale, best, scores)


def fit_online(comp: Competition, p: np.ndarray, y: np.ndarray, seq_ix: np.ndarray, step: np.ndarray,
               rates: list[float], folds: int, seed: int, fit_prior: PriorFit, static: np.ndarray) -> dict:
    """The online blend of OOF rows (p (M, N, K), y (N, K), keyed by ``seq_ix`` and ``step``):
    its nested out-of-fold predictions (N, K) and score, each fold's rate, the paired 95% interval
    of its score minus that of the ``static`` cross-validated predictions (N, K), the fit on all
    rows, and whether it is kept."""
    refuse_unless_revealed(comp)
    layout = sequence_layout(seq_ix, step, comp)
    fold_of = cv.group_folds(seq_ix[layout[:, 0]], folds, seed)  # the static CV's folds: same seq_ix, seed
    prediction = np.empty_like(y)
    fold_rates = []
    for f in range(folds):
        fitted = fit_rate(comp, p, y, layout[fold_of != f], rates, fit_prior)
        fold_rates.append(fitted.rate)
        fitted.blend_into(prediction, p, y, layout[fold_of == f])
    score = metrics.score(comp, y, prediction)[comp.metric]
    rows, starts = layout.reshape(-1), np.arange(len(layout)) * layout.shape[1]
    interval = metrics.paired_bootstrap_interval(metrics.sequence_stats(comp, y[rows], prediction[rows], starts),
                                                 metrics.sequence_stats(comp, y[rows], static[rows], starts))
    fit = fit_rate(comp, p, y, layout, rates, fit_prior)
    return {"prediction": prediction, "score": score, "fold_rates": fold_rates, "interval": interval, "fit": fit,
            "kept": fit.rate > 0 and interval[0] > 0}
