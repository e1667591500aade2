"""The pipes and files between the harness and the child, and the checks on what comes back.

Down (parent to child): the job, a go-ahead once the child's private copy of this package has
been deleted (it is loaded by then), then the data as raw float64 blocks. The parent reads the
parquet file, so the child never holds a descriptor or a path to it (or to the oracle sidecars
beside it): what the candidate can reach is what the replay has already sent.

Up (child to parent): one JSON object per line, the progress. The candidate runs in the child
and can find and write to that pipe, so every message is untrusted: ``ProgressReader`` turns
anything malformed (not JSON, too long, unknown keys, wrong types) into ``ProtocolError``, which
the sandbox turns into the candidate's FAIL, never into a crash of the harness.

Files (child to parent): ``result.json`` and the prediction and latency arrays, in a folder the
candidate can write to. They are read only if they are regular files (no links, no FIFOs), no
larger than what the rows sent can produce, and checked field by field. A profiled run
(``python -m harness profile``) adds ``profile.json``, read the same way (at most
``MAX_PROFILE_BYTES``) and checked by ``harness.profile_data``.
"""

from __future__ import annotations

import io
import json
import os
import stat
import struct
from pathlib import Path
from typing import Iterator

import numpy as np

from harness.competitions import SEQUENCE_LENGTH, Competition
from harness.data import Block
from harness.errors import CandidateError

_HEADER = struct.Struct("<qqq")  # first_row, rows, columns; rows -1 ends the stream
MAX_LINE_BYTES = 4096
MAX_BLOCK_ROWS = 1 << 24
MAX_RESULT_BYTES = 16 * 1024**2
MAX_PROFILE_BYTES = 4 * 1024**2
"""``profile.json`` (``harness.profilers``): at most a few thousand short rows."""
THREAD_REPORTS = ("threads_before", "threads_after_constructor", "threads_after_replay")
"""The child's thread reports, the only ``threads_*`` keys of its result that are read."""
PHASES = ("import", "construct", "replay")


class ProtocolError(ValueError):
    """Bytes from the child that the harness's own child code never writes."""


def _write_all(fd: int, data) -> None:
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view):]


def _read_into(fd: int, view: memoryview) -> int:
    """Fill ``view`` from ``fd``; return how many bytes came before end of stream."""
    got = 0
    while got < len(view):
        k = os.readv(fd, [view[got:]])
        if k == 0:
            break
        got += k
    return got


def _read_exact(fd: int, n: int) -> bytearray:
    buf = bytearray(n)
    if _read_into(fd, memoryview(buf)) < n:
        raise EOFError("the harness closed the data pipe early")
    return buf


def send_job(fd: int, job: dict) -> None:
    payload = json.dumps(job).encode()
    _write_all(fd, struct.pack("<q", len(payload)) + payload)


def read_job(fd: int) -> dict:
    size = _read_exact(fd, 8)
    return json.loads(bytes(_read_exact(fd, struct.unpack("<q", size)[0])))


_GO = b"go:harness-gone\n"


def send_go(fd: int) -> None:
    """Tell the child that its copy of this package is gone from disk: the candidate may start."""
    _write_all(fd, _GO)


def wait_go(fd: int) -> None:
    if bytes(_read_exact(fd, len(_GO))) != _GO:
        raise ProtocolError("the harness's go-ahead was not on the data pipe")


def send_block(fd: int, block: Block) -> int:
    """Write ``block`` (header, then its rows); return the bytes written."""
    values = np.ascontiguousarray(block.values, dtype=np.float64)
    _write_all(fd, _HEADER.pack(block.first_row, values.shape[0], values.shape[1]))
    _write_all(fd, values)
    return _HEADER.size + values.nbytes


def send_end(fd: int) -> None:
    _write_all(fd, _HEADER.pack(0, -1, 0))


def read_blocks(fd: int, columns: int) -> Iterator[Block]:
    """Fresh blocks as the parent sends them (never reused: a candidate may keep row views).

    The candidate shares this process and can read from the pipe too; a header the parent did
    not write (wrong width, absurd size) raises ProtocolError rather than allocating blindly."""
    next_row = 0
    while True:
        first_row, rows, width = _HEADER.unpack(_read_exact(fd, _HEADER.size))
        if rows == -1 and first_row == 0 and width == 0:
            return
        if width != columns or first_row != next_row or not 0 < rows <= MAX_BLOCK_ROWS:
            raise ProtocolError(f"a block header ({first_row}, {rows}, {width}) the harness did not send")
        next_row += rows
        values = np.empty((rows, width), dtype=np.float64)
        if _read_into(fd, memoryview(values).cast("B")) < values.nbytes:
            raise EOFError("the harness closed the data pipe in the middle of a block")
        yield Block(values, first_row)


def _is_int(value: object) -> bool:
    return type(value) is int and value >= 0


def check_progress(message: object) -> dict:
    """The message as a dict if it is one the child writes; ProtocolError otherwise."""
    if not isinstance(message, dict):
        raise ProtocolError(f"a progress message is a {type(message).__name__}, not an object")
    unknown = set(message) - {"phase", "rows", "seq"}
    if unknown:
        raise ProtocolError(f"a progress message has unknown keys {sorted(unknown)[:3]}")
    if "phase" in message and message["phase"] not in PHASES:
        raise ProtocolError(f"a progress message names an unknown phase {str(message['phase'])[:40]!r}")
    for key in ("rows", "seq"):
        if key in message and not _is_int(message[key]):
            raise ProtocolError(f"a progress message has {key}={str(message[key])[:40]!r}, not a count")
    return message


class ProgressReader:
    """Splits the progress pipe's bytes into checked messages; bounded memory whatever arrives."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[dict]:
        *lines, self._buffer = (self._buffer + chunk).split(b"\n")
        if len(self._buffer) > MAX_LINE_BYTES:
            raise ProtocolError(f"a progress line longer than {MAX_LINE_BYTES} bytes")
        messages = []
        for line in lines:
            if len(line) > MAX_LINE_BYTES:
                raise ProtocolError(f"a progress line longer than {MAX_LINE_BYTES} bytes")
            try:
                message = json.loads(line)
            except ValueError as exc:
                raise ProtocolError(f"a progress line that is not JSON ({line[:40]!r}...)") from exc
            messages.append(check_progress(message))
        return messages

    def finish(self) -> None:
        """At end of stream a partial line is malformed too."""
        if self._buffer:
            raise ProtocolError(f"a progress line without its end ({self._buffer[:40]!r}...)")


def read_regular(path: Path, max_bytes: int) -> bytes | None:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``; None if absent."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:  # a link (ELOOP) or something else the child never writes
        raise ProtocolError(f"{path.name} is not a regular file ({exc.strerror})") from exc
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ProtocolError(f"{path.name} is not a regular file")
        if info.st_size > max_bytes:
            raise ProtocolError(f"{path.name} is {info.st_size} bytes, more than the child writes ({max_bytes})")
        return fh.read(max_bytes + 1)[:max_bytes]


def _list_of(kind: type):
    return lambda v: isinstance(v, list) and all(type(x) is kind for x in v)


def _seconds(v: object) -> bool:
    return v is None or (type(v) is float and v >= 0)


def _checked_status(result: dict) -> None:
    """``status`` is "ok" without an error, or the kind of the error beside it, which becomes a
    ``CandidateError`` (the only place the pipe's dictionary is read)."""
    status, error = result["status"], result.get("error")
    if status == "ok" and error is None:
        return
    try:
        result["error"] = CandidateError.from_dict(error)
    except ValueError as exc:
        raise ProtocolError(f"result.json has a malformed 'error' ({exc})") from exc
    if status != result["error"].kind:
        raise ProtocolError(f"result.json has status {str(status)[:40]!r} beside an error of kind {result['error'].kind}")


def checked_result(out_dir: Path, rows_sent: int) -> dict | None:
    """The child's result.json, checked field by field, its ``error`` a ``CandidateError``; None
    if it wrote none."""
    data = read_regular(out_dir / "result.json", MAX_RESULT_BYTES)
    if data is None:
        return None
    try:
        result = json.loads(data)
    except ValueError as exc:
        raise ProtocolError(f"result.json is not JSON ({exc})") from exc
    checks = {
        "status": lambda v: isinstance(v, str) and len(v) < 40,
        "rows": lambda v: type(v) is int and 0 <= v <= rows_sent,
        "seq_ids": lambda v: _list_of(int)(v) and len(v) <= rows_sent // SEQUENCE_LENGTH,
        "import_s": _seconds, "construct_s": _seconds, "replay_s": _seconds,
        "sequence_s": lambda v: _list_of(float)(v) and all(s >= 0 for s in v),
        "network": lambda v: isinstance(v, str) and len(v) < 400,
        "modules_after_constructor": _list_of(str), "modules_after_replay": _list_of(str),
    }
    if not isinstance(result, dict) or "status" not in result:
        raise ProtocolError("result.json is not the object the child writes")
    for key, ok in checks.items():
        if key in result and not ok(result[key]):
            raise ProtocolError(f"result.json has a malformed {key!r} ({str(result[key])[:60]})")
    for key in THREAD_REPORTS:
        if key in result and not _threads_ok(result[key]):
            raise ProtocolError(f"result.json has a malformed {key!r}")
    _checked_status(result)
    if "sequence_s" in result and len(result["sequence_s"]) != len(result.get("seq_ids", [])):
        raise ProtocolError(f"result.json times {len(result['sequence_s'])} sequences of "
                            f"{len(result.get('seq_ids', []))} replayed")
    if result["status"] == "ok" and result.get("rows") != rows_sent:
        raise ProtocolError(f"the child reports {result.get('rows')} rows replayed of {rows_sent} sent")
    return result


def _threads_ok(report: object) -> bool:
    """The thread report feeds the threads warning: the types must be the ones the child writes."""
    if not isinstance(report, dict):
        return False
    env, pools, torch = report.get("env", {}), report.get("pools", []), report.get("torch")
    return (isinstance(env, dict) and all(v is None or isinstance(v, str) for v in env.values())
            and isinstance(pools, list)
            and all(isinstance(p, dict) and (p.get("threads") is None or type(p.get("threads")) is int)
                    and all(p.get(k) is None or isinstance(p.get(k), str) for k in ("api", "library")) for p in pools)
            and (torch is None or (isinstance(torch, dict)
                                   and all(type(torch.get(k)) is int for k in ("intra_op", "inter_op")))))


def checked_arrays(out_dir: Path, comp: Competition, result: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """predictions.npy and latency_ns.npy, with the dtype and shape the child writes for ``result``."""
    rows = result.get("rows", 0)
    pred = read_regular(out_dir / "predictions.npy", 4096 + rows * comp.n_outputs * 8)
    if pred is None:
        return None
    lat = read_regular(out_dir / "latency_ns.npy", 4096 + rows * 8)
    if lat is None:
        raise ProtocolError("latency_ns.npy is missing beside predictions.npy")
    try:
        predictions = np.load(io.BytesIO(pred), allow_pickle=False)
        latency = np.load(io.BytesIO(lat), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ProtocolError(f"the prediction files are not the arrays the child writes ({exc})") from exc
    scored = rows // SEQUENCE_LENGTH * comp.scored_steps_per_sequence
    if (predictions.dtype != np.float64 or predictions.ndim != 2 or predictions.shape[1] != comp.n_outputs
            or latency.dtype != np.int64 or latency.shape != (rows,)
            or (result["status"] == "ok" and predictions.shape[0] != scored)):
        raise ProtocolError(
            f"the prediction files hold {predictions.dtype} {predictions.shape} and {latency.dtype} {latency.shape}, "
            f"not the child's float64 ({scored}, {comp.n_outputs}) and int64 ({rows},)")
    return predictions, latency
