"""The causality check: replay a copy of the sample whose rows after a cut are another sequence's.

A causal candidate's prediction at step t depends on rows 0..t only. So in a copy of the sample
where, for each cut sequence, every row after a step t is replaced by the rows of another
sequence, every prediction at steps up to t must be bit for bit what it was on the original
(same code, same inputs, a deterministic candidate: bit-identity holds by construction). This
does not depend on how a candidate reaches the future: through the replay's memory, the data
file (the copy is a new file in a fresh folder, so every path, descriptor or job field leads to
the altered rows) or a sidecar beside it (the copy has none). Every other sequence is left
whole, so that each cut sequence follows a whole one: a difference in a whole sequence is
non-determinism or state carried over from the cut sequence before it, never look-ahead, and a
difference before a cut cannot come from a previous sequence's altered rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness.competitions import SEQUENCE_LENGTH, Competition
from harness.data import ParquetSource

WHOLE_EVERY = 2
"""Sequences 0, 2, 4, ... of the sample are kept whole (the determinism witnesses)."""


@dataclass(frozen=True)
class CutSample:
    """The altered copy: its path, and the last step kept of each cut sequence (by seq_ix)."""

    path: Path
    cuts: dict[int, int]


def write_cut_copy(source: ParquetSource, sequences: int, dest: Path, seed: int) -> CutSample:
    """Write the first ``sequences`` of ``source`` to ``dest`` with the future of most of them replaced.

    Cut steps are drawn in the scored range (so a later row exists that a look-ahead would use);
    the replacement rows (features and, for B, targets) come from the next sequence of the sample
    at the same steps, so they are plausible values of the same file. Columns keep the file's
    types, so the rows before each cut are bit for bit those of the original.
    """
    comp = source.competition
    values = np.concatenate([b.values for b in source.blocks(max_sequences=sequences)])
    seqs = values.reshape(-1, SEQUENCE_LENGTH, values.shape[1])
    altered = seqs.copy()
    rng = np.random.default_rng(seed)
    cuts: dict[int, int] = {}
    for i in range(len(seqs)):
        if i % WHOLE_EVERY == 0:
            continue
        t = int(rng.integers(comp.first_scored_step, comp.last_scored_step))
        donor = seqs[(i + 1) % len(seqs)]
        altered[i, t + 1 :, 3:] = donor[t + 1 :, 3:]
        cuts[int(seqs[i, 0, 0])] = t
    flat = altered.reshape(-1, values.shape[1])
    schema = pq.read_schema(source.path)
    columns = [pa.array(flat[:, j].astype(schema.field(name).type.to_pandas_dtype()))
               for j, name in enumerate(comp.columns)]
    pq.write_table(pa.Table.from_arrays(columns, schema=schema.remove_metadata()), dest)
    return CutSample(dest, cuts)


def steps_of(comp: Competition) -> np.ndarray:
    """The step of each scored prediction of one sequence, in order."""
    return np.arange(comp.first_scored_step, comp.last_scored_step + 1)


def first_difference(a: np.ndarray, b: np.ndarray, comp: Competition, upto: int | None = None) -> int | None:
    """The first step (at most ``upto``) whose predictions differ in any bit, or None."""
    steps = steps_of(comp)
    differ = np.any(a != b, axis=1)
    if upto is not None:
        differ &= steps <= upto
    return int(steps[np.argmax(differ)]) if differ.any() else None


def ignores_its_rows(a: np.ndarray, b: np.ndarray, comp: Competition, cut: int) -> bool:
    """Whether the varying predictions after ``cut`` stayed bit-identical although every row after
    it was replaced: they then come from somewhere other than what ``predict`` was given."""
    after = steps_of(comp) > cut
    a, b = a[after], b[after]
    return a.shape[0] > 1 and bool(np.ptp(a, axis=0).max() > 0) and np.array_equal(a, b)
