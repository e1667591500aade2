"""What the trustworthy verdict costs (issue #13): the private ``state`` per row, the causality
check, and ``gate`` on ``solutions/a_gru`` with its defaults.

- per row: building each row's private ``state`` (a strided view whose base holds only that
  row) against the plain row views it replaced and a contiguous copy, on a 1000-row sequence;
- causality: writing the cut copy of the check sample and comparing the two replays; the replay
  of the copy is the determinism replay the gate made before, so it adds no process;
- gate: ``python -m harness gate solutions/a_gru`` with defaults, wall time (target < 60 s).

Usage: python benchmarks/bench_gate.py [--candidate solutions/a_gru]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import lookahead  # noqa: E402
from harness.data import ParquetSource  # noqa: E402
from harness.gate import CHECK_SEQUENCES  # noqa: E402
from harness.replay import private_states  # noqa: E402


def per_row_ns(build, features: np.ndarray, repeat: int = 7, number: int = 20) -> float:
    return min(timeit.repeat(lambda: build(features), number=number, repeat=repeat)) / number / len(features) * 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidate", default="solutions/a_gru")
    parser.add_argument("--data", default=str(ROOT / "data" / "A" / "valid.parquet"))
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"Verdict costs (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    for col in ("what", "measured", "target"):
        table.add_column(col, justify="left" if col == "what" else "right")

    features = np.random.default_rng(0).standard_normal((1000, 32))
    views = per_row_ns(list, features)
    copies = per_row_ns(lambda f: list(map(np.ndarray.copy, f)), features)
    private = per_row_ns(private_states, features)
    table.add_row("state per row: plain views of the block (before)", f"{views:.0f} ns", "")
    table.add_row("state per row: contiguous copy (not chosen)", f"{copies:.0f} ns", "")
    table.add_row("state per row: private strided view (now)", f"{private:.0f} ns",
                  f"+{private - views:.0f} ns a row")
    table.add_section()

    source = ParquetSource(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        lookahead.write_cut_copy(source, CHECK_SEQUENCES, Path(tmp) / "warm.parquet", seed=0)  # imports, caches
        start = time.perf_counter()
        sample = lookahead.write_cut_copy(source, CHECK_SEQUENCES, Path(tmp) / "cut.parquet", seed=0)
        write_s = time.perf_counter() - start
    per = source.competition.scored_steps_per_sequence
    a = np.random.default_rng(1).standard_normal((per, source.competition.n_outputs))
    start = time.perf_counter()
    for t in sample.cuts.values():
        lookahead.first_difference(a, a.copy(), source.competition, upto=t)
        lookahead.ignores_its_rows(a, a + 1, source.competition, t)
    compare_s = time.perf_counter() - start
    table.add_row(f"causality: write the cut copy ({CHECK_SEQUENCES} sequences)", f"{write_s * 1e3:.0f} ms", "")
    table.add_row("causality: compare the two replays", f"{compare_s * 1e3:.1f} ms", "")
    table.add_row("causality: extra sandbox runs", "0", "(the determinism replay is the cut one)")
    table.add_section()

    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness", "gate", args.candidate], cwd=ROOT,
                          capture_output=True, text=True)
    gate_s = time.perf_counter() - start
    verdict = "passed" if done.returncode == 0 else f"exit {done.returncode}"
    table.add_row(f"gate {args.candidate} with defaults ({verdict})", f"{gate_s:.1f} s",
                  f"< 60 s: {'PASS' if gate_s < 60 else 'FAIL'}")
    console.print(table)
    if done.returncode not in (0, 1):
        console.print(done.stderr[-2000:])


if __name__ == "__main__":
    main()
