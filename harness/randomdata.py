"""Contract-valid files of plain random numbers, made-up run statistics and the simplest honest
candidate, for tests and benchmarks of the grader itself.

The market simulator makes realistic data; these files only need the right schema, dtypes and
``need_prediction`` pattern, and must be quick to make at any size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness.competitions import SEQUENCE_LENGTH, Competition
from harness.metrics import sequence_stats
from harness.simulation import BySequence


MEAN_SO_FAR_SOURCE = """
import numpy as np
class PredictionModel:
    def __init__(self):
        self.seq, self.total, self.n = None, None, 0
    def predict(self, dp):
        if dp.seq_ix != self.seq:
            self.seq, self.total, self.n = dp.seq_ix, np.zeros(32), 0
        self.total += dp.state
        self.n += 1
        return self.total / self.n if dp.need_prediction else None
"""
"""An A candidate's ``solution.py``: each sequence's running mean of the state (no files, no
libraries beyond numpy), for tests that need a candidate that passes."""


def random_table(competition: Competition, n_sequences: int, seed: int = 0, first_seq_ix: int = 0) -> pa.Table:
    comp = competition
    rng = np.random.default_rng(seed)
    rows = n_sequences * SEQUENCE_LENGTH
    step = np.tile(np.arange(SEQUENCE_LENGTH), n_sequences)
    seq = np.repeat(rng.permutation(n_sequences) + first_seq_ix, SEQUENCE_LENGTH)
    need = (step >= comp.first_scored_step) & (step <= comp.last_scored_step)
    cols = {
        "seq_ix": pa.array(seq.astype(comp.index_dtype)),
        "step_in_seq": pa.array(step.astype(comp.index_dtype)),
        "need_prediction": pa.array(need.astype(comp.need_prediction_dtype)),
    }
    values = rng.standard_normal((rows, comp.n_features + len(comp.target_columns))).astype(comp.feature_dtype)
    for j, name in enumerate(comp.feature_columns + comp.target_columns):
        cols[name] = pa.array(values[:, j])
    return pa.table(cols)


def write_random_file(
    competition: Competition, path: str | Path, n_sequences: int, seed: int = 0, sequences_per_group: int = 64
) -> Path:
    """Write ``n_sequences`` random sequences to ``path`` in row groups, returning the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = random_table(competition, n_sequences, seed)
    pq.write_table(table, path, row_group_size=sequences_per_group * SEQUENCE_LENGTH)
    return path


def synthetic_by_sequence(competition: Competition, seq_ix, rng: np.random.Generator) -> BySequence:
    """Per-sequence statistics of a made-up candidate that explains 0-80% of each sequence, for
    tests and benchmarks of the report's readers (never a run's)."""
    n, per, k = len(seq_ix), competition.scored_steps_per_sequence, competition.n_outputs
    y = rng.standard_normal((n * per, k))
    p = rng.uniform(0, 0.8, size=(n, 1, 1)).repeat(per, 1).reshape(-1, 1) * y + rng.standard_normal(y.shape)
    return BySequence([int(s) for s in seq_ix], sequence_stats(competition, y, p, np.arange(0, n * per, per)))
