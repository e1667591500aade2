"""Scoring against the oracle: what the report shows beside a candidate when a sidecar exists.

A candidate's score means little on synthetic data without the ceiling: ``score_oracle`` gives
the oracles' own scores on the scored rows (from the sidecar, through ``harness.metrics``) and
a candidate's fraction of them, with one rule for the fraction (``fraction_of_oracle``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from harness.competitions import Competition, detect
from harness.market.base import load_sidecar
from harness.metrics import SequenceStats, score, score_from_stats


def scored_targets(data_path: Path, competition: Competition | None = None) -> np.ndarray:
    """The values each scored row's prediction is compared with, in file order: (rows, K) float64.

    For a competition with target columns these are the scored rows' targets; otherwise (A)
    the features of the row ``target_offset`` steps later in the same sequence.
    """
    data_path = Path(data_path)
    comp = competition or detect(pq.read_schema(data_path).names)
    value_cols = list(comp.target_columns or comp.feature_columns)
    table = pq.read_table(data_path, columns=["seq_ix", "need_prediction", *value_cols])
    need = np.flatnonzero(table.column("need_prediction").to_numpy().astype(bool))
    at = need + comp.target_offset
    if at.size and at[-1] >= table.num_rows:
        raise ValueError(f"{data_path}: the last scored row has no row {comp.target_offset} step(s) later")
    seq = table.column("seq_ix").to_numpy()
    if not np.array_equal(seq[at], seq[need]):
        bad = int(np.flatnonzero(seq[at] != seq[need])[0])
        raise ValueError(f"{data_path}: scored row {need[bad]} is scored against a row of another sequence")
    return np.column_stack([table.column(c).to_numpy()[at] for c in value_cols]).astype(np.float64)


def score_oracle(comp: Competition, y_true: np.ndarray, sidecar, candidate: float | None = None) -> dict:
    """The oracles' scores on the scored rows ``y_true`` (the first ``len(y_true)`` rows of the
    file, which the sidecar lists in file order), and ``candidate``'s fraction of the observable one.

    ``models`` calls it with its rows; the simulator, which keeps per-sequence sums only, calls
    ``oracle_from_stats``; both build the same dictionary (``_oracle_report``).
    """
    n = len(y_true)
    if len(sidecar.observable) < n:
        raise ValueError(f"the oracle sidecar has {len(sidecar.observable)} rows, fewer than the {n} scored rows; "
                         "regenerate the set")
    hidden = None if sidecar.hidden is None else score(comp, y_true, sidecar.hidden[:n])[comp.metric]
    return _oracle_report(comp, score(comp, y_true, sidecar.observable[:n]), hidden, candidate)


def oracle_from_stats(comp: Competition, observable: SequenceStats, hidden: SequenceStats | None,
                      candidate: float | None = None) -> dict:
    """``score_oracle``'s dictionary from the oracles' per-sequence statistics on a run's rows."""
    hidden_score = None if hidden is None else score_from_stats(comp, hidden)[comp.metric]
    return _oracle_report(comp, score_from_stats(comp, observable), hidden_score, candidate)


def _oracle_report(comp: Competition, observable: dict[str, float], hidden: float | None,
                   candidate: float | None) -> dict:
    out = {"observable": observable[comp.metric],
           "per_output": {name: observable[name] for name in comp.prediction_names}}
    if hidden is not None:
        out["hidden"] = hidden
    out["fraction_of_observable"] = None if candidate is None else fraction_of_oracle(candidate, out["observable"])
    return out


def oracle_scores(data_path: Path, competition: Competition | None = None) -> dict | None:
    """``score_oracle`` of the whole file at ``data_path``; None without a sidecar."""
    data_path = Path(data_path)
    comp = competition or detect(pq.read_schema(data_path).names)
    side = load_sidecar(data_path, comp)
    if side is None:
        return None
    return score_oracle(comp, scored_targets(data_path, comp), side)


def fraction_of_oracle(candidate: float, oracle: float) -> float | None:
    """The candidate's score as a fraction of the oracle's; None when the oracle scores <= 0
    (a fraction of a ceiling at or below zero says nothing)."""
    if not np.isfinite(oracle) or oracle <= 0:
        return None
    return float(candidate / oracle)
