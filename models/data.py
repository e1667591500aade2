"""Training data as whole sequences, aligned exactly as the grader scores them.

A model sees rows 0..t and its output at row t is scored against ``targets[:, t]``: for A the
next row's state, for B the same row's (t0, t1). ``scored`` marks the steps the grader scores.
Flattening ``targets[:, scored]`` sequence by sequence gives the grader's order, which is what
``harness.data.targets_of`` yields for the same file; the offline score of a model is therefore
the online score, and a test pins that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import metrics
from harness.competitions import SEQUENCE_LENGTH, Competition
from harness.data import ParquetSource
from harness.market.base import Sidecar, read_oracle


@dataclass
class SequenceSet:
    """Sequences of one file: features (S, T, F), targets (S, T, K), the scored-step mask (T,).

    ``oracle`` holds the simulator's oracle for exactly these sequences' scored rows, in the
    set's order (None for real data, or with ``--no-oracle``); it travels with ``subset`` so a
    part of a set is scored beside its own part of the oracle.
    """

    competition: Competition
    seq_ix: np.ndarray
    features: np.ndarray
    targets: np.ndarray
    source: Path | None = None
    oracle: Sidecar | None = None

    @property
    def scored(self) -> np.ndarray:
        steps = np.arange(SEQUENCE_LENGTH)
        comp = self.competition
        return (steps >= comp.first_scored_step) & (steps <= comp.last_scored_step)

    def __len__(self) -> int:
        return len(self.seq_ix)

    def subset(self, index: np.ndarray) -> "SequenceSet":
        """The sequences at ``index`` (positions, not seq_ix values), with their oracle rows."""
        return SequenceSet(self.competition, self.seq_ix[index], self.features[index], self.targets[index], self.source,
                           _oracle_rows(self.oracle, index, self.competition.scored_steps_per_sequence))

    def scored_targets(self) -> np.ndarray:
        """Targets of the scored rows, (S * scored steps, K), in the grader's order."""
        return self.targets[:, self.scored].reshape(-1, self.competition.n_outputs)

    def score(self, predictions: np.ndarray) -> dict[str, float]:
        """Score whole-sequence predictions (S, T, K); only the scored steps count."""
        if predictions.shape != self.targets.shape:
            raise ValueError(f"predictions have shape {predictions.shape}; expected {self.targets.shape}")
        flat = predictions[:, self.scored].reshape(-1, self.competition.n_outputs)
        return metrics.score(self.competition, self.scored_targets(), flat)


def _oracle_rows(oracle: Sidecar | None, index: np.ndarray, per: int) -> Sidecar | None:
    """The oracle rows of the sequences at ``index`` (``per`` scored rows each)."""
    if oracle is None:
        return None

    def pick(values: np.ndarray | None) -> np.ndarray | None:
        if values is None:
            return None
        return values.reshape(-1, per, values.shape[-1])[index].reshape(-1, values.shape[-1])

    return Sidecar(observable=pick(oracle.observable), hidden=pick(oracle.hidden))


def load_sequences(path: str | Path, max_sequences: int | None = None, competition: Competition | str | None = None,
                   oracle: bool = True, notice: Callable[[str], None] | None = None) -> SequenceSet:
    """Read a validated competition file into arrays (features float32, as stored), with its
    oracle sidecar's rows when it has one (``harness.market.base.read_oracle``: ``oracle=False``
    skips it, a foreign file there is ignored and ``notice`` told, a stale one raises
    ``SidecarMismatch`` here, before any training).

    Blocks are copied into preallocated float32 arrays as they stream, so peak memory is the
    result plus one block (B's full train set would need several GB as one float64 table).
    """
    source = ParquetSource(path, competition)
    comp = source.competition
    n_rows = source.num_rows if max_sequences is None else min(source.num_rows, max_sequences * SEQUENCE_LENGTH)
    if n_rows % SEQUENCE_LENGTH:
        raise ValueError(f"{path}: {n_rows} rows is not a whole number of {SEQUENCE_LENGTH}-step sequences")
    n_seq = n_rows // SEQUENCE_LENGTH
    sidecar = read_oracle(Path(path), comp, use=oracle, notice=notice)
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
    # the sidecar lists the whole file's scored rows in order; these sequences are its first ones
    sidecar = _oracle_rows(sidecar, np.arange(n_seq), comp.scored_steps_per_sequence)
    return SequenceSet(comp, seq_ix, feats, targets, Path(path), sidecar)
