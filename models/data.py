"""Training data as whole sequences, aligned exactly as the grader scores them.

A model sees rows 0..t and its output at row t is scored against ``targets[:, t]``: for A the
next row's state, for B the same row's (t0, t1). ``scored`` marks the steps the grader scores.
Flattening ``targets[:, scored]`` sequence by sequence gives the grader's order, which is what
``harness.data.targets_of`` yields for the same file; the offline score of a model is therefore
the online score, and a test pins that.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import metrics
from harness.competitions import SEQUENCE_LENGTH, Competition
from harness.data import ParquetSource


@dataclass
class SequenceSet:
    """Sequences of one file: features (S, T, F), targets (S, T, K), the scored-step mask (T,)."""

    competition: Competition
    seq_ix: np.ndarray
    features: np.ndarray
    targets: np.ndarray
    source: Path | None = None

    @property
    def scored(self) -> np.ndarray:
        steps = np.arange(SEQUENCE_LENGTH)
        comp = self.competition
        return (steps >= comp.first_scored_step) & (steps <= comp.last_scored_step)

    def __len__(self) -> int:
        return len(self.seq_ix)

    def subset(self, index: np.ndarray) -> "SequenceSet":
        """The sequences at ``index`` (positions, not seq_ix values)."""
        return SequenceSet(self.competition, self.seq_ix[index], self.features[index], self.targets[index], self.source)

    def scored_targets(self) -> np.ndarray:
        """Targets of the scored rows, (S * scored steps, K), in the grader's order."""
        return self.targets[:, self.scored].reshape(-1, self.competition.n_outputs)

    def score(self, predictions: np.ndarray) -> dict[str, float]:
        """Score whole-sequence predictions (S, T, K); only the scored steps count."""
        if predictions.shape != self.targets.shape:
            raise ValueError(f"predictions have shape {predictions.shape}; expected {self.targets.shape}")
        flat = predictions[:, self.scored].reshape(-1, self.competition.n_outputs)
        return metrics.score(self.competition, self.scored_targets(), flat)


def load_sequences(path: str | Path, max_sequences: int | None = None, competition: Competition | str | None = None) -> SequenceSet:
    """Read a validated competition file into arrays (features float32, as stored).

    Blocks are copied into preallocated float32 arrays as they stream, so peak memory is the
    result plus one block (B's full train set would need several GB as one float64 table).
    """
    source = ParquetSource(path, competition)
    comp = source.competition
    n_rows = source.num_rows if max_sequences is None else min(source.num_rows, max_sequences * SEQUENCE_LENGTH)
    if n_rows % SEQUENCE_LENGTH:
        raise ValueError(f"{path}: {n_rows} rows is not a whole number of {SEQUENCE_LENGTH}-step sequences")
    n_seq = n_rows // SEQUENCE_LENGTH
    n_feat, n_tgt = comp.n_features, len(comp.target_columns)
    feats = np.empty((n_rows, n_feat), dtype=np.float32)
    stored_targets = np.empty((n_rows, n_tgt), dtype=np.float32)
    seq_first = np.empty(n_rows, dtype=np.float64)
    row = 0
    for block in source.blocks(max_sequences=max_sequences):
        values = block.values
        stop = row + len(values)
        seq_first[row:stop] = values[:, 0]
        feats[row:stop] = values[:, 3 : 3 + n_feat]
        stored_targets[row:stop] = values[:, 3 + n_feat :]
        row = stop
    if row != n_rows:
        raise ValueError(f"{path}: read {row} rows, expected {n_rows}")
    feats = feats.reshape(n_seq, SEQUENCE_LENGTH, n_feat)
    if comp.target_columns:
        targets = stored_targets.reshape(n_seq, SEQUENCE_LENGTH, n_tgt)
    else:
        # The prediction at row t is scored against row t + offset; the last rows have no target.
        off = comp.target_offset
        targets = np.full_like(feats, np.nan)
        targets[:, : SEQUENCE_LENGTH - off] = feats[:, off:]
    seq_ix = seq_first.reshape(n_seq, SEQUENCE_LENGTH)[:, 0].astype(np.int64)
    return SequenceSet(comp, seq_ix, feats, targets, Path(path))
