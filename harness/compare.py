"""Which of several candidates is better on the same data, and how sure: a paired bootstrap.

Each candidate's run (replayed now, or a stored ``simulate --json`` report on the same file)
carries its per-sequence statistics (``Score.by_sequence``). Two runs pair up by ``seq_ix``; the
bootstrap (``harness.metrics.paired_bootstrap``) resamples whole sequences and scores both on
each resample, so what the two share (which sequences are easy) cancels: the interval and the
share of resamples each wins are those of the difference alone, headline and per output.

This module computes and lays out the comparison; ``harness.compare_cli`` is the command.
The layout is plain data (``harness.tables.Section``), rendered for the terminal or as HTML.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

from harness import metrics
from harness.competitions import Competition
from harness.metrics import PairedBootstrap
from harness.simulation import BySequence, SimulationReport
from harness.tables import Section


class CompareError(ValueError):
    """Runs that cannot be compared (another file, no per-sequence statistics, other sequences);
    the message names the run and the fix."""


@dataclass
class Run:
    """One candidate's scored run: ``label`` (as the user named it), where it came from
    (``"replayed"`` or the stored report's path) and the report."""

    label: str
    source: str
    report: SimulationReport

    @property
    def by_sequence(self) -> BySequence:
        return self.report.score.by_sequence


@dataclass
class Pair:
    """``first`` against ``second`` (labels), their scores on all paired sequences (``metrics.score``'s
    keys: each output and the headline), the bootstrap."""

    first: str
    second: str
    first_scores: dict[str, float]
    second_scores: dict[str, float]
    sequences: int
    boot: PairedBootstrap


def labels(texts: list[str]) -> list[str]:
    """Short names for the tables: each candidate's file or folder name, or, where two share a
    name, the path as given."""
    names = [Path(t.rstrip("/")).name for t in texts]
    return [n if names.count(n) == 1 else t for n, t in zip(names, texts)]


def read_stored(path: str | Path, data_sha256: str, competition: Competition,
                sequences: int | None = None) -> SimulationReport:
    """The ``simulate --json`` report at ``path``, checked to be reusable here: made on the file
    whose sha256 is ``data_sha256``, for ``competition``, and finished with per-sequence
    statistics; with ``sequences``, cut to its first N (the file's first N, replayed in order)."""
    path = Path(path)
    try:
        report = SimulationReport.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CompareError(f"{path}: not a report written by simulate --json ({type(exc).__name__}: {exc})") from None
    if report.data_sha256 is None:
        raise CompareError(f"{path}: the report names no data_sha256 (written before reports carried it); "
                           f"rerun simulate --json, or pass the candidate itself to replay it")
    if report.data_sha256 != data_sha256:
        raise CompareError(f"{path} was made on other data (sha256 {report.data_sha256[:12]}, {report.data}) than "
                           f"this file (sha256 {data_sha256[:12]}): pass --data the file it was made on, or the "
                           f"candidate itself to replay it")
    if report.competition != competition.key:
        raise CompareError(f"{path} is a report for competition {report.competition}, the data is {competition.key}")
    if report.score is None or report.score.by_sequence is None:
        raise CompareError(f"{path}: the report has no per-sequence statistics (score.by_sequence: the run "
                           f"{'failed' if report.score is None else 'predates them'}); pass the candidate to replay it")
    if sequences is not None:
        by = report.score.by_sequence
        if len(by.seq_ix) < sequences:
            raise CompareError(f"{path} holds {len(by.seq_ix)} sequences, fewer than --sequences {sequences}")
        report.score.by_sequence = BySequence(by.seq_ix[:sequences], by.stats.take(range(sequences)))
    return report


def aligned(first: Run, second: Run) -> BySequence:
    """``second``'s per-sequence statistics in ``first``'s order of ``seq_ix``; CompareError when
    the two did not run the same sequences (the message says how many differ)."""
    a, b = first.by_sequence.seq_ix, second.by_sequence.seq_ix
    for run, ids in ((first, a), (second, b)):
        if len(set(ids)) != len(ids):
            raise CompareError(f"{run.label}: a seq_ix appears twice in its run; sequences cannot pair up")
    only_a, only_b = set(a) - set(b), set(b) - set(a)
    if only_a or only_b:
        raise CompareError(f"{first.label} and {second.label} did not run the same sequences: {len(only_a)} only in "
                           f"the first, {len(only_b)} only in the second (same --sequences, same data?)")
    position = {ix: i for i, ix in enumerate(b)}
    order = [position[ix] for ix in a]
    return BySequence(list(a), second.by_sequence.stats.take(order))


def compare_pair(comp: Competition, first: Run, second: Run, n_resamples: int, seed: int) -> Pair:
    """The paired bootstrap of ``first`` - ``second`` over the sequences both ran."""
    stats_a, stats_b = first.by_sequence.stats, aligned(first, second).stats
    boot = metrics.paired_bootstrap(stats_a, stats_b, n_resamples=n_resamples, seed=seed)
    return Pair(first.label, second.label, metrics.score_from_stats(comp, stats_a),
                metrics.score_from_stats(comp, stats_b), len(stats_a), boot)


def compare_runs(comp: Competition, runs: list[Run], n_resamples: int = 1000, seed: int = 0,
                 against_first: bool = False) -> list[Pair]:
    """Every pair of ``runs`` (in the order given), or each against the first; every pair uses
    the same seed, so the same draws of sequences."""
    if len(runs) < 2:
        raise CompareError("compare needs at least two candidates")
    pairs = [(runs[0], r) for r in runs[1:]] if against_first else list(itertools.combinations(runs, 2))
    return [compare_pair(comp, a, b, n_resamples, seed) for a, b in pairs]


# ---------------------------------------------------------------------------------------------
# Layout: plain sections (harness.tables), rendered to the terminal or to HTML
# ---------------------------------------------------------------------------------------------


def _interval(lo: float, hi: float, spec: str = "+.4f") -> str:
    return f"[{lo:{spec}}, {hi:{spec}}]"


def candidate_rows(comp: Competition, runs: list[Run], n_resamples: int, seed: int) -> list[dict]:
    """Each run's score and bootstrap interval on the sequences compared (a stored report cut to
    ``--sequences`` is scored on those, not on all it holds)."""
    rows = []
    for r in runs:
        stats = r.by_sequence.stats
        interval = metrics.bootstrap_interval(stats, n_resamples, seed=seed) if len(stats) >= 2 else None
        rows.append({"label": r.label, "from": r.source, "sequences": len(stats),
                     "score": metrics.score_from_stats(comp, stats)[comp.metric], "interval95": interval})
    return rows


def sections(comp: Competition, candidates: list[dict], pairs: list[Pair]) -> list[Section]:
    """The candidates' table, then one table per pair: headline and each output."""
    out = [Section(f"Candidates ({comp.metric_label})", ["candidate", "from", "sequences", "score", "95% interval"],
                   [[c["label"], c["from"], str(c["sequences"]), f"{c['score']:.4f}",
                     "-" if c["interval95"] is None else _interval(*c["interval95"], ".4f")] for c in candidates])]
    for pair in pairs:
        b = pair.boot
        columns = ["output", pair.first, pair.second, "difference", "95% interval", "P(diff > 0)", "P(diff < 0)"]
        rows = [[comp.metric, f"{pair.first_scores[comp.metric]:.4f}", f"{pair.second_scores[comp.metric]:.4f}",
                 f"{b.difference:+.4f}", _interval(*b.interval), f"{b.p_better:.3f}", f"{b.p_worse:.3f}"]]
        for k, name in enumerate(comp.prediction_names):
            rows.append([name, f"{pair.first_scores[name]:.4f}", f"{pair.second_scores[name]:.4f}",
                         f"{b.per_output[k]:+.4f}", _interval(*b.per_output_interval[k]),
                         f"{b.per_output_p_better[k]:.3f}", f"{b.per_output_p_worse[k]:.3f}"])
        out.append(Section(f"{pair.first} - {pair.second} (paired bootstrap: {pair.sequences} sequences, "
                           f"{b.resamples} resamples)", columns, rows))
    return out


def to_json(comp: Competition, data: str, data_sha256: str, candidates: list[dict], pairs: list[Pair],
            seed: int) -> dict:
    """The comparison as plain data (``--json``)."""
    return {
        "command": "compare", "data": data, "data_sha256": data_sha256, "competition": comp.key, "metric": comp.metric, "seed": seed,
        "candidates": [{**c, "interval95": None if c["interval95"] is None else list(c["interval95"])}
                       for c in candidates],
        "pairs": [{"first": p.first, "second": p.second, "sequences": p.sequences, "resamples": p.boot.resamples,
                   "first_score": p.first_scores[comp.metric], "second_score": p.second_scores[comp.metric],
                   "difference": p.boot.difference, "bootstrap_mean": p.boot.mean, "interval95": list(p.boot.interval),
                   "p_first_better": p.boot.p_better, "p_second_better": p.boot.p_worse,
                   "per_output": {name: {"first_score": p.first_scores[name], "second_score": p.second_scores[name],
                                         "difference": float(p.boot.per_output[k]),
                                         "interval95": [float(v) for v in p.boot.per_output_interval[k]],
                                         "p_first_better": float(p.boot.per_output_p_better[k]),
                                         "p_second_better": float(p.boot.per_output_p_worse[k])}
                                  for k, name in enumerate(comp.prediction_names)}}
                  for p in pairs],
    }
