"""Tiny contract-valid files and candidate folders for the grader's tests."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import pytest

from harness import competitions as C
from harness.randomdata import write_random_file


@pytest.fixture(scope="session")
def a_file(tmp_path_factory) -> Path:
    return write_random_file(C.A, tmp_path_factory.mktemp("data") / "a.parquet", 3, seed=1, sequences_per_group=2)


@pytest.fixture(scope="session")
def b_file(tmp_path_factory) -> Path:
    return write_random_file(C.B, tmp_path_factory.mktemp("data") / "b.parquet", 3, seed=2, sequences_per_group=2)


def write_candidate(folder: Path, source: str, **extra: str) -> Path:
    """A solution folder holding ``solution.py`` (dedented) and any extra files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "solution.py").write_text(textwrap.dedent(source))
    for name, text in extra.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


@pytest.fixture
def candidate(tmp_path):
    counter = iter(range(1000))

    def make(source: str, **extra: str) -> Path:
        return write_candidate(tmp_path / f"cand{next(counter)}", source, **extra)

    return make


@pytest.fixture
def stop_when_written():
    """``make(path)``: an Event set once ``path`` exists (a task wrote it: what it started runs),
    to stop ``run_tasks`` while its tasks are under way."""

    def make(path: Path) -> threading.Event:
        stop = threading.Event()

        def watch() -> None:
            while not path.exists() and not stop.wait(0.05):
                pass
            stop.set()

        threading.Thread(target=watch, daemon=True).start()
        return stop

    return make
