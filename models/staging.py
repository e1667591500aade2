"""Training writes into a staging copy of the solution and moves the results in at the end.

A training run can fail anywhere: in the fit, in an export check, in the scoring of what was
written. Writing straight into the solution would leave it half overwritten (new weights beside
an old pipeline) with no run record saying so. ``staging_copy`` gives a copy of the folder,
beside it (same filesystem, so the final moves are renames), that training writes into;
``commit_staged`` moves the artifacts the manifest names and the run record in, each by an
atomic rename, only after everything succeeded. On any failure the staging folder is removed
and the solution is untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

RECORD_STAGE = ".runs"
"""Where the run record waits inside the staging folder until the artifacts are in place."""


@contextlib.contextmanager
def staging_copy(folder: Path) -> Iterator[Path]:
    """A fresh copy of ``folder`` beside it (``.<name>.training-XXXX``), removed on exit."""
    folder = Path(folder)
    stage = Path(tempfile.mkdtemp(prefix=f".{folder.name}.training-", dir=folder.parent))
    try:
        shutil.copytree(folder, stage, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def commit_staged(stage: Path, folder: Path, artifacts: list[str], runs: Path) -> Path:
    """Move the staged ``artifacts`` into ``folder`` and the staged run record (and its
    companions) into ``runs``; returns the record's final path."""
    records = sorted((stage / RECORD_STAGE).iterdir())
    record = next(p for p in records if p.suffix == ".json")
    for name in artifacts:
        os.replace(stage / name, folder / name)
    runs.mkdir(parents=True, exist_ok=True)
    final = runs / record.name
    counter = 1
    while final.exists():
        final = runs / f"{record.stem}-{counter}.json"
        counter += 1
    for path in records:
        target = final.with_name(final.stem + path.name[len(record.stem):])
        shutil.move(path, target)
    return final
