"""Tiny data and solution folders for the models tests (seconds, not minutes)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from harness import competitions as C
from harness.randomdata import write_random_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def a_random(tmp_path_factory) -> Path:
    """Random A data (the A generator's one-time set-up costs seconds; parity does not need realism)."""
    return write_random_file(C.A, tmp_path_factory.mktemp("a") / "a.parquet", 6, seed=3, sequences_per_group=2)


@pytest.fixture(scope="session")
def b_generated(tmp_path_factory) -> Path:
    """Generated B data with its oracle sidecar."""
    from harness.market import get_generator
    from harness.market.base import write_set

    return write_set(get_generator("B"), 6, 5, "train", tmp_path_factory.mktemp("b") / "b.parquet")


@pytest.fixture
def quiet() -> Console:
    return Console(file=io.StringIO())


@pytest.fixture
def solution(tmp_path):
    """A copy of a repository solution's solution.py with a test manifest (small, fast settings)."""

    def make(name: str, family: str, competition: str, train: dict, artifacts: list[str], folder: str = "sol") -> Path:
        target = tmp_path / folder
        target.mkdir()
        shutil.copy(ROOT / "solutions" / name / "solution.py", target / "solution.py")
        manifest = {"competition": competition, "trained": True, "family": family, "train": train,
                    "artifacts": artifacts}
        (target / "manifest.json").write_text(json.dumps(manifest))
        return target

    return make


def _row_by_row(model, features: np.ndarray, scored: np.ndarray) -> np.ndarray:
    """A runtime model's predictions (S, T, K) one row at a time, as the grader calls it, NaN
    where no prediction is wanted."""
    out = None
    for s in range(len(features)):
        model.reset()
        for t in range(features.shape[1]):
            y = model.update(features[s, t].astype(np.float64), bool(scored[t]))
            if y is not None:
                if out is None:
                    out = np.full(features.shape[:2] + (len(y),), np.nan)
                out[s, t] = y
    return out


@pytest.fixture(scope="session")
def row_by_row():
    """``_row_by_row``: the online side of the offline-versus-online checks."""
    return _row_by_row


@pytest.fixture(scope="session")
def b_files(tmp_path_factory) -> tuple[Path, Path]:
    """Generated B train (6 sequences) and valid (4) files, each with its oracle sidecar (the
    auto search and refit tests)."""
    from harness.market import get_generator
    from harness.market.base import write_set

    root = tmp_path_factory.mktemp("b_auto")
    generator = get_generator("B")
    return (write_set(generator, 6, 11, "train", root / "train.parquet"),
            write_set(generator, 4, 12, "valid", root / "valid.parquet"))
