"""``python -m models generalize``: how a solution does on markets it was never tuned on.

For each scenario (``harness.market.scenarios``) it generates small train, valid and test
sets (into a cache folder or a temporary one, never ``data/``), trains the solution's manifest
on train and valid exactly as ``python -m models train`` does (``registry.train_solution``),
but into a temporary copy of the solution folder, so the shipped artifacts are never touched,
and scores what was written on the *test* file: valid already chose the early-stopping epoch
or the guard, so its score is not an honest one. Each score is divided by that test file's
observable-oracle score (``harness.market.oracle.score_oracle``, the one place the fraction is
computed); the mean and the worst fraction over scenarios are the project's generalization
benchmark.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from models.config import ConfigError

DEFAULT_SIZES = (64, 24, 24)
"""(train, valid, test) sequences per scenario when not given: minutes for a ridge, not hours."""


@dataclass
class GeneralizeOptions:
    """What ``generalize`` runs: which scenarios, how much data, where sets are kept."""

    scenarios: list[int | None]
    sequences: int = DEFAULT_SIZES[0]
    valid_sequences: int = DEFAULT_SIZES[1]
    test_sequences: int = DEFAULT_SIZES[2]
    seed: int = 0
    cache: Path | None = None  # None: a temporary folder, removed at the end
    blas_threads: int = 1
    sizes: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.sizes = {"train": self.sequences, "valid": self.valid_sequences, "test": self.test_sequences}


@contextmanager
def _folder(cache: Path | None) -> Iterator[Path]:
    if cache is not None:
        Path(cache).mkdir(parents=True, exist_ok=True)
        yield Path(cache)
        return
    with tempfile.TemporaryDirectory(prefix="wunderbench-generalize-") as tmp:
        yield Path(tmp)


def scenario_sets(key: str, scenario: int | None, root: Path, options: GeneralizeOptions) -> dict[str, Path]:
    """The scenario's train/valid/test files under ``root``, generated unless already current there."""
    from harness.market.defaults import default_knobs, is_current
    from harness.market.scenarios import SPLIT_SEED_OFFSET, generate_scenario, label, scenario_generator

    folder = root / key / f"scenario-{label(scenario)}" / "-".join(f"{s}{n}" for s, n in options.sizes.items())
    folder = folder.with_name(f"{folder.name}-seed{options.seed}")
    generator = scenario_generator(key, scenario)
    paths = {split: folder / f"{split}.parquet" for split in options.sizes}
    if all(is_current(paths[s], generator, n, options.seed + SPLIT_SEED_OFFSET[s], s, default_knobs(key, s))
           for s, n in options.sizes.items()):
        return paths
    return generate_scenario(key, scenario, folder, options.sizes, options.seed)


def run_scenario(solution: Path, scenario: int | None, root: Path, options: GeneralizeOptions, console: Console) -> dict:
    """Train a temporary copy of ``solution`` on one scenario's train/valid, score it on its test set."""
    from threadpoolctl import threadpool_limits

    from harness.market.scenarios import label
    from models.data import load_sequences
    from models.evaluate import evaluate
    from models.registry import family, read_manifest, train_solution

    started = time.perf_counter()
    manifest = read_manifest(solution)
    key = manifest.competition
    with console.status(f"scenario {label(scenario)}: drawing the market and generating its sets"):
        paths = scenario_sets(key, scenario, root, options)
    sets = {split: load_sequences(path, competition=key) for split, path in paths.items()}
    with tempfile.TemporaryDirectory(prefix="wunderbench-generalize-solution-") as tmp:
        copy = Path(tmp) / solution.name
        shutil.copytree(solution, copy)
        with threadpool_limits(limits=options.blas_threads):
            trained = train_solution(copy, sets["train"], sets["valid"], console)
            report = evaluate(family(manifest.family).load_offline(copy), sets["test"])
    oracle = report.get("oracle") or {}
    return {
        "scenario": label(scenario),
        "test_score": report["score"],
        "test_per_output": report["per_output"],
        "test_oracle": oracle.get("observable"),
        "fraction_of_oracle": oracle.get("fraction_of_observable"),
        "valid_score": trained.record["valid_score"],
        "sequences": {split: len(s) for split, s in sets.items()},
        "seconds": time.perf_counter() - started,
    }


def summary(rows: list[dict]) -> dict:
    """Mean and worst fraction of oracle over the scenarios that have one."""
    fractions = [r["fraction_of_oracle"] for r in rows if r["fraction_of_oracle"] is not None]
    if not fractions:
        return {"mean_fraction": None, "worst_fraction": None, "worst_scenario": None}
    worst = min((r for r in rows if r["fraction_of_oracle"] is not None), key=lambda r: r["fraction_of_oracle"])
    return {"mean_fraction": sum(fractions) / len(fractions), "worst_fraction": worst["fraction_of_oracle"],
            "worst_scenario": worst["scenario"]}


def generalize(solution: Path, options: GeneralizeOptions, console: Console) -> dict:
    """Every scenario of ``options`` for ``solution``: the per-scenario rows and their summary.

    Raises ConfigError (one line for the user) when the folder is not a trainable solution.
    """
    from models.registry import FAMILIES, read_manifest

    solution = Path(solution)
    if not (solution / "manifest.json").is_file():
        raise ConfigError(f"{solution}: no manifest.json; name a solution folder such as solutions/a_ridge_var")
    manifest = read_manifest(solution)
    if not manifest.trained or manifest.family not in FAMILIES:
        raise ConfigError(f"{solution}: its manifest names no trainable family (\"trained\": true and one of "
                          f"{', '.join(sorted(FAMILIES))})")
    if not options.scenarios:
        raise ConfigError("--scenarios names no scenario")
    rows = []
    with _folder(options.cache) as root:
        for scenario in options.scenarios:
            rows.append(run_scenario(solution, scenario, root, options, console))
    return {"solution": solution.name, "competition": manifest.competition, "family": manifest.family,
            "sizes": options.sizes, "seed": options.seed, "scenarios": rows, **summary(rows)}


def table(result: dict, plain: bool):
    """The per-scenario table (rich; ASCII borders when ``plain``, e.g. when piped)."""
    from rich import box
    from rich.table import Table

    t = Table(title=f"{result['solution']} ({result['family']}) across scenarios: test score and fraction of oracle",
              box=box.ASCII if plain else box.HEAVY_HEAD)
    for name in ("scenario", "test score", "test oracle", "fraction of oracle", "valid score", "seconds"):
        t.add_column(name, justify="left" if name == "scenario" else "right")

    def fmt(value: float | None, digits: int = 4) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    for r in result["scenarios"]:
        t.add_row(r["scenario"], fmt(r["test_score"]), fmt(r["test_oracle"]), fmt(r["fraction_of_oracle"], 3),
                  fmt(r["valid_score"]), f"{r['seconds']:.0f}")
    t.add_row("mean", "", "", fmt(result["mean_fraction"], 3), "", "", end_section=False)
    t.add_row(f"worst ({result['worst_scenario'] or '-'})", "", "", fmt(result["worst_fraction"], 3), "", "")
    return t
