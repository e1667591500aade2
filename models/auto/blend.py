"""After the single-family trials: an ensemble of the best distinct ones, kept only if it wins.

The candidates are the best ``CANDIDATES`` finished, feasible trials with distinct settings,
the best of each family first: a cheap family's many near-copies (TPE proposes dozens of ridge
variants) would otherwise fill every place with members whose errors are nearly the same.
They are compared on the selection sequences every one of them was scored on (a network chose
its epoch on the others), with each candidate's predictions there from its own trained files.
``models.selection.greedy_select`` adds members by gain per microsecond while the sum of their
measured per-row times, projected over the test set times the safety factor, fits the grader's
limit; ``models.ensemble.fit_blend`` fits the per-output NNLS weights (or the ridge stacker when
it scores higher) and the guard, and scores them by a sequence-grouped cross-validation over
those rows, so the weights are never scored on the rows they were fitted on.

The ensemble is *kept* (status ``ok``) only when that cross-validated score (before the guard,
which is fitted on the same rows) beats the best candidate's own score on the same rows by
``MIN_GAIN``; then it is the choice, whatever the single trials'
scores on their own rows. Its folder (``members/trial_NNNN/``, ``members.json``, ``blend.npz``,
written by the ensemble family's own writer) is then timed in the sandbox like any trial, so the
time check is the real one, not only the sum. The manifest names each member inline with the
settings it was trained with, so ``python -m models train DIR`` retrains it as an ordinary
``ensemble``.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import time
from pathlib import Path
import numpy as np
from rich.console import Console

from harness.competitions import Competition
from harness.manifest import Manifest
from models.auto.trial import FAILED, NO_GAIN, OK, TimeBudget, TrialResult, judge_time
from models.data import SequenceSet
from models.ensemble import FAMILY as ENSEMBLE_FAMILY
from models.ensemble import EnsembleConfig, EnsembleModel, Member, combine, fit_blend, metric, nnls_weights
from models.evaluate import offline_predictions
from models.family import Trained
from models.registry import family
from models.runtime.members import BLEND_FILE
from models.selection import Budget, greedy_select, member_bytes

ENSEMBLE = "ensemble"
"""The family name of an ensemble trial (``models.registry.FAMILIES``'s ``ensemble``)."""

CANDIDATES = 6
"""Best distinct trials the ensemble may take members from (the best of each family first)."""

BLEND_FOLDS = 5
"""Sequence-grouped folds of the cross-validation that scores the blend (fewer with fewer sequences)."""

MIN_GAIN = 1e-3
"""How much the blend's cross-validated score must beat its best candidate's by: a blend that
only matches its best member (to rounding, or a member weighted near zero) costs time for nothing."""

SOLUTION = '''"""Chosen and trained by ``python -m models auto``: an ensemble of trials (members/, blend.npz)."""

from pathlib import Path

from models.runtime.members import load_folder
from models.runtime.solution import SequenceModel


class PredictionModel(SequenceModel):
    def __init__(self):
        super().__init__(load_folder(Path(__file__).resolve().parent))
'''


def candidates(results: list[TrialResult], limit: int = CANDIDATES) -> list[TrialResult]:
    """The best ``limit`` ok single-family trials, one per distinct set of sampled values
    (``searched``: the settings derived from them, such as a network's time cap, vary with the
    time left and would make a repeat look new): the best trial of each family first, best
    first, then the others by score."""
    ok = sorted((r for r in results if r.status == OK and r.family != ENSEMBLE and r.score is not None),
                key=lambda r: (-r.score, r.number))
    seen, distinct = set(), []
    for r in ok:
        key = json.dumps(r.searched, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            distinct.append(r)
    leaders = list({r.family: r for r in reversed(distinct)}.values())  # each family's best
    leaders.sort(key=lambda r: (-r.score, r.number))
    rest = [r for r in distinct if r not in leaders]
    return (leaders + rest)[:limit]


def member_name(result: TrialResult) -> str:
    return f"trial_{result.number:04d}"


def shared_rows(members: list[TrialResult], select: SequenceSet) -> SequenceSet:
    """The selection sequences every member was scored on (none of them chose anything there)."""
    shared = set.intersection(*(set(m.scored_seq_ix) for m in members))
    return select.subset(np.flatnonzero(np.isin(select.seq_ix, sorted(shared))))


def member_predictions(members: list[TrialResult], rows: SequenceSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predictions (M, N, K) of each member's written files, targets (N, K), sequence of each row (N,))
    over the scored rows of ``rows``."""
    comp = rows.competition
    scored = np.flatnonzero(rows.scored)
    p = np.stack([offline_predictions(family(m.family).load_offline(Path(m.folder)), rows)[:, scored].reshape(
        -1, comp.n_outputs) for m in members])
    return p, rows.scored_targets(), np.repeat(rows.seq_ix, len(scored))


def assemble(members: list[tuple[str, Path]], arrays: dict[str, np.ndarray], folder: Path, comp: Competition) -> Path:
    """An ensemble solution folder in ``folder`` (created here) from trained member folders
    ``(name, folder)`` and the blend's arrays, written by the ensemble family's writer."""
    folder.mkdir(parents=True)
    scratch = tempfile.TemporaryDirectory(prefix="wunderbench-auto-blend-")
    picked, inline = [], []
    for name, source in members:
        manifest = Manifest.read(source)
        (Path(scratch.name) / name).mkdir()
        for artifact in manifest.artifacts:
            target = Path(scratch.name) / name / artifact
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / artifact, target)
        picked.append(Member(name, family(manifest.family), None, list(manifest.artifacts)))
        inline.append({"name": name, "family": manifest.family, "train": manifest.train,
                       "artifacts": list(manifest.artifacts)})
    train = {"members": inline, "select": False, "latency_sequences": 0}
    (folder / "manifest.json").write_text(json.dumps({"competition": comp.key, "trained": True, "family": ENSEMBLE,
                                                      "train": train, "artifacts": []}, indent=1) + "\n")
    (folder / "solution.py").write_text(SOLUTION)
    ENSEMBLE_FAMILY.write(Trained(EnsembleModel(scratch, picked, arrays), {}), folder, [])
    return folder


def blend_arrays(folder: Path) -> dict[str, np.ndarray]:
    """The blend's arrays of a written ensemble folder (what a refit reuses)."""
    with np.load(Path(folder) / BLEND_FILE, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def propose(results: list[TrialResult], select: SequenceSet, number: int, folder: Path, budget: TimeBudget,
            console: Console | None = None) -> TrialResult | None:
    """The ensemble trial numbered ``number`` (written to ``folder`` when it wins), or None when
    fewer than two trials can be members. Never raises for the ensemble's own failure."""
    pool = candidates(results)
    if len(pool) < 2:
        return None
    console = console or Console(file=io.StringIO())
    result = TrialResult(number, ENSEMBLE, {"family": ENSEMBLE, "candidates": "+".join(f"#{m.number}" for m in pool)},
                         {}, NO_GAIN, folder=str(folder))
    started = time.perf_counter()
    try:
        _blend(result, pool, select, folder, budget, console)
    except Exception as exc:  # noqa: BLE001 - like a trial's: recorded with its type and message, the search goes on
        result.status, result.error = FAILED, f"{type(exc).__name__}: {exc}"
        shutil.rmtree(folder, ignore_errors=True)
    result.seconds = time.perf_counter() - started
    return result


def _blend(result: TrialResult, pool: list[TrialResult], select: SequenceSet, folder: Path, budget: TimeBudget,
           console: Console) -> None:
    """Fill ``result``: members, cross-validated score, status (and the folder when kept)."""
    comp = select.competition
    names = [member_name(m) for m in pool]
    rows = shared_rows(pool, select)
    if len(rows) < 2:
        result.error = f"its candidates share {len(rows)} scored selection sequence(s); a blend needs 2"
        return
    p, y, groups = member_predictions(pool, rows)
    singles = [metric(comp, y, p[i]) for i in range(len(pool))]
    limit = pool[0].limit_minutes
    sized = Budget(comp.test_rows, limit, int(comp.limits.archive_mb * 1024**2), budget.safety)
    score = lambda idx: metric(comp, y, combine(p[idx], nnls_weights(p[idx], y), 0.0))  # noqa: E731
    sizes = [member_bytes(Path(m.folder)) for m in pool]
    chosen, table = greedy_select(names, score, [float(m.us_per_row) for m in pool], sizes, sized)
    result.scored_seq_ix = [int(i) for i in rows.seq_ix]
    result.training = {"members": [pool[i].number for i in chosen], "candidates": [m.number for m in pool],
                       "rows": {"sequences": len(rows), "seq_ix": result.scored_seq_ix},
                       "candidate_scores": dict(zip(names, singles)), "selection": table}
    result.searched["members"] = "+".join(f"#{pool[i].number}" for i in chosen)
    best = max(singles)
    if len(chosen) < 2:
        number = {member_name(m): m.number for m in pool}
        why = ", ".join(f"#{number[row['member']]} {row['why']}" for row in table if not row["selected"])
        result.error = f"no second candidate adds to the best one ({why})"
        return
    blend = fit_blend(comp, p[chosen], y, groups, EnsembleConfig(blend_folds=min(BLEND_FOLDS, len(rows)), seed=0))
    result.score = float(blend["oof_blend"])
    result.training.update(combiner=blend["combiner"], weights={names[i]: blend["coef"][j].tolist()
                                                                for j, i in enumerate(chosen)},
                           cv={"weights": blend["oof_weights"], "stacker": blend["oof_stacker"],
                               "guarded": blend["oof_guarded"]}, best_candidate_score=best)
    if result.score < best + MIN_GAIN:
        result.error = (f"cross-validated {result.score:.4f} does not beat its best candidate's {best:.4f} by "
                        f"{MIN_GAIN:g} on the same {len(rows)} selection sequences")
        return
    console.print(f"ensemble of {result.searched['members']}: cross-validated {result.score:.4f} against the best "
                  f"candidate's {best:.4f} on {len(rows)} selection sequences; timing it", highlight=False)
    arrays = {"coef": blend["coef"], "intercept": blend["intercept"], **blend["guard"].arrays()}
    assemble([(names[i], Path(pool[i].folder)) for i in chosen], arrays, folder, comp)
    result.params = Manifest.read(folder).train
    judge_time(result, folder, budget)

