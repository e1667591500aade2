"""The two pipes between the harness and the child, and the checks on what comes back.

Down (parent to child): the job, then the data as raw float64 blocks. The parent reads the
parquet file, so the child never holds a descriptor or a path to it (or to the oracle sidecars
beside it): what the candidate can reach is what the replay has already sent.

Up (child to parent): one JSON object per line, the progress. The candidate runs in the child
and can find and write to that pipe, so every message is untrusted: ``ProgressReader`` turns
anything malformed (not JSON, too long, unknown keys, wrong types) into ``ProtocolError``, which
the sandbox turns into the candidate's FAIL, never into a crash of the harness.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Iterator

import numpy as np

from harness.data import Block

_HEADER = struct.Struct("<qqq")  # first_row, rows, columns; rows -1 ends the stream
MAX_LINE_BYTES = 4096
MAX_BLOCK_ROWS = 1 << 24
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


def send_block(fd: int, block: Block) -> None:
    values = np.ascontiguousarray(block.values, dtype=np.float64)
    _write_all(fd, _HEADER.pack(block.first_row, values.shape[0], values.shape[1]))
    _write_all(fd, values)


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
