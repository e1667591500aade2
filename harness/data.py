"""Streaming, validated access to a competition parquet file.

The organizers' scorer loads the whole table into pandas (about 12 GB for B's train set). Here
the file is read in record batches and each batch becomes one float64 block laid out exactly like
a row of the reference scorer's ``DataFrame.values``: meta columns, features, then targets.
Every block is validated against the contract as it streams, carrying state across block
boundaries, so a bad file fails at the first bad row with its file, ``seq_ix`` and row number.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness import competitions
from harness.competitions import SEQUENCE_LENGTH, Competition

BATCH_ROWS = 8 * SEQUENCE_LENGTH
"""Rows a block holds. A replay's parent holds about two blocks as float64 and their targets at
a time, so this sets its memory (8 sequences: about 5 MB of A); reading in smaller batches
costs no measurable time (A's valid set read in 64- and 8-sequence batches took the same)."""


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks (a B train set's 1.5 GB in a few seconds,
    in constant memory): names the exact data a run record or a report was made on."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class DataError(ValueError):
    """The file breaks the competition contract; the message names file, sequence and row and the fix."""


@dataclass
class Block:
    """Consecutive rows of the file as one float64 array (rows, meta + features + targets)."""

    values: np.ndarray
    first_row: int

    @property
    def seq_ix(self) -> np.ndarray:
        return self.values[:, 0]

    @property
    def step(self) -> np.ndarray:
        return self.values[:, 1]

    @property
    def need(self) -> np.ndarray:
        return self.values[:, 2]

    def sequence_pieces(self) -> Iterator[Block]:
        """This block cut where sequences start (views, no copies); the first and last piece may
        be parts of sequences that began before or end after the block."""
        bounds = sorted({0, *np.flatnonzero(self.step == 0).tolist(), self.values.shape[0]})
        for a, b in zip(bounds[:-1], bounds[1:]):
            yield Block(self.values[a:b], self.first_row + a)


def _open(path: Path) -> pq.ParquetFile:
    if not path.exists():
        raise DataError(f"{path}: no such file; generate one with `python -m harness data` or pass --data")
    try:
        # pre_buffer would keep every column chunk read so far until the file is closed, so a
        # replay's memory would grow with the file (about 6 GB for B's train set), not a block.
        return pq.ParquetFile(path, pre_buffer=False)
    except (pa.ArrowException, OSError) as exc:
        looks_like = _looks_like(path)
        if looks_like:
            raise DataError(
                f"{path}: not a parquet file ({looks_like}); convert it to parquet or pass the competition's "
                "parquet file"
            ) from exc
        raise DataError(
            f"{path}: cannot be read as parquet ({exc}); the file is corrupt or truncated: "
            "regenerate it (`python -m harness data`) or download it again"
        ) from exc


PARQUET_MAGIC = b"PAR1"


def _looks_like(path: Path) -> str | None:
    """What a file that is not parquet at all seems to be, from its first bytes; None when it
    starts like parquet (then it is damaged, not something else)."""
    with open(path, "rb") as fh:
        head = fh.read(200)
    if head.startswith(PARQUET_MAGIC):
        return None
    if not head:
        return "it is empty"
    if head.startswith(b"PK\x03\x04"):
        return "it is a zip archive"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"it starts with the bytes {head[:8]!r}, not parquet's {PARQUET_MAGIC!r}"
    first_line = text.splitlines()[0][:80] if text.strip() else ""
    kind = "CSV text" if "," in first_line else "text"
    return f"it looks like {kind}, starting {first_line!r}"


_PLAIN_TYPES = {pa.float64(): np.float64, pa.float32(): np.float32, pa.float16(): np.float16,
                **{getattr(pa, f"{k}{n}")(): np.dtype(f"{k}{n}") for k in ("int", "uint") for n in (8, 16, 32, 64)}}


def column_values(column: pa.Array) -> np.ndarray:
    """A column's values as a NumPy view of its data buffer. pyarrow's ``to_numpy`` imports pandas
    on first use (about 40 MB and a third of a second in a replay's parent); it stays the path for
    what a buffer cannot give plainly: nulls (they become NaN, which validation names) and other
    types (booleans are bit-packed)."""
    dtype = _PLAIN_TYPES.get(column.type)
    if dtype is None or column.null_count:
        return column.to_numpy(zero_copy_only=False)
    itemsize = np.dtype(dtype).itemsize
    return np.frombuffer(column.buffers()[1], dtype=dtype, count=len(column), offset=column.offset * itemsize)


class ParquetSource:
    """One competition file: schema checked on open, rows validated while streaming."""

    def __init__(self, path: str | Path, competition: Competition | str | None = None):
        self.path = Path(path)
        self._file = _open(self.path)
        names = list(self._file.schema_arrow.names)
        try:
            detected = competitions.detect(names)
        except ValueError as exc:
            raise DataError(f"{self.path}: {exc}") from exc
        if competition is not None:
            wanted = competitions.get(competition) if isinstance(competition, str) else competition
            if wanted is not detected:
                raise DataError(
                    f"{self.path}: the columns are those of {detected.key} ({detected.name}) "
                    f"but {wanted.key} ({wanted.name}) was asked for; drop --competition or pass the right file"
                )
        self.competition = detected
        self.num_rows = self._file.metadata.num_rows
        if self.num_rows == 0:
            raise DataError(
                f"{self.path}: has the {detected.key} ({detected.name}) columns but no rows; "
                "pass a file with at least one complete sequence"
            )
        # Nominal; a sequence of the wrong length is reported where it is, while streaming.
        self.num_sequences = -(-self.num_rows // SEQUENCE_LENGTH)

    # -- reading -------------------------------------------------------------------------------

    def _raw_batches(self, row_groups: list[int] | None = None) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._file.iter_batches(batch_size=BATCH_ROWS, row_groups=row_groups,
                                               columns=list(self.competition.columns), use_threads=False)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(
                f"{self.path}: reading failed part-way ({exc}); the file is corrupt or truncated: "
                "regenerate or download it again"
            ) from exc

    @staticmethod
    def _to_block(batch: pa.RecordBatch, first_row: int) -> Block:
        # Filling column-major then transposing once is several times faster than writing
        # strided columns; the result is row-contiguous, like ``DataFrame.values``.
        columns = np.empty((batch.num_columns, batch.num_rows), dtype=np.float64)
        for j in range(batch.num_columns):
            columns[j] = column_values(batch.column(j))
        return Block(np.ascontiguousarray(columns.T), first_row)

    def blocks(self, max_sequences: int | None = None, validate: bool = True,
               first_sequence: int = 0) -> Iterator[Block]:
        """Yield fresh float64 blocks in file order (never reused: a candidate may keep row views),
        from the ``first_sequence``-th sequence on (row ``first_sequence * SEQUENCE_LENGTH``: a
        shard's range; the row groups before it are not read) and at most ``max_sequences``.

        A range that starts inside the file is validated from its first row (it must start a
        sequence) and names rows as the file counts them; a range that stops before the file's
        end must stop at a sequence's end, or the file's sequences are not all
        ``SEQUENCE_LENGTH`` rows long (the one-worker pass would say where; ``DataError`` here)."""
        start = first_sequence * SEQUENCE_LENGTH
        if not 0 <= start < self.num_rows:
            raise ValueError(f"{self.path}: no sequence at position {first_sequence} (the file has "
                             f"{self.num_rows} rows)")
        limit = self.num_rows if max_sequences is None else min(self.num_rows, start + max_sequences * SEQUENCE_LENGTH)
        checker = _ContractChecker(self) if validate else None
        row, groups = self._groups_from(start)
        for batch in self._raw_batches(groups):
            if row >= limit:
                break
            if row + batch.num_rows <= start:
                row += batch.num_rows
                continue
            lo, hi = max(start, row) - row, min(limit, row + batch.num_rows) - row
            block = self._to_block(batch.slice(lo, hi - lo), row + lo)
            if checker is not None:
                checker.check(block)
            yield block
            row += batch.num_rows
        if checker is not None:
            if limit == self.num_rows:
                checker.finish()
            else:
                checker.range_end()

    def _groups_from(self, start: int) -> tuple[int, list[int]]:
        """The first row of the row group holding row ``start``, and that group and every later one."""
        meta = self._file.metadata
        first = 0
        for g in range(meta.num_row_groups):
            rows = meta.row_group(g).num_rows
            if first + rows > start:
                return first, list(range(g, meta.num_row_groups))
            first += rows
        return first, []

    def sequences(self, order: Sequence[int], validate: bool = True) -> Iterator[Block]:
        """Yield the named sequences, one block each, in the given order (for shuffled replays)."""
        wanted = [int(s) for s in order]
        found: dict[int, np.ndarray] = {}
        want = set(wanted)
        for block in self.blocks(validate=validate):
            ids = block.seq_ix
            starts = np.flatnonzero(block.step == 0)
            for s in starts:
                sid = int(ids[s])
                if sid in want:
                    found[sid] = block.values[s : s + SEQUENCE_LENGTH].copy()
        missing = [s for s in wanted if s not in found]
        if missing:
            raise DataError(f"{self.path}: no sequence with seq_ix {missing[:5]} in this file")
        for k, sid in enumerate(wanted):
            yield Block(found[sid], k * SEQUENCE_LENGTH)

    def sequence_ids(self, max_sequences: int | None = None) -> np.ndarray:
        """The seq_ix of every sequence, in file order."""
        col = self._file.read(columns=["seq_ix", "step_in_seq"])
        seq = col.column(0).to_numpy()
        step = col.column(1).to_numpy()
        ids = seq[step == 0].astype(np.int64)
        return ids if max_sequences is None else ids[:max_sequences]

    def validate(self) -> None:
        """Read the whole file once, raising DataError at the first break of the contract."""
        for _ in self.blocks():
            pass


def block_targets(competition: Competition, block: Block) -> np.ndarray:
    """The values the scored predictions of ``block`` are compared with, in scoring order.

    A prediction at step t is scored against row t + target_offset: the next row's features for
    A, the same row's targets for B. Because every sequence is complete and in order, these are
    exactly the rows whose step lies in the scored range shifted by the offset.
    """
    comp = competition
    lo = comp.first_scored_step + comp.target_offset
    hi = comp.last_scored_step + comp.target_offset
    start = 3 + (comp.n_features if comp.target_columns else 0)
    step = block.step
    return block.values[(step >= lo) & (step <= hi), start : start + comp.n_outputs]


class TargetTap:
    """Passes blocks through unchanged while keeping their targets, so that one read of the
    file serves both the replay (or the validation pass) and the scoring."""

    def __init__(self, competition: Competition):
        self.competition = competition
        self._parts: list[np.ndarray] = []

    def __call__(self, blocks: Iterable[Block]) -> Iterator[Block]:
        for block in blocks:
            self._parts.append(block_targets(self.competition, block))
            yield block

    def targets(self) -> np.ndarray:
        """Targets of every block that has passed so far, (scored rows, outputs)."""
        if not self._parts:
            return np.empty((0, self.competition.n_outputs))
        if len(self._parts) > 1:
            self._parts = [np.concatenate(self._parts)]  # joined once; the pieces are freed
        return self._parts[0]


def targets_of(competition: Competition, blocks: Iterable[Block]) -> np.ndarray:
    """The targets of every scored row of ``blocks`` (see ``block_targets``), in scoring order."""
    tap = TargetTap(competition)
    for _ in tap(blocks):
        pass
    return tap.targets()


class _ContractChecker:
    """Checks blocks against the contract, remembering the last row of the previous block."""

    def __init__(self, source: ParquetSource):
        self.path = source.path
        self.comp = source.competition
        self.prev_seq: float | None = None
        self.prev_step: float | None = None
        self.seen: set[int] = set()
        self.value_start = 3
        self.last_row = -1

    def _fail(self, block: Block, i: int, what: str) -> None:
        seq = block.values[i, 0]
        step = block.values[i, 1]
        raise DataError(
            f"{self.path}: seq_ix {seq:.0f}, row {block.first_row + i} (step_in_seq {step:.0f}): {what}"
        )

    def check(self, block: Block) -> None:
        """Raise DataError at the first row of ``block`` that breaks the contract, in the order:
        integer ids and steps, step order across sequences, unique ids, need_prediction, finite values."""
        v = block.values
        if v.shape[0] == 0:
            return
        seq, step = v[:, 0], v[:, 1]
        prev_seq = np.concatenate(([np.nan if self.prev_seq is None else self.prev_seq], seq[:-1]))
        prev_step = np.concatenate(([np.nan if self.prev_step is None else self.prev_step], step[:-1]))
        new_seq = seq != prev_seq
        self._check_order(block, prev_seq, prev_step, new_seq)
        self._check_ids(block, new_seq)
        self._check_need(block)
        self._check_finite(block)
        self.prev_seq = float(seq[-1])
        self.prev_step = float(step[-1])
        self.last_row = block.first_row + v.shape[0] - 1

    def _check_order(self, block: Block, prev_seq: np.ndarray, prev_step: np.ndarray, new_seq: np.ndarray) -> None:
        """Integer ids and steps; a new sequence starts at 0 right after the previous one's last step."""
        seq, step = block.values[:, 0], block.values[:, 1]
        bad_int = (step != np.round(step)) | (seq != np.round(seq))
        if bad_int.any():
            self._fail(block, int(np.argmax(bad_int)), "seq_ix and step_in_seq must be integers")
        last = SEQUENCE_LENGTH - 1
        bad_start = new_seq & (step != 0)
        bad_end = new_seq & ~np.isnan(prev_step) & (prev_step != last)
        bad_next = ~new_seq & (step != prev_step + 1)
        problems = bad_start | bad_end | bad_next
        if not problems.any():
            return
        i = int(np.argmax(problems))
        if bad_end[i]:
            self._fail(
                block, i,
                f"the previous sequence ({prev_seq[i]:.0f}) ended at step {prev_step[i]:.0f}, "
                f"not {last}: every sequence must have exactly {SEQUENCE_LENGTH} steps",
            )
        if not new_seq[i] and step[i] == 0 and prev_step[i] == last:
            self._fail(
                block, i,
                f"seq_ix {seq[i]:.0f} is used again by the sequence starting here (the previous sequence "
                f"has the same seq_ix); every sequence needs its own seq_ix",
            )
        if bad_start[i]:
            self._fail(block, i, f"a new sequence starts at step {step[i]:.0f}; sequences must start at 0")
        self._fail(
            block, i,
            f"step_in_seq goes from {prev_step[i]:.0f} to {step[i]:.0f}; rows of a sequence must be "
            f"consecutive and in time order (0..{last})",
        )

    def _check_ids(self, block: Block, new_seq: np.ndarray) -> None:
        """Each sequence's rows are contiguous: no seq_ix comes back later in the file."""
        for i in np.flatnonzero(new_seq):
            sid = int(block.values[i, 0])
            if sid in self.seen:
                self._fail(block, int(i), "this seq_ix appeared earlier in the file; sequences must be contiguous")
            self.seen.add(sid)

    def _check_need(self, block: Block) -> None:
        comp = self.comp
        step, need = block.values[:, 1], block.values[:, 2]
        expected = (step >= comp.first_scored_step) & (step <= comp.last_scored_step)
        wrong_need = (need != 0) & (need != 1) | ((need == 1) != expected)
        if wrong_need.any():
            i = int(np.argmax(wrong_need))
            self._fail(
                block, i,
                f"need_prediction is {need[i]:g} but the {comp.key} contract has it 1 exactly at steps "
                f"{comp.first_scored_step}..{comp.last_scored_step} and 0 elsewhere",
            )

    def _check_finite(self, block: Block) -> None:
        v = block.values
        finite = np.isfinite(v[:, self.value_start :])
        if not finite.all():
            i, j = np.argwhere(~finite)[0]
            column = (self.comp.feature_columns + self.comp.target_columns)[j]
            self._fail(block, int(i), f"column {column!r} is {v[i, 3 + j]}; features and targets must be finite")

    def range_end(self) -> None:
        """The end of a range that stops inside the file (a shard's) must end a sequence."""
        if self.prev_step is not None and self.prev_step != SEQUENCE_LENGTH - 1:
            raise DataError(
                f"{self.path}: seq_ix {self.prev_seq:.0f}, row {self.last_row} (step_in_seq {self.prev_step:.0f}): "
                f"a run of whole {SEQUENCE_LENGTH}-row sequences should end here, so the file's sequences are not "
                f"all {SEQUENCE_LENGTH} rows long; every sequence must have exactly {SEQUENCE_LENGTH} steps"
            )

    def finish(self) -> None:
        if self.prev_step is not None and self.prev_step != SEQUENCE_LENGTH - 1:
            raise DataError(
                f"{self.path}: the last sequence ({self.prev_seq:.0f}) ends at step {self.prev_step:.0f}, "
                f"not {SEQUENCE_LENGTH - 1}: the file is truncated"
            )
