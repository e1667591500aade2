"""What every market generator shares: the chunk it yields, the writer and the oracle sidecar.

A generator yields whole sequences in chunks (``Chunk``); ``write_set`` turns the chunks into
a parquet file with exactly the competition's columns and dtypes, one row group per chunk, so
memory stays bounded by the chunk size whatever the set size. Beside the data it writes the
oracle sidecar: for every scored row, in file order, the best prediction given what is
observable up to that row (and, where the process has hidden state, given that too). The
harness scores a candidate next to the oracle whenever a sidecar exists.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import secrets
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness import frames
from harness.competitions import SEQUENCE_LENGTH, Competition

SPLITS = ("train", "valid", "test")
"""The splits every generator knows; each draws independent sequences."""

SIDECAR_SUFFIX = ".oracle.parquet"
STAMP_KEY = b"wunderbench.market"
"""Parquet key-value metadata naming what made a file: generator version, seed, split, size, knobs."""
ORACLE_PREFIX = "oracle_"
HIDDEN_PREFIX = "hidden_"


@dataclass
class Chunk:
    """A block of whole sequences, as a generator yields them.

    ``observable`` and ``hidden`` hold the oracle prediction made *at* each row (for A, of the
    next row's state; for B, of the same row's targets); values at unscored rows are ignored.
    """

    seq_ix: np.ndarray  # (S,) int64, unique ids
    features: np.ndarray  # (S, SEQUENCE_LENGTH, F) in competition.feature_dtype
    targets: np.ndarray | None  # (S, SEQUENCE_LENGTH, K) float32 for B; None for A
    observable: np.ndarray  # (S, SEQUENCE_LENGTH, K) float64
    hidden: np.ndarray | None  # (S, SEQUENCE_LENGTH, K) float64, or None

    @property
    def n_sequences(self) -> int:
        return int(self.seq_ix.shape[0])


class Generator(Protocol):
    """One competition's synthetic market: deterministic for a seed, vectorized over sequences.

    A generator may also define ``version: str``; it is stamped into every file it writes, so
    a default set made by an older process is regenerated rather than silently reused.
    """

    competition: Competition

    def chunks(self, n_sequences: int, seed: int, split: str, **knobs: object) -> Iterator[Chunk]: ...


@dataclass
class Sidecar:
    """Oracle predictions for a data file's scored rows, in file order: (n_scored_rows, K) each."""

    observable: np.ndarray
    hidden: np.ndarray | None


# ---------------------------------------------------------------------------------------------
# Seeding helpers shared by the generators
# ---------------------------------------------------------------------------------------------


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")


def split_seed(seed: int, split: str, *salt: int) -> np.random.SeedSequence:
    """A seed sequence for (seed, split, salt...).

    The split name enters through a stable digest (not Python's salted ``hash``) so the same
    seed gives independent train, valid and test sets, identically on every run and machine.
    """
    check_split(split)
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    digest = int.from_bytes(hashlib.sha256(split.encode()).digest()[:4], "little")
    return np.random.SeedSequence([int(seed), digest, *[int(s) for s in salt]])


def shuffled_ids(n_sequences: int, seed: int, split: str) -> np.ndarray:
    """The ``seq_ix`` values of a set, in file order: a seeded permutation of 0..n-1.

    The real files list independent sequences under shuffled ids; a permutation keeps ids
    unique and makes the file order carry no information.
    """
    rng = np.random.default_rng(split_seed(seed, split, 0x5E9))
    return rng.permutation(n_sequences).astype(np.int64)


def chunk_bounds(n_sequences: int, chunk_size: int) -> list[tuple[int, int]]:
    """[start, stop) ranges covering n_sequences in blocks of chunk_size."""
    if n_sequences < 1:
        raise ValueError(f"a set needs at least one sequence, got {n_sequences}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    return [(a, min(a + chunk_size, n_sequences)) for a in range(0, n_sequences, chunk_size)]


def default_workers() -> int:
    """Worker processes for chunk generation: the usable cores, at most 2 (the target machine's)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


def ordered_map(fn: Callable[..., object], tasks: Sequence[tuple], workers: int) -> Iterator[object]:
    """``fn(*task)`` for each task, yielded in task order.

    With ``workers`` > 1 the tasks run in forked worker processes with at most
    ``workers + 1`` results in flight, so memory stays bounded by a few chunks while both
    cores work. Results do not depend on the number of workers: each task carries its own
    seed. Without ``fork`` (not Linux) it runs in-process.
    """
    if workers <= 1 or len(tasks) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for task in tasks:
            yield fn(*task)
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
    try:
        queue: deque[Future] = deque()
        upcoming = iter(tasks)
        for task in upcoming:
            queue.append(pool.submit(fn, *task))
            if len(queue) > workers:
                break
        while queue:
            result = queue.popleft().result()
            task = next(upcoming, None)
            if task is not None:
                queue.append(pool.submit(fn, *task))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def sidecar_path(data_path: Path) -> Path:
    """Where a data file's oracle sidecar lives: ``valid.parquet`` -> ``valid.oracle.parquet``."""
    data_path = Path(data_path)
    name = data_path.name
    stem = name[: -len(".parquet")] if name.endswith(".parquet") else name
    return data_path.with_name(stem + SIDECAR_SUFFIX)


def _scored_mask(competition: Competition) -> np.ndarray:
    steps = np.arange(SEQUENCE_LENGTH)
    return (steps >= competition.first_scored_step) & (steps <= competition.last_scored_step)


def data_schema(competition: Competition) -> pa.Schema:
    """The data file's arrow schema: the competition's columns with its dtypes."""
    idx = pa.from_numpy_dtype(np.dtype(competition.index_dtype))
    need = pa.from_numpy_dtype(np.dtype(competition.need_prediction_dtype))
    val = pa.from_numpy_dtype(np.dtype(competition.feature_dtype))
    fields = [pa.field("seq_ix", idx), pa.field("step_in_seq", idx), pa.field("need_prediction", need)]
    fields += [pa.field(c, val) for c in competition.feature_columns + competition.target_columns]
    return pa.schema(fields)


def sidecar_schema(competition: Competition, with_hidden: bool) -> pa.Schema:
    idx = pa.from_numpy_dtype(np.dtype(competition.index_dtype))
    fields = [pa.field("seq_ix", idx), pa.field("step_in_seq", idx)]
    fields += [pa.field(ORACLE_PREFIX + n, pa.float64()) for n in competition.prediction_names]
    if with_hidden:
        fields += [pa.field(HIDDEN_PREFIX + n, pa.float64()) for n in competition.prediction_names]
    return pa.schema(fields)


def _validate_chunk(competition: Competition, chunk: Chunk) -> None:
    s = chunk.n_sequences
    f = competition.n_features
    k = competition.n_outputs
    if chunk.features.shape != (s, SEQUENCE_LENGTH, f):
        raise ValueError(f"chunk features have shape {chunk.features.shape}, expected {(s, SEQUENCE_LENGTH, f)}")
    if chunk.features.dtype != np.dtype(competition.feature_dtype):
        raise ValueError(f"chunk features are {chunk.features.dtype}, expected {competition.feature_dtype}")
    if competition.target_columns:
        if chunk.targets is None or chunk.targets.shape != (s, SEQUENCE_LENGTH, len(competition.target_columns)):
            got = None if chunk.targets is None else chunk.targets.shape
            raise ValueError(f"{competition.key} chunks need targets of shape {(s, SEQUENCE_LENGTH, k)}, got {got}")
    elif chunk.targets is not None:
        raise ValueError(f"{competition.key} has no target columns but the chunk carries targets")
    for name in ("observable", "hidden"):
        arr = getattr(chunk, name)
        if arr is not None and arr.shape != (s, SEQUENCE_LENGTH, k):
            raise ValueError(f"chunk {name} oracle has shape {arr.shape}, expected {(s, SEQUENCE_LENGTH, k)}")


def chunk_table(competition: Competition, chunk: Chunk) -> pa.Table:
    """One chunk as an arrow table with the data file's schema, rows in (sequence, step) order."""
    _validate_chunk(competition, chunk)
    s = chunk.n_sequences
    idx_dtype = np.dtype(competition.index_dtype)
    seq = np.repeat(chunk.seq_ix.astype(idx_dtype), SEQUENCE_LENGTH)
    step = np.tile(np.arange(SEQUENCE_LENGTH, dtype=idx_dtype), s)
    need = np.tile(_scored_mask(competition).astype(competition.need_prediction_dtype), s)
    cols: list[np.ndarray] = [seq, step, need]
    # One transposed copy makes every column a contiguous row of it (cheaper than F strided copies).
    feats = np.ascontiguousarray(chunk.features.reshape(s * SEQUENCE_LENGTH, -1).T)
    cols += list(feats)
    if chunk.targets is not None:
        tg = chunk.targets.astype(competition.feature_dtype, copy=False).reshape(s * SEQUENCE_LENGTH, -1)
        cols += list(np.ascontiguousarray(tg.T))
    schema = data_schema(competition)
    return pa.Table.from_arrays([pa.array(c) for c in cols], schema=schema)


def sidecar_table(competition: Competition, chunk: Chunk) -> pa.Table:
    """The chunk's scored rows with their oracle predictions, in file order."""
    mask = _scored_mask(competition)
    steps = np.flatnonzero(mask)
    s = chunk.n_sequences
    idx_dtype = np.dtype(competition.index_dtype)
    cols: list[np.ndarray] = [
        np.repeat(chunk.seq_ix.astype(idx_dtype), steps.size),
        np.tile(steps.astype(idx_dtype), s),
    ]
    for arr in (chunk.observable, chunk.hidden):
        if arr is None:
            continue
        block = np.asarray(arr, dtype=np.float64)[:, mask, :].reshape(s * steps.size, -1)
        cols += list(np.ascontiguousarray(block.T))
    schema = sidecar_schema(competition, chunk.hidden is not None)
    return pa.Table.from_arrays([pa.array(c) for c in cols], schema=schema)


def stamp(generator: Generator, n_sequences: int, seed: int, split: str, knobs: dict[str, object]) -> dict[str, object]:
    """What a file records about its making (and what ``read_stamp`` gives back); a generator
    drawn from a scenario (``harness.market.scenarios``) adds its number."""
    made: dict[str, object] = {
        "competition": generator.competition.key,
        "generator": type(generator).__name__,
        "version": str(getattr(generator, "version", "0")),
        "n_sequences": int(n_sequences),
        "seed": int(seed),
        "split": split,
        "knobs": {k: knobs[k] for k in sorted(knobs)},
    }
    scenario = getattr(generator, "scenario", None)
    if scenario is not None:  # the default market's stamp (and so its bytes) stays as it was
        made["scenario"] = int(scenario)
    return made


def read_stamp(path: Path) -> dict[str, object] | None:
    """The stamp of a generated file, or None for a file without one (or not parquet)."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return None
    raw = meta.get(STAMP_KEY)
    return None if raw is None else json.loads(raw)


def write_set(
    generator: Generator,
    n_sequences: int,
    seed: int,
    split: str,
    out: Path,
    progress: Callable[[int], None] | None = None,
    **knobs: object,
) -> Path:
    """Generate a set and write it to ``out`` (parquet) with its oracle sidecar; return ``out``.

    Each chunk becomes one row group, so peak memory is one chunk, not the set. Files are
    written under temporary names and renamed at the end, so an interrupted run never leaves
    a half-written file that looks complete. ``progress`` is called with the number of
    sequences finished in each chunk.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    comp = generator.competition
    side = sidecar_path(out)
    # Unique temporary names: two processes making the same set never touch each other's
    # half-written files, and the final renames are atomic.
    token = f".{os.getpid()}.{secrets.token_hex(4)}.part"
    tmp_data = out.with_name(out.name + token)
    tmp_side = side.with_name(side.name + token)
    data_writer: pq.ParquetWriter | None = None
    side_writer: pq.ParquetWriter | None = None
    written = 0
    made = {STAMP_KEY: json.dumps(stamp(generator, n_sequences, seed, split, knobs), default=str).encode()}
    try:
        for chunk in generator.chunks(n_sequences, seed, split, **knobs):
            table = chunk_table(comp, chunk)
            stable = sidecar_table(comp, chunk)
            table = table.replace_schema_metadata(made)
            stable = stable.replace_schema_metadata(made)
            if data_writer is None:
                # Dictionary encoding pays only on the index columns; on float columns it is
                # most of the write time for nothing.
                index_cols = ["seq_ix", "step_in_seq"]
                data_writer = pq.ParquetWriter(
                    tmp_data, table.schema, compression="snappy", use_dictionary=[*index_cols, "need_prediction"]
                )
                side_writer = pq.ParquetWriter(tmp_side, stable.schema, compression="snappy", use_dictionary=index_cols)
            elif side_writer is not None and stable.schema != side_writer.schema:
                raise ValueError("a generator must yield the hidden oracle for every chunk or for none")
            data_writer.write_table(table, row_group_size=table.num_rows)
            side_writer.write_table(stable, row_group_size=stable.num_rows)  # type: ignore[union-attr]
            written += chunk.n_sequences
            if progress is not None:
                progress(chunk.n_sequences)
    except BaseException:
        for w in (data_writer, side_writer):
            if w is not None:
                w.close()
        for p in (tmp_data, tmp_side):
            p.unlink(missing_ok=True)
        raise
    if data_writer is None or side_writer is None:
        raise ValueError(f"the {comp.key} generator yielded no sequences")
    data_writer.close()
    side_writer.close()
    if written != n_sequences:
        tmp_data.unlink(missing_ok=True)
        tmp_side.unlink(missing_ok=True)
        raise ValueError(f"the {comp.key} generator yielded {written} sequences, {n_sequences} were asked for")
    tmp_side.replace(side)
    tmp_data.replace(out)
    return out


# ---------------------------------------------------------------------------------------------
# Reading the sidecar back
# ---------------------------------------------------------------------------------------------


class SidecarMismatch(ValueError):
    """The sidecar exists but does not line up with its data file."""


class ForeignSidecar(SidecarMismatch):
    """A file sits where the sidecar goes, but ``write_set`` did not write it (no stamp, or other
    columns): a user's own file that happens to share the name, not an oracle. Callers that
    grade a user's data ignore it with a notice (``read_oracle``) rather than fail."""


def foreign_reason(side: Path) -> str | None:
    """Why the file ``side`` is not a sidecar of ours (unstamped, or not our columns), or None when
    it is one. Reads the schema only, so a check before any work costs nothing."""
    try:
        schema = pq.read_schema(side)
    except (OSError, pa.ArrowInvalid) as exc:
        return f"not a parquet file ({exc})"
    names = schema.names
    if (schema.metadata or {}).get(STAMP_KEY) is None:
        return "not stamped by `harness generate`"
    if names[:2] != ["seq_ix", "step_in_seq"] or not any(n.startswith(ORACLE_PREFIX) for n in names):
        return f"columns {names[:6]}{'...' if len(names) > 6 else ''} are not an oracle's"
    return None


def foreign_notice(data_path: Path) -> str | None:
    """The one-line notice for a foreign file at ``data_path``'s sidecar place, or None (no file
    there, or one of ours). Schema only: cheap enough to run before any work."""
    side = sidecar_path(data_path)
    reason = foreign_reason(side) if side.exists() else None
    if reason is None:
        return None
    return f"notice: {side} is not an oracle sidecar ({reason}); ignored (no oracle scores for {Path(data_path).name})"


def _stale_fix(data_path: Path) -> str:
    """What to do about a stamped sidecar that does not fit its data: regenerate a generated set;
    for a user's file, move the other set's sidecar away."""
    if read_stamp(data_path) is not None:
        return "regenerate the set"
    return "it belongs to other data: move it away, or pass --no-oracle"


def _scored_index(data_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """seq_ix and step_in_seq of the data file's scored rows, in file order."""
    meta = frames.read(data_path, ["seq_ix", "step_in_seq", "need_prediction"])
    need = frames.column(meta, "need_prediction", bool)
    return frames.column(meta, "seq_ix", np.int64)[need], frames.column(meta, "step_in_seq", np.int64)[need]


def load_sidecar(data_path: Path, competition: Competition | None = None) -> Sidecar | None:
    """The oracle beside ``data_path``, aligned with its scored rows; None if there is none.

    Raises ``SidecarMismatch`` naming the first disagreement when the row count, a seq_ix or
    a step differs, so a stale sidecar can never be scored silently against new data, and
    ``ForeignSidecar`` when the file there is not one of ours at all.
    """
    data_path = Path(data_path)
    side = sidecar_path(data_path)
    if not side.exists():
        return None
    if not data_path.exists():
        raise FileNotFoundError(f"{data_path} does not exist (its sidecar {side} does)")
    reason = foreign_reason(side)
    if reason is not None:
        raise ForeignSidecar(f"{side} is not an oracle sidecar ({reason})")
    table = frames.read(side)
    names = table.columns
    oracle_cols = [c for c in names if c.startswith(ORACLE_PREFIX)]
    hidden_cols = [c for c in names if c.startswith(HIDDEN_PREFIX)]
    if competition is not None:
        expected = [ORACLE_PREFIX + n for n in competition.prediction_names]
        if oracle_cols != expected:
            raise SidecarMismatch(f"{side}: oracle columns {oracle_cols} do not match {competition.key}'s {expected}")
    if not oracle_cols or (hidden_cols and len(hidden_cols) != len(oracle_cols)):
        raise SidecarMismatch(f"{side}: malformed columns {names}")
    seq, step = _scored_index(data_path)
    s_seq = frames.column(table, "seq_ix", np.int64)
    s_step = frames.column(table, "step_in_seq", np.int64)
    if s_seq.shape[0] != seq.shape[0]:
        raise SidecarMismatch(
            f"{side} has {s_seq.shape[0]} rows but {data_path} has {seq.shape[0]} scored rows; {_stale_fix(data_path)}"
        )
    bad = np.flatnonzero((s_seq != seq) | (s_step != step))
    if bad.size:
        i = int(bad[0])
        raise SidecarMismatch(
            f"{side} row {i} is (seq_ix {s_seq[i]}, step {s_step[i]}) but scored row {i} of {data_path} is "
            f"(seq_ix {seq[i]}, step {step[i]}); {_stale_fix(data_path)}"
        )
    observable = frames.matrix(table, oracle_cols, np.float64)
    hidden = frames.matrix(table, hidden_cols, np.float64) if hidden_cols else None
    return Sidecar(observable=observable, hidden=hidden)


def read_oracle(data_path: Path, competition: Competition | None = None, use: bool = True,
                notice: Callable[[str], None] | None = None) -> Sidecar | None:
    """The oracle for a file a user hands in (training, ``simulate``): None when there is none,
    when ``use`` is False (``--no-oracle``), or when the file there is foreign, which ``notice``
    hears about in one line; a stale sidecar of ours raises ``SidecarMismatch``. Callers run it
    before any work, so a mismatch stops a run before the fitting, not after."""
    if not use:
        return None
    try:
        return load_sidecar(data_path, competition)
    except ForeignSidecar:
        line = foreign_notice(data_path)
        if notice is not None and line is not None:
            notice(line)
        return None
