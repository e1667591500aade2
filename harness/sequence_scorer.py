"""Scoring a run while it replays: the parent pairs the targets it streams to the child with the
predictions that come back, one whole sequence at a time, and keeps only sums.

The feeder thread hands in every block before it sends it (``add_block``), so the targets of a
row are here before any prediction for it can be; the monitor hands in the prediction bytes as
the child writes them (``add_predictions``). Whenever both hold a sequence's scored rows, that
sequence's sufficient statistics are kept (``metrics.sequence_stats``, beside those of the
oracle sidecar's predictions for the same rows, when there is one) and its rows are dropped.
So the parent holds the rows in flight (a block being sent and what the pipes buffer), never
the file's. Sequence ids are the parent's own, from the blocks it sent, not the child's word.

Every prediction byte is untrusted: a non-finite value, more predictions than scored rows sent,
or (at the end of a finished run) fewer, raise ``channel.ProtocolError``.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from harness import metrics
from harness.channel import ProtocolError
from harness.competitions import Competition
from harness.data import Block, block_targets
from harness.metrics import SequenceStats


@dataclass
class OracleStats:
    """Per-sequence statistics of the oracle sidecar's predictions on the run's sequences, in
    replay order (aligned with the run's ``BySequence``): ``observable`` always, ``hidden`` when
    the sidecar has the hidden-state oracle. Shards concatenate like ``BySequence``."""

    observable: SequenceStats
    hidden: SequenceStats | None = None

    def to_json(self) -> dict:
        return {"observable": self.observable.to_json(),
                "hidden": None if self.hidden is None else self.hidden.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> OracleStats:
        """What ``to_json`` wrote (a shard's worker sends it); ``ValueError`` on a malformed object."""
        if not isinstance(data, dict) or "observable" not in data:
            raise ValueError("oracle statistics must be an object with 'observable'")
        hidden = data.get("hidden")
        return cls(SequenceStats.from_json(data["observable"]), None if hidden is None else SequenceStats.from_json(hidden))

    @staticmethod
    def concat(parts: list[OracleStats]) -> OracleStats:
        hidden = [p.hidden for p in parts]
        return OracleStats(SequenceStats.concat([p.observable for p in parts]),
                           None if any(h is None for h in hidden) else SequenceStats.concat(hidden))


@dataclass
class ScoredRun:
    """What the scorer kept: the sequences scored whole, in replay order, their statistics, the
    oracle's on the same rows, and the predictions themselves only when they were asked for."""

    seq_ix: list[int]
    stats: SequenceStats | None
    oracle: OracleStats | None = None
    predictions: np.ndarray | None = None


class _Rows:
    """A queue of (rows, outputs) arrays taken from the front by row count; only the rows still
    queued are held."""

    def __init__(self, width: int):
        self.width = width
        self.parts: deque[np.ndarray] = deque()
        self.rows = 0

    def push(self, array: np.ndarray) -> None:
        if array.shape[0]:
            self.parts.append(array)
            self.rows += array.shape[0]

    def take(self, n: int) -> np.ndarray:
        """The first ``n`` rows (a view when they lie in one part), removed from the queue."""
        out = []
        need = n
        while need:
            head = self.parts[0]
            if head.shape[0] <= need:
                out.append(self.parts.popleft())
                need -= head.shape[0]
            else:
                out.append(head[:need])
                self.parts[0] = head[need:]
                need = 0
        self.rows -= n
        if not out:
            return np.empty((0, self.width))
        return out[0] if len(out) == 1 else np.concatenate(out)


class SequenceScorer:
    """Per-sequence statistics of one run, computed as sequences complete (see the module).

    ``oracle`` is a ``harness.market.base.Sidecar`` for the replayed file (its rows in file order;
    its ``seq_ix`` places a sequence replayed out of file order, else ``first_position``, the
    place in the file of the first sequence replayed, places the rest), or None.
    """

    def __init__(self, competition: Competition, oracle=None, keep_predictions: bool = False,
                 first_position: int = 0):
        self.comp = competition
        self.per = competition.scored_steps_per_sequence
        self.width = competition.n_outputs
        self.row_bytes = 8 * self.width
        self.oracle = oracle
        self.keep_predictions = keep_predictions
        self._lock = threading.Lock()
        self._targets = _Rows(self.width)
        self._predictions = _Rows(self.width)
        self._pending = b""
        self._ids: deque[int] = deque()
        self._first_position = first_position
        self._position = 0
        self._oracle_index = self._index_of(oracle)
        self._seq_ix: list[int] = []
        self._stats: list[SequenceStats] = []
        self._observable: list[SequenceStats] = []
        self._hidden: list[SequenceStats] = []
        self._kept: list[np.ndarray] = []

    @staticmethod
    def _index_of(oracle) -> dict[int, int] | None:
        ids = getattr(oracle, "seq_ix", None)
        return None if ids is None else {int(s): i for i, s in enumerate(ids)}

    # -- the feeder's side -------------------------------------------------------------------

    def add_block(self, block: Block) -> None:
        """Targets and sequence ids of ``block``; call before sending it to the child."""
        targets = block_targets(self.comp, block)
        starts = block.seq_ix[block.step == 0]
        with self._lock:
            self._ids.extend(int(s) for s in starts)
            self._targets.push(targets)

    # -- the monitor's side ------------------------------------------------------------------

    def add_predictions(self, data: bytes) -> None:
        """Prediction bytes from the child (float64 rows of the competition's width, in scoring
        order, cut anywhere); scores every sequence now complete. Raises ``ProtocolError``."""
        data = self._pending + data
        whole = len(data) // self.row_bytes * self.row_bytes
        self._pending = data[whole:]
        if not whole:
            return
        rows = np.frombuffer(data[:whole], dtype=np.float64).reshape(-1, self.width).copy()
        if not np.isfinite(rows).all():
            raise ProtocolError("a non-finite prediction on the prediction pipe, which the child never sends")
        with self._lock:
            if self._predictions.rows + rows.shape[0] > self._targets.rows:
                raise ProtocolError(f"{self._predictions.rows + rows.shape[0]} predictions came back for "
                                    f"{self._targets.rows} scored rows sent so far")
            self._predictions.push(rows)
        while self._predictions.rows >= self.per:  # one sequence at a time: the scratch of one
            with self._lock:
                if self._targets.rows < self.per:
                    break
                y = self._targets.take(self.per)
                ids = [self._ids.popleft()]
            self._score(y, self._predictions.take(self.per), ids)

    def _score(self, y: np.ndarray, p: np.ndarray, ids: list[int]) -> None:
        starts = np.arange(len(ids)) * self.per
        self._stats.append(metrics.sequence_stats(self.comp, y, p, starts))
        if self.oracle is not None:
            rows = self._oracle_rows(ids)
            self._observable.append(metrics.sequence_stats(self.comp, y, self.oracle.observable[rows], starts))
            if self.oracle.hidden is not None:
                self._hidden.append(metrics.sequence_stats(self.comp, y, self.oracle.hidden[rows], starts))
        if self.keep_predictions:
            self._kept.append(p)
        self._seq_ix.extend(ids)
        self._position += len(ids)

    def _oracle_rows(self, ids: list[int]) -> np.ndarray:
        return _oracle_rows(self.oracle, self._oracle_index, self._first_position + self._position, ids, self.per)

    def finish(self, finished: bool) -> ScoredRun:
        """What was scored. For a ``finished`` run every scored row sent must have come back:
        anything else raises ``ProtocolError``; a failed run keeps its whole sequences."""
        if finished and (self._pending or self._predictions.rows or self._targets.rows):
            done = self._position * self.per
            raise ProtocolError(f"{done + self._predictions.rows} whole predictions (and {len(self._pending)} bytes) "
                                f"came back for {done + self._targets.rows} scored rows sent")
        stats = SequenceStats.concat(self._stats) if self._stats else None
        oracle = None
        if self._observable:
            oracle = OracleStats(SequenceStats.concat(self._observable),
                                 SequenceStats.concat(self._hidden) if self._hidden else None)
        predictions = None
        if self.keep_predictions:
            predictions = np.concatenate(self._kept) if self._kept else np.empty((0, self.width))
        return ScoredRun(list(self._seq_ix), stats, oracle, predictions)


def _oracle_rows(oracle, index: dict[int, int] | None, position: int, ids: list[int], per: int) -> np.ndarray:
    """The sidecar's rows for these sequences: by seq_ix where it lists them, else by place
    (``position``: how many sequences came before them)."""
    if index is None:
        first = np.arange(position, position + len(ids))
    else:
        try:
            first = np.array([index[s] for s in ids])
        except KeyError as exc:
            raise ValueError(f"the oracle sidecar has no sequence {exc.args[0]}; regenerate the set") from None
    rows = (first[:, None] * per + np.arange(per)).ravel()
    if rows.size and rows[-1] >= len(oracle.observable):
        raise ValueError(f"the oracle sidecar has {len(oracle.observable)} rows, fewer than the scored rows; "
                         "regenerate the set")
    return rows


def oracle_stats(comp: Competition, y_true: np.ndarray, oracle, seq_ix: list[int]) -> OracleStats:
    """The oracle's per-sequence statistics on the replayed rows ``y_true`` (sequences ``seq_ix``
    in replay order), one sequence at a time as the scorer makes them, so a sharded run, whose
    shards replay without the sidecar, gets the same sums as one worker."""
    per = comp.scored_steps_per_sequence
    ids = getattr(oracle, "seq_ix", None)
    index = None if ids is None else {int(s): i for i, s in enumerate(ids)}
    starts = np.zeros(1, dtype=np.int64)
    observable, hidden = [], []
    for i, seq in enumerate(seq_ix):
        y = y_true[i * per:(i + 1) * per]
        rows = _oracle_rows(oracle, index, i, [seq], per)
        observable.append(metrics.sequence_stats(comp, y, oracle.observable[rows], starts))
        if oracle.hidden is not None:
            hidden.append(metrics.sequence_stats(comp, y, oracle.hidden[rows], starts))
    return OracleStats(SequenceStats.concat(observable), SequenceStats.concat(hidden) if hidden else None)
