"""Offline evaluation of a fitted predictor, the simulator's oracle beside it, and the online replay.

Offline: the predictor's batch form over whole sequences, scored by the harness's metric on the
grader's rows (``SequenceSet.score``). Online: the packaged solution replayed row by row in the
harness's sandbox. The two must agree to 1e-9; ``parity`` measures it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from harness.competitions import Competition
from harness.simulation import SimulationReport
from models.data import SequenceSet


def offline_predictions(predictor, data: SequenceSet) -> np.ndarray:
    """Predictions (S, T, K) of the scored steps (NaN elsewhere)."""
    return predictor.predict_sequences(data.features, data.scored)


def oracle_scores(data: SequenceSet, candidate: float | None = None) -> dict | None:
    """The simulator's oracle scores on ``data`` and ``candidate``'s fraction of them
    (``harness.market.oracle.score_oracle``); None when the set carries no oracle rows.

    The rows travel with the set (``SequenceSet.oracle``), so a subset is scored beside its own
    part of the oracle.
    """
    if data.oracle is None:
        return None
    from harness.market.oracle import score_oracle

    return score_oracle(data.competition, data.scored_targets(), data.oracle, candidate)


def evaluate(predictor, data: SequenceSet) -> dict:
    """Headline and per-output scores of ``predictor`` on ``data``, with the oracle beside them."""
    comp: Competition = data.competition
    scores = data.score(offline_predictions(predictor, data))
    report = {"score": scores[comp.metric], "per_output": {n: scores[n] for n in comp.prediction_names}}
    oracle = oracle_scores(data, report["score"])
    if oracle is not None:
        report["oracle"] = oracle
    return report


def compare(predictor, reference, data: SequenceSet, n_resamples: int = 1000) -> dict:
    """Offline scores of ``predictor`` and ``reference`` on the same sequences, their difference
    its 95% paired bootstrap interval over sequences and the share of resamples in which
    ``predictor`` scores higher (``harness.metrics.paired_bootstrap``, as ``harness compare``)."""
    from harness import metrics

    comp: Competition = data.competition
    y = data.scored_targets()
    starts = np.arange(len(data)) * int(data.scored.sum())
    stats = []
    for model in (predictor, reference):
        flat = offline_predictions(model, data)[:, data.scored].reshape(-1, comp.n_outputs)
        stats.append(metrics.sequence_stats(comp, y, flat, starts))
    scores = [metrics.score_from_stats(comp, s)[comp.metric] for s in stats]
    boot = metrics.paired_bootstrap(stats[0], stats[1], n_resamples=n_resamples)
    oracle = oracle_scores(data, scores[0])
    return {"score": scores[0], "reference_score": scores[1], "difference": scores[0] - scores[1],
            "interval": boot.interval, "p_better": boot.p_better, "sequences": len(data),
            "fraction_of_oracle": None if oracle is None else oracle["fraction_of_observable"]}


def online_replay(candidate: str | Path, data_path: str | Path, sequences: int | None = None) -> SimulationReport:
    """The harness's sandboxed replay of a solution folder or zip (its report)."""
    from harness.simulate import SimulateOptions, simulate

    return simulate(candidate, data_path, options=SimulateOptions(sequences=sequences, bootstrap=0))


def package_and_replay(solution: str | Path, data_path: str | Path,
                       sequences: int | None = None) -> SimulationReport:
    """Build the upload zip of ``solution`` (as ``python -m harness package``) and replay it online."""
    from harness.package import build_zip

    with tempfile.TemporaryDirectory(prefix="wunderbench-parity-") as tmp:
        archive = build_zip(solution, Path(tmp) / f"{Path(solution).name}.zip")
        return online_replay(archive, data_path, sequences)


def parity(offline: dict, online: SimulationReport) -> dict:
    """Largest absolute difference between offline and online scores (headline and per output)."""
    if online.error is not None or online.score is None:
        raise RuntimeError(f"the online replay did not finish: {online.error or online.status}")
    score = online.score
    diffs = {"headline": abs(offline["score"] - score.headline)}
    for name, value in offline["per_output"].items():
        diffs[name] = abs(value - score.per_output[name])
    return {"max_abs_diff": max(diffs.values()), "headline_diff": diffs["headline"], "online_score": score.headline,
            "offline_score": offline["score"]}
