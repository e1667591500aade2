"""One search worker: ``run(spec)``, a task of ``harness.execution`` that ``models.auto.search`` starts.

A worker is a process of its own (one core's worth of training; ``--workers N`` runs N of them
on the engine), reads the data once, and runs Optuna trials against the study the search
created in a journal file until the deadline or the trial cap; workers share that journal, so
the sampler of each sees every finished trial. Each trial leaves its result as ``trial.json`` in
its folder, which is what the search reads (never the journal, which a worker ended at the
deadline may leave locked). What the worker and its libraries print goes to its log file, not
through the search's progress bar. A trial's own failure is recorded and the search goes on;
anything else that goes wrong here is a bug: the worker writes its traceback in its log and
raises ``WorkerCrashed`` with the log's tail.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

STUDY = "auto"


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs, as plain data (it travels to the worker as the task's argument)."""

    competition: str
    train: str
    valid: str
    train_sequences: int | None
    families: list[str]
    features: list[str]
    seed: int
    index: int
    storage: str
    trials_dir: str
    deadline: float
    max_trials: int | None
    latency_sequences: int
    grader_minutes: float | None
    safety: float
    trial_minutes: float | None = None
    log: str = os.devnull
    """The file what the worker prints goes to (its traceback too, when it fails)."""


class WorkerCrashed(RuntimeError):
    """A worker ended with an error of its own (a bug, not a trial's failure); says which, with
    the tail of its log."""


class TrialFailed(Exception):
    """A trial failed (training raised or its replay did); its result file says why."""


def storage(path: str):
    """The study's journal file (several processes may append to it)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(path))


def run(spec: WorkerSpec) -> None:
    """Run trials until the deadline or the cap, printing into ``spec.log``; ``WorkerCrashed``
    with the log's tail when something other than a trial fails."""
    with _printing_into(Path(spec.log)):
        try:
            _search(spec)
            return
        except Exception as exc:  # noqa: BLE001 - any error here is a bug: its traceback goes to the log
            traceback.print_exc()
            failure = f"{type(exc).__name__}: {exc}"
    raise WorkerCrashed(f"search worker {spec.index + 1} failed ({failure}); its log ends:\n{log_tail(Path(spec.log))}")


@contextmanager
def _printing_into(log: Path) -> Iterator[None]:
    """File descriptors 1 and 2 (Python's prints, libraries' warnings, native libraries' output)
    into ``log``, restored afterwards (a Ray worker process runs other tasks later)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log, "ab") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a worker's log."""
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def repeated_trial(number: int, params: dict, trials: list) -> int | None:
    """The number of an earlier trial (a lower number), finished or still running, with exactly
    ``params``, or None: of two repeats started together, the later one gives way.

    Every family trains deterministically from its settings and the seed (a time cap, derived
    from the minutes left, aside), so a repeat would train the same model and rank it again on
    the same selection sequences: no new information, only another draw at the selection part's
    noise. ``trials`` are Optuna ``FrozenTrial``s."""
    import optuna

    kept = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
    for other in trials:
        if other.number < number and other.state in kept and other.params == params:
            return other.number
    return None


def _search(spec: WorkerSpec) -> None:
    import optuna

    from models.auto.space import Context, suggest
    from models.auto.split import split_valid
    from models.auto.trial import INFEASIBLE, OK, REPEAT, TimeBudget, TrialResult, run_trial, save_result
    from models.data import load_sequences

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    train = load_sequences(spec.train, spec.train_sequences, spec.competition)
    _, select = split_valid(load_sequences(spec.valid, None, spec.competition))
    budget = TimeBudget(Path(spec.train), min(spec.latency_sequences, len(train)), spec.grader_minutes, spec.safety)
    trials_dir = Path(spec.trials_dir)
    sampler = optuna.samplers.TPESampler(seed=spec.seed + spec.index)
    study = optuna.load_study(study_name=STUDY, storage=storage(spec.storage), sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        ctx = Context(train.competition, len(train), tuple(spec.features), spec.seed,
                      max(0.0, spec.deadline - time.time()) / 60, spec.trial_minutes)
        candidate = suggest(trial, ctx, spec.families)
        folder = trials_dir / f"trial-{trial.number:04d}"
        earlier = repeated_trial(trial.number, trial.params, study.get_trials(deepcopy=False))
        if earlier is not None:  # TPE re-proposes a cheap family's best point: a repeat would only
            # rank the same model again on the same selection rows, so it is pruned unrun (and listed)
            why = f"the settings of trial {earlier}, not run again"
            save_result(TrialResult(trial.number, candidate.family, dict(trial.params), candidate.train, REPEAT,
                                    error=why), folder)
            raise optuna.TrialPruned(why)
        result = run_trial(trial.number, dict(trial.params), candidate, folder, train, select, budget)
        save_result(result, folder)
        if result.status == OK:
            return float(result.score)
        if result.status == INFEASIBLE:
            raise optuna.TrialPruned(result.error)
        raise TrialFailed(result.error)

    callbacks = []
    if spec.max_trials is not None:
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL,
                  optuna.trial.TrialState.RUNNING)  # not WAITING: the enqueued first trials are not yet run
        callbacks.append(optuna.study.MaxTrialsCallback(spec.max_trials, states=states))
    timeout = spec.deadline - time.time()
    if timeout > 0:
        study.optimize(objective, timeout=timeout, catch=(TrialFailed,), callbacks=callbacks)
