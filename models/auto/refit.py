"""After the choice: the chosen configuration fitted again on train and the selection part.

During the search every trial fits train only, and the selection part of valid chooses (a
network's epoch, then the trial). Once the choice is made the selection part has done its job,
so the refit fits the chosen settings on train *and* the selection part, repeating what the
trial's training chose instead of choosing again on data it now fits: a network runs its best
epoch count at the learning rates it ran them at, with no stopping set
(``models.auto.space.REFITS``); families that choose by their own cross-validation (ridge
alphas, tree counts) do so on the larger data. The report part joins nothing: it is scored once,
on what is written.

The refit runs only when its projected time (the trial's training time, scaled by the larger
data) fits the minutes left, and is written only when its sandboxed replay still fits the
grader's limit; otherwise the searched model is written and the run record says why (the
command prints it too). An ensemble is refitted member by member, with the weights and guard
fitted during the search.
"""

from __future__ import annotations

import io
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from rich.console import Console

from models.auto import blend
from models.auto.space import Context, refit_candidate
from models.auto.trial import OK, TimeBudget, TrialResult, judge_time, write_solution
from models.data import SequenceSet
from models.registry import train_solution

REFIT, SKIPPED, NOT_WRITTEN, OFF = "refit", "skipped", "not written", "off"
"""Refit outcomes: written; not tried (no time left for it); tried but the searched model is
written (the refit failed, was cut by the time cap or no longer fits the grader's limit); not
asked (``--no-refit``)."""


@dataclass
class Refit:
    """What the refit did; ``folder`` is the refitted solution when ``status`` is ``refit``."""

    status: str
    reason: str = ""
    folder: Path | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, **self.facts}


def refit_data(train: SequenceSet, select: SequenceSet) -> SequenceSet:
    """The selection sequences, then train's, as one set. The two files number their sequences
    independently, so the selection part's ``seq_ix`` are shifted past train's (folds group by
    ``seq_ix``); selection comes first so a network's ``train_limit`` (the first sequences)
    always keeps it. No oracle: nothing is scored on the data a model fits."""
    shifted = select.seq_ix + int(train.seq_ix.max()) + 1
    return SequenceSet(train.competition, np.concatenate([shifted, train.seq_ix]),
                       np.concatenate([select.features, train.features]),
                       np.concatenate([select.targets, train.targets]), train.source, None)


def projected_seconds(result: TrialResult, train_sequences: int, refit_sequences: int) -> float:
    """The refit's training time: the trial's, scaled by the data (a network's epochs are
    bounded in sequences and fewer than the trial ran, so this over-estimates for it)."""
    return (result.train_seconds or 0.0) * refit_sequences / max(train_sequences, 1)


def _fit_again(result: TrialResult, data: SequenceSet, select: SequenceSet, ctx: Context, folder: Path) -> dict:
    """Train ``result``'s refit candidate into ``folder``; its ``train`` block and record facts."""
    candidate = refit_candidate(result.searched, result.training, ctx, len(select))
    write_solution(folder, candidate, data.competition)
    # ``select`` is passed as valid only because training takes one: with no stopping set a
    # network chooses nothing on it, and the families that cross-validate never read it.
    trained = train_solution(folder, data, select, Console(file=io.StringIO()))
    if trained.record.get("stopped_by") == "time budget":
        done = (f"after {trained.record['epochs_run']} of {candidate.train['epochs']} epochs"
                if "epochs_run" in trained.record else f"({trained.record.get('boosters_cut')} boosters cut)")
        raise TimeoutError(f"trial {result.number}'s refit reached its time cap {done}")
    facts = {"family": result.family, "train": candidate.train}
    if "epochs_run" in trained.record:
        facts["epochs"] = trained.record["epochs_run"]
    return facts


def refit(chosen: TrialResult, results: list[TrialResult], train: SequenceSet | Callable[[], SequenceSet],
          train_count: int, select: SequenceSet, features: tuple[str, ...], seed: int, budget: TimeBudget,
          work: Path, seconds_left: float) -> Refit:
    """Refit ``chosen`` (an ensemble: each member, with the searched blend) into ``work``; never
    raises for the refit's own failure (the searched model is written then, and the outcome says
    why). ``train`` may be a loader, called only once the refit's projected time fits."""
    started = time.perf_counter()
    members = ([next(r for r in results if r.number == n) for n in chosen.training["members"]]
               if chosen.family == blend.ENSEMBLE else [chosen])
    n_refit = train_count + len(select)
    rows = {"train_sequences": train_count, "valid_selection_seq_ix": [int(i) for i in select.seq_ix]}
    projected = sum(projected_seconds(m, train_count, n_refit) for m in members)
    if projected > seconds_left:
        return Refit(SKIPPED, f"projected {projected:.0f} s of training, {seconds_left:.0f} s left",
                     facts={"projected_training_seconds": projected})
    train = train() if callable(train) else train
    if len(train) != train_count:
        raise ValueError(f"internal: {len(train)} train sequences loaded, {train_count} expected")
    data = refit_data(train, select)
    ctx = Context(train.competition, n_refit, features, seed, max(seconds_left, 1.0) / 60)
    facts: dict[str, Any] = {"fit_on": rows, "projected_training_seconds": projected}
    try:
        if chosen.family == blend.ENSEMBLE:
            folders, facts["members"] = [], {}
            for member in members:
                name = blend.member_name(member)
                facts["members"][name] = _fit_again(member, data, select, ctx, work / "members" / name)
                folders.append((name, work / "members" / name))
            folder = blend.assemble(folders, blend.blend_arrays(Path(chosen.folder)), work / "solution",
                                    train.competition)
        else:
            folder = work / "solution"
            facts.update(_fit_again(chosen, data, select, ctx, folder))
        timed = replace(chosen, status=OK, error="")
        judge_time(timed, folder, budget)
    except Exception as exc:  # noqa: BLE001 - the searched model stays the answer; the record says why
        shutil.rmtree(work, ignore_errors=True)
        facts["seconds"] = time.perf_counter() - started
        return Refit(NOT_WRITTEN, f"{type(exc).__name__}: {exc}", facts=facts)
    facts.update(seconds=time.perf_counter() - started, us_per_row=timed.us_per_row,
                 projected_test_minutes=timed.projected_minutes)
    if timed.status != OK:
        return Refit(NOT_WRITTEN, f"the refitted model's replay: {timed.error}", facts=facts)
    return Refit(REFIT, folder=folder, facts=facts)
