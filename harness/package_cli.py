"""``python -m harness package``: build the reproducible upload zip, then gate the zip itself."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from harness.cli import UserError
from harness.gate_cli import add_gate_options, gate_and_render
from harness.package import PackageError, build_zip, read_manifest
from harness.simulate_cli import data_for


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
    data = data_for(solution, args.data, manifest.competition)
    return gate_and_render(path, args, data, console, manifest.gate)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("package", help="build the reproducible upload zip, then gate it",
                              description="Build the upload zip of a solution folder (its manifest.json names the "
                                          "competition and the files), then gate the zip itself.")
    p.add_argument("solution", help="solution folder (with manifest.json)")
    p.add_argument("-o", "--output", help="zip path (default dist/<name>.zip)")
    p.add_argument("--force", action="store_true", help="overwrite an existing zip")
    add_gate_options(p, competition=False)
    p.set_defaults(func=run_package)
