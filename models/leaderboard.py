"""Every training run record and stored simulate report in one table, built and queried with polars.

A training run record (``runs/<solution>-<stamp>.json``, ``models.record``) gives the valid
score, the fraction of the oracle, the artifacts' size and the training time; a ``simulate
--json`` report gives the replayed score with its interval, the fraction of the oracle, the time
per row, the peak memory and the zip's size. Each file becomes one row of the same columns
(``COLUMNS``; what a kind does not know is null), so the two sort and filter together.

Files of other kinds (``auto`` searches, ``generalize`` scenario tables, ``harness compare
--json`` comparisons) are no single score
and are counted, not listed; a file that is not JSON or lacks what its kind needs is skipped
with a one-line notice naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import polars as pl

from harness.simulation import SimulationReport
from harness.tables import Section

COLUMNS: dict[str, pl.DataType] = {
    "solution": pl.String, "kind": pl.String, "competition": pl.String, "data_sha256": pl.String,
    "sequences": pl.Int64, "score": pl.Float64, "interval_low": pl.Float64, "interval_high": pl.Float64,
    "fraction_of_oracle": pl.Float64, "us_per_row": pl.Float64, "peak_mib": pl.Float64, "size_mb": pl.Float64,
    "train_s": pl.Float64, "started_utc": pl.String, "file": pl.String,
}
"""The leaderboard's columns and their types (``--sort`` and ``--filter`` name these). ``kind`` is
"train" (a run record: the valid score; size = the artifacts') or "simulate" (a stored report:
size = the zip's, null for a folder)."""

HIGHER_FIRST = {"score", "interval_low", "interval_high", "fraction_of_oracle"}
"""Columns whose best values are the largest: they sort high to low."""

OTHER_KINDS = ("auto", "generalize", "compare")


class RecordError(ValueError):
    """A file under the folders read that is neither a run record nor a simulate report."""


def _kind(data: object) -> str:
    if not isinstance(data, dict):
        raise RecordError("not a JSON object")
    if data.get("command") in ("auto", "compare"):
        return data["command"]
    if "scenarios" in data:
        return "generalize"
    if {"candidate", "timing", "memory", "verdict"} <= data.keys():
        return "simulate"
    if {"solution", "valid_score"} <= data.keys():
        return "train"
    raise RecordError("neither a training run record (solution, valid_score) nor a simulate --json report")


def _mib(value: float | None, unit: int) -> float | None:
    return None if value is None else value / unit


def train_row(data: dict, file: str) -> dict:
    """The row of a training run record: its valid score, on the valid file's sha256."""
    oracle = data.get("oracle") or {}
    artifacts = data.get("artifacts")
    return {"solution": str(data["solution"]), "kind": "train", "competition": str(data["competition"]),
            "data_sha256": str(data["data"]["valid"]["sha256"]),
            "sequences": int(data.get("valid_scored_sequences") or data["data"]["valid"]["sequences"]),
            "score": float(data["valid_score"]),
            "interval_low": None, "interval_high": None, "fraction_of_oracle": oracle.get("fraction_of_observable"),
            "us_per_row": None, "peak_mib": None,
            "size_mb": None if artifacts is None else _mib(sum(artifacts.values()), 1024 ** 2),
            "train_s": float(data["seconds"]), "started_utc": data.get("started_utc"), "file": file}


def simulate_row(data: dict, file: str) -> dict:
    """The row of a ``simulate --json`` report (a failed run has no score: null)."""
    report = SimulationReport.from_json(data)
    score, projection = report.score, report.timing.projection
    interval = None if score is None else score.interval95
    oracle = None if score is None else score.oracle or {}
    return {"solution": Path(report.candidate.rstrip("/")).name.removesuffix(".zip"), "kind": "simulate",
            "competition": report.competition, "data_sha256": report.data_sha256, "sequences": report.sequences,
            "score": None if score is None else score.headline,
            "interval_low": None if interval is None else interval[0],
            "interval_high": None if interval is None else interval[1],
            "fraction_of_oracle": None if oracle is None else oracle.get("fraction_of_observable"),
            "us_per_row": None if projection is None else projection.per_row_us,
            "peak_mib": _mib(report.memory.peak_bytes, 1024 ** 2), "size_mb": _mib(report.candidate_bytes, 1024 ** 2),
            "train_s": None, "started_utc": None, "file": file}


def _why(exc: Exception) -> str:
    text = str(exc).strip()
    if isinstance(exc, KeyError):
        return f"no {text}"
    return text.splitlines()[0] if text else type(exc).__name__


def read_rows(paths: Iterable[Path], notice: Callable[[str], None]) -> tuple[list[dict], dict[str, int]]:
    """The rows of every file in ``paths`` and how many files of other kinds were passed over;
    ``notice`` gets one line per file skipped."""
    rows, others = [], {kind: 0 for kind in OTHER_KINDS}
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
            kind = _kind(data)
            if kind in others:
                others[kind] += 1
                continue
            rows.append((train_row if kind == "train" else simulate_row)(data, str(path)))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            notice(f"{path}: skipped, not a readable run record or simulate report ({_why(exc)})")
    return rows, others


def json_files(folders: Iterable[Path]) -> list[Path]:
    """Every ``*.json`` under ``folders`` (recursively), each once, in a stable order."""
    found = {p.resolve(): p for folder in folders if Path(folder).is_dir() for p in Path(folder).rglob("*.json")}
    return sorted(found.values())


def table(rows: list[dict]) -> pl.DataFrame:
    """The rows as a DataFrame of ``COLUMNS`` (typed even when empty)."""
    return pl.DataFrame(rows, schema=COLUMNS)


def select(frame: pl.DataFrame, competition: str | None = None, solution: str | None = None,
           data: str | None = None, where: str | None = None, sort: str = "score",
           reverse: bool = False) -> pl.DataFrame:
    """The rows asked for, sorted within each competition (scores of A and B never mix): by
    ``sort``, best first (high to low for scores, low to high for costs), ``reverse`` flips it.
    ``where`` is a SQL condition on the columns (polars ``sql_expr``), e.g. ``"us_per_row < 50"``."""
    if sort not in COLUMNS:
        raise ValueError(f"--sort: no column {sort!r}; columns: {', '.join(COLUMNS)}")
    if competition:
        frame = frame.filter(pl.col("competition") == competition)
    if solution:
        frame = frame.filter(pl.col("solution") == solution)
    if data:
        frame = frame.filter(pl.col("data_sha256").str.starts_with(data.lower()))
    if where:
        try:
            frame = frame.filter(pl.sql_expr(where))
        except Exception as exc:  # polars raises several types for a bad expression; all are the user's
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"--filter {where!r}: {first}") from None
    descending = (sort in HIGHER_FIRST) != reverse
    return frame.sort(["competition", sort], descending=[False, descending], nulls_last=True)


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def sections(frame: pl.DataFrame, others: dict[str, int]) -> list[Section]:
    """One table per competition, the columns people read (the sha shortened to 12)."""
    columns = ["solution", "kind", "data", "seq", "score", "95% interval", "of oracle", "us/row", "peak MiB", "size MB",
               "train s", "file"]
    parts = []
    for (competition,), group in frame.group_by(["competition"], maintain_order=True):
        rows = []
        for r in group.iter_rows(named=True):
            interval = "-" if r["interval_low"] is None else f"[{r['interval_low']:.4f}, {r['interval_high']:.4f}]"
            rows.append([r["solution"], r["kind"], (r["data_sha256"] or "-")[:12], str(r["sequences"]),
                         _fmt(r["score"], ".4f"), interval,
                         _fmt(r["fraction_of_oracle"], ".3f"), _fmt(r["us_per_row"], ".1f"), _fmt(r["peak_mib"], ".0f"),
                         _fmt(r["size_mb"], ".2f"), _fmt(r["train_s"], ".0f"), Path(r["file"]).name])
        parts.append(Section(f"Competition {competition}: {len(rows)} runs", columns, rows))
    passed = ", ".join(f"{n} {kind}" for kind, n in others.items() if n)
    if passed:
        parts.append(Section("Not listed (no single score)", ["records"], [[passed]]))
    return parts
