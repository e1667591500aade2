"""``python -m harness compare X Y [Z ...]``: candidates side by side on the same data, with a
paired bootstrap of each difference (``harness.compare``)."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from pathlib import Path

from rich.console import Console

from harness import competitions
from harness import compare as cmp
from harness.candidate import CandidateLayoutError
from harness.cli import UserError, positive_int
from harness.competitions import SEQUENCE_LENGTH
from harness.data import DataError, ParquetSource, file_sha256
from harness.market import defaults
from harness.market.base import SidecarMismatch
from harness.simulate import SimulateOptions, simulate
from harness.simulate_cli import data_for, existing_candidate, progress_reporter
from harness.tables import html_page, terminal_tables, write_text

DESCRIPTION = """\
Compare candidates on the same data: each is replayed in the sandbox (as simulate does), or,
when given as a JSON report that `simulate --json` wrote on the same file (checked by the file's
sha256), its stored per-sequence scores are reused. For every pair (or each against the first,
--against-first) a paired bootstrap over sequences, paired by seq_ix: the difference of the
headline and of each output, its 95% interval, and the share of resamples in which each scores
higher. (`python -m models compare-offline` compares two trained solutions offline instead: their
batch predictions in this process, no sandbox, no zip; the same bootstrap.)"""


def _is_report(text: str) -> bool:
    return text.endswith(".json") and Path(text).is_file()


def _data_path(args: argparse.Namespace) -> Path:
    """--data; else the default generated set of --competition or of the first solution folder's
    manifest; else the file the first stored report names (its sha256 is checked all the same)."""
    if args.data:
        return Path(args.data)
    folders = [c for c in args.candidates if not _is_report(c)]
    if args.competition or folders:
        if args.competition:
            return defaults.ensure(args.competition, "valid")
        return data_for(existing_candidate(folders[0]), None, None)
    first = args.candidates[0]
    try:
        return Path(json.loads(Path(first).read_text())["data"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{first}: not a report written by simulate --json ({exc}); pass --data FILE") from None


def _replay(text: str, label: str, data: Path, comp: competitions.Competition, args: argparse.Namespace,
            sequences: int, console: Console) -> cmp.Run:
    candidate = existing_candidate(text)
    on_progress, bar = progress_reporter(console, f"replay {candidate.name}", sequences * SEQUENCE_LENGTH)
    options = SimulateOptions(sequences=args.sequences, bootstrap=args.bootstrap)
    with bar or nullcontext():
        report = simulate(candidate, data, comp, options, on_progress)
    return cmp.Run(label, "replayed", report)


def run_compare(args: argparse.Namespace) -> int:
    console = Console(width=None if sys.stdout.isatty() else 120)  # piped: whole columns, not 80-wide wraps
    if len(args.candidates) < 2:
        raise UserError("name at least two candidates (solution folders, zips or simulate --json reports)")
    data = _data_path(args)
    try:
        source = ParquetSource(data, args.competition)
    except DataError as exc:
        raise UserError(str(exc)) from exc
    comp = source.competition
    sequences = source.num_sequences if args.sequences is None else min(args.sequences, source.num_sequences)
    sha = file_sha256(source.path)
    runs, failed = [], []
    for text, label in zip(args.candidates, cmp.labels(args.candidates)):
        if _is_report(text):
            try:
                report = cmp.read_stored(text, sha, comp, None if args.sequences is None else sequences)
            except cmp.CompareError as exc:
                raise UserError(str(exc)) from exc
            runs.append(cmp.Run(label, "stored report", report))
            continue
        try:
            run = _replay(text, label, source.path, comp, args, sequences, console)
        except (DataError, SidecarMismatch) as exc:
            raise UserError(str(exc)) from exc
        except CandidateLayoutError as exc:
            failed.append(f"{text}: cannot be run as submitted: {exc.kind}: {exc}")
            continue
        if run.report.score is None:
            failed.append(f"{text}: {run.report.verdict}: " + "; ".join(run.report.reasons))
            continue
        runs.append(run)
    if failed:
        for line in failed:
            print(line, file=sys.stderr)
        console.print("[bold red]compare: a candidate failed; nothing compared[/]")
        return 1
    try:
        pairs = cmp.compare_runs(comp, runs, args.bootstrap, args.seed, args.against_first)
    except cmp.CompareError as exc:
        raise UserError(str(exc)) from exc
    candidates = cmp.candidate_rows(comp, runs, args.bootstrap, args.seed)
    parts = cmp.sections(comp, candidates, pairs)
    console.print(f"[bold]{comp.title}[/] — {source.path} (sha256 {sha[:12]})", highlight=False)
    for table in terminal_tables(parts):
        console.print(table)
    if args.report:
        note = f"{comp.title}: {source.path} (sha256 {sha}); seed {args.seed}"
        path = write_text(args.report, html_page("Candidate comparison", parts, [note]))
        console.print(f"report written to {path}", highlight=False)
    if args.json:
        text = json.dumps(cmp.to_json(comp, str(source.path), sha, candidates, pairs, args.seed), indent=2)
        console.print(f"comparison written to {write_text(args.json, text + chr(10))}", highlight=False)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from harness.cli import competition_key

    parser = subparsers.add_parser("compare", help="candidates on the same data, with a paired bootstrap of each "
                                                   "difference (replayed, or from simulate --json reports)",
                                   description=DESCRIPTION)
    parser.add_argument("candidates", nargs="+", metavar="CANDIDATE",
                        help="solution folder, zip, or a report simulate --json wrote on the same data (two or more)")
    parser.add_argument("--data", help="parquet file (default: the generated valid set of --competition or of the "
                                       "first folder's manifest, else the file the first report names)")
    parser.add_argument("--competition", type=competition_key, help="A or B (picks the default data)")
    parser.add_argument("--sequences", type=positive_int,
                        help="compare on the first N sequences (replays stop there; reports are cut to them)")
    parser.add_argument("--bootstrap", type=positive_int, default=1000, help="resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0; same seed, same draws)")
    parser.add_argument("--against-first", action="store_true",
                        help="compare each candidate with the first only (default: every pair)")
    parser.add_argument("--report", help="also write the tables as a self-contained HTML page")
    parser.add_argument("--json", help="also write the comparison as JSON to this path")
    parser.set_defaults(func=run_compare)
