"""``python -m harness profile``: where a candidate's time and memory go, as tables.

First the numbers that say whether there is a problem (time per row unprofiled, the projected
test-set time against the limit), then where ``predict``'s time goes by function (cProfile),
by line (line_profiler) and where its memory goes by line (memory-profiler). Every name, path
and source line in the tables came from the candidate's process: they are printed as plain text,
never as markup.
"""

from __future__ import annotations

import argparse
import re

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.candidate import CandidateLayoutError
from harness.cli import UserError, add_data_options, add_limit_options, options_from, positive_int
from harness.competitions import SEQUENCE_LENGTH
from harness.data import DataError
from harness.market.base import SidecarMismatch
from harness.profile_data import LineStat, Profile
from harness.profiling import DEFAULT_SEQUENCES, PROFILERS, ProfileOptions, ProfileReport, profile
from harness.progress import PlainProgress
from harness.simulate_cli import candidate_and_source

DEFAULT_TOP = 15


_BUILTIN = re.compile(r"<(?:built-in method (?:builtins\.)?(?P<function>[\w.]+)|method '(?P<method>\w+)' of "
                      r"'(?:\w+\.)*(?P<owner>\w+)' objects)>")


def short_name(name: str) -> str:
    """cProfile's names of C functions, shortened: ``<method 'sum' of 'numpy.ndarray' objects>``
    is ``ndarray.sum``, ``<built-in method builtins.len>`` is ``len``."""
    match = _BUILTIN.fullmatch(name)
    if match is None:
        return name
    return match["function"] or f"{match['owner']}.{match['method']}"


def _us(seconds: float, calls: int) -> str:
    return f"{seconds / max(calls, 1) * 1e6:,.1f}"


def _time_table(report: ProfileReport) -> Table:
    timing = report.plain.timing
    p = timing.projection
    table = Table(title=f"Time per row ({report.plain.sequences} sequences replayed)", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("unprofiled, harness included", f"{p.per_row_us:.1f} us")
    budget_us = timing.limit_s / (timing.test_sequences * SEQUENCE_LENGTH * timing.safety) * 1e6
    table.add_row(f"budget per row ({timing.limit_s / 60:.0f} min, {timing.test_sequences} sequences, "
                  f"x{timing.safety} safety)", f"{budget_us:.1f} us")
    over = p.projected_test_s > timing.limit_s
    table.add_row(f"projected full test set (x{timing.safety} safety)",
                  Text(f"{p.projected_test_s / 60:.1f} min of {timing.limit_s / 60:.0f}",
                       style="bold red" if over else "green"))
    for kind, tool in PROFILERS.items():
        if kind in report.per_row_us:
            per_row = report.per_row_us[kind]
            table.add_row(f"under {tool}", f"{per_row:.1f} us (x{per_row / p.per_row_us:.1f})")
    return table


def _predict_total(found: Profile) -> float | None:
    """cProfile's cumulative time of ``predict`` itself: the tables' 100%."""
    for f in found.functions:
        if found.predict is not None and (f.place.file, f.place.line, f.name) == found.predict:
            return f.cumulative_s
    return None


def _function_table(report: ProfileReport, found: Profile, top: int) -> Table:
    calls = found.predict_calls
    total = _predict_total(found)
    table = Table(title=f"predict by function (cProfile; top {top} by cumulative time; per predict call)")
    for name in ("function", "calls", "own us", "direct us", "cumulative us", "% of predict"):
        table.add_column(name, justify="left" if name == "function" else "right")
    table.add_column("where", overflow="fold")
    for f in sorted(found.functions, key=lambda f: -f.cumulative_s)[:top]:
        style = "bold" if f.place.own else ""
        share = f"{f.cumulative_s / total:.0%}" if total else "-"
        table.add_row(Text(short_name(f.name), style=style), f"{f.calls / max(calls, 1):,.2f}", _us(f.own_s, calls),
                      _us(f.direct_s, calls), _us(f.cumulative_s, calls), share,
                      Text(report.where(f.place), style=style))
    return table


def _groups(lines: list[LineStat]) -> dict[tuple[str, str], list[LineStat]]:
    groups: dict[tuple[str, str], list[LineStat]] = {}
    for line in lines:
        groups.setdefault((line.place.file, line.function), []).append(line)
    return groups


def _line_tables(report: ProfileReport, found: Profile, top: int, every_line: bool) -> list[Table]:
    tables = []
    calls = found.predict_calls
    groups = sorted(_groups(found.lines).items(), key=lambda kv: -sum(line.time_s for line in kv[1]))
    for (_, function), lines in groups:  # the function with the most time first (predict)
        total = sum(line.time_s for line in lines)
        shown = sorted(lines, key=lambda line: line.place.line) if every_line else \
            sorted(lines, key=lambda line: -line.time_s)[:top]
        table = Table(title=Text(f"{function} ({report.label_of(lines[0].place)}) by line (line_profiler; per predict "
                                 f"call; {'every line' if every_line else f'top {top} lines'})"))
        for name in ("line", "hits", "us", "% of function", "source"):
            table.add_column(name, justify="left" if name == "source" else "right")
        for line in shown:
            table.add_row(str(line.place.line), f"{line.hits / max(calls, 1):,.2f}", _us(line.time_s, calls),
                          f"{line.time_s / total:.0%}" if total else "-", Text(line.source))
        tables.append(table)
    return tables


def _memory_tables(report: ProfileReport, found: Profile, top: int, every_line: bool) -> list[Table]:
    tables = []
    for (_, function), lines in _groups(found.lines).items():
        shown = sorted(lines, key=lambda line: line.place.line) if every_line else \
            sorted(lines, key=lambda line: -abs(line.increment_mib))[:top]
        table = Table(title=Text(f"{function} ({report.label_of(lines[0].place)}) memory by line (memory-profiler; "
                                 f"resident memory, whole run; {'every line' if every_line else f'top {top} lines'})"))
        for name in ("line", "hits", "increment MiB", "peak MiB", "source"):
            table.add_column(name, justify="left" if name == "source" else "right")
        for line in shown:
            table.add_row(str(line.place.line), f"{line.hits:,}", f"{line.increment_mib:+,.1f}",
                          f"{line.peak_mib:,.1f}", Text(line.source))
        tables.append(table)
    return tables


def render(report: ProfileReport, console: Console, top: int = DEFAULT_TOP, every_line: bool = False) -> None:
    plain = report.plain
    console.print(Text(f"Profile of {report.candidate} on {plain.data} ({plain.competition})", style="bold"))
    if not plain.ok:
        console.print(Text(f"the candidate failed unprofiled, nothing to profile: {plain.error}", style="red"))
        if plain.error.traceback:
            console.print(Text(plain.error.traceback))
        return
    console.print(_time_table(report))
    for reason in plain.reasons:
        console.print(Text(f"  - {reason}: the tables below show where predict's time goes", style="bold red"))
    console.print(Text("Profilers slow predict down (the factors above); the tables' times are the profiled "
                       "ones: read them as shares, not as the grader's times. direct: own time plus the library "
                       "calls a function makes itself; the line tables follow the candidate's functions with "
                       "the most direct time.", style="dim"))
    if "functions" in report.profiles:
        console.print(_function_table(report, report.profiles["functions"], top))
    if "lines" in report.profiles:
        for table in _line_tables(report, report.profiles["lines"], top, every_line):
            console.print(table)
    if "memory" in report.profiles:
        for table in _memory_tables(report, report.profiles["memory"], top, every_line):
            console.print(table)
    if report.error is not None:
        console.print(Text(f"profiling stopped {report.error}", style="red"))


def run_profile(args: argparse.Namespace) -> int:
    console = Console()
    candidate, source = candidate_and_source(args)
    rows = min(args.sequences, source.num_sequences) * SEQUENCE_LENGTH
    name = candidate.name
    try:
        report = profile(candidate, source.path, args.competition, options_from(args, ProfileOptions),
                         lambda label: PlainProgress(f"profile {name} ({label})", rows))
    except (DataError, SidecarMismatch) as exc:
        raise UserError(str(exc)) from exc
    except CandidateLayoutError as exc:
        console.print(Text(f"{args.candidate}: cannot be run as submitted: {exc.kind}: {exc}"))
        return 1
    render(report, console, args.top, args.lines)
    return 0 if report.plain.ok and report.error is None and report.plain.verdict != "FAIL" else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "profile", help="where a candidate's time and memory go per predict call (by function and by line)",
        description="Replay a candidate's first sequences in the sandbox, unprofiled and then under cProfile, "
                    "line_profiler and memory-profiler, and print where predict's time and memory go.")
    parser.add_argument("candidate", help="solution folder or zip")
    add_data_options(parser, sequences_default=DEFAULT_SEQUENCES)
    add_limit_options(parser)
    parser.add_argument("--top", type=positive_int, default=DEFAULT_TOP,
                        help=f"rows per table (default {DEFAULT_TOP})")
    parser.add_argument("--lines", action="store_true",
                        help="print every line of each profiled function in source order, not only the top ones")
    parser.set_defaults(func=run_profile)
