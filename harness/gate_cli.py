"""``python -m harness gate`` and ``gate-all``: named pass/fail checks before an upload."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.cli import (UserError, add_data_options, add_execution_options, add_limit_options, engine_from, options_from,
                         output_file, positive_float, positive_int)
from harness.execution import Engine, ExecutionError, Task, run_tasks, slot_core
from harness.data import DataError
from harness.market.base import SidecarMismatch
from harness.gate import CHECK_SEQUENCES, CHECKS, SCORE_SECONDS, GateOptions, GateReport, gate
from harness.manifest import Manifest
from harness.package import PackageError, read_manifest
from harness.progress import PlainProgress
from harness.simulate_cli import MANIFEST, data_for, existing_candidate

_STYLE = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red", "SKIP": "dim"}


def render(report: GateReport, console: Console) -> None:
    table = Table(title=f"Gate: {report.candidate} ({report.competition}) on {report.data}")
    table.add_column("check")
    table.add_column("result")
    table.add_column("reason")
    for c in report.checks:
        table.add_row(c.name, f"[{_STYLE[c.status]}]{c.status}[/]", c.reason)
    console.print(table)
    for c in report.checks:
        if c.status == "FAIL" and c.reproduce:
            console.print(f"reproduce {c.name}: {c.reproduce}", markup=False, highlight=False)
    console.print("[bold red]FAILED[/]" if report.failed else "[bold green]passed[/]: ready to upload")


def gate_options(candidate: Path, args: argparse.Namespace, data: Path, console: Console,
                 manifest_gate: dict | None = None) -> GateOptions:
    """The gate's options from the command line and ``manifest_gate``, the solution's own gate
    settings (a lower score bar for a deliberately weak reference, with its reason)."""
    manifest_gate = manifest_gate or {}
    only = tuple(args.only.split(",")) if args.only else ()
    unknown = [name for name in only if name not in CHECKS]
    if unknown:
        raise UserError(f"unknown check(s) {unknown}; the checks are {', '.join(CHECKS)}")
    min_score, reason = args.min_score, ""
    if min_score is None and manifest_gate.get("min_score") is not None:
        min_score, reason = float(manifest_gate["min_score"]), f"manifest: {manifest_gate.get('why', 'no reason given')}"
    on_progress = None if console.is_terminal else PlainProgress(f"gate {candidate.name}", None)
    return options_from(args, GateOptions, data=data, only=only, min_score=min_score, min_score_reason=reason,
                        oracle=not args.no_oracle, on_progress=on_progress)


def gate_and_render(candidate: Path, args: argparse.Namespace, data: Path, console: Console,
                    manifest_gate: dict | None = None, engine: Engine | None = None) -> int:
    """Gate ``candidate`` and print the table; the exit code (1 if a check failed). With an
    ``engine`` of more than the default one worker, the replays run side by side there and a
    line says as each ends (a worker's progress cannot reach this process's progress line)."""
    options = gate_options(candidate, args, data, console, manifest_gate)
    if engine is not None and engine != Engine():
        console.print(f"gating {candidate}: its replays on {engine.workers} {engine.backend} worker(s)",
                      markup=False, highlight=False)
        options = replace(options, engine=engine, on_progress=None,
                          on_replay=lambda label: console.print(f"{label}: done", markup=False, highlight=False))
    with console.status(f"gating {candidate}"):
        try:
            report = gate(candidate, options)
        except (DataError, SidecarMismatch, ExecutionError) as exc:
            raise UserError(str(exc)) from exc
    return render_and_write(report, args, console)


def gate_on_slot(candidate: str, options: GateOptions) -> GateReport:
    """One candidate's gate in a worker of ``gate-all --workers N``: its replays on the worker's
    core, one after another (no pool inside a pool)."""
    return gate(candidate, replace(options, cpu=slot_core(), on_progress=None, engine=None, on_replay=None))


def render_and_write(report: GateReport, args: argparse.Namespace, console: Console) -> int:
    """Print the gate's table, write ``--json``; the exit code (1 if a check failed)."""
    render(report, console)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2))
    if getattr(args, "report", None):  # gate's option; gate-all and package have none
        console.print(f"HTML report written to {args.report}", markup=False, highlight=False)
    return 1 if report.failed else 0


def _manifest(folder: Path) -> Manifest:
    try:
        return read_manifest(folder)
    except PackageError as exc:
        raise UserError(str(exc)) from exc


def run_gate(args: argparse.Namespace) -> int:
    candidate = existing_candidate(args.candidate)
    manifest_gate = _manifest(candidate).gate if (candidate / MANIFEST).is_file() else {}
    engine = engine_from(args)
    return gate_and_render(candidate, args, data_for(candidate, args.data, args.competition), Console(), manifest_gate,
                           engine)


def solution_folders(root: Path) -> list[Path]:
    """Every candidate under ``root``: a folder with a manifest."""
    return sorted(p.parent for p in root.glob(f"*/{MANIFEST}"))


def run_gate_all(args: argparse.Namespace) -> int:
    console = Console()
    folders = solution_folders(Path(args.root))
    if not folders:
        raise UserError(f"no solution folders (with {MANIFEST}) under {args.root}; pass --root FOLDER")
    engine = engine_from(args)
    failed, jobs = [], []
    for folder in folders:
        manifest = _manifest(folder)
        if manifest.trained and not all((folder / a).is_file() for a in manifest.artifacts):
            console.print(f"[yellow]{folder.name}: not trained yet (make train SOLUTION={folder.name}); skipped[/]")
            continue
        data = data_for(folder, args.data, manifest.competition)
        if engine == Engine():
            if gate_and_render(folder, args, data, console, manifest.gate):
                failed.append(folder.name)
        else:
            jobs.append((folder, gate_options(folder, args, data, console, manifest.gate)))
    if jobs:  # candidates side by side, each gate on a core of its own; the tables in the folders' order
        console.print(f"gating {len(jobs)} candidates on {engine.workers} {engine.backend} worker(s)")
        try:
            reports = run_tasks([Task(f"gate {folder.name}", gate_on_slot, (str(folder), options), pin=False)
                                 for folder, options in jobs], engine,
                                on_done=lambda i, task: console.print(f"{task.label}: done", highlight=False))
        except (DataError, SidecarMismatch, ExecutionError) as exc:
            raise UserError(str(exc)) from exc
        failed += [folder.name for (folder, _), report in zip(jobs, reports) if render_and_write(report, args, console)]
    if failed:
        console.print(f"[bold red]{len(failed)} candidate(s) failed the gate: {', '.join(failed)}[/]")
        return 1
    console.print(f"[bold green]all {len(folders)} candidates passed[/]")
    return 0


def add_gate_options(parser: argparse.ArgumentParser, competition: bool = True) -> None:
    """The gate's options (``package`` gates its zip with them; it reads the competition from the manifest)."""
    add_data_options(parser, competition=competition,
                     sequences_help="sequences in the score sample (default: as many as fit in --score-seconds of replay)")
    parser.add_argument("--score-seconds", type=positive_float, default=SCORE_SECONDS,
                        help=f"replay time for the score sample (default {SCORE_SECONDS:g})")
    parser.add_argument("--check-sequences", type=positive_int, default=CHECK_SEQUENCES,
                        help=f"sequences replayed by the determinism, causality and state checks (default {CHECK_SEQUENCES})")
    add_limit_options(parser)
    parser.add_argument("--json", help="also write the checks as JSON here")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(CHECKS)}")
    parser.add_argument("--archive-cap-mb", type=positive_float, help="archive size cap (default 20, unofficial)")
    parser.add_argument("--memory-margin-gb", type=positive_float, default=GateOptions.memory_margin_gb,
                        help=f"peak memory allowed (default {GateOptions.memory_margin_gb:g} of 16)")
    parser.add_argument("--min-score", type=float, help="score bar (default: the competition's simple baseline)")
    parser.add_argument("--no-oracle", action="store_true",
                        help="do not read the data file's oracle sidecar (no look-ahead bound from it)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("gate", help="named pass/fail checks before an upload",
                              description="Run the named pre-upload checks on a solution folder or zip.")
    p.add_argument("candidate", help="solution folder or zip")
    add_gate_options(p)
    p.add_argument("--report", metavar="FILE.html", type=output_file,
                   help="also write the checks and the score sample's replay as one self-contained HTML page")
    add_execution_options(p, "replays run side by side (first, cut copy, shuffled, score sample), each on its own core")
    p.set_defaults(func=run_gate)
    p = subparsers.add_parser("gate-all", help="gate every solution folder under --root",
                              description="Gate every solution folder (with manifest.json) under --root.")
    p.add_argument("--root", default="solutions", help="folder of solution folders (default solutions)")
    add_gate_options(p, competition=False)
    add_execution_options(p, "candidates gated side by side, each on its own core")
    p.set_defaults(func=run_gate_all)
