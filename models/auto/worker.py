"""One search worker: ``python -m models.auto.worker SPEC.json``, started by ``models.auto.search``.

A worker is a process of its own (one core's worth of training; ``--workers N`` starts N of
them), reads the data once, and runs Optuna trials against the study the search created in a
journal file until the deadline or the trial cap; workers share that journal, so the sampler
of each sees every finished trial. Each trial leaves its result as ``trial.json`` in its
folder, which is what the search reads (never the journal, which a worker cut at the deadline
may leave locked). A trial's own failure is recorded and the search goes on; anything else
that goes wrong here is a bug and ends the worker with its traceback in the worker's log.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

STUDY = "auto"


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs, written as JSON by the search."""

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

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        return path

    @classmethod
    def read(cls, path: Path) -> WorkerSpec:
        return cls(**json.loads(Path(path).read_text()))


class TrialFailed(Exception):
    """A trial failed (training raised or its replay did); its result file says why."""


def storage(path: str):
    """The study's journal file (several processes may append to it)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(path))


def run(spec: WorkerSpec) -> None:
    """Run trials until the deadline or the cap."""
    import optuna

    from models.auto.space import Context, suggest
    from models.auto.split import split_valid
    from models.auto.trial import INFEASIBLE, OK, TimeBudget, run_trial, save_result
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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m models.auto.worker SPEC.json (started by python -m models auto)", file=sys.stderr)
        return 2
    run(WorkerSpec.read(Path(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
