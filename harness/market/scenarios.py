"""Scenarios: markets whose whole *structure* is drawn from an integer, not only their noise.

A model tuned on one simulator learns that simulator. To measure how a model does on a
market it was never tuned on, the generator draws whole structures: scenario ``K`` (a
non-negative integer) is a reproducible market (``a_scenarios.draw_design`` for A,
``b_scenarios.draw_params`` for B), each with its exact oracle sidecar, each keeping the data's
form (``form``); ``default`` (None here) is the calibrated market, byte for byte.

The API other code uses:

* ``parse_scenario("3") -> 3``, ``parse_scenario("default") -> None``;
  ``parse_scenarios("1-5") -> [1, 2, 3, 4, 5]`` (also ``"default,2,4-5"``); ``ScenarioError``
  on a bad spec;
* ``scenario_generator(competition, scenario)``: a ``Generator`` for ``base.write_set``;
* ``generate_scenario(competition, scenario, out_dir, sizes, seed)``: train/valid/test (any
  of them) under ``out_dir`` with their sidecars; returns ``{split: path}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from harness.market.base import Generator

DEFAULT = "default"
"""The name of today's calibrated market (no drawn structure)."""

SPLIT_SEED_OFFSET = {"train": 0, "valid": 1, "test": 2}
"""Seed offsets per split in ``generate_scenario``, so no two splits share a stream."""


class ScenarioError(ValueError):
    """A scenario name or list that is not one (the message says what is accepted)."""


def parse_scenario(text: str | int | None) -> int | None:
    """``"default"`` (or None) -> None; a non-negative integer (or its text) -> that integer."""
    if text is None or text == DEFAULT:
        return None
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif isinstance(text, str) and text.strip().isdigit():
        value = int(text.strip())
    else:
        raise ScenarioError(f"a scenario is 'default' or a non-negative integer, got {text!r}")
    if value < 0:
        raise ScenarioError(f"a scenario is 'default' or a non-negative integer, got {value}")
    return value


def parse_scenarios(spec: str) -> list[int | None]:
    """A comma-separated list of scenarios and ranges (``"1-5"``, ``"default,2,7-8"``), in order,
    without repeats."""
    out: list[int | None] = []
    items = [item.strip() for item in str(spec).split(",")]
    if not spec or not all(items):
        raise ScenarioError(f"--scenarios takes a list like 1-5 or default,2,4-6; got {spec!r}")
    for item in items:
        match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", item)
        if match:
            lo, hi = int(match.group(1)), int(match.group(2))
            if lo > hi:
                raise ScenarioError(f"scenario range {item!r} runs backwards; write {hi}-{lo}")
            chosen: list[int | None] = list(range(lo, hi + 1))
        else:
            chosen = [parse_scenario(item)]
        out += [k for k in chosen if k not in out]
    return out


def label(scenario: int | None) -> str:
    """How a scenario is named in tables and file names."""
    return DEFAULT if scenario is None else str(scenario)


def scenario_generator(competition: str, scenario: int | None, workers: int | None = None) -> Generator:
    """The generator of ``scenario`` for competition ``competition`` ("A"/"B"); the default one for None."""
    from harness.competitions import get
    from harness.market import get_generator

    key = get(competition).key
    if scenario is None:
        return get_generator(key)
    if key == "A":
        from harness.market.a import AGenerator
        from harness.market.a_scenarios import draw_design

        return AGenerator(workers=workers, design=draw_design(scenario), scenario=scenario)
    from harness.market.b import BGenerator
    from harness.market.b_scenarios import draw_params

    return BGenerator(draw_params(scenario), scenario=scenario)


def generate_scenario(
    competition: str,
    scenario: int | None,
    out_dir: Path,
    sizes: Mapping[str, int],
    seed: int = 0,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Path]:
    """Write ``out_dir/<split>.parquet`` (with its oracle sidecar) for each ``split: n_sequences``
    of ``sizes``; return ``{split: path}``.

    Split ``s`` uses seed ``seed + SPLIT_SEED_OFFSET[s]`` and the default sets' knobs for that
    split (B's valid set carries the real train/valid shift), so a scenario's sets relate to
    each other as the default ones do. ``progress(split, k)`` is told of every k sequences written.
    """
    from harness.market.base import SPLITS, write_set
    from harness.market.defaults import default_knobs

    generator = scenario_generator(competition, scenario)
    key = generator.competition.key
    paths: dict[str, Path] = {}
    for split, n in sizes.items():
        if split not in SPLITS:
            raise ScenarioError(f"unknown split {split!r}; use {', '.join(SPLITS)}")
        tick = None if progress is None else (lambda k, s=split: progress(s, k))
        out = Path(out_dir) / f"{split}.parquet"
        paths[split] = write_set(generator, int(n), int(seed) + SPLIT_SEED_OFFSET[split], split, out,
                                 progress=tick, **default_knobs(key, split))
    return paths
