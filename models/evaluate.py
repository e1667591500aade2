"""Offline evaluation of a fitted predictor, the simulator's oracle beside it, and the online replay.

Offline: the predictor's batch form over whole sequences, scored by the harness's metric on the
grader's rows (``SequenceSet.score``). Online: the packaged solution replayed row by row in the
harness's sandbox. The two must agree to 1e-9; ``parity`` measures it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from harness import metrics
from harness.competitions import Competition
from models.data import SequenceSet


def offline_predictions(predictor, data: SequenceSet) -> np.ndarray:
    """Predictions (S, T, K) of the scored steps (NaN elsewhere)."""
    return predictor.predict_sequences(data.features, data.scored)


def oracle_scores(data: SequenceSet) -> dict[str, float] | None:
    """Scores of the simulator's oracle on ``data`` (None without a sidecar).

    The sidecar lists the file's scored rows in file order, so it lines up with a set read from
    the start of its file (``load_sequences(path, max_sequences=n)``), not with an arbitrary subset.
    """
    if data.source is None:
        return None
    from harness.simulate import load_oracle

    sidecar = load_oracle(Path(data.source))
    if sidecar is None:
        return None
    y = data.scored_targets()
    if len(sidecar.observable) < len(y):
        raise ValueError(f"the oracle sidecar of {data.source} has {len(sidecar.observable)} rows, fewer than the "
                         f"{len(y)} scored rows of the data; regenerate the set")
    comp = data.competition
    out = {"observable": metrics.score(comp, y, sidecar.observable[: len(y)])[comp.metric]}
    if sidecar.hidden is not None:
        out["hidden"] = metrics.score(comp, y, sidecar.hidden[: len(y)])[comp.metric]
    return out


def evaluate(predictor, data: SequenceSet) -> dict:
    """Headline and per-output scores of ``predictor`` on ``data``, with the oracle and the fraction of it."""
    comp: Competition = data.competition
    scores = data.score(offline_predictions(predictor, data))
    report = {"score": scores[comp.metric], "per_output": {n: scores[n] for n in comp.prediction_names}}
    oracle = oracle_scores(data)
    if oracle is not None:
        report["oracle"] = oracle
        report["oracle_fraction"] = report["score"] / oracle["observable"] if oracle["observable"] else None
    return report


def online_replay(candidate: str | Path, data_path: str | Path, sequences: int | None = None) -> dict:
    """The harness's sandboxed replay of a solution folder or zip (its report dictionary)."""
    from harness.simulate import SimulateOptions, simulate

    return simulate(candidate, data_path, options=SimulateOptions(sequences=sequences, bootstrap=0))


def package_and_replay(solution: str | Path, data_path: str | Path, sequences: int | None = None) -> dict:
    """Build the upload zip of ``solution`` (as ``python -m harness package``) and replay it online."""
    from harness.package import build_zip

    with tempfile.TemporaryDirectory(prefix="wunderbench-parity-") as tmp:
        archive = build_zip(solution, Path(tmp) / f"{Path(solution).name}.zip")
        return online_replay(archive, data_path, sequences)


def parity(offline: dict, online: dict) -> dict:
    """Largest absolute difference between offline and online scores (headline and per output)."""
    if online.get("status") != "ok" or online.get("score") is None:
        raise RuntimeError(f"the online replay did not finish: {online.get('status')}: {online.get('error')}")
    score = online["score"]
    diffs = {"headline": abs(offline["score"] - score["headline"])}
    for name, value in offline["per_output"].items():
        diffs[name] = abs(value - score["per_output"][name])
    return {"max_abs_diff": max(diffs.values()), "headline_diff": diffs["headline"], "online_score": score["headline"],
            "offline_score": offline["score"]}
