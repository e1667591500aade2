"""Where a candidate's time and memory go, per ``predict`` call: ``python -m harness profile``.

Four replays of the same first sequences, each in the sandbox the grader's simulation uses
(``harness.sandbox``), so the candidate runs from the same copy, under the same limits, on one
core, and every byte of its profile comes back through the same untrusted channel:

1. unprofiled (``harness.simulate``): the time per row and the projected test-set time against
   the limit, the numbers a profile must explain;
2. cProfile around every ``predict`` call, aggregated by function;
3. line_profiler on ``predict`` and the candidate's own functions whose own lines cost most (by (2));
4. memory-profiler on ``predict``: resident memory by line.

One profiler a replay: the line tracers would measure each other. Each profiler slows the run
down by its own factor; the report keeps each replay's time per row beside the unprofiled one.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness.channel import ProtocolError
from harness.competitions import SAFETY_FACTOR
from harness.data import ParquetSource
from harness.profile_data import FunctionStat, Place, Profile, checked_profile
from harness.sandbox import SandboxOptions, run_in_sandbox
from harness.simulate import SimulateOptions, projection, simulate
from harness.simulation import SimulationReport
from harness.user_paths import namer

DEFAULT_SEQUENCES = 5
LINE_TARGETS = 3
"""The candidate's own functions (besides ``predict``) profiled by line (``line_targets``)."""
PROFILERS = {"functions": "cProfile", "lines": "line_profiler", "memory": "memory-profiler"}


@dataclass
class ProfileOptions:
    sequences: int = DEFAULT_SEQUENCES
    memory_gb: float | None = None
    minutes: float | None = None
    safety: float = SAFETY_FACTOR
    test_sequences: int | None = None


@dataclass
class ProfileReport:
    """The unprofiled run (``plain``), then each profiler's findings by kind (``profiles``) and
    its time per row (``per_row_us``, profiler included). ``error`` says why a profiled replay
    gave nothing (the candidate failed under the profiler, or its profile was malformed)."""

    candidate: str
    plain: SimulationReport
    profiles: dict[str, Profile] = field(default_factory=dict)
    per_row_us: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    label_of: Callable[[Place], str] = field(default=str, repr=False)

    def where(self, place: Place) -> str:
        """``file:line`` as the user finds it: their own file, or a library's path from its package."""
        return f"{self.label_of(place)}:{place.line}" if place.line else self.label_of(place)


def library_label(file: str) -> str:
    """A library's file from its package's folder (``numpy/core/...``); "built-in" for C functions."""
    if file in ("~", ""):
        return "built-in"
    for marker in ("site-packages/", "dist-packages/"):
        if marker in file:
            return file.split(marker, 1)[1]
    stdlib = str(Path(sys.base_prefix) / "lib")
    if file.startswith(stdlib):
        return "stdlib/" + Path(file).name
    return file


def _relative(path: str) -> str:
    """``path`` from the working folder when it lies below it (a project module a solution vendors)."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _labeller(candidate: Path) -> Callable[[Place], str]:
    name_of = namer(candidate)
    return lambda place: _relative(name_of(place.file)) if place.own else library_label(place.file)


def line_targets(functions: list[FunctionStat], predict: tuple[str, int, str] | None,
                 count: int = LINE_TARGETS) -> list[list]:
    """The candidate's own functions whose own lines cost most (``direct_s``: own time plus the
    library calls they make themselves), as (file, line, name). Not by cumulative time: that
    ranks the chain of calls from ``predict`` down, each near 100%, above the function that does
    the work. ``predict`` (always profiled) and comprehensions (no function object) left out."""
    own = [f for f in functions if f.place.own and not f.name.startswith("<")
           and (f.place.file, f.place.line, f.name) != predict]
    own.sort(key=lambda f: -f.direct_s)
    return [[f.place.file, f.place.line, f.name] for f in own[:count]]


def profile(candidate: str | Path, data: str | Path, competition: str | None = None,
            options: ProfileOptions | None = None,
            progress_for: Callable[[str], Callable[[dict], None] | None] = lambda label: None) -> ProfileReport:
    """Replay ``candidate`` unprofiled and then under each profiler; ``progress_for(label)``
    gives each replay's progress callback. Stops after the unprofiled replay if that fails."""
    opts = options or ProfileOptions()
    simulate_opts = SimulateOptions(sequences=opts.sequences, memory_gb=opts.memory_gb, minutes=opts.minutes,
                                    safety=opts.safety, test_sequences=opts.test_sequences, bootstrap=0,
                                    oracle=False)
    plain = simulate(candidate, data, competition, simulate_opts, progress_for("unprofiled"))
    report = ProfileReport(str(candidate), plain, label_of=_labeller(Path(candidate)))
    if not plain.ok:
        return report
    comp = ParquetSource(data, competition).competition
    limits = comp.limits.overridden(opts.memory_gb, opts.minutes)
    test_sequences = opts.test_sequences or comp.test_sequences
    targets: list[list] = []
    for kind, tool in PROFILERS.items():
        spec = {"kind": kind, "targets": targets} if kind == "lines" else {"kind": kind}
        sandbox_opts = SandboxOptions(memory_bytes=limits.memory_bytes, time_limit_s=limits.seconds,
                                      max_sequences=opts.sequences, profile=spec)
        outcome = run_in_sandbox(candidate, data, comp, sandbox_opts, on_progress=progress_for(tool))
        if not outcome.ok:
            report.error = f"under {tool}: {outcome.error}"
            return report
        try:
            found = checked_profile(outcome.profile_bytes, kind, outcome.rows)
        except ProtocolError as exc:
            report.error = f"under {tool}: the profile that came back is not the harness's ({exc})"
            return report
        report.profiles[kind] = found
        report.per_row_us[kind] = projection(outcome, test_sequences, opts.safety).per_row_us
        if kind == "functions":
            targets = line_targets(found.functions, found.predict)
    return report

