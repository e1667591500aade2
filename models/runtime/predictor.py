"""A trained model as a solution serves it: feature pipeline -> head -> weak-target guard.

Two forms of one object: ``predict_sequences`` (batch, whole sequences; the offline evaluation
and training use it) and ``reset`` / ``update`` (one row at a time; ``solution.py`` uses it).
The pipeline's two forms agree bit for bit (``features``), the heads do the same arithmetic per
row as per batch, so offline and online scores agree (a test replays a packaged solution).

Files of a trained solution (written by training, read here):

* ``model.json``  - the structure: inputs, outputs, pipeline steps, head kind;
* ``pipeline.npz`` - the pipeline's fitted state (``features.storage`` format);
* ``weights.npz`` - every number of the head and the guard;
* ``trees.txt``   - LightGBM's own model file (tree heads only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from features import pipelines

from .linear import LinearHead

FORMAT = "wunderbench-model/1"
MODEL_FILE = "model.json"
PIPELINE_FILE = "pipeline.npz"
WEIGHTS_FILE = "weights.npz"
TREES_FILE = "trees.txt"
BATCH_ELEMENTS = 1 << 24
"""Elements of pipeline output per batch chunk (128 MiB of float64) in ``predict_sequences``."""


class Guard:
    """Shrinks weak outputs toward their training mean: y = mean + scale * (y - mean), per output.

    Only the outputs in ``index`` are touched, so a guard that shrinks nothing leaves every
    prediction bit-identical.
    """

    def __init__(self, index: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> None:
        self.index = np.asarray(index, dtype=np.intp).reshape(-1)
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.scale = np.asarray(scale, dtype=np.float64).reshape(-1)
        if not (len(self.index) == len(self.mean) == len(self.scale)):
            raise ValueError("guard index, mean and scale must have the same length")
        self._buffer = np.zeros(len(self.index))

    @classmethod
    def none(cls) -> "Guard":
        return cls(np.zeros(0, dtype=np.intp), np.zeros(0), np.zeros(0))

    def __bool__(self) -> bool:
        return bool(len(self.index))

    def apply_batch(self, predictions: np.ndarray) -> np.ndarray:
        """Shrink the guarded columns of (N, K) predictions in place; returns them."""
        if len(self.index):
            chosen = predictions[:, self.index]
            predictions[:, self.index] = (chosen - self.mean) * self.scale + self.mean
        return predictions

    def apply_row(self, prediction: np.ndarray) -> np.ndarray:
        """Shrink the guarded entries of one (K,) prediction in place; returns it."""
        if len(self.index):
            buffer = np.take(prediction, self.index, out=self._buffer)
            np.subtract(buffer, self.mean, out=buffer)
            np.multiply(buffer, self.scale, out=buffer)
            np.add(buffer, self.mean, out=buffer)
            prediction[self.index] = buffer
        return prediction

    def arrays(self) -> dict[str, np.ndarray]:
        return {"guard/index": self.index, "guard/mean": self.mean, "guard/scale": self.scale}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "Guard":
        if "guard/index" not in arrays:
            return cls.none()
        return cls(arrays["guard/index"], arrays["guard/mean"], arrays["guard/scale"])


class Predictor:
    """Pipeline, head and guard; batch and streaming forms of the same predictions."""

    def __init__(self, pipeline, head, guard: Guard, output_names: tuple[str, ...]) -> None:
        self.pipeline = pipeline
        self.head = head
        self.guard = guard
        self.output_names = tuple(output_names)
        head.check_inputs(pipeline.n_outputs)
        if head.n_outputs != len(self.output_names):
            raise ValueError(f"the head gives {head.n_outputs} outputs for {len(self.output_names)} names")

    @property
    def n_outputs(self) -> int:
        return len(self.output_names)

    # ------------------------------------------------------------------------------ batch
    def predict_sequences(self, features: np.ndarray, steps: np.ndarray | None = None) -> np.ndarray:
        """Predictions (S, T, K) for whole sequences (S, T, F); rows outside ``steps`` are NaN.

        ``steps`` is a boolean mask over T (default: every step); a model is only ever scored
        on some steps, and the heads need not run on the others.
        """
        count, length, _ = features.shape
        mask = np.ones(length, dtype=bool) if steps is None else np.asarray(steps, dtype=bool)
        out = np.full((count, length, self.n_outputs), np.nan)
        chunk = max(1, BATCH_ELEMENTS // (length * max(self.pipeline.n_outputs, 1)))
        for start in range(0, count, chunk):
            stop = min(start + chunk, count)
            block = self.pipeline.transform(features[start:stop])[:, mask]
            flat = block.reshape(-1, block.shape[-1])
            predicted = self.guard.apply_batch(self.head.predict_batch(flat))
            out[start:stop, mask] = predicted.reshape(stop - start, -1, self.n_outputs)
        return out

    # -------------------------------------------------------------------------- streaming
    def reset(self) -> None:
        """Start a new sequence."""
        self.pipeline.reset()

    def update(self, row: np.ndarray, need: bool = True) -> np.ndarray | None:
        """Feed the next row; the prediction (a reused vector) when ``need``, else None."""
        x = self.pipeline.update(row)
        if not need:
            return None
        return self.guard.apply_row(self.head.predict_row(x))


def read_spec(folder: str | Path) -> dict[str, Any]:
    """The ``model.json`` of a trained solution, checked for the format."""
    path = Path(folder) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; train the solution first (python -m models train {Path(folder)})")
    spec = json.loads(path.read_text())
    if spec.get("format") != FORMAT:
        raise ValueError(f"{path}: format {spec.get('format')!r} is not {FORMAT!r}")
    return spec


def _load_weights(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; train the solution first")
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def load(folder: str | Path) -> Predictor:
    """The predictor saved in ``folder`` (a solution folder, or the folder a zip was unpacked in)."""
    folder = Path(folder)
    spec = read_spec(folder)
    pipeline = pipelines.load(folder / PIPELINE_FILE, spec["input_names"], spec["pipeline"]["steps"])
    weights = _load_weights(folder / WEIGHTS_FILE)
    head_spec = spec["head"]
    if head_spec["kind"] == "linear":
        head = LinearHead.from_arrays(weights, "head/")
    elif head_spec["kind"] == "trees":
        from .trees import TreeHead

        base = LinearHead.from_arrays(weights, "base/") if head_spec.get("base") else None
        head = TreeHead(folder / TREES_FILE, len(spec["output_names"]), weights.get("trees/columns"), base)
    else:
        raise ValueError(f"{folder / MODEL_FILE}: unknown head kind {head_spec['kind']!r}")
    return Predictor(pipeline, head, Guard.from_arrays(weights), tuple(spec["output_names"]))
