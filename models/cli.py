"""``python -m models train``: train a solution from its manifest, record the run, print the CV table.

Data defaults to the simulator's generated sets (made on first use); ``--train`` / ``--valid``
take a user's files. Every run writes ``runs/<solution>-<UTC stamp>.json`` with the config,
the data's sha256, the seeds and every score.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from harness.package import PackageError, read_manifest
from models.data import load_sequences
from models.record import environment, file_sha256, to_plain, utc_stamp, write_record
from models.registry import FAMILIES, trainer
from models.training import ConfigError

SOLUTIONS_DIR = Path("solutions")


class UserError(Exception):
    """A problem the user can fix; printed without a traceback."""


def trainable(folder: Path) -> bool:
    """Whether ``folder`` is a solution this command trains (a manifest with a known family)."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        return False
    manifest = read_manifest(folder)
    return bool(manifest.get("trained")) and manifest.get("family") in FAMILIES


def _data_paths(key: str, train: str | None, valid: str | None) -> tuple[Path, Path]:
    if train and valid:
        return Path(train), Path(valid)
    from harness.market.defaults import ensure

    return Path(train) if train else ensure(key, "train"), Path(valid) if valid else ensure(key, "valid")


def _table(name: str, record: dict, metric: str) -> Table:
    table = Table(title=f"{name}: {record['family']} ({metric})")
    table.add_column("split")
    table.add_column("score", justify="right")
    cv = record.get("cv")
    if cv:
        for i, value in enumerate(cv["fold_scores"]):
            table.add_row(f"CV fold {i + 1}", f"{value:.4f}")
        table.add_row("OOF", f"{cv['oof_score']:.4f}")
        if "oof_guarded" in cv:
            table.add_row("OOF, guarded", f"{cv['oof_guarded']:.4f}")
    table.add_row("valid", f"{record['valid_score']:.4f}")
    if record.get("oracle"):
        table.add_row("valid oracle (observable)", f"{record['oracle']['observable']:.4f}")
        if record.get("oracle_fraction") is not None:
            table.add_row("fraction of oracle", f"{record['oracle_fraction']:.3f}")
    table.add_row("training time", f"{record['seconds']:.1f} s")
    return table


def train_one(folder: Path, args: argparse.Namespace, console: Console) -> dict:
    """Train the solution in ``folder``; write and return its run record."""
    started = time.perf_counter()
    try:
        manifest = read_manifest(folder)
    except PackageError as exc:
        raise UserError(str(exc)) from exc
    family = manifest.get("family")
    if family not in FAMILIES:
        raise UserError(f"{folder / 'manifest.json'}: 'family' is {family!r}; use one of {sorted(FAMILIES)}")
    key = manifest["competition"]
    train_path, valid_path = _data_paths(key, args.train, args.valid)
    with console.status(f"reading {train_path} and {valid_path}"):
        train = load_sequences(train_path, max_sequences=args.sequences, competition=key)
        valid = load_sequences(valid_path, max_sequences=args.valid_sequences, competition=key)
    console.print(f"[bold]{folder.name}[/]: {family} on {len(train)} train / {len(valid)} valid sequences")
    try:
        with threadpool_limits(limits=args.blas_threads):
            result = trainer(family)(folder, manifest, train, valid, console)
    except ConfigError as exc:
        raise UserError(str(exc)) from exc
    oof = result.pop("oof", None)
    record = {
        "solution": folder.name,
        "competition": key,
        "started_utc": utc_stamp(),
        "data": {
            "train": {"path": str(train_path), "sha256": file_sha256(train_path), "sequences": len(train)},
            "valid": {"path": str(valid_path), "sha256": file_sha256(valid_path), "sequences": len(valid)},
        },
        "environment": environment(),
        **result,
        "total_seconds": time.perf_counter() - started,
    }
    path = write_record(folder.name, record, args.runs)
    if oof is not None:
        np.savez_compressed(path.with_suffix(".oof.npz"), **oof)
    console.print(_table(folder.name, record, train.competition.metric_label))
    console.print(f"artifacts written to {folder}; run record {path}")
    return to_plain(record)


def run_train(args: argparse.Namespace) -> int:
    console = Console()
    if args.all == bool(args.solution):
        raise UserError("name one solution folder, or pass --all (not both)")
    folders = sorted(p for p in SOLUTIONS_DIR.iterdir() if trainable(p)) if args.all else [Path(args.solution)]
    if args.all and not folders:
        raise UserError(f"no trainable solutions under {SOLUTIONS_DIR} (manifest with \"trained\": true and a family)")
    for folder in folders:
        if not (folder / "manifest.json").is_file():
            raise UserError(f"{folder}: no manifest.json; a solution folder needs one naming its family and artifacts")
        train_one(folder, args, console)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m models", description="Train solutions from their manifests.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("train", help="train a solution (or --all) and write its artifacts")
    p.add_argument("solution", nargs="?", help="solution folder, e.g. solutions/a_ridge_var")
    p.add_argument("--all", action="store_true", help="every solution whose manifest names a family")
    p.add_argument("--train", help="train parquet (default: the generated train set, made if missing)")
    p.add_argument("--valid", help="valid parquet (default: the generated valid set, made if missing)")
    p.add_argument("--sequences", type=int, help="use only the first N train sequences")
    p.add_argument("--valid-sequences", type=int, help="use only the first N valid sequences")
    p.add_argument("--runs", default="runs", help="folder for run records (default runs/)")
    p.add_argument("--blas-threads", type=int, default=1,
                   help="BLAS threads while training (default 1: on a shared machine, spinning threads cost more "
                        "than they give; LightGBM's threads are the family config's 'threads')")
    p.set_defaults(func=run_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
