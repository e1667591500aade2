"""``python -m harness simulate``: grade a candidate locally and print the report."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from harness import competitions, report as report_mod
from harness.candidate import CandidateLayoutError
from harness.cli import (UserError, add_data_options, add_execution_options, add_limit_options, engine_from,
                         options_from, output_file, positive_int)
from harness.competitions import SEQUENCE_LENGTH
from harness.data import DataError, ParquetSource
from harness.market import defaults
from harness.market.base import SidecarMismatch, foreign_notice
from harness.progress import PlainProgress
from harness.execution import Engine, ExecutionError
from harness.simulate import SimulateOptions, simulate
from harness.simulation import SimulationReport

MANIFEST = "manifest.json"


def candidate_competition(candidate: Path) -> str | None:
    """The competition a solution folder declares in its manifest, if it has one."""
    manifest = candidate / MANIFEST
    if candidate.is_dir() and manifest.exists():
        return json.loads(manifest.read_text()).get("competition")
    return None


def existing_candidate(text: str) -> Path:
    """The candidate path the user gave; a path that is not there is the command's mistake (exit 2)."""
    path = Path(text)
    if not path.exists():
        raise UserError(f"{path}: no such folder or zip; pass a solution folder (solutions/<name>) or an upload zip")
    if path.is_dir() and not (path / "solution.py").exists():
        inner = sorted(p.parent.name for p in path.glob(f"*/{MANIFEST}"))
        if inner:
            raise UserError(f"{path} is a folder of solutions ({', '.join(inner[:3])}{', ...' if len(inner) > 3 else ''}),"
                            f" not one: name one ({path / inner[0]}, or make gate SOLUTION={inner[0]}) or use gate-all")
    return path


def data_for(candidate: Path, data: str | None, competition: str | None) -> Path:
    """``--data``, else the default generated valid set of the competition (from ``--competition``
    or the candidate's manifest), made on first use."""
    if data:
        return Path(data)
    key = competition or candidate_competition(candidate)
    if key is None:
        if candidate.is_dir():
            why = f"{candidate} has no {MANIFEST} naming its competition"
        else:
            why = f"{candidate} is a zip, which carries no {MANIFEST}"
        raise UserError(f"{why}: pass --data FILE, or --competition A|B to use the default generated data")
    return defaults.ensure(competitions.get(key).key, "valid")


def candidate_and_source(args: argparse.Namespace) -> tuple[Path, ParquetSource]:
    """The candidate the user named and the data it runs on (``--data`` or the default set),
    opened; a missing path or a malformed file is the user's mistake (exit 2)."""
    candidate = existing_candidate(args.candidate)
    data = data_for(candidate, args.data, args.competition)
    try:
        return candidate, ParquetSource(data, args.competition)
    except DataError as exc:
        raise UserError(str(exc)) from exc


def progress_reporter(console: Console, label: str, rows: int) -> tuple[Callable[[dict], None], Progress | None]:
    """A live bar when stdout is a terminal; otherwise plain lines on stderr every few seconds."""
    if not console.is_terminal:
        return PlainProgress(label, rows), None
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} seq/s"), TimeElapsedColumn(), TimeRemainingColumn()]
    bar = Progress(*columns, console=console, transient=True)
    task = bar.add_task("start-up", total=rows // SEQUENCE_LENGTH, rate="-")

    def on_progress(p: dict) -> None:
        done = p.get("rows", 0) // SEQUENCE_LENGTH
        elapsed = bar.tasks[0].elapsed or 0
        rate = f"{done / elapsed:.1f}" if elapsed and done else "-"
        bar.update(task, completed=done, description=p.get("phase", ""), rate=rate)

    return on_progress, bar


def _layout_failure(args: argparse.Namespace, exc: CandidateLayoutError, console: Console) -> int:
    """The candidate cannot be unpacked or has the wrong layout: it fails (exit 1), as in the gate."""
    console.print(f"{args.candidate}: cannot be run as submitted", markup=False)
    console.print("verdict: [bold red]FAIL[/]")
    console.print(f"  - {exc.kind}: {exc}", markup=False)
    if args.report:
        from harness.html_report import failure_html, write_html

        write_html(failure_html(args.candidate, f"{exc.kind}: {exc}"), args.report)
        console.print(f"HTML report written to {args.report}", markup=False, highlight=False)
    return 1


def _simulate_sharded(candidate: Path, data: Path, args: argparse.Namespace, engine: Engine,
                      options: SimulateOptions, bar: Progress | None) -> SimulationReport:
    """``simulate --workers N``: the shards side by side (``harness.shards``); a line as each ends."""
    from harness.shards import simulate_sharded

    if bar is not None:
        bar.stop()  # the shards report per shard, not per row

    def on_shard(label: str) -> None:
        print(f"simulate {candidate.name}: {label} done", file=sys.stderr, flush=True)

    try:
        return simulate_sharded(candidate, data, args.competition, options, engine, args.shards, on_shard)
    except ExecutionError as exc:
        raise UserError(f"simulate {candidate}: {exc}") from None


def run_simulate(args: argparse.Namespace) -> int:
    console = Console()
    engine = engine_from(args)
    sharded = engine != Engine() or args.shards is not None
    if sharded and (args.plot or args.report):
        option = "--plot" if args.plot else "--report"
        raise UserError(f"{option} draws every row's latency, which shards do not send back; run it with one worker "
                        "(drop --workers/--shards/--backend)")
    candidate, source = candidate_and_source(args)
    if not args.no_oracle and (line := foreign_notice(source.path)) is not None:
        print(line, file=sys.stderr)  # stdout carries the report alone
    sequences = source.num_sequences if args.sequences is None else min(args.sequences, source.num_sequences)
    on_progress, bar = progress_reporter(console, f"simulate {candidate.name}", sequences * SEQUENCE_LENGTH)
    try:
        with bar or nullcontext():
            options = options_from(args, SimulateOptions, oracle=not args.no_oracle, fingerprint=bool(args.json))
            if not sharded:
                result = simulate(candidate, source.path, args.competition, options, on_progress)  # one worker: today's path
            else:
                result = _simulate_sharded(candidate, source.path, args, engine, options, bar)
    except (DataError, SidecarMismatch) as exc:
        raise UserError(str(exc)) from exc
    except CandidateLayoutError as exc:
        return _layout_failure(args, exc, console)
    report_mod.render(result, console)
    if args.json:
        console.print(f"report written to {report_mod.write_json(result, args.json)}")
    if result.plot:
        console.print(f"plot written to {result.plot}")
    if args.report:
        console.print(f"HTML report written to {args.report}", markup=False, highlight=False)
    return 0 if result.verdict != "FAIL" else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("simulate", help="grade a candidate (folder or zip) under the competition's limits",
                                   description="Replay a candidate under the grader's limits and print its report.")
    parser.add_argument("candidate", help="solution folder or zip")
    add_data_options(parser)
    add_limit_options(parser)
    parser.add_argument("--json", help="also write the report as JSON to this path")
    parser.add_argument("--plot", help="also draw latencies and per-output scores to this PNG")
    parser.add_argument("--report", metavar="FILE.html", type=output_file,
                        help="also write the whole report, with a figure per section, as one self-contained HTML page")
    parser.add_argument("--no-oracle", action="store_true",
                        help="do not read the data file's oracle sidecar (no oracle scores, no look-ahead bound)")
    add_execution_options(parser, "shards replayed side by side, each in its own sandbox on its own core")
    parser.add_argument("--shards", type=positive_int,
                        help="cut the sequences into this many shards (default: one per worker)")
    parser.set_defaults(func=run_simulate)
