"""The grader's own clock: what the parent measures of the child's time, to bound what it says.

The child times its start-up, each sequence and each ``predict`` call finely, but the candidate
runs in that process and can change what it reports (patch ``time.perf_counter``, rewrite the
result). The parent measures two things the candidate cannot reach:

- the whole run, from the go-ahead (the candidate's code runs only after it) to the end of the
  child's process. The candidate's start-up and replay happen inside it; the rest is the
  harness's own bookkeeping in the child (a few tens of milliseconds).
- the data stream, sent one sequence per piece down a pipe of known capacity. When the write
  of a piece returns, everything but one pipe's worth of bytes sent so far has been read; and
  the child reads a piece only once it has replayed every row before it. So once the pipe holds
  less than everything sent after the first sequence, the child has finished that sequence; and
  until the last piece is being written, it has not started it. The time between those two
  moments lies inside the sequences after the first, which gives a floor under their mean.

``check`` turns a report far below these into the candidate's FAIL; the projection of the
test-set time (``harness.simulate.projection``) takes the larger of the child's and the
parent's figures, so a smaller disagreement cannot shorten it either. What stays the child's
word: the per-call latencies (shown, never judged) and how start-up splits into import and
constructor. A candidate that drains the data pipe itself and feeds the harness from a copy
loses the stream's floor; the whole-run bound still holds it to ``AGREEMENT``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from harness.competitions import SEQUENCE_LENGTH

AGREEMENT = 0.75
"""The child's start-up plus replay may be this fraction of the parent's measure, no less."""
SLACK_S = 1.0
"""Seconds of the harness's own work in the child (thread report, result files, exit) forgiven."""
_F_GETPIPE_SZ = 1032
_UNKNOWN_PIPE_BYTES = 1024 * 1024
"""Assumed where the pipe cannot say: the size the sandbox asks for (larger only lowers the floor)."""


def pipe_capacity(fd: int) -> int:
    """Bytes the pipe behind ``fd`` can hold."""
    try:
        import fcntl

        return int(fcntl.fcntl(fd, _F_GETPIPE_SZ))
    except (ImportError, OSError):  # not Linux
        return _UNKNOWN_PIPE_BYTES


@dataclass
class ParentClock:
    """The parent's measurements of one run (``time.perf_counter`` seconds)."""

    capacity: int = _UNKNOWN_PIPE_BYTES
    go_at: float | None = None
    end_at: float | None = None
    marks: list[tuple[int, int, float]] = field(default_factory=list)
    """(data bytes written so far, rows written so far, when that write returned), per piece."""
    _bytes: int = 0
    _rows: int = 0

    def go(self) -> None:
        self.go_at = time.perf_counter()

    def end(self) -> None:
        self.end_at = time.perf_counter()

    def wrote(self, nbytes: int, rows: int) -> None:
        """A piece of ``rows`` rows (``nbytes`` bytes with its header) is in the pipe."""
        self._bytes += nbytes
        self._rows += rows
        self.marks.append((self._bytes, self._rows, time.perf_counter()))

    @property
    def run_s(self) -> float | None:
        """From the go-ahead to the end of the child: the candidate's start-up and replay fit in it."""
        if self.go_at is None or self.end_at is None:
            return None
        return self.end_at - self.go_at

    def steady_floor_s(self, sequences: int) -> float | None:
        """A floor under the mean time of the ``sequences - 1`` sequences after the first, or
        None when the stream was too short to tell (it fitted in the pipe)."""
        if sequences < 2 or len(self.marks) < 2:
            return None
        first_bytes = next((b for b, r, _ in self.marks if r >= SEQUENCE_LENGTH), None)
        if first_bytes is None:
            return None
        # the child has read past the first sequence once a write returns with less than the
        # bytes after it still in the pipe; it starts the last piece only after its write begins
        past_first = next((t for b, _, t in self.marks if b - self.capacity > first_bytes), None)
        last_started = self.marks[-2][2]
        if past_first is None or last_started <= past_first:
            return None
        return (last_started - past_first) / (sequences - 1)


def check(clock: ParentClock, claimed_run_s: float, claimed_steady_s: float | None,
          sequences: int) -> str | None:
    """Why the child's timings cannot be true, or None. ``claimed_run_s`` is its start-up plus
    replay, ``claimed_steady_s`` the mean of its sequences after the first."""
    run_s = clock.run_s
    if run_s is not None and claimed_run_s < AGREEMENT * run_s - SLACK_S:
        return (f"reported timings disagree with the grader's clock: start-up and replay "
                f"{claimed_run_s:.2f} s by the child's report, {run_s:.2f} s by the grader's; the "
                "candidate changed the clock or the report")
    floor = clock.steady_floor_s(sequences)
    if floor is not None and claimed_steady_s is not None and sequences > 1:
        if claimed_steady_s * (sequences - 1) < AGREEMENT * floor * (sequences - 1) - SLACK_S:
            return (f"reported timings disagree with the grader's clock: {claimed_steady_s * 1e3:.1f} ms per "
                    f"sequence by the child's report, at least {floor * 1e3:.1f} ms by the rate it took the "
                    "data; the candidate changed the clock or the report")
    return None

