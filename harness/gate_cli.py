"""``python -m harness gate`` and ``python -m harness package``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness import competitions
from harness.cli import UserError
from harness.data import DataError
from harness.gate import CHECK_SEQUENCES, CHECKS, SCORE_SECONDS, GateOptions, GateReport, gate
from harness.package import PackageError, build_zip, read_manifest
from harness.simulate_cli import candidate_competition, default_data

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


def _data_for(candidate: Path, data: str | None, competition: str | None) -> Path:
    if data:
        return Path(data)
    key = competition or candidate_competition(candidate)
    if key is None:
        raise UserError("pass --data FILE or --competition A|B (a zip carries no manifest)")
    return default_data(competitions.get(key).key)


def _gate(candidate: Path, args: argparse.Namespace, data: Path, console: Console,
          manifest_gate: dict | None = None) -> int:
    """Gate ``candidate``; ``manifest_gate`` holds the solution's own gate settings (a lower score
    bar for a deliberately weak reference, with its reason)."""
    manifest_gate = manifest_gate or {}
    only = tuple(args.only.split(",")) if args.only else ()
    unknown = [name for name in only if name not in CHECKS]
    if unknown:
        raise UserError(f"unknown check(s) {unknown}; the checks are {', '.join(CHECKS)}")
    min_score, reason = args.min_score, ""
    if min_score is None and manifest_gate.get("min_score") is not None:
        min_score, reason = float(manifest_gate["min_score"]), f"manifest: {manifest_gate.get('why', 'no reason given')}"
    options = GateOptions(data=data, sequences=args.sequences, check_sequences=args.check_sequences,
                          score_seconds=args.score_seconds, archive_cap_mb=args.archive_cap_mb,
                          memory_margin_gb=args.memory_margin_gb, memory_gb=args.memory_gb, minutes=args.minutes,
                          safety=args.safety, test_sequences=args.test_sequences, min_score=min_score,
                          min_score_reason=reason, only=only)
    with console.status(f"gating {candidate}"):
        try:
            report = gate(candidate, options)
        except DataError as exc:
            raise UserError(str(exc)) from exc
    render(report, console)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2))
    return 1 if report.failed else 0


def run_gate(args: argparse.Namespace) -> int:
    candidate = Path(args.candidate)
    manifest_gate = read_manifest(candidate).get("gate", {}) if (candidate / "manifest.json").is_file() else {}
    return _gate(candidate, args, _data_for(candidate, args.data, args.competition), Console(), manifest_gate)


def run_package(args: argparse.Namespace) -> int:
    solution = Path(args.solution)
    out = Path(args.output or f"dist/{solution.name}.zip")
    console = Console()
    try:
        manifest = read_manifest(solution)
        path = build_zip(solution, out, force=args.force)
    except PackageError as exc:
        raise UserError(str(exc)) from exc
    console.print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB); gating the zip itself")
    return _gate(path, args, _data_for(solution, args.data, manifest["competition"]), console, manifest.get("gate", {}))


def solution_folders(root: Path) -> list[Path]:
    """Every candidate under ``root``: a folder with a manifest."""
    return sorted(p.parent for p in root.glob("*/manifest.json"))


def run_gate_all(args: argparse.Namespace) -> int:
    console = Console()
    folders = solution_folders(Path(args.root))
    if not folders:
        raise UserError(f"no solution folders (with manifest.json) under {args.root}")
    failed = []
    for folder in folders:
        manifest = read_manifest(folder)
        if manifest.get("trained") and not all((folder / a).is_file() for a in manifest.get("artifacts", [])):
            console.print(f"[yellow]{folder.name}: not trained yet (make train SOLUTION={folder.name}); skipped[/]")
            continue
        data = _data_for(folder, args.data, manifest["competition"])
        if _gate(folder, args, data, console, manifest.get("gate", {})):
            failed.append(folder.name)
    if failed:
        console.print(f"[bold red]{len(failed)} candidate(s) failed the gate: {', '.join(failed)}[/]")
        return 1
    console.print(f"[bold green]all {len(folders)} candidates passed[/]")
    return 0


def _add_gate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="sample data (default: the generated valid set of the competition)")
    parser.add_argument("--competition", help="A or B, when the candidate has no manifest")
    parser.add_argument("--sequences", type=int, help="sequences in the score sample (default: as many as fit in "
                        "--score-seconds of replay)")
    parser.add_argument("--score-seconds", type=float, default=SCORE_SECONDS,
                        help=f"replay time for the score sample (default {SCORE_SECONDS:g})")
    parser.add_argument("--check-sequences", type=int, default=CHECK_SEQUENCES,
                        help=f"sequences replayed by the determinism, causality and state checks (default {CHECK_SEQUENCES})")
    parser.add_argument("--json", help="also write the checks as JSON here")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(CHECKS)}")
    parser.add_argument("--archive-cap-mb", type=float, help="archive size cap (default 20, unofficial)")
    parser.add_argument("--memory-margin-gb", type=float, default=12.0, help="peak memory allowed (default 12 of 16)")
    parser.add_argument("--memory-gb", type=float, help="hard memory cap of the sandbox (default 16)")
    parser.add_argument("--minutes", type=float, help="time limit (default: the competition's)")
    parser.add_argument("--safety", type=float, default=1.5, help="slow-grader factor for the time projection")
    parser.add_argument("--test-sequences", type=int, help="sequences in the full test set (default: the competition's)")
    parser.add_argument("--min-score", type=float, help="score bar (default: the competition's simple baseline)")


def register(subparsers) -> None:
    p = subparsers.add_parser("gate", help="named pass/fail checks before an upload")
    p.add_argument("candidate", help="solution folder or zip")
    _add_gate_options(p)
    p.set_defaults(func=run_gate)
    p = subparsers.add_parser("gate-all", help="gate every solution folder under --root")
    p.add_argument("--root", default="solutions", help="folder of solution folders (default solutions)")
    _add_gate_options(p)
    p.set_defaults(func=run_gate_all)
    p = subparsers.add_parser("package", help="build the reproducible upload zip, then gate it")
    p.add_argument("solution", help="solution folder (with manifest.json)")
    p.add_argument("-o", "--output", help="zip path (default dist/<name>.zip)")
    p.add_argument("--force", action="store_true", help="overwrite an existing zip")
    _add_gate_options(p)
    p.set_defaults(func=run_package)
