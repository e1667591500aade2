"""Model families by name: each entry is a ``models.family.Family`` object, imported only when
used (a family with heavy dependencies costs nothing to the others)."""

from __future__ import annotations

import importlib
from pathlib import Path

from harness.manifest import Manifest, ManifestError
from harness.execution import Engine
from models.config import ConfigError, from_dict
from models.data import SequenceSet
from models.evaluate import evaluate
from models.family import Family, Trained

FAMILIES: dict[str, str] = {
    "baseline": "models.baselines:FAMILY",
    "ridge_var": "models.linear:RIDGE_VAR",
    "ridge_poly": "models.linear:RIDGE_POLY",
    "lightgbm": "models.boosting:FAMILY",
    "gru": "models.recurrent.train:FAMILY",
    "tcn": "models.recurrent.block_family:TCN",
    "window_attn": "models.recurrent.block_family:WINDOW_ATTN",
    "ensemble": "models.ensemble:FAMILY",
}
"""Family name -> "module:attribute" of its ``Family`` object."""


def read_manifest(folder: Path) -> Manifest:
    """The manifest of ``folder``; ConfigError when it is missing or malformed."""
    try:
        return Manifest.read(folder)
    except ManifestError as exc:
        raise ConfigError(str(exc)) from exc


def family(name: str | None) -> Family:
    """The family called ``name``; ConfigError naming the known ones otherwise."""
    if name not in FAMILIES:
        raise ConfigError(f"unknown model family {name!r}; known families: {', '.join(sorted(FAMILIES))}")
    module_name, _, attribute = FAMILIES[name].partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def configured(name: str | None, train: dict, where: str, engine: Engine = Engine()) -> tuple[Family, object]:
    """(the family, its parsed config) of a training block; ``"seeds": N`` > 1 wraps the family in
    ``models.members.SeedAverage``, the one way any family averages seeds."""
    from models.members import SeedAverage, split_seeds

    fam = family(name)
    if hasattr(fam, "with_engine"):  # a family that trains others (the ensemble) passes the engine on
        fam = fam.with_engine(engine)
    values, seeds = split_seeds(train, where)
    config = from_dict(fam.config, values, where)
    return (SeedAverage(fam, seeds, engine) if seeds > 1 else fam), config


def train_solution(folder: Path, train: SequenceSet, valid: SequenceSet, console, engine: Engine = Engine()) -> Trained:
    """Train the solution in ``folder`` the one way: read its manifest, parse its config, train,
    write the artifacts the manifest names, and score what was written on ``valid`` (or the part of it
    the family made no choice on, ``Trained.report_index``) through ``load_offline`` (so a
    record's valid score is the score of what ships, on data it was not chosen on). Returns the trained model with its record
    completed (family, valid and per-output scores, the oracle beside them, artifact sizes).
    ``engine`` (``harness.execution``) trains a family's seeds side by side."""
    manifest = read_manifest(folder)
    fam, config = configured(manifest.family, manifest.train, f"{manifest.path}: train", engine)
    trained = fam.train(config, train, valid, console)
    files = fam.write(trained, folder, list(manifest.artifacts))
    held_out = valid if trained.report_index is None else valid.subset(trained.report_index)
    report = evaluate(fam.load_offline(folder), held_out)
    trained.record = {"family": fam.name, **trained.record, "valid_score": report["score"],
                      "valid_scored_sequences": len(held_out), "per_output": report["per_output"],
                      **({"oracle": report["oracle"]} if "oracle" in report else {}),
                      "artifacts": {name: (folder / name).stat().st_size for name in files}}
    return trained
