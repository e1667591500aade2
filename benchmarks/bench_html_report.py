"""What ``--report FILE.html`` costs at the end of a run, and what the memory curve costs during it.

The page is written once, after the replay; its cost is drawing five figures (matplotlib) and
encoding them. It grows with the run only through the latency histogram (one value per row) and
the score by sequence (one per sequence); the memory curve is bounded (2,000 points). Measured
here on synthetic typed reports the size of a full test set: A (517 sequences, 517,000 calls)
and B (1,500 sequences, 1.5 M calls), with the wall and CPU time of building the page and its
size. The memory curve's cost is that of one ``MemorySeries.add`` per sample of the monitor loop
(every 50 ms), measured over a 90-minute run's worth of samples with their coarsening.

Wall times on a shared machine include waits for a core (load average printed); CPU time is the
figure to compare between rows.

Usage: python benchmarks/bench_html_report.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import competitions as C  # noqa: E402
from harness.randomdata import synthetic_by_sequence  # noqa: E402
from harness.html_report import simulation_html  # noqa: E402
from harness.memory_series import MemorySeries  # noqa: E402
from harness.simulation import (Latency, Memory, Projection, SandboxFacts, Score,  # noqa: E402
                                SimulationReport, Timing)


def synthetic_report(comp: C.Competition, sequences: int, seed: int = 0) -> tuple[SimulationReport, np.ndarray]:
    """A passed run of ``sequences`` sequences with every section filled, and its per-call times."""
    rng = np.random.default_rng(seed)
    names = list(comp.prediction_names)
    score = Score(0.2, dict(zip(names, rng.uniform(0, 0.4, len(names)))), (0.18, 0.22),
                  {"observable": 0.3, "fraction_of_observable": 0.66, "hidden": 0.5,
                   "per_output": dict(zip(names, rng.uniform(0.2, 0.5, len(names))))},
                  by_sequence=synthetic_by_sequence(comp, range(sequences), rng))
    latency_ns = rng.lognormal(np.log(40_000), 0.4, sequences * 1000).astype(np.int64)
    timing = Timing(0.4, 0.6, 1.0, 60.0, 58.0, comp.limits.seconds, 1.5, comp.test_sequences, 59.0, 0.03,
                    Latency(30.0, 50.0, 90.0, 900.0, 40.0, sequences * 100),
                    Latency(35.0, 55.0, 95.0, 1500.0, 42.0, sequences * 900),
                    Projection(2e4, 50.0, 0.1, 60.0 * 41))
    memory = Memory(400 * 2**20, comp.limits.memory_bytes, [2.7 * i for i in range(2000)],
                    [int(2**20 * (300 + i % 100)) for i in range(2000)])
    sandbox = SandboxFacts("pinned to core 1 of 2", 0.99, "internet sockets refused", "read-only", "counted", 0)
    report = SimulationReport("solutions/x", "data.parquet", comp.key, comp.metric, None, sequences,
                              sequences * 1000, score, timing, memory, sandbox, verdict="PASS")
    return report, latency_ns


def page_cost(comp: C.Competition, sequences: int, repeats: int) -> tuple[float, float, int]:
    """Best wall and CPU seconds of building the page, and its size in bytes."""
    report, latency_ns = synthetic_report(comp, sequences)
    simulation_html(report, latency_ns)  # the first call pays matplotlib's start-up
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        text = simulation_html(report, latency_ns)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, len(text.encode())


def series_cost(minutes: float = 90.0, interval_s: float = 0.05) -> tuple[float, int]:
    """CPU microseconds per ``add`` over a run of ``minutes`` sampled every ``interval_s``, and
    the points kept."""
    samples = int(minutes * 60 / interval_s)
    rss = np.random.default_rng(0).integers(10**8, 10**9, samples).tolist()
    series = MemorySeries()
    start = time.process_time()
    for i, value in enumerate(rss):
        series.add(i * interval_s, value)
    return (time.process_time() - start) / samples * 1e6, len(series)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"HTML report (load average {os.getloadavg()[0]:.1f})")
    for column in ("run", "sequences", "calls", "wall s", "CPU s", "page KiB"):
        table.add_column(column, justify="right")
    for comp, sequences in ((C.A, C.A.test_sequences), (C.B, C.B.test_sequences)):
        wall, cpu, size = page_cost(comp, sequences, args.repeats)
        table.add_row(comp.key, f"{sequences:,}", f"{sequences * 1000:,}", f"{wall:.2f}", f"{cpu:.2f}",
                      f"{size / 1024:.0f}")
    console.print(table)
    us, points = series_cost()
    console.print(f"memory curve: {us:.2f} us CPU per sample over a 90-minute run sampled every 50 ms "
                  f"({90 * 60 * 20:,} samples), {points} points kept")


if __name__ == "__main__":
    main()
