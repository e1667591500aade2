"""``python -m models auto``: search model families and settings on your own data within a time
budget, and write the best one that fits the grader's time limit as a solution folder.

Every input is checked before any work (the files against the contract, the valid file's size,
the output folder, the families), so a mistake is one line and exit 2 before a minute is spent.
Exit 1 when no trial finished within the limit (nothing is written then but the run record).

The order of work, and which rows each step reads: the trials fit train and are chosen on the
selection part of valid; an ensemble of the best trials is proposed (``models.auto.blend``,
``--no-ensemble`` skips it); the choice is refitted on train and the selection part
(``models.auto.refit``, ``--no-refit`` writes the searched model as it is); the written model is
scored once on the report part, which nothing fitted or chose on. The run record lists the
sequences of each part.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console

from harness import competitions
from harness.cli import add_execution_options, competition_key, engine_from, positive_float, positive_int
from harness.competitions import SEQUENCE_LENGTH
from harness.data import DataError, ParquetSource
from harness.execution import Engine, ExecutionError
from harness.competitions import SAFETY_FACTOR
from models.auto import blend, output, space
from models.auto import refit as refit_mod
from models.auto.progress import summary
from models.auto.search import FINISH_RESERVE_S, SearchPlan, run_search
from models.auto.split import split_valid
from models.auto.trial import TimeBudget, TrialResult
from models.config import ConfigError
from models.data import SequenceSet, load_sequences
from models.record import environment, file_sha256, utc_stamp, write_record

WIDE = 160
"""Columns of the printed table when the output is not a terminal."""

LATENCY_SEQUENCES = 3
"""Sequences each trial is replayed on in the sandbox to time it (the first is start-up)."""


def _count_sequences(path: Path, competition: str, limit: int | None) -> int:
    """Validate ``path`` against the contract (the whole file, or its first ``limit`` sequences)
    without keeping it; the number of sequences. ConfigError when it is missing or malformed."""
    try:
        source = ParquetSource(path, competition)
        rows = sum(len(block.values) for block in source.blocks(max_sequences=limit))
    except (DataError, FileNotFoundError) as exc:
        raise ConfigError(str(exc)) from exc
    return rows // SEQUENCE_LENGTH


def _load_valid(path: Path, competition: str) -> SequenceSet:
    try:
        return load_sequences(path, competition=competition)
    except (DataError, FileNotFoundError) as exc:
        raise ConfigError(str(exc)) from exc


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise ConfigError(f"{out} exists; pass --force to replace it, or choose another --out")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder; choose another --out")


def _engine(args: argparse.Namespace) -> Engine:
    """Where the search workers run: this machine only, since they share the study's journal
    file and write their trials beside ``--out`` (Optuna's shared storage over gRPC would need
    grpcio, which this project does not install)."""
    engine = engine_from(args)
    if engine.address is not None:
        raise ConfigError("auto --backend ray --address needs a storage every node shares, and its workers share "
                          "one journal file and write trial folders beside --out on this machine; run it on one "
                          "machine: --backend local, or --backend ray without --address (a local Ray instance)")
    return engine


def _plan(args: argparse.Namespace, console, started: float) -> tuple[SearchPlan, SequenceSet, SequenceSet]:
    """The search plan, the report part and the selection part; every input checked first."""
    out = Path(args.out)
    _check_out(out, args.force)
    engine = _engine(args)
    families = space.searchable(args.families.split(",") if args.families else None)
    train_path, valid_path = Path(args.train), Path(args.valid)
    with console.status(f"checking {train_path} and {valid_path}"):
        train_count = _count_sequences(train_path, args.competition, args.train_sequences)
        valid = _load_valid(valid_path, args.competition)
        report, select = split_valid(valid)
    features = space.feature_choices(competitions.get(args.competition))
    plan = SearchPlan(args.competition, train_path, valid_path, args.train_sequences, train_count, families, features,
                      args.minutes, engine, args.seed, args.trials, args.latency_sequences, args.grader_minutes,
                      args.safety, started, args.refit, args.ensemble)
    return plan, report, select


def _record(plan: SearchPlan, report: SequenceSet, select: SequenceSet, started_utc: str) -> dict:
    """The run record's facts of the search before it runs (the data's hashes are taken here, so
    none of the search's minutes go to them); trials, choice and report score are added after."""
    return {"command": "auto", "competition": plan.competition, "started_utc": started_utc,
            "data": {"train": {"path": str(plan.train), "sha256": file_sha256(plan.train),
                               "sequences": plan.train_count},
                     "valid": {"path": str(plan.valid), "sha256": file_sha256(plan.valid),
                               "sequences": len(report) + len(select), "report_sequences": len(report),
                               "selection_sequences": len(select),
                               "report_seq_ix": [int(i) for i in report.seq_ix],
                               "selection_seq_ix": [int(i) for i in select.seq_ix]}},
            "use_of_rows": use_of_rows(plan.refit),
            "search": {"minutes": plan.minutes, "workers": plan.engine.workers, "backend": plan.engine.backend,
                       "seed": plan.seed,
                       "max_trials": plan.max_trials, "families": plan.families, "features": list(plan.features),
                       "latency_sequences": plan.latency_sequences, "grader_minutes": plan.grader_minutes,
                       "safety": plan.safety, "refit": plan.refit, "ensemble": plan.ensemble,
                       "search_seconds": plan.search_seconds, "kept_after_search_seconds": plan.after_seconds},
            "environment": environment()}


def use_of_rows(refit: bool) -> dict[str, str]:
    """What each part of the data was used for (the run record's ``use_of_rows``)."""
    return {"train": "fits every trial" + (" and the refit of the choice" if refit else ""),
            "valid selection part": "chooses: a network's epoch (on half of it), the trial, the ensemble's members "
                                    "and weights" + ("; then fits the refit of the choice" if refit else ""),
            "valid report part": "scored once, on the written solution; nothing fits or chooses on it"}


def _ensemble(plan: SearchPlan, results: list[TrialResult], select: SequenceSet, budget: TimeBudget, work: Path,
              console) -> list[TrialResult]:
    """``results`` with the proposed ensemble of trials added when there is one."""
    if not plan.ensemble:
        return results
    number = max((r.number for r in results), default=-1) + 1
    with console.status("ensemble of the best trials"):
        proposed = blend.propose(results, select, number, work / "ensemble", budget, console)
    if proposed is None:
        console.print("ensemble: fewer than two trials can be members", highlight=False)
        return results
    console.print(f"ensemble (trial {number}): {proposed.status}" + (f", {proposed.error}" if proposed.error else ""),
                  highlight=False)
    return [*results, proposed]


def _refit(plan: SearchPlan, chosen: TrialResult, results: list[TrialResult], select: SequenceSet,
           budget: TimeBudget, work: Path, console) -> refit_mod.Refit:
    """The refit of ``chosen`` within the minutes left (``refit_mod.OFF`` with ``--no-refit``)."""
    if not plan.refit:
        return refit_mod.Refit(refit_mod.OFF, "--no-refit")
    with console.status(f"refit of trial {chosen.number} ({chosen.family}) on train and the selection part"):
        total = plan.minutes * 60
        left = plan.started + total - min(FINISH_RESERVE_S, total / 10) - time.time()
        load = lambda: load_sequences(plan.train, plan.train_sequences, plan.competition, oracle=False)  # noqa: E731
        outcome = refit_mod.refit(chosen, results, load, plan.train_count, select, plan.features, plan.seed, budget,
                                  work / "refit", left)
    if outcome.status == refit_mod.REFIT:
        console.print(f"refit: trial {chosen.number} ({chosen.family}) fitted again on {plan.train_count} train + "
                      f"{len(select)} selection sequences in {outcome.facts['seconds']:.0f} s; that is what is written",
                      highlight=False)
    else:
        console.print(f"[yellow]refit {outcome.status}:[/] {outcome.reason}; the searched trial is written",
                      highlight=False)
    return outcome


def run_auto(args: argparse.Namespace) -> int:
    """Check the inputs, search, choose, write DIR and the run record; print the trials table."""
    started, started_utc = time.time(), utc_stamp()
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, WIDE)  # a log or a pipe: the trials table unwrapped
    plan, report, select = _plan(args, console, started)
    record = _record(plan, report, select, started_utc)
    comp = competitions.get(plan.competition)
    out = Path(args.out)
    console.print(f"auto {comp.key}: {plan.train_count} train sequences; valid {len(report) + len(select)} = "
                  f"{len(select)} for selection + {len(report)} for the report; families {', '.join(plan.families)}; "
                  f"features {', '.join(plan.features)}; {plan.minutes:g} min on {plan.engine.workers} "
                  f"{plan.engine.backend} worker(s)",
                  highlight=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.auto-", dir=out.parent))
    try:
        try:
            results = run_search(plan, work, console)
        except ExecutionError as exc:  # the engine cannot start, or a worker died on every try
            raise ConfigError(f"auto: {exc}") from None
        budget = TimeBudget(plan.train, min(plan.latency_sequences, plan.train_count), plan.grader_minutes, plan.safety)
        results = _ensemble(plan, results, select, budget, work, console)
        chosen = output.choose(results)
        console.print(output.trials_table(results, comp.metric_label, chosen))
        record["trials"] = [r.to_dict() for r in results]
        record["chosen"] = None if chosen is None else chosen.to_dict()
        if chosen is None:
            record["seconds"] = time.time() - started
            path = write_record(f"auto-{comp.key}", record, args.runs)
            console.print(f"[red]no trial both finished and fit the grader's time limit[/] "
                          f"({summary(results)}); nothing written to {out}; run record {path}", highlight=False)
            return 1
        refitted = _refit(plan, chosen, results, select, budget, work, console)
        record["refit"] = refitted.to_dict()
        source = refitted.folder if refitted.status == refit_mod.REFIT else Path(chosen.folder)
        record["written"] = (f"the refit of trial {chosen.number}" if refitted.status == refit_mod.REFIT
                             else f"trial {chosen.number} as searched")
        staged = output.stage(source, work / "solution")
        record["report"] = scores = output.report_scores(staged, report)
        record["seconds"] = time.time() - started
        path = write_record(f"auto-{comp.key}", record, args.runs)
        (staged / output.RUN_RECORD).write_text(path.read_text())
        output.install(staged, out, args.force, work / "replaced")
        fraction = (scores.get("oracle") or {}).get("fraction_of_observable")
        console.print(f"chosen: trial {chosen.number} ({chosen.family}), selection {chosen.score:.4f}; written: "
                      f"{record['written']}; report part {scores['score']:.4f}"
                      + ("" if fraction is None else f" ({fraction:.3f} of the oracle)")
                      + f"; {out} written, run record {path}", highlight=False)
        # the gate scores against a baseline on --data; its default is the simulator's own valid
        # set, a market this model never saw, so the hint names the user's valid file
        console.print(f"next: python -m harness gate {out} --data {args.valid}", highlight=False)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``auto`` (``models.cli`` and the ``wunderbench`` command list it)."""
    p = sub.add_parser("auto", help="search families and settings on your data; write the best as a solution folder")
    p.add_argument("--competition", required=True, type=competition_key, help="A or B")
    p.add_argument("--train", required=True, help="train parquet")
    p.add_argument("--valid", required=True,
                   help="valid parquet: its first half is kept for the report, the rest chooses")
    p.add_argument("--out", required=True, help="solution folder to write (must not exist unless --force)")
    p.add_argument("--minutes", type=positive_float, default=30.0, help="wall-clock budget of the search (default 30)")
    add_execution_options(p, "search workers, each running trials one after another (one core's worth each)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler and of every trial (default 0)")
    p.add_argument("--trials", type=positive_int,
                   help="start no trial after this many (default: only the minutes bound the search)")
    p.add_argument("--families", help=f"comma-separated families to search (default: all of "
                                      f"{','.join(space.SPACES)})")
    p.add_argument("--train-sequences", type=positive_int, help="use only the first N train sequences")
    p.add_argument("--latency-sequences", type=positive_int, default=LATENCY_SEQUENCES,
                   help=f"sequences each trial is timed on in the sandbox (default {LATENCY_SEQUENCES})")
    p.add_argument("--grader-minutes", type=positive_float,
                   help="the grader's time limit the projection must fit (default: the competition's)")
    p.add_argument("--safety", type=positive_float, default=SAFETY_FACTOR,
                   help=f"slow-grader factor for the time projection (default {SAFETY_FACTOR})")
    p.add_argument("--refit", action=argparse.BooleanOptionalAction, default=True,
                   help="fit the chosen settings again on train and the selection part of valid before writing "
                        "(default: on; --no-refit writes the searched model)")
    p.add_argument("--ensemble", action=argparse.BooleanOptionalAction, default=True,
                   help="after the trials, propose an ensemble of the best ones, kept only if it beats the best on "
                        "the same selection sequences and fits the time limit (default: on)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--runs", default="runs", help="folder for run records (default runs/)")
    p.set_defaults(func=run_auto)
