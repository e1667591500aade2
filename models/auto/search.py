"""The search: an Optuna study in a journal file, N worker processes, a wall-clock deadline.

The search creates the study (the first trials of each family enqueued, cheapest first), starts
``workers`` processes (``models.auto.worker``) and watches their trials' result files, showing
progress. The minutes count from the command's start. Workers start no trial after the
deadline and a network's training stops itself before it; a trial still running at the
deadline (a long tree fit) is ended with its worker's process group, and its result, saved as
``running`` when it started, is marked ``cut``: the search never runs past its minutes. A worker that
dies on its own is a bug: the search stops and shows the tail of its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness import competitions
from models.auto import progress as progress_mod
from models.auto.space import Context, first_trials
from models.auto.trial import CUT, RUNNING, TrialResult, load_results
from models.auto.worker import STUDY, WorkerSpec, storage

POLL_S = 0.5
"""Seconds between two looks at the trials' result files."""

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


class WorkerCrashed(RuntimeError):
    """A worker ended with an error of its own (a bug, not a trial's failure)."""


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
    workers: int
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


def _start(spec_path: Path, log_path: Path) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "models.auto.worker", str(spec_path)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def _end(proc: subprocess.Popen) -> None:
    """End a worker and everything in its process group (the sandbox it may be running)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def _log_tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def cut_trials(results: list[TrialResult]) -> list[TrialResult]:
    """``results`` with every trial still ``running`` (its worker ended at the deadline) marked ``cut``."""
    for result in results:
        if result.status == RUNNING:
            result.status, result.error = CUT, "still running when the search's minutes ran out"
    return results


def run_search(plan: SearchPlan, work: Path, console) -> list[TrialResult]:
    """Run the search in ``work`` (its study journal, worker specs and logs, and one folder per
    trial under ``work/trials``); returns every trial's result, cut ones included."""
    trials_dir = work / "trials"
    trials_dir.mkdir(parents=True)
    journal = work / "study.journal"
    started = plan.started
    deadline = started + plan.search_seconds
    context = Context(competitions.get(plan.competition), plan.train_count, plan.features, plan.seed,
                      plan.search_seconds / 60, plan.trial_minutes)
    create_study(plan, journal, context)
    procs, logs = [], []
    for index in range(plan.workers):
        spec = WorkerSpec(plan.competition, str(plan.train), str(plan.valid), plan.train_sequences, plan.families,
                          list(plan.features), plan.seed, index, str(journal), str(trials_dir), deadline,
                          plan.max_trials, plan.latency_sequences, plan.grader_minutes, plan.safety,
                          plan.trial_minutes)
        logs.append(work / f"worker-{index}.log")
        procs.append(_start(spec.write(work / f"worker-{index}.json"), logs[-1]))
    shown = progress_mod.TrialProgress(console, f"auto {plan.competition}", plan.search_seconds, plan.max_trials)
    try:
        with shown:
            while any(p.poll() is None for p in procs):
                shown.update(load_results(trials_dir), time.time() - started)
                crashed = [i for i, p in enumerate(procs) if p.poll() not in (None, 0)]
                if crashed:
                    raise WorkerCrashed(f"search worker {crashed[0]} failed (exit {procs[crashed[0]].returncode}); "
                                        f"its log ends:\n{_log_tail(logs[crashed[0]])}")
                if time.time() >= deadline:
                    break
                time.sleep(POLL_S)
            shown.update(load_results(trials_dir), time.time() - started)
    finally:
        for proc in procs:
            _end(proc)
    crashed = [i for i, p in enumerate(procs) if p.returncode not in (0, -signal.SIGKILL)]
    if crashed:
        raise WorkerCrashed(f"search worker {crashed[0]} failed (exit {procs[crashed[0]].returncode}); its log "
                            f"ends:\n{_log_tail(logs[crashed[0]])}")
    return cut_trials(load_results(trials_dir))
