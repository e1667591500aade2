"""The search's progress for people: a rich bar over the minutes on a terminal; when the output
is piped or logged (a live bar draws nothing there), the same bar in plain characters
(``harness.progress.text_bar``) with the trials' summary, on stderr every
``harness.progress.PERIOD_S`` seconds and once more at the end, so a long search never looks hung
and a log shows how it ended."""

from __future__ import annotations

import sys
from typing import TextIO

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from harness.progress import PERIOD_S, text_bar
from models.auto.trial import CUT, OK, RUNNING, TrialResult


def summary(results: list[TrialResult], max_trials: int | None = None) -> str:
    """``5 trials (3 ok, 1 infeasible, 1 failed), best 0.4123 (gru, #3)``."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    kinds = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    total = len(results) if max_trials is None else max_trials
    done = f"{len(results)}{'' if max_trials is None else f' of {max_trials}'} trial{'' if total == 1 else 's'}"
    text = f"{done} ({kinds})" if kinds else done
    ok = [r for r in results if r.status == OK]
    if ok:
        best = max(ok, key=lambda r: r.score)
        text += f", best {best.score:.4f} ({best.family}, #{best.number})"
    return text


def done_fraction(results: list[TrialResult], elapsed_s: float, budget_s: float, max_trials: int | None) -> float:
    """How far the search is: the minutes spent, or the finished share of ``max_trials`` when
    that is further (a capped search may end long before its minutes)."""
    fraction = elapsed_s / budget_s if budget_s > 0 else 1.0
    if max_trials:
        finished = sum(r.status not in (RUNNING, CUT) for r in results)
        fraction = max(fraction, finished / max_trials)
    return min(fraction, 1.0)


class TrialProgress:
    """``update(results, elapsed_s)`` as often as wished; draws a bar or prints plain lines."""

    def __init__(self, console, label: str, budget_s: float, max_trials: int | None = None,
                 stream: TextIO | None = None, period_s: float = PERIOD_S) -> None:
        self.label, self.budget_s, self.max_trials = label, budget_s, max_trials
        self.stream, self.period_s = stream, period_s
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console,
                            transient=False) if console.is_terminal else None
        self._task = None
        self._last: float | None = None
        self._pending: str | None = None

    def __enter__(self) -> TrialProgress:
        if self.bar is not None:
            self.bar.__enter__()
            self._task = self.bar.add_task(self.label, total=self.budget_s)
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
        elif self._pending is not None:  # the last state, even when it came within the period
            self._print(self._pending)

    def _print(self, line: str) -> None:
        print(line, file=self.stream or sys.stderr, flush=True)
        self._pending = None

    def update(self, results: list[TrialResult], elapsed_s: float) -> None:
        text = summary(results, self.max_trials)
        if self.bar is not None:
            self.bar.update(self._task, completed=min(elapsed_s, self.budget_s), description=f"{self.label}: {text}")
            return
        bar = text_bar(done_fraction(results, elapsed_s, self.budget_s, self.max_trials))
        line = f"{self.label}: {bar} {elapsed_s / 60:.1f} of {self.budget_s / 60:.1f} min, {text}"
        if self._last is not None and elapsed_s - self._last < self.period_s:
            self._pending = line
            return
        self._last = elapsed_s
        self._print(line)
