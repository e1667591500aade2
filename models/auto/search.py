"""The search: an Optuna study in a journal file, N workers on the execution engine, a wall-clock deadline.

The search creates the study (the first trials of each family enqueued, cheapest first), runs
``workers`` search workers (``models.auto.worker.run``) as tasks of ``harness.execution`` (local
processes or a Ray instance on this machine: they share the journal file) in a background
thread, and watches their trials' result files, showing progress. The minutes count from the
command's start. Workers start no trial after the deadline and a network's training stops itself
before it; at the deadline the engine's ``stop`` ends the workers still running with what they
started (a trial's sandbox), and a trial's result, saved as ``running`` when it started, is
marked ``cut``: the search never runs past its minutes. A worker ended there is no failure and
is not retried. A worker that raises on its own is a bug: the search stops and shows the tail of
its log, its traceback (``models.auto.worker.WorkerCrashed``); one that dies (killed, out of
memory) is retried once by the engine, then the engine's ``WorkerLost`` names it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from harness import competitions
from harness.execution import Engine, Task, run_tasks
from models.auto import progress as progress_mod
from models.auto.space import Context, first_trials
from models.auto.trial import CUT, RUNNING, TrialResult, load_results
from models.auto.worker import STUDY, WorkerSpec, storage
from models.auto.worker import run as run_worker

POLL_S = 0.5
"""Seconds between two looks at the trials' result files."""

STOP_WAIT_S = 120.0
"""Seconds the engine may take to end the workers once stopped (a local Ray instance's shutdown
takes some); longer is a bug of the engine."""

FINISH_RESERVE_S = 60.0
"""Seconds of the budget kept for after the search (scoring the report part, writing the folder:
about 50 s for a network on A's 64 report sequences at load average 8); at most a tenth of it."""

REFIT_SHARE = 0.2
"""Share of the minutes kept after the search for the ensemble of trials and the refit of the
choice when the refit is on (``models.auto.blend``, ``models.auto.refit``); a network's trial
may train at most this long, so the refit of a chosen network fits there."""

ENSEMBLE_SHARE = 0.05
"""Share kept for the ensemble alone (``--no-refit``): predictions on the selection part and one
timing replay."""


@dataclass(frozen=True)
class SearchPlan:
    """What to search, on which data, within which budget."""

    competition: str
    train: Path
    valid: Path
    train_sequences: int | None
    train_count: int
    families: list[str]
    features: tuple[str, ...]
    minutes: float
    engine: Engine
    """Where the search workers run (``--workers``, ``--backend``); the workers share a journal
    file, so on this machine (``models.auto.cli`` refuses an address)."""
    seed: int
    max_trials: int | None
    latency_sequences: int
    grader_minutes: float | None
    safety: float
    started: float
    """When the command started (``time.time()``): the minutes count from there."""
    refit: bool = True
    ensemble: bool = True

    @property
    def after_seconds(self) -> float:
        """Seconds kept after the search for the ensemble and the refit (0 when both are off)."""
        share = REFIT_SHARE if self.refit else ENSEMBLE_SHARE if self.ensemble else 0.0
        return share * self.minutes * 60

    @property
    def trial_minutes(self) -> float | None:
        """The cap on a network trial's training (the refit's reserve), None without a refit."""
        return self.after_seconds / 60 if self.refit else None

    @property
    def search_seconds(self) -> float:
        """Seconds from the command's start until the workers' deadline."""
        total = self.minutes * 60
        return max(1.0, total - min(FINISH_RESERVE_S, total / 10) - self.after_seconds)


def create_study(plan: SearchPlan, journal: Path, context: Context) -> None:
    """The study every worker loads, with each family's first trial enqueued."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name=STUDY, storage=storage(str(journal)), direction="maximize")
    for params in first_trials(plan.families, context):
        study.enqueue_trial(params, skip_if_exists=True)


def cut_trials(results: list[TrialResult]) -> list[TrialResult]:
    """``results`` with every trial still ``running`` (its worker ended at the deadline) marked ``cut``."""
    for result in results:
        if result.status == RUNNING:
            result.status, result.error = CUT, "still running when the search's minutes ran out"
    return results


def run_search(plan: SearchPlan, work: Path, console) -> list[TrialResult]:
    """Run the search in ``work`` (its study journal, the workers' logs, and one folder per trial
    under ``work/trials``); returns every trial's result, cut ones included."""
    trials_dir = work / "trials"
    trials_dir.mkdir(parents=True)
    journal = work / "study.journal"
    started = plan.started
    deadline = started + plan.search_seconds
    context = Context(competitions.get(plan.competition), plan.train_count, plan.features, plan.seed,
                      plan.search_seconds / 60, plan.trial_minutes)
    create_study(plan, journal, context)
    workers = plan.engine.workers
    logs = [work / f"worker-{index}.log" for index in range(workers)]
    tasks = [Task(f"search worker {index + 1} of {workers}", run_worker, (WorkerSpec(
        plan.competition, str(plan.train), str(plan.valid), plan.train_sequences, plan.families, list(plan.features),
        plan.seed, index, str(journal), str(trials_dir), deadline, plan.max_trials, plan.latency_sequences,
        plan.grader_minutes, plan.safety, plan.trial_minutes, str(logs[index])),), pin=False)
        for index in range(workers)]  # not pinned: a trial trains as before and gives its sandbox the slot's core
    stop = threading.Event()
    outcome: dict[str, BaseException] = {}

    def drive() -> None:
        try:
            run_tasks(tasks, plan.engine, stop=stop)
        except BaseException as exc:  # noqa: BLE001 - raised again in the search's own thread
            outcome["error"] = exc

    driver = threading.Thread(target=drive, name="auto search workers", daemon=True)
    shown = progress_mod.TrialProgress(console, f"auto {plan.competition}", plan.search_seconds, plan.max_trials)
    try:
        with shown:
            driver.start()
            while driver.is_alive() and time.time() < deadline:
                shown.update(load_results(trials_dir), time.time() - started)
                driver.join(POLL_S)
            shown.update(load_results(trials_dir), time.time() - started)
    finally:
        stop.set()  # at the deadline, or on an error or an interrupt here: end the workers still running
        driver.join(STOP_WAIT_S)
    if driver.is_alive():
        raise RuntimeError(f"internal: the search workers did not stop within {STOP_WAIT_S:.0f} s of the deadline")
    if "error" in outcome:  # a worker's WorkerCrashed (with its log), or the engine's ExecutionError
        raise outcome["error"]
    return cut_trials(load_results(trials_dir))
