"""The one contract every model family implements, and what training hands over.

A family is an object with::

    name: str                      # the manifest's "family"
    config: type                   # its config dataclass (``models.config.from_dict`` reads it)
    train(config, train, valid, console) -> Trained
    write(trained, folder, artifacts) -> list[str]   # the files named by the manifest
    load_online(folder) -> one-row model (``reset``, ``update(row, need)``), what solution.py runs
    load_offline(folder) -> batch model (``predict_sequences(features, steps)``), for evaluation

``models.registry.train_solution`` (what ``python -m models train`` runs) parses the config,
trains, writes, then scores the written files
through ``load_offline`` on the valid set, the same way for every family, so a record's valid
score is always the score of what ships. ``Trained.oof`` carries out-of-fold predictions for
ensembles (None where the family's stopping rule gives none, e.g. a network stopped on valid; a
network stopped on a train fold gives that fold's). ``"seeds": N`` in any training block wraps
the family in ``models.members.SeedAverage`` (``models.registry.configured``).
A family that chooses on part of valid names the rest in ``Trained.report_index``, and the
record's valid score is measured there: a score is never reported on data it was chosen on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from models.data import SequenceSet


@dataclass
class Trained:
    """A fitted model before it is written: ``model`` is whatever the family's ``write`` needs;
    ``record`` holds JSON-able facts of the run (config, CV, timings)."""

    model: Any
    record: dict[str, Any]
    oof: dict[str, np.ndarray] | None = None
    report_index: np.ndarray | None = None
    """Positions of the valid sequences no choice was made on, when the family chose something
    (an epoch) on the others; the record's valid score is measured on these only."""


@runtime_checkable
class Family(Protocol):
    name: str
    config: type

    def train(self, config: Any, train: SequenceSet, valid: SequenceSet, console: Any) -> Trained: ...

    def write(self, trained: Trained, folder: Path, artifacts: list[str]) -> list[str]: ...

    def load_online(self, folder: Path) -> Any: ...

    def load_offline(self, folder: Path) -> Any: ...
