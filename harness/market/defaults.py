"""The default generated sets: what ``make data`` builds and ``make simulate`` and tests read.

Sizes follow the real sets (A: 517 train sequences, a quarter of that for valid and test;
B: the real train and valid counts and a smaller test), and B's valid set is shifted as the
real one is (``DEFAULT_KNOBS``). Seeds differ per split so no two
default sets share sequences even though each split also salts its own seed.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

from harness.competitions import get

DEFAULT_SETS: dict[tuple[str, str], tuple[int, int]] = {
    ("A", "train"): (517, 1001),
    ("A", "valid"): (128, 1002),
    ("A", "test"): (128, 1003),
    ("B", "train"): (10721, 2001),
    ("B", "valid"): (1444, 2002),
    ("B", "test"): (300, 2003),
}
"""(competition key, split) -> (number of sequences, seed)."""

DEFAULT_KNOBS: dict[tuple[str, str], dict[str, float]] = {("B", "valid"): {"shift": 1.0}}
"""Generator knobs of the default sets that have any. B's valid set carries the real train/valid
shift (``calibration.md``: valid targets with 1.5x and 1.8x the train std, price levels about
one train std higher), so a local valid score meets the shift a real one meets."""

DEFAULT_ROOT = Path("data")


def default_spec(key: str, split: str) -> tuple[int, int]:
    """(n_sequences, seed) of a default set, with a clear error for an unknown one."""
    comp_key = get(key).key
    spec = DEFAULT_SETS.get((comp_key, split))
    if spec is None:
        known = sorted({s for (_, s) in DEFAULT_SETS})
        raise KeyError(f"no default {comp_key} set for split {split!r}; splits are {known}")
    return spec


def default_knobs(key: str, split: str) -> dict[str, float]:
    """The generator knobs a default set is drawn with (none for most)."""
    default_spec(key, split)
    return dict(DEFAULT_KNOBS.get((get(key).key, split), {}))


def default_path(key: str, split: str, root: Path = DEFAULT_ROOT) -> Path:
    """Where the default set lives: ``data/A/valid.parquet`` and so on."""
    default_spec(key, split)
    return Path(root) / get(key).key / f"{split}.parquet"


def is_current(
    path: Path, generator: object, n_sequences: int, seed: int, split: str, knobs: dict[str, float] | None = None
) -> bool:
    """Whether ``path`` and its sidecar exist and were made by this generator version with these settings."""
    from harness.market.base import read_stamp, sidecar_path, stamp

    if not (path.exists() and sidecar_path(path).exists()):
        return False
    want = stamp(generator, n_sequences, seed, split, knobs or {})  # type: ignore[arg-type]
    return read_stamp(path) == want and read_stamp(sidecar_path(path)) == want


def ensure(key: str, split: str, root: Path = DEFAULT_ROOT, quiet: bool = False) -> Path:
    """The default set's path, generating it first (with a progress bar) if it is missing or stale.

    Stale means made by another generator version or with other settings (see
    ``base.stamp``), so a change to a process never leaves old default data in use.
    """
    from harness.market import get_generator
    from harness.market.base import write_set

    path = default_path(key, split, root)
    n, seed = default_spec(key, split)
    knobs = default_knobs(key, split)
    generator = get_generator(key)
    if is_current(path, generator, n, seed, split, knobs):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # One maker at a time: a second process waits, then finds the set current and returns.
    with open(path.with_name(f".{path.stem}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_current(path, generator, n, seed, split, knobs):
            return path
        if quiet:
            return write_set(generator, n, seed, split, path, **knobs)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, transient=False) as bar:
            task = bar.add_task(f"{get(key).key} {split} -> {path}", total=n)
            return write_set(generator, n, seed, split, path, progress=lambda k: bar.advance(task, k), **knobs)
