"""The families served by ``models.runtime.predictor`` (pipeline -> head -> guard): their files.

A trained model is written as model.json (inputs, outputs, the resolved pipeline steps, once,
and the head kind), pipeline.npz (the pipeline's fitted state and a hash of its steps),
weights.npz (every number of the head and the guard) and, for tree heads, trees.txt. The
manifest names the artifacts a solution ships; ``write`` checks that the two lists agree, so
``harness package`` never misses a file and never ships a stale one. Every ``.npz`` goes
through ``features.storage.save_npz``, so retraining with the same seed gives the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from features.storage import save_npz
from harness.competitions import Competition
from models.config import ConfigError
from models.family import Trained
from models.runtime.predictor import FORMAT, MODEL_FILE, PIPELINE_FILE, TREES_FILE, WEIGHTS_FILE, load


@dataclass
class PipelineModel:
    """What a pipeline family's ``train`` hands to ``write``."""

    competition: Competition
    family: str
    pipeline: object
    head: dict
    arrays: dict[str, np.ndarray]
    trees_text: str | None = None

    def files(self) -> list[str]:
        """The artifact files of this model, in manifest order."""
        files = [MODEL_FILE, PIPELINE_FILE, WEIGHTS_FILE]
        return files + [TREES_FILE] if self.head["kind"] == "trees" else files


class PipelineFamily:
    """``write``, ``load_online`` and ``load_offline`` of the pipeline families; each subclass
    sets ``name`` and ``config`` and implements ``train``."""

    name: str
    config: type

    def write(self, trained: Trained, folder: Path, artifacts: list[str]) -> list[str]:
        """Write the model's files into ``folder``; ConfigError when the manifest lists others."""
        model: PipelineModel = trained.model
        folder = Path(folder)
        expected = model.files()
        if sorted(artifacts) != sorted(expected):
            raise ConfigError(f"{folder / 'manifest.json'}: 'artifacts' is {list(artifacts)}, but this family writes "
                              f"{expected}; set \"artifacts\": {json.dumps(expected)}")
        comp = model.competition
        spec = {"format": FORMAT, "competition": comp.key, "family": model.family,
                "input_names": list(comp.feature_columns), "output_names": list(comp.prediction_names),
                "pipeline": {"steps": model.pipeline.steps}, "head": model.head}
        (folder / MODEL_FILE).write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")
        model.pipeline.save(folder / PIPELINE_FILE)
        save_npz(folder / WEIGHTS_FILE, model.arrays)
        if model.trees_text is not None:
            (folder / TREES_FILE).write_text(model.trees_text)
        return expected

    def load_online(self, folder: Path):
        return load(folder)

    def load_offline(self, folder: Path):
        return load(folder)
