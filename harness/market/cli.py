"""Sub-commands of the market: ``generate``, ``calibrate`` and ``data``.

``generate`` writes one set; ``calibrate`` prints (and saves) the calibration table, on given
files, on fresh sets, or on the default sets; ``data`` builds the default sets that are missing
(``make data``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli import competition_key
from harness.competitions import get

if TYPE_CHECKING:
    from harness.market.base import Generator

QUICK_SIZES = {"A": (96, 32), "B": (200, 60)}
"""(train, valid) sequences for ``calibrate --quick``: enough for every statistic, seconds to run."""


def _parse_knob(text: str) -> tuple[str, object]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"a knob is NAME=VALUE, got {text!r}")
    value: object = raw
    for cast in (int, float):
        try:
            value = cast(raw)
            break
        except ValueError:
            continue
    if raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    return name.replace("-", "_"), value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``generate``, ``calibrate`` and ``data`` to the harness command line."""
    from harness.market.base import SPLITS

    gen = subparsers.add_parser("generate", help="write one synthetic set (parquet + oracle sidecar)")
    gen.add_argument("--competition", "-c", required=True, type=competition_key, help="A or B")
    gen.add_argument("--split", required=True, choices=SPLITS)
    gen.add_argument("--sequences", "-n", required=True, type=int)
    gen.add_argument("--seed", required=True, type=int)
    gen.add_argument("--out", required=True, type=Path, help="parquet path; the sidecar goes beside it")
    gen.add_argument("--knob", action="append", default=[], type=_parse_knob, metavar="NAME=VALUE",
                     help="generator knob, e.g. shift=1.0 (repeatable)")
    gen.add_argument("--scenario", default="default", metavar="K",
                     help="market structure: 'default' (the calibrated one) or an integer K (a reproducible drawn structure)")
    gen.add_argument("--quiet", action="store_true")
    gen.set_defaults(func=_generate)

    cal = subparsers.add_parser("calibrate", help="the calibration table: real statistics beside generated ones")
    cal.add_argument("--competition", "-c", required=True, type=competition_key, help="A or B")
    cal.add_argument("--train", type=Path, help="train parquet (with --valid)")
    cal.add_argument("--valid", type=Path, help="valid parquet (with --train)")
    cal.add_argument("--sequences", "-n", type=int, help="generate fresh sets of this many train sequences")
    cal.add_argument("--valid-sequences", type=int, help="valid size with --sequences (default: the default set's ratio)")
    cal.add_argument("--seed", type=int, default=0, help="seed for fresh sets (valid uses seed + 1)")
    cal.add_argument("--quick", action="store_true", help="small fresh sets: a smoke test, not a calibration")
    cal.add_argument("--no-gbm", action="store_true", help="skip the gradient-boosting baseline (minutes on 2 cores)")
    cal.add_argument("--scenario", default="default", metavar="K",
                     help="calibrate fresh sets of scenario K (an integer; default: the calibrated market); "
                          "the quick sizes unless --sequences")
    cal.add_argument("--out-dir", type=Path, default=Path("reports"))
    cal.set_defaults(func=_calibrate)

    dat = subparsers.add_parser("data", help="make the default sets that are missing (make data)")
    dat.add_argument("--only", action="append", default=[], metavar="KEY/SPLIT", help="e.g. A/valid (repeatable)")
    dat.add_argument("--root", type=Path, default=Path("data"))
    dat.set_defaults(func=_data)


def _generate(args: argparse.Namespace) -> int:
    from harness.cli import UserError
    from harness.market.base import sidecar_path, write_set
    from harness.market.scenarios import ScenarioError, parse_scenario, scenario_generator

    if args.sequences < 1:
        raise UserError(f"--sequences must be at least 1, got {args.sequences}")
    if args.seed < 0:
        raise UserError(f"--seed must be non-negative, got {args.seed}")
    try:
        generator = scenario_generator(args.competition, parse_scenario(args.scenario))
    except ScenarioError as exc:
        raise UserError(f"--scenario: {exc}") from exc
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from exc
    knobs = dict(args.knob)
    try:
        if args.quiet:
            write_set(generator, args.sequences, args.seed, args.split, args.out, **knobs)
        else:
            _write_with_bar(generator, args.sequences, args.seed, args.split, args.out, knobs)
    except TypeError as exc:  # an unknown knob reaches the generator's signature
        raise UserError(f"bad knob for {args.competition}: {exc}") from exc
    if not args.quiet:
        print(f"wrote {args.out} and {sidecar_path(args.out)}")
    return 0


def _write_with_bar(generator: Generator, n: int, seed: int, split: str, out: Path, knobs: dict[str, object]) -> Path:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from harness.market.base import write_set

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as bar:
        task = bar.add_task(f"{generator.competition.key} {split}", total=n)
        return write_set(generator, n, seed, split, out, progress=lambda k: bar.advance(task, k), **knobs)


def _calibrate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.cli import UserError
    from harness.market import calibrate as cal
    from harness.market.calrow import rich_table, write_reports
    from harness.market.defaults import default_spec, ensure
    from harness.market.form import failures, form_rows
    from harness.market.scenarios import ScenarioError, label, parse_scenario

    key = args.competition
    try:
        scenario = parse_scenario(args.scenario)
    except ScenarioError as exc:
        raise UserError(f"--scenario: {exc}") from exc
    if scenario is not None and args.train is not None:
        raise UserError("--scenario generates its own sets: leave out --train/--valid")
    if (args.train is None) != (args.valid is None):
        raise UserError("give both --train and --valid, or neither")
    if args.train is not None and (args.sequences or args.quick):
        raise UserError("--train/--valid and --sequences/--quick exclude each other")
    console = Console()
    with tempfile.TemporaryDirectory(prefix=f"calibrate_{key}_") as tmp:
        if args.train is not None:
            for p in (args.train, args.valid):
                if not Path(p).exists():
                    raise UserError(f"{p} does not exist")
            train, valid = Path(args.train), Path(args.valid)
            source = "given files"
        elif args.sequences or args.quick or scenario is not None:
            if args.quick or not args.sequences:
                n_train, n_valid = QUICK_SIZES[key]
            else:
                n_train, n_valid = args.sequences, args.valid_sequences
                if n_valid is None:  # the default sets' valid/train ratio
                    full_train, full_valid = default_spec(key, "train")[0], default_spec(key, "valid")[0]
                    n_valid = max(2, round(n_train * full_valid / full_train))
            if n_train < 2 or n_valid < 2:
                raise UserError("calibration needs at least 2 train and 2 valid sequences")
            with console.status(f"scenario {label(scenario)}: drawing its structure and generating the sets"):
                train, valid = cal.fresh_sets(key, n_train, n_valid, args.seed, Path(tmp), scenario)
            source = f"fresh sets of scenario {label(scenario)}, seed {args.seed}"
        else:
            train, valid = ensure(key, "train"), ensure(key, "valid")
            source = "default sets"
        try:
            rows, meta, notes = cal.calibration(key, train, valid, with_gbm=not args.no_gbm)
        except KeyError as exc:
            raise UserError(str(exc.args[0])) from exc
    meta["source"] = source
    meta["scenario"] = label(scenario)
    form = form_rows(key, rows)
    bad = failures(key, rows)
    notes.append(f"form (the rows every scenario must keep): {len(form) - len(bad)} of {len(form)} pass"
                 + ("" if not bad else "; outside: " + "; ".join(bad)))
    title = f"Calibration, {get(key).title}" + ("" if scenario is None else f", scenario {scenario}")
    stem = key if scenario is None else f"{key}_scenario{scenario}"  # a scenario never overwrites the default's report
    md, js = write_reports(rows, args.out_dir, stem, title, meta, notes)
    console.print(rich_table(rows, title))
    for note in notes:
        console.print(f"  {note}")
    console.print(f"wrote {md} and {js}")
    return 0


def _data(args: argparse.Namespace) -> int:
    from harness.cli import UserError
    from harness.market.defaults import DEFAULT_SETS, ensure

    wanted: list[tuple[str, str]] = []
    for item in args.only:
        key, sep, split = item.partition("/")
        try:
            comp_key = get(key).key
        except KeyError as exc:
            raise UserError(str(exc.args[0])) from exc
        if not sep or (comp_key, split) not in DEFAULT_SETS:
            raise UserError(f"--only takes KEY/SPLIT among {[f'{k}/{s}' for k, s in DEFAULT_SETS]}, got {item!r}")
        wanted.append((comp_key, split))
    for key, split in wanted or list(DEFAULT_SETS):
        try:
            path = ensure(key, split, args.root)
        except KeyError as exc:  # that generator is not built yet
            if wanted:
                raise UserError(str(exc.args[0])) from exc
            print(f"skipped {key}/{split}: {exc.args[0]}")
            continue
        print(f"{key}/{split}: {path}")
    return 0
