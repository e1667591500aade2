"""One trial: train a candidate into its own solution folder, score it on the selection part,
and time it in the sandbox against the grader's limit.

The time check replays the trained folder exactly as ``harness simulate`` does (sandbox, one
core) on the first few sequences of the train file, and projects the full test set's time the
same way, times the safety factor (``harness.simulate.projection``). A trial whose projection
is over the limit is *infeasible*: it keeps its score in the record but can never be chosen.
Timing on train rows keeps the valid file's two parts untouched by this step.
"""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.competitions import SAFETY_FACTOR, Competition
from harness.execution import slot_core
from harness.simulate import SimulateOptions, simulate
from models.auto.space import Candidate, chosen_by_training
from models.data import SequenceSet
from models.registry import train_solution

OK, INFEASIBLE, FAILED, RUNNING, CUT, NO_GAIN, REPEAT = ("ok", "infeasible", "failed", "running", "cut", "no gain",
                                                         "repeat")
"""Trial statuses: may be chosen; over the time limit; raised or failed its replay; not finished
yet; still running when the search's wall-clock budget ran out; an ensemble that did not beat
its best member on the same rows (``models.auto.blend``); the settings of an earlier trial,
not run (``models.auto.worker.repeated_trial``)."""

RESULT_FILE = "trial.json"


@dataclass(frozen=True)
class TimeBudget:
    """The grader's limit the projection must fit: ``minutes`` (None: the competition's) and
    the safety factor; the projection replays ``sequences`` sequences of ``data``."""

    data: Path
    sequences: int = 3
    minutes: float | None = None
    safety: float = SAFETY_FACTOR


@dataclass
class TrialResult:
    """What the run record and the table show of one trial."""

    number: int
    family: str
    searched: dict[str, Any]
    params: dict[str, Any]
    status: str
    score: float | None = None
    us_per_row: float | None = None
    projected_minutes: float | None = None
    limit_minutes: float | None = None
    seconds: float = 0.0
    error: str = ""
    folder: str = ""
    train_seconds: float | None = None
    """Seconds the training took (what a refit of this trial is projected from)."""
    scored_seq_ix: list[int] = field(default_factory=list)
    """The selection part's ``seq_ix`` its score was measured on (a network chose its epoch on
    the others); an ensemble of trials is compared on the sequences its members share here."""
    training: dict[str, Any] = field(default_factory=dict)
    """What the training itself chose that a refit repeats (``models.auto.space.chosen_by_training``)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrialResult:
        return cls(**values)


def write_solution(folder: Path, candidate: Candidate, competition: Competition) -> None:
    """The trial's solution folder before training: manifest.json and solution.py."""
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(candidate.manifest(competition), indent=1) + "\n")
    (folder / "solution.py").write_text(candidate.solution)


def judge_time(result: TrialResult, folder: Path, budget: TimeBudget) -> None:
    """Time ``folder`` in the sandbox and set ``result``'s timing and status: ok when the
    projection fits the limit, infeasible when not, failed (with the reason) when the replay
    failed."""
    result.status = FAILED
    timing = measure_time(folder, budget)
    if not timing["ok"]:
        result.error = f"replay in the sandbox: {timing['error']}"
        return
    result.us_per_row = timing["us_per_row"]
    result.projected_minutes = timing["projected_s"] / 60
    result.limit_minutes = timing["limit_s"] / 60
    feasible = timing["projected_s"] <= timing["limit_s"]
    result.status = OK if feasible else INFEASIBLE
    if not feasible:
        result.error = (f"projected {result.projected_minutes:.1f} min (x{budget.safety:g} safety) is over "
                        f"the {result.limit_minutes:g} min limit")


def measure_time(folder: Path, budget: TimeBudget) -> dict[str, Any]:
    """The sandboxed replay's timing of ``folder``: status, us per scored row, projected and
    allowed test-set seconds (the projection includes the safety factor). The replay itself runs
    under the competition's own limit, so a tight ``budget.minutes`` judges the projection
    without cutting the few sequences that measure it. In a search worker (a task of
    ``harness.execution``) the replay runs on the worker's slot's core, so the timing replays of
    workers running together do not share one."""
    report = simulate(folder, budget.data, options=SimulateOptions(
        sequences=budget.sequences, bootstrap=0, safety=budget.safety, cpu=slot_core()))
    if report.error is not None or report.timing.projection is None:
        return {"ok": False, "error": str(report.error) if report.error else "no projection (nothing was timed)"}
    projection = report.timing.projection
    limit_s = report.timing.limit_s if budget.minutes is None else budget.minutes * 60
    return {"ok": True, "us_per_row": projection.per_row_us, "projected_s": projection.projected_test_s,
            "limit_s": limit_s}


def run_trial(number: int, searched: dict[str, Any], candidate: Candidate, folder: Path, train: SequenceSet,
              select: SequenceSet, budget: TimeBudget) -> TrialResult:
    """Train ``candidate`` in ``folder``, score it on ``select``, time it; never raises for a
    trial's own failure (the result says what failed), so one bad candidate ends no search.
    ``searched`` holds the values the sampler chose (the table shows them). A result with
    status ``running`` is saved first, so a trial cut at the deadline is still on record."""
    started = time.perf_counter()
    result = TrialResult(number, candidate.family, searched, candidate.train, RUNNING, folder=str(folder))
    try:
        write_solution(folder, candidate, train.competition)
        save_result(result, folder)
        result.status = FAILED
        fit_started = time.perf_counter()
        trained = train_solution(folder, train, select, Console(file=io.StringIO()))
        result.train_seconds = time.perf_counter() - fit_started
        result.score = float(trained.record["valid_score"])
        scored = select.seq_ix if trained.report_index is None else select.seq_ix[trained.report_index]
        result.scored_seq_ix = [int(i) for i in scored]
        result.training = chosen_by_training(trained.record)
        judge_time(result, folder, budget)
    except Exception as exc:  # noqa: BLE001 - a trial's failure is recorded with its type and message
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - started
    return result


def save_result(result: TrialResult, folder: Path) -> Path:
    """Write ``trial.json`` in ``folder`` atomically (the search polls for it)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RESULT_FILE
    scratch = folder / f".{RESULT_FILE}.tmp"
    scratch.write_text(json.dumps(result.to_dict(), indent=1, default=float) + "\n")
    os.replace(scratch, path)
    return path


def load_results(trials_dir: Path) -> list[TrialResult]:
    """Every finished trial's result under ``trials_dir``, by trial number."""
    results = [TrialResult.from_dict(json.loads(path.read_text())) for path in trials_dir.glob(f"*/{RESULT_FILE}")]
    return sorted(results, key=lambda r: r.number)
