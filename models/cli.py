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

from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from features.storage import save_npz
from harness.cli import OneLineParser, UserError, add_execution_options, competition_key, engine_from, positive_int
from harness.execution import Engine, ExecutionError, Task, run_tasks
from harness.data import DataError
from harness.market.base import SidecarMismatch
from models.config import ConfigError
from models.data import SequenceSet, load_sequences
from models.record import environment, file_sha256, to_plain, utc_stamp, write_record
from models.generalize import DEFAULT_SIZES
from models.registry import FAMILIES, family, read_manifest, train_solution
from models.staging import RECORD_STAGE, commit_staged, staging_copy

SOLUTIONS_DIR = Path("solutions")


def _load(path: Path, competition: str, sequences: int | None, oracle: bool = True,
          console: Console | None = None) -> SequenceSet:
    """The sequences of a data file with its oracle rows; ConfigError when the file is missing,
    breaks the contract or has a stale oracle sidecar (checked here, before any training). A
    foreign file at the sidecar's place is ignored with a one-line notice."""
    notice = None if console is None else (lambda line: console.print(line, markup=False, highlight=False))
    try:
        return load_sequences(path, max_sequences=sequences, competition=competition, oracle=oracle, notice=notice)
    except (DataError, FileNotFoundError, SidecarMismatch) as exc:
        raise ConfigError(str(exc)) from exc


def trainable(folder: Path) -> bool:
    """Whether ``folder`` is a solution this command trains (a manifest with a known family);
    never a hidden folder (a staging copy a killed training left behind)."""
    if folder.name.startswith("."):
        return False
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        return False
    manifest = read_manifest(folder)
    return manifest.trained and manifest.family in FAMILIES


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
        if "fold_spread" in cv:
            table.add_row("CV fold range", f"{cv['fold_spread']['range']:.4f}")
        table.add_row("OOF", f"{cv['oof_score']:.4f}")
        if "oof_guarded" in cv:
            table.add_row("OOF, guarded", f"{cv['oof_guarded']:.4f}")
        if cv.get("online"):  # an ensemble's online blend, against its static weights
            online = cv["online"]
            table.add_row("OOF, static weights", f"{online['oof_static']:.4f}")
            table.add_row(f"OOF, online rate {online['fitted_rate']:g} ({'kept' if online['kept'] else 'not kept'})",
                          f"{online['oof_online']:.4f}")
    held = record.get("valid_scored_sequences")
    part = "" if held in (None, record["data"]["valid"]["sequences"]) else f" ({held} held-out sequences)"
    if isinstance(record.get("selection"), dict):  # a network's stopping set (an ensemble's is its member table)
        selection = record["selection"]
        table.add_row(f"selection ({selection['on']}, {selection['sequences']} seq)", f"{selection['score']:.4f}")
    table.add_row(f"valid{part}", f"{record['valid_score']:.4f}")
    if record.get("oracle"):
        table.add_row("valid oracle (observable)", f"{record['oracle']['observable']:.4f}")
        if record["oracle"]["fraction_of_observable"] is not None:
            table.add_row("fraction of oracle", f"{record['oracle']['fraction_of_observable']:.3f}")
    table.add_row("training time", f"{record['seconds']:.1f} s")
    return table


def train_one(folder: Path, args: argparse.Namespace, console: Console, engine: Engine = Engine()) -> dict:
    """Train the solution in ``folder``: check both data files (and their oracle sidecars) first,
    then train (its seeds side by side on ``engine``), write the artifacts and score what was
    written on the valid set (the same way for every family) in a staging copy of the folder;
    only when all of that succeeded are the artifacts and the run record moved in, so a failure
    leaves the old ones byte for byte."""
    started = time.perf_counter()
    manifest = read_manifest(folder)
    name = family(manifest.family).name  # an unknown family fails before the data is read
    key = manifest.competition
    train_path, valid_path = _data_paths(key, args.train, args.valid)
    with console.status(f"reading {train_path} and {valid_path}"):
        train = _load(train_path, key, args.sequences, not args.no_oracle, console)
        valid = _load(valid_path, key, args.valid_sequences, not args.no_oracle, console)
    console.print(f"[bold]{folder.name}[/]: {name} on {len(train)} train / {len(valid)} valid sequences")
    with staging_copy(folder) as stage:
        try:
            with threadpool_limits(limits=args.blas_threads):
                trained = train_solution(stage, train, valid, console, engine)
        except ConfigError as exc:  # messages name the solution, not its staging copy
            raise ConfigError(str(exc).replace(str(stage), str(folder))) from exc
        record = {
            "solution": folder.name,
            "competition": key,
            "started_utc": utc_stamp(),
            "data": {
                "train": {"path": str(train_path), "sha256": file_sha256(train_path), "sequences": len(train)},
                "valid": {"path": str(valid_path), "sha256": file_sha256(valid_path), "sequences": len(valid)},
            },
            "environment": environment(),
            **trained.record,
            "seconds": time.perf_counter() - started,
        }
        staged = write_record(folder.name, record, stage / RECORD_STAGE)
        if trained.oof is not None:
            save_npz(staged.with_suffix(".oof.npz"), trained.oof)
        path = commit_staged(stage, folder, list(manifest.artifacts), Path(args.runs))
    for line in record.get("warnings", []):
        console.print(f"[yellow]warning:[/] {line}", highlight=False)
    console.print(_table(folder.name, record, train.competition.metric_label))
    console.print(f"artifacts written to {folder}; run record {path}")
    return to_plain(record)


def run_train(args: argparse.Namespace) -> int:
    console = Console()
    if args.all == bool(args.solution):
        raise ConfigError("name one solution folder, or pass --all (not both)")
    folders = sorted(p for p in SOLUTIONS_DIR.iterdir() if trainable(p)) if args.all else [Path(args.solution)]
    if args.all and not folders:
        raise ConfigError(f"no trainable solutions under {SOLUTIONS_DIR} (manifest with \"trained\": true and a family)")
    for folder in folders:
        if not (folder / "manifest.json").is_file():
            raise ConfigError(f"{folder}: no manifest.json; a solution folder needs one naming its family and artifacts")
    engine = engine_from(args)
    if len(folders) == 1 or engine == Engine():
        for folder in folders:
            try:
                train_one(folder, args, console, engine)
            except ExecutionError as exc:  # a seed's worker lost, or the engine cannot start
                raise ConfigError(f"train {folder}: {exc}") from None
        return 0
    # Solutions side by side, each trained as one worker's job (its seeds one after another);
    # each prints into a buffer, shown whole once it is done, in the solutions' order.
    console.print(f"{len(folders)} solutions on {engine.workers} {engine.backend} worker(s)", highlight=False)
    try:
        outputs = run_tasks([Task(f"train {f.name}", train_captured, (str(f), args), pin=False) for f in folders],
                            engine, on_done=lambda i, task: console.print(f"{task.label}: done", highlight=False))
    except ExecutionError as exc:
        raise ConfigError(f"train --all: {exc}") from None
    for text in outputs:
        console.print(text, end="", markup=False, highlight=False, soft_wrap=True)
    return 0


def train_captured(folder: str, args: argparse.Namespace) -> str:
    """``train_one`` in a worker of ``train --all --workers N``: what it printed, as text."""
    import io

    buffer = io.StringIO()
    train_one(Path(folder), args, Console(file=buffer, width=120))
    return buffer.getvalue()


def run_parity(args: argparse.Namespace) -> int:
    """Offline evaluation of a trained solution beside the sandboxed replay of its zip."""
    from models.evaluate import evaluate, package_and_replay, parity

    console = Console()
    folder = Path(args.solution)
    manifest = read_manifest(folder)
    fam = family(manifest.family)
    data_path = Path(args.data) if args.data else _data_paths(manifest.competition, None, None)[1]
    data = _load(data_path, manifest.competition, args.sequences, console=console)
    with console.status(f"offline evaluation of {folder} on {len(data)} sequences"):
        offline = evaluate(fam.load_offline(folder), data)
    with console.status(f"packaging {folder} and replaying it in the sandbox"):
        online = package_and_replay(folder, data_path, args.sequences)
    result = parity(offline, online)
    scored = online.timing.scored
    table = Table(title=f"{folder.name}: offline vs online on {len(data)} sequences of {data_path}")
    for column in ("offline", "online", "max |diff|", "mean us/row", "p50 us/row", "fraction of oracle"):
        table.add_column(column, justify="right")
    fraction = offline["oracle"]["fraction_of_observable"] if "oracle" in offline else None
    table.add_row(f"{result['offline_score']:.6f}", f"{result['online_score']:.6f}", f"{result['max_abs_diff']:.1e}",
                  f"{scored.mean_us:.1f}", f"{scored.p50_us:.1f}", "-" if fraction is None else f"{fraction:.3f}")
    console.print(table)
    ok = result["max_abs_diff"] <= args.tolerance
    console.print("[green]parity holds[/]" if ok else f"[red]offline and online differ by more than {args.tolerance:g}[/]")
    return 0 if ok else 1


def run_generalize(args: argparse.Namespace) -> int:
    """Train and score a solution across scenarios; print the table, write the run record."""
    import io

    from harness.market.scenarios import ScenarioError, parse_scenarios
    from models.generalize import GeneralizeOptions, generalize, table

    try:
        scenarios = parse_scenarios(args.scenarios)
    except ScenarioError as exc:
        raise ConfigError(f"--scenarios: {exc}") from exc
    if args.seed < 0:
        raise ConfigError(f"--seed must be non-negative, got {args.seed}")
    options = GeneralizeOptions(scenarios, args.sequences, args.valid_sequences, args.test_sequences, args.seed,
                                Path(args.cache) if args.cache else None, args.blas_threads)
    console = Console(width=None if sys.stdout.isatty() else 120)  # piped: whole columns, not 80-wide wraps
    # Training prints its own CV tables; here only the scenario table matters.
    result = generalize(Path(args.solution), options, Console(file=io.StringIO()) if not args.verbose else console)
    result = {"started_utc": utc_stamp(), "environment": environment(), **to_plain(result)}
    console.print(table(result, plain=not console.is_terminal))
    path = write_record(f"{Path(args.solution).name}-generalize", result, args.runs)
    console.print(f"run record {path}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    """Offline scores of two trained solutions on the same valid sequences, with the paired interval."""
    from models.evaluate import compare

    console = Console()
    folders = [Path(args.solution), Path(args.reference)]
    manifests = [read_manifest(f) for f in folders]
    if manifests[0].competition != manifests[1].competition:
        raise ConfigError(f"{folders[0]} is for {manifests[0].competition}, {folders[1]} for {manifests[1].competition}")
    key = manifests[0].competition
    data_path = Path(args.data) if args.data else _data_paths(key, None, None)[1]
    data = _load(data_path, key, args.sequences, True, console)
    with console.status(f"offline predictions of both on {len(data)} sequences"):
        result = compare(*(family(m.family).load_offline(f) for m, f in zip(manifests, folders)), data)
    low, high = result["interval"]
    table = Table(title=f"{folders[0].name} - {folders[1].name} on {len(data)} sequences of {data_path} "
                        f"({data.competition.metric_label})")
    for column in (folders[0].name, folders[1].name, "difference", "paired 95% interval",
                   f"P({folders[0].name} better)", "fraction of oracle"):
        table.add_column(column, justify="right")
    fraction = result["fraction_of_oracle"]
    table.add_row(f"{result['score']:.4f}", f"{result['reference_score']:.4f}", f"{result['difference']:+.4f}",
                  f"[{low:+.4f}, {high:+.4f}]", f"{result['p_better']:.3f}", "-" if fraction is None else f"{fraction:.3f}")
    console.print(table)
    return 0


def run_leaderboard(args: argparse.Namespace) -> int:
    """Every run record and stored simulate report as one table (``models.leaderboard``)."""
    from harness.tables import html_page, terminal_tables, write_text
    from models import leaderboard as board

    console = Console(width=None if sys.stdout.isatty() else 160)  # piped: whole columns, not 80-wide wraps
    folders = [Path(args.runs), *(Path(d) for d in args.reports)]
    missing = [str(f) for f in folders[1:] if not f.is_dir()]
    if missing:
        raise ConfigError(f"--reports {missing[0]}: no such folder")
    rows, others = board.read_rows(board.json_files(folders), lambda line: print(line, file=sys.stderr))
    try:
        frame = board.select(board.table(rows), args.competition, args.solution, args.data, args.filter, args.sort,
                             args.reverse)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    parts = board.sections(frame, others)
    if frame.is_empty():
        console.print(f"no runs match (read {len(rows)} under {', '.join(map(str, folders))})", highlight=False)
    for table in terminal_tables(parts):
        console.print(table)
    if args.report:
        note = f"{frame.height} of {len(rows)} runs under {', '.join(map(str, folders))}"
        console.print(f"report written to {write_text(args.report, html_page('Leaderboard', parts, [note]))}",
                      highlight=False)
    return 0


def build_parser(prog: str = "python -m models") -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog, description="Train solutions from their manifests.")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


def register(sub: argparse._SubParsersAction) -> None:
    """Add the training commands: ``train``, ``parity``, ``compare-offline``, ``leaderboard``, ``generalize``,
    ``auto`` (the ``wunderbench`` command lists them beside the harness's)."""
    p = sub.add_parser("train", help="train a solution (or --all) and write its artifacts")
    p.add_argument("solution", nargs="?", help="solution folder, e.g. solutions/a_ridge_var")
    p.add_argument("--all", action="store_true", help="every solution whose manifest names a family")
    p.add_argument("--train", help="train parquet (default: the generated train set, made if missing)")
    p.add_argument("--valid", help="valid parquet (default: the generated valid set, made if missing)")
    p.add_argument("--sequences", type=positive_int, help="use only the first N train sequences")
    p.add_argument("--valid-sequences", type=positive_int, help="use only the first N valid sequences")
    p.add_argument("--runs", default="runs", help="folder for run records (default runs/)")
    p.add_argument("--no-oracle", action="store_true",
                   help="do not read the data files' oracle sidecars (no oracle scores in the record)")
    p.add_argument("--blas-threads", type=positive_int, default=1,
                   help="BLAS threads while training (default 1: on a shared machine, spinning threads cost more "
                        "than they give; LightGBM's threads are the family config's 'threads')")
    add_execution_options(p, "with --all: solutions trained side by side; with one solution: its seeds "
                             "(\"seeds\": N) trained side by side")
    p.set_defaults(func=run_train)
    q = sub.add_parser("parity", help="offline score of a trained solution beside the sandboxed replay of its zip")
    q.add_argument("solution", help="trained solution folder")
    q.add_argument("--data", help="data file (default: the generated valid set)")
    q.add_argument("--sequences", type=positive_int, default=16, help="first N sequences (default 16)")
    q.add_argument("--tolerance", type=float, default=1e-9, help="largest allowed score difference (default 1e-9)")
    q.set_defaults(func=run_parity)
    r = sub.add_parser("compare-offline", help="offline scores of two trained solutions on the same sequences, with "
                                               "the paired bootstrap interval of their difference",
                       description="Score two trained solutions offline (their batch predictions in this process: "
                                   "no sandbox, no zip, fast) on the same sequences, with the paired bootstrap of "
                                   "the difference. `python -m harness compare` replays candidates in the sandbox "
                                   "(or reuses simulate --json reports) and compares any number of them.")
    r.add_argument("solution", help="trained solution folder")
    r.add_argument("reference", help="trained solution folder to compare against (same competition)")
    r.add_argument("--data", help="data file (default: the generated valid set)")
    r.add_argument("--sequences", type=positive_int, help="first N sequences (default: all)")
    r.set_defaults(func=run_compare)
    b = sub.add_parser("leaderboard", help="every training run record and stored simulate report in one table",
                       description="Every training run record under --runs and every simulate --json report under "
                                   "--runs and --reports, one row each, one table per competition: solution, data "
                                   "sha256, score and interval, fraction of oracle, us/row, peak memory, size, "
                                   "training time. Columns for --sort and --filter: "
                                   "solution, kind, competition, data_sha256, sequences, score, interval_low, "
                                   "interval_high, "
                                   "fraction_of_oracle, us_per_row, peak_mib, size_mb, train_s, started_utc, file.")
    b.add_argument("--competition", type=competition_key, help="A or B only (default: both, one table each)")
    b.add_argument("--sort", default="score", help="column to sort by, best first (default score)")
    b.add_argument("--reverse", action="store_true", help="worst first")
    b.add_argument("--solution", help="this solution's rows only")
    b.add_argument("--data", help="rows on data whose sha256 starts with this")
    b.add_argument("--filter", help="a SQL condition on the columns, e.g. \"us_per_row < 50 AND kind = 'simulate'\"")
    b.add_argument("--runs", default="runs", help="folder of run records (default runs/)")
    b.add_argument("--reports", action="append", default=[], metavar="DIR",
                   help="also read the simulate --json reports under DIR (repeatable)")
    b.add_argument("--report", help="also write the tables as a self-contained HTML page")
    b.set_defaults(func=run_leaderboard)
    g = sub.add_parser("generalize", help="train and score a solution on drawn market scenarios (fraction of oracle)")
    g.add_argument("solution", help="solution folder; it is trained in a temporary copy, never overwritten")
    g.add_argument("--scenarios", default="1-5", help="scenario list, e.g. 1-5 or default,2,4 (default 1-5)")
    g.add_argument("--sequences", type=positive_int, default=DEFAULT_SIZES[0], help=f"train sequences per scenario (default {DEFAULT_SIZES[0]})")
    g.add_argument("--valid-sequences", type=positive_int, default=DEFAULT_SIZES[1], help=f"valid sequences (default {DEFAULT_SIZES[1]})")
    g.add_argument("--test-sequences", type=positive_int, default=DEFAULT_SIZES[2], help=f"test sequences, scored (default {DEFAULT_SIZES[2]})")
    g.add_argument("--seed", type=int, default=0, help="data seed (train uses it, valid +1, test +2)")
    g.add_argument("--cache", help="keep generated sets here and reuse them (default: a temporary folder)")
    g.add_argument("--runs", default="runs", help="folder for the run record (default runs/)")
    g.add_argument("--blas-threads", type=positive_int, default=1, help="BLAS threads while training (default 1)")
    g.add_argument("--verbose", action="store_true", help="also print each training's own tables")
    g.set_defaults(func=run_generalize)
    from models.auto.cli import register as register_auto

    register_auto(sub)


def main(argv: list[str] | None = None, prog: str = "python -m models") -> int:
    try:
        args = build_parser(prog).parse_args(argv)
        return int(args.func(args) or 0)
    except (UserError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
