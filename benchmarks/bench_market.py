"""Market generation speed and memory: the budgets of issue #3.

A: a 517-sequence set in at most 20 s. B: a 10,721-sequence train set in at most 3 minutes
and 3 GB peak RSS. Each set is generated in a fresh child process (so start-up, the process
build and imports count, and the peak RSS is that child's alone, read from ``wait4``).
The machine may be shared: the table also shows CPU time and the load average, so a slow
wall clock caused by other work is visible as such.

Run: ``.venv/bin/python benchmarks/bench_market.py [--only A|B]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.market.defaults import DEFAULT_SETS  # noqa: E402

CASES = {
    # key: (split, sequences, seed, wall budget s, RSS budget bytes or None)
    "A": ("train", DEFAULT_SETS[("A", "train")][0], 1, 20.0, None),
    "B": ("train", DEFAULT_SETS[("B", "train")][0], 1, 180.0, 3 * 1024**3),
}

CHILD = """
import sys
from pathlib import Path
from harness.market import get_generator, write_set
key, split, n, seed, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5])
write_set(get_generator(key), n, seed, split, out)
"""


@dataclass
class Result:
    key: str
    sequences: int
    wall_s: float
    cpu_s: float
    peak_rss: int
    size: int
    load: float
    wall_budget: float
    rss_budget: int | None

    @property
    def ok(self) -> bool:
        return self.wall_s <= self.wall_budget and (self.rss_budget is None or self.peak_rss <= self.rss_budget)


def measure(key: str, folder: Path) -> Result:
    """Generate one set in a child process; wall time, CPU time and peak RSS from wait4."""
    split, n, seed, wall_budget, rss_budget = CASES[key]
    out = folder / f"{key}_{split}.parquet"
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, key, split, str(n), str(seed), str(out)], cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"generating {key} failed with exit code {proc.returncode}")
    size = out.stat().st_size + out.with_name(out.stem + ".oracle.parquet").stat().st_size
    return Result(
        key=key, sequences=n, wall_s=wall, cpu_s=usage.ru_utime + usage.ru_stime, peak_rss=usage.ru_maxrss * 1024,
        size=size, load=max(load_before, os.getloadavg()[0]), wall_budget=wall_budget, rss_budget=rss_budget,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(CASES), action="append")
    args = parser.parse_args(argv)
    console = Console()
    keys = args.only or sorted(CASES)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench_market_") as tmp:
        for key in keys:
            if key == "B" and importlib.util.find_spec("harness.market.b") is None:
                console.print("B skipped: harness/market/b.py does not exist yet")
                continue
            console.print(f"generating {key} ({CASES[key][1]} sequences) ...")
            results.append(measure(key, Path(tmp)))
    table = Table(title=f"market generation ({psutil.cpu_count()} CPUs)")
    for col in ("set", "wall s", "budget s", "CPU s", "peak RSS", "RSS budget", "files", "load avg", "verdict"):
        table.add_column(col, justify="left" if col in ("set", "verdict") else "right")
    for r in results:
        table.add_row(
            f"{r.key} train, {r.sequences} seq", f"{r.wall_s:.1f}", f"{r.wall_budget:.0f}", f"{r.cpu_s:.1f}",
            f"{r.peak_rss / 1024**2:.0f} MB", "-" if r.rss_budget is None else f"{r.rss_budget / 1024**3:.0f} GB",
            f"{r.size / 1024**2:.0f} MB", f"{r.load:.1f}", "[green]pass[/]" if r.ok else "[red]over budget[/]",
        )
    console.print(table)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
