"""Seed averaging for any family, and what composites share: member folders, OOF alignment, batch forms.

``"seeds": N`` in a manifest's ``train`` block makes ``models.registry`` wrap the family in
``SeedAverage``: N trainings that differ only in ``seed`` (seed, seed + 1, ...), side by side
on the execution engine (``harness.execution``) when ``--workers`` allows (each worker gets its
own copy of the data: the engine may be a Ray cluster), written to
``seed_<i>/`` with a ``members.json`` of kind "average" (``models.runtime.members``), served by
averaging. Out-of-fold predictions of the average are the mean of the members' OOF on the rows
they all have (keyed by ``seq_ix`` and step; fold draws follow the seed, each member's
prediction is out of its own fold).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from harness.execution import Engine, Task, run_tasks
from models.config import ConfigError
from models.data import SequenceSet
from models.family import Family, Trained
from models.runtime.members import MEMBERS_FILE, load_folder, read_members


def split_seeds(train: dict[str, Any], where: str) -> tuple[dict[str, Any], int]:
    """(the training block without ``seeds``, the number of seeds); ConfigError on a bad count."""
    values = dict(train)
    seeds = values.pop("seeds", 1)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ConfigError(f"{where}.seeds must be a positive integer (members that differ only in seed), got {seeds!r}")
    return values, seeds


# -- OOF rows of several models --------------------------------------------------------------------


def oof_keys(oof: dict[str, np.ndarray]) -> np.ndarray:
    """One int64 key per OOF row: seq_ix * 2^20 + step."""
    return oof["seq_ix"].astype(np.int64) * (1 << 20) + oof["step"].astype(np.int64)


def align_oof(oofs: list[dict[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """The rows every OOF set has, in the first set's order: (seq_ix/step/target of those rows,
    each set's predictions on them (rows, K)). ConfigError when no row is shared."""
    keys = oof_keys(oofs[0])
    common = keys
    for other in oofs[1:]:
        common = np.intersect1d(common, oof_keys(other))
    if not len(common):
        raise ConfigError("the members' out-of-fold predictions share no (sequence, step) row; give them the same "
                          "folds and row sampling (seed, sample_stride)")
    first = np.flatnonzero(np.isin(keys, common))
    order = keys[first]
    rows = {"seq_ix": oofs[0]["seq_ix"][first], "step": oofs[0]["step"][first],
            "target": np.asarray(oofs[0]["target"][first], dtype=np.float64)}
    predictions = []
    for oof in oofs:
        k = oof_keys(oof)
        position = np.argsort(k, kind="stable")
        predictions.append(np.asarray(oof["prediction"][position[np.searchsorted(k[position], order)]],
                                      dtype=np.float64))
    return rows, predictions


# -- batch forms of composites ------------------------------------------------------------------------


class OfflineAverage:
    """Batch form of ``Average``: the mean of the members' ``predict_sequences``."""

    def __init__(self, members: list) -> None:
        self.members = members

    def predict_sequences(self, features: np.ndarray, steps: np.ndarray | None = None) -> np.ndarray:
        total = None
        for member in self.members:
            out = member.predict_sequences(features, steps)
            total = out if total is None else total + out
        return total / len(self.members)


def load_offline_folder(folder: Path, family: str | None = None):
    """The batch form of a member folder: composites here, leaves through their family."""
    from models.registry import family as family_of

    folder = Path(folder)
    if not (folder / MEMBERS_FILE).is_file():
        return family_of(family).load_offline(folder)
    spec = read_members(folder)
    members = [load_offline_folder(folder / m["folder"], m["family"]) for m in spec["members"]]
    if spec["kind"] == "average":
        return OfflineAverage(members)
    from models.ensemble import OfflineBlend

    return OfflineBlend.load(folder, members)


def write_members_file(folder: Path, kind: str, members: list[dict], **extra) -> None:
    """``members.json`` of a composite folder (sorted keys, so retraining writes the same bytes)."""
    (Path(folder) / MEMBERS_FILE).write_text(json.dumps({"kind": kind, "members": members, **extra}, indent=1,
                                                        sort_keys=True) + "\n")


# -- training N seeds ---------------------------------------------------------------------------------

def blas_threads() -> int:
    """The BLAS thread count in force here (``train --blas-threads``), for workers to train under."""
    from threadpoolctl import threadpool_info

    return min((pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"), default=1)


def train_member(fam: Family, config: Any, train: SequenceSet, valid: SequenceSet, threads: int) -> Trained:
    """One seed's training in a worker, under the caller's BLAS thread count (so that a member
    trained here is the member trained in the caller: the same sums in the same order); its
    console output is dropped, members train side by side."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        return fam.train(config, train, valid, Console(file=io.StringIO()))


def train_seeds(fam: Family, config: Any, seeds: int, train: SequenceSet, valid: SequenceSet, console,
                engine: Engine = Engine()) -> list[Trained]:
    """N trainings of ``fam`` differing only in seed; on ``engine`` when it has more than one
    worker (or is a cluster), here one after another otherwise."""
    if not hasattr(config, "seed"):
        raise ConfigError(f"family {fam.name!r} has no 'seed' setting, so 'seeds' cannot vary it")
    configs = [replace(config, seed=config.seed + i) for i in range(seeds)]
    if engine == Engine() or seeds == 1:
        results = []
        for i, member_config in enumerate(configs):
            console.print(f"seed {member_config.seed} ({i + 1}/{seeds})", highlight=False)
            results.append(fam.train(member_config, train, valid, console))
        return results
    console.print(f"{seeds} seeds on {min(engine.workers, seeds)} {engine.backend} worker(s)", highlight=False)
    threads = blas_threads()
    tasks = [Task(f"seed {c.seed} ({i + 1}/{seeds}) of {fam.name}", train_member, (fam, c, train, valid, threads),
                  pin=False) for i, c in enumerate(configs)]
    return run_tasks(tasks, engine, on_done=lambda i, task: console.print(f"{task.label}: trained", highlight=False))


@dataclass
class SeedMembers:
    """What ``SeedAverage.train`` hands to ``write``."""

    trained: list[Trained]


class SeedAverage:
    """A family wrapped to train N seeds and serve their mean (``models.family.Family``)."""

    def __init__(self, family: Family, seeds: int, engine: Engine = Engine()) -> None:
        self.family = family
        self.seeds = seeds
        self.engine = engine
        self.name = family.name
        self.config = family.config

    def folder_of(self, index: int) -> str:
        return f"seed_{index}"

    def artifacts(self, member_artifacts: list[str]) -> list[str]:
        """The files a manifest names for N seeds of a family that writes ``member_artifacts``."""
        return [MEMBERS_FILE] + [f"{self.folder_of(i)}/{a}" for i in range(self.seeds) for a in member_artifacts]

    def train(self, config: Any, train: SequenceSet, valid: SequenceSet, console) -> Trained:
        trained = train_seeds(self.family, config, self.seeds, train, valid, console, self.engine)
        oof, why = None, "a member has none"
        if all(t.oof is not None for t in trained):
            try:
                rows, predictions = align_oof([t.oof for t in trained])
            except ConfigError as exc:  # e.g. row sampling whose phase follows the seed
                why = str(exc)
            else:
                oof = {"seq_ix": rows["seq_ix"], "step": rows["step"],
                       "prediction": np.mean(predictions, axis=0).astype(np.float32),
                       "target": rows["target"].astype(np.float32)}
                why = f"mean of the members' OOF on the {len(rows['step'])} rows they share"
        record = {"seeds": [config.seed + i for i in range(self.seeds)], "config": trained[0].record.get("config"),
                  "oof": why, "members": [t.record for t in trained]}
        # A member that chose on part of valid (a network stopped on valid) reports on the rest;
        # the split is fixed by the file, not the seed, so every member names the same rest.
        report_index = trained[0].report_index
        if any(not np.array_equal(t.report_index, report_index) if report_index is not None else t.report_index is not None
               for t in trained):
            raise RuntimeError("internal: the seeds chose on different parts of valid")
        return Trained(SeedMembers(trained), record, oof, report_index=report_index)

    def write(self, trained: Trained, folder: Path, artifacts: list[str]) -> list[str]:
        """Each seed's files into ``seed_<i>/`` and ``members.json``; ConfigError when the manifest's
        artifacts are not exactly ``members.json`` and every seed's files."""
        folder = Path(folder)
        prefix = f"{self.folder_of(0)}/"
        member_artifacts = [a[len(prefix):] for a in artifacts if a.startswith(prefix)]
        expected = self.artifacts(member_artifacts)
        if not member_artifacts or sorted(artifacts) != sorted(expected):
            raise ConfigError(f"{folder / 'manifest.json'}: with \"seeds\": {self.seeds}, 'artifacts' must be "
                              f"\"{MEMBERS_FILE}\" and each seed's files under seed_<i>/, e.g. "
                              f"{json.dumps(self.artifacts(member_artifacts or ['<file>']))}")
        members = []
        for i, member in enumerate(trained.model.trained):
            sub = folder / self.folder_of(i)
            sub.mkdir(parents=True, exist_ok=True)
            self.family.write(member, sub, member_artifacts)
            members.append({"folder": self.folder_of(i), "family": self.family.name})
        write_members_file(folder, "average", members)
        return expected

    def load_online(self, folder: Path):
        return load_folder(folder)

    def load_offline(self, folder: Path):
        return load_offline_folder(folder)
