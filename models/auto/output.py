"""After the search: choose, score on the report part, and write DIR atomically.

The chosen trial is the best selection score among trials that finished and fit the time limit
(an ensemble of trials that finished ok is chosen over them: it was kept only because it beat
its best member on the same sequences, ``models.auto.blend``). The folder to write (the chosen
trial's, or its refit, ``models.auto.refit``; manifest.json, solution.py and the artifacts the
manifest names) is copied into a staging folder beside DIR, scored once on the report part
(never used for a fit or a choice), the run record is added as ``auto_run.json``, and only then
is the staging folder renamed to DIR, so DIR is either the whole result or untouched. The manifest is an ordinary trained one: ``python
-m models train DIR`` retrains it, ``harness gate`` and ``harness package`` take it as it is.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from rich.table import Table

from harness.manifest import Manifest
from models.auto.blend import ENSEMBLE
from models.auto.trial import OK, TrialResult
from models.data import SequenceSet
from models.evaluate import evaluate
from models.registry import family

RUN_RECORD = "auto_run.json"


def choose(results: list[TrialResult]) -> TrialResult | None:
    """The best finished trial that fits the time limit (ties: the earlier one), an ok ensemble
    first (its score and the single trials' are on different sequences; it is ok only when it
    beat its best member on its own); None if none."""
    ok = [r for r in results if r.status == OK and r.score is not None]
    ensembles = [r for r in ok if r.family == ENSEMBLE]
    return max(ensembles or ok, key=lambda r: (r.score, -r.number)) if ok else None


def stage(source: Path, staging: Path) -> Path:
    """A copy of the solution files of the folder ``source`` in ``staging`` (created here)."""
    source = Path(source)
    manifest = Manifest.read(source)
    staging.mkdir(parents=True)
    for name in ("manifest.json", "solution.py", *manifest.artifacts):
        (staging / name).parent.mkdir(parents=True, exist_ok=True)  # an ensemble's members/<name>/...
        shutil.copy2(source / name, staging / name)
    return staging


def report_scores(folder: Path, report: SequenceSet) -> dict[str, Any]:
    """The written solution's scores on the report part (offline, the batch form of what ships),
    with the simulator's oracle beside them when the file has a sidecar."""
    manifest = Manifest.read(folder)
    return evaluate(family(manifest.family).load_offline(folder), report)


def install(staging: Path, out: Path, force: bool, trash: Path) -> None:
    """Rename ``staging`` to ``out``; an existing ``out`` (only with ``force``) is moved to
    ``trash`` first and deleted after, so ``out`` is never half-written."""
    if out.exists():
        if not force:
            raise FileExistsError(f"{out} appeared during the search; nothing was written (pass --force)")
        os.replace(out, trash)
    os.replace(staging, out)
    shutil.rmtree(trash, ignore_errors=True)


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def params_text(result: TrialResult) -> str:
    """The sampled settings of a trial, without the family prefix."""
    parts = [f"{key.split('.', 1)[-1]}={value:.3g}" if isinstance(value, float) else f"{key.split('.', 1)[-1]}={value}"
             for key, value in result.searched.items() if key != "family"]
    return " ".join(parts)


def trials_table(results: list[TrialResult], metric_label: str, chosen: TrialResult | None) -> Table:
    """One row per trial: family, settings, selection score, us per row, projected minutes, status."""
    table = Table(title=f"trials (selection score: {metric_label} on the selection part of valid)")
    for name in ("#", "family", "settings", "selection", "us/row", "projected min", "status"):
        table.add_column(name, justify="right" if name in ("#", "selection", "us/row", "projected min") else "left",
                         overflow="fold")
    for r in results:
        status = r.status if not r.error or r.status == OK else f"{r.status}: {r.error}"
        mark = " *" if chosen is not None and r.number == chosen.number else ""
        table.add_row(f"{r.number}{mark}", r.family, params_text(r), _cell(r.score, ".4f"), _cell(r.us_per_row, ".0f"),
                      _cell(r.projected_minutes, ".1f"), status)
    return table
