"""A named pipeline: transforms side by side over named inputs, with stable output names.

This is what training code and a solution use. Training: ``fit(train_sequences)`` then
``transform(sequences)``. A solution: ``reset()`` when ``seq_ix`` changes (or pass
``sequence_id``), then ``update(row)`` per row. Fitted state goes to and from a small
``.npz`` (see ``features.storage``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import StreamContext, Transform
from .compose import Concat
from .storage import load_fitted, save_fitted


class Pipeline:
    """Transforms run side by side on the same input rows; outputs concatenated in order.

    ``steps`` is the JSON description the pipeline was built from (``features.pipelines.build``);
    a saved file keeps only its hash, and ``load_state`` refuses a file saved from other steps.
    Hand-assembled pipelines leave it None and restore state on an identically built pipeline.
    """

    def __init__(
        self,
        name: str,
        input_names: Sequence[str],
        transforms: Sequence[Transform],
        steps: list[dict[str, Any]] | None = None,
    ) -> None:
        self.name = str(name)
        self.steps = steps
        self.root = Concat(transforms)
        self.output_names: tuple[str, ...] = self.root.setup(input_names)
        self.input_names: tuple[str, ...] = self.root.input_names
        self._context: StreamContext | None = None
        self._sequence_id: Any = None

    @property
    def n_inputs(self) -> int:
        return len(self.input_names)

    @property
    def n_outputs(self) -> int:
        return len(self.output_names)

    @property
    def transforms(self) -> list[Transform]:
        return list(self.root.members)

    @property
    def is_fitted(self) -> bool:
        return self.root.is_fitted

    # ---------------------------------------------------------------------------- fitting
    def fit(self, train_sequences: np.ndarray) -> Pipeline:
        """Fit every transform on training sequences only, shape (sequences, time, inputs).

        Split by ``seq_ix`` first (``features.splits``): nothing fitted may see a
        validation sequence.
        """
        self.root.fit(train_sequences)
        self._context = None
        return self

    # ------------------------------------------------------------------------------ batch
    def transform(self, sequences: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Batch form: (sequences, time, inputs) -> (sequences, time, outputs), computed in float64.

        Pass ``out`` (e.g. a float32 array of that shape) to choose the storage type.
        """
        return self.root.transform(sequences, out=out)

    # -------------------------------------------------------------------------- streaming
    def _start_stream(self) -> None:
        if not self.root.is_fitted:
            raise RuntimeError(f"pipeline {self.name!r} is not fitted; fit it or load a fitted state first")
        self._context = StreamContext(self.n_inputs, [self.root.lags], self.root.window)
        self.root.bind(self._context, self._context.offsets[0])
        self._out = np.zeros(self.n_outputs)
        self._push = self._context.push
        self._step = self.root.step

    def reset(self) -> None:
        """Start a new sequence: the next row is treated as its row 0."""
        if self._context is None or not self.root.is_bound_to(self._context):
            self._start_stream()
        self._context.reset()  # type: ignore[union-attr]
        self.root.reset_state()
        self._sequence_id = None

    def update(self, row: np.ndarray, sequence_id: Any = None) -> np.ndarray:
        """Streaming form: the feature vector for the next row (causal: rows so far only).

        Pass ``sequence_id`` (for example ``seq_ix``) to reset automatically when it changes.
        The returned vector is reused by the next call; copy it to keep it.
        """
        if sequence_id is not None and sequence_id != self._sequence_id:
            self.reset()
            self._sequence_id = sequence_id
        elif self._context is None:
            self.reset()
        self._push(row)
        self._step(self._out)
        return self._out

    # ----------------------------------------------------------------------- fitted state
    def fitted_state(self) -> dict[str, np.ndarray]:
        """All fitted numbers, keyed by transform position (e.g. ``"5.quantiles"``)."""
        if not self.root.is_fitted:
            raise RuntimeError(f"pipeline {self.name!r} is not fitted")
        return self.root.fitted_state()

    def load_fitted_state(self, state: dict[str, np.ndarray]) -> None:
        self.root.load_fitted_state(state)
        self._context = None

    def spec(self) -> dict[str, Any]:
        """What a saved file records beside the state: the steps' hash and the column names."""
        return {
            "name": self.name,
            "steps_sha256": None if self.steps is None else steps_sha256(self.steps),
            "input_names": list(self.input_names),
            "output_names": list(self.output_names),
        }

    def save(self, path: str | Path) -> Path:
        """Write the fitted state and spec to ``path`` (.npz) for a solution's zip."""
        return save_fitted(path, self.spec(), self.fitted_state())

    def load_state(self, path: str | Path) -> Pipeline:
        """Load fitted state saved from a pipeline built the same way; returns self.

        Refused when the inputs, the outputs or (for pipelines built from steps) the steps differ.
        """
        spec, state = load_fitted(path)
        if tuple(spec.get("input_names", ())) != self.input_names:
            raise ValueError(f"{path}: saved for inputs {spec.get('input_names')}, not {list(self.input_names)}")
        if tuple(spec.get("output_names", ())) != self.output_names:
            raise ValueError(f"{path}: saved pipeline {spec.get('name')!r} has different outputs from {self.name!r}")
        if spec.get("steps_sha256") != self.spec()["steps_sha256"]:
            raise ValueError(f"{path}: saved from other pipeline steps than these; retrain the solution")
        self.load_fitted_state(state)
        return self


def steps_sha256(steps: list[dict[str, Any]]) -> str:
    """A hash of pipeline steps as canonical JSON (key order and spacing do not matter)."""
    return hashlib.sha256(json.dumps(steps, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
