"""Progress of a replay for people: a live bar on a terminal, plain lines on stderr otherwise.

A replay of B's valid set runs for minutes. On a terminal rich draws a bar; in a pipe or a CI
log that bar draws nothing, so the same progress messages become a plain line every
``PERIOD_S`` seconds on stderr (stdout stays the report alone).
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

PERIOD_S = 5.0
"""Seconds between two plain progress lines."""

BAR_WIDTH = 20
"""Characters inside a plain-text bar."""


def text_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """``[#####...............]``: a bar drawn in plain characters, for logs and pipes where a
    live bar draws nothing (the fraction is clipped to [0, 1])."""
    done = round(min(max(fraction, 0.0), 1.0) * width)
    return f"[{'#' * done}{'.' * (width - done)}]"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class PlainProgress:
    """Called with the sandbox's progress messages (``phase``, ``rows``); prints at most one line
    per ``period_s``: rows done of the total, the rate since the replay started, and the ETA.
    A new replay (rows falling back) restarts the rate."""

    def __init__(self, label: str, total_rows: int | None, stream: TextIO | None = None,
                 period_s: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.label = label
        self.total_rows = total_rows
        self.stream = stream
        self.period_s = PERIOD_S if period_s is None else period_s
        self.clock = clock
        self._last_line: float | None = None
        self._replay_start: float | None = None
        self._rows = 0

    def __call__(self, progress: dict) -> None:
        now = self.clock()
        rows = int(progress.get("rows", 0))
        if rows < self._rows or self._replay_start is None and progress.get("phase") == "replay":
            self._replay_start = now  # a replay starts (or a new one): its rate starts here
        self._rows = rows
        if self._last_line is not None and now - self._last_line < self.period_s:
            return
        self._last_line = now
        print(self.line(progress.get("phase", ""), rows, now), file=self.stream or sys.stderr, flush=True)

    def line(self, phase: str, rows: int, now: float) -> str:
        if not rows:
            return f"{self.label}: {phase or 'start-up'}"
        elapsed = now - (self._replay_start if self._replay_start is not None else now)
        known = self.total_rows is not None and rows <= self.total_rows
        done = (f"{self.label}: {rows:,} of {self.total_rows:,} rows ({rows / self.total_rows:.0%})" if known
                else f"{self.label}: {rows:,} rows")
        if elapsed <= 0:
            return done
        rate = rows / elapsed
        if not known:
            return f"{done}, {rate:,.0f} rows/s"
        eta = (self.total_rows - rows) / rate
        return f"{done}, {rate:,.0f} rows/s, ETA {_duration(eta)}"

