"""What the pipeline families' training shares: seeds, the pipeline, chunked feature passes, OOF rows.

Feature passes run the pipeline's batch form over a few sequences at a time and keep only the
scored rows, so memory is bounded by a chunk whatever the size of the train set.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from models.config import ConfigError, build_pipeline
from models.data import SequenceSet

CHUNK_ELEMENTS = 1 << 24
"""Pipeline output elements per chunk of sequences (128 MiB of float64)."""


def seed_everything(seed: int) -> dict[str, int]:
    """Seed Python's and numpy's global generators (libraries get ``seed`` in their own params)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    return {"seed": int(seed)}


def chunk_size(n_columns: int, length: int) -> int:
    """Sequences per chunk for a pipeline of ``n_columns`` outputs."""
    return max(1, CHUNK_ELEMENTS // (length * max(n_columns, 1)))


def scored_chunks(pipeline, data: SequenceSet, index: np.ndarray | None = None,
                  steps: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(sequence positions, pipeline outputs (rows, F), targets (rows, K)) of the scored rows, chunk by chunk.

    ``index`` picks sequences (positions; default all); ``steps`` a boolean mask over steps that
    narrows the scored steps further (row subsampling). Rows come sequence-major, steps in order.
    """
    positions = np.arange(len(data)) if index is None else np.asarray(index)
    mask = data.scored if steps is None else (data.scored & np.asarray(steps, dtype=bool))
    step = chunk_size(pipeline.n_outputs, data.features.shape[1])
    k = data.competition.n_outputs
    for start in range(0, len(positions), step):
        chosen = positions[start : start + step]
        x = pipeline.transform(data.features[chosen])[:, mask]
        y = data.targets[chosen][:, mask].astype(np.float64)
        yield chosen, x.reshape(-1, x.shape[-1]), y.reshape(-1, k)


@dataclass
class Rows:
    """Sampled scored rows of a set: pipeline outputs (float32), targets, owning sequence and step."""

    x: np.ndarray
    y: np.ndarray
    owner: np.ndarray
    step: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def sample_rows(pipeline, data: SequenceSet, stride: int, seed: int) -> Rows:
    """Every ``stride``-th scored step (seeded phase) of every sequence, through the pipeline once.

    Pipeline outputs are kept as float32 (half the memory; the fit barely notices the rounding,
    and evaluation always recomputes float64 features), targets as float64.
    """
    if stride < 1:
        raise ConfigError(f"train.sample_stride must be a positive integer, got {stride}")
    steps = np.zeros(data.features.shape[1], dtype=bool)
    scored = np.flatnonzero(data.scored)
    phase = int(np.random.default_rng(seed).integers(stride)) if stride > 1 else 0
    steps[scored[phase::stride]] = True
    kept = np.flatnonzero(data.scored & steps)
    total = len(data) * len(kept)
    x = np.empty((total, pipeline.n_outputs), dtype=np.float32)
    y = np.empty((total, data.competition.n_outputs))
    row = 0
    for _, xs, ys in scored_chunks(pipeline, data, steps=steps):
        x[row : row + len(xs)] = xs
        y[row : row + len(ys)] = ys
        row += len(xs)
    return Rows(x, y, np.repeat(np.arange(len(data)), len(kept)), np.tile(kept, len(data)))


def oof_payload(data: SequenceSet, rows: Rows, oof: np.ndarray) -> dict[str, np.ndarray]:
    """Out-of-fold predictions keyed by (seq_ix, step), for ``runs/<name>-<stamp>.oof.npz``."""
    return {"seq_ix": data.seq_ix[rows.owner], "step": rows.step.astype(np.int32),
            "prediction": oof.astype(np.float32), "target": rows.y.astype(np.float32)}


def fit_pipeline(steps: list[dict], train: SequenceSet, fit_sequences: int):
    """Build the pipeline; fit it (on the first ``fit_sequences`` train sequences) only if it needs it."""
    pipeline = build_pipeline(train.competition.feature_columns, steps)
    if not pipeline.is_fitted:
        pipeline.fit(train.features[:fit_sequences])
    return pipeline


class Timer:
    """Seconds since construction, for records."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start
