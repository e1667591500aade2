"""``python -m harness simulate``: grade a candidate locally and print the report."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from harness import competitions, report as report_mod
from harness.candidate import CandidateLayoutError
from harness.cli import UserError
from harness.data import DataError, ParquetSource
from harness.simulate import DEFAULT_SAFETY, SimulateOptions, simulate

MANIFEST = "manifest.json"


def candidate_competition(candidate: Path) -> str | None:
    """The competition a solution folder declares in its manifest, if it has one."""
    manifest = candidate / MANIFEST
    if candidate.is_dir() and manifest.exists():
        return json.loads(manifest.read_text()).get("competition")
    return None


def default_data(key: str) -> Path:
    """The default generated validation set of a competition, made on first use."""
    try:
        defaults = importlib.import_module("harness.market.defaults")
    except ModuleNotFoundError as exc:
        raise UserError("no --data given and the market simulator is not installed to make default data") from exc
    return defaults.ensure(key, "valid")


def resolve_data(args: argparse.Namespace) -> tuple[Path, str | None]:
    wanted = None if args.competition == "auto" else competitions.get(args.competition).key
    if args.data:
        return Path(args.data), wanted
    key = wanted or candidate_competition(Path(args.candidate))
    if key is None:
        raise UserError("pass --data FILE, or --competition A|B to use the default generated data")
    return default_data(competitions.get(key).key), key


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="parquet file to replay (default: the generated valid set)")
    parser.add_argument("--sequences", type=int, help="replay only the first N sequences")
    parser.add_argument("--competition", default="auto", help="auto (from the file's columns), A or B")
    parser.add_argument("--memory-gb", type=float, help="memory cap (default: the competition's, 16)")
    parser.add_argument("--minutes", type=float, help="time limit (default: the competition's, 60 for A, 90 for B)")
    parser.add_argument("--safety", type=float, default=DEFAULT_SAFETY,
                        help=f"slow-grader factor for the projection (default {DEFAULT_SAFETY})")
    parser.add_argument("--test-sequences", type=int, help="sequences in the full test set (default: the competition's)")


def run_simulate(args: argparse.Namespace) -> int:
    console = Console()
    data, key = resolve_data(args)
    try:
        source = ParquetSource(data, key)
    except DataError as exc:
        raise UserError(str(exc)) from exc
    total = source.num_sequences if args.sequences is None else min(args.sequences, source.num_sequences)
    options = SimulateOptions(sequences=args.sequences, memory_gb=args.memory_gb, minutes=args.minutes,
                              safety=args.safety, test_sequences=args.test_sequences, plot=args.plot)
    budget_min = args.minutes or source.competition.limits.minutes
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} seq/s"), TimeElapsedColumn(),
               TextColumn(f"of {budget_min:.0f} min budget"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("start-up", total=total, rate="-")

        def on_progress(p: dict) -> None:
            done = p.get("rows", 0) // 1000
            elapsed = bar.tasks[0].elapsed or 0
            rate = f"{done / elapsed:.1f}" if elapsed and done else "-"
            bar.update(task, completed=done, description=p.get("phase", ""), rate=rate)

        try:
            result = simulate(args.candidate, data, key, options, on_progress=on_progress)
        except (DataError, CandidateLayoutError) as exc:
            raise UserError(str(exc)) from exc
    report_mod.render(result, console)
    if args.json:
        console.print(f"report written to {report_mod.write_json(result, args.json)}")
    if result.get("plot"):
        console.print(f"plot written to {result['plot']}")
    return 0 if result["verdict"] != "FAIL" else 1


def register(subparsers) -> None:
    parser = subparsers.add_parser("simulate", help="grade a candidate (folder or zip) under the competition's limits")
    parser.add_argument("candidate", help="solution folder or zip")
    add_limit_options(parser)
    parser.add_argument("--json", help="also write the report as JSON to this path")
    parser.add_argument("--plot", help="also draw latencies and per-output scores to this PNG")
    parser.set_defaults(func=run_simulate)
