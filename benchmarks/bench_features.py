"""Feature-library speed against the issue's targets (run: .venv/bin/python benchmarks/bench_features.py).

Measures, on random data shaped like the competitions (sizes from harness.competitions):

* streaming update of the full A (next-state) pipeline, microseconds per row;
* streaming update of the B (LOB) pipeline, microseconds per row;
* batch transform of the A training set's size (train sequences x sequence length rows).

How it is measured, and why: this machine is shared, and other processes' load inflates
wall time (and, through shared cores and caches, even CPU time). Streaming is timed in
blocks of 20 consecutive rows over whole sequences; the verdict uses the best block (the
usual microbenchmark estimate of the uncontended cost: every row in the block counts, and
all rows cost about the same), and the table also shows the CPU-time mean over all rows and
the median block. Batch is one long call; its verdict uses the process's CPU time, with wall
time beside it. The load average is printed because every number scales with it.

Targets: A streaming 50 us/row and A batch 10 s come from the issue. B has no target there;
200 us/row is our own choice (5% of B's ~4 ms per-call budget; the model needs the rest).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import competitions  # noqa: E402
from features.pipeline import Pipeline  # noqa: E402
from features.pipelines import preset_pipeline  # noqa: E402

A_STREAM_TARGET_US = 50.0
B_STREAM_TARGET_US = 200.0
A_BATCH_TARGET_S = 10.0


def random_a(sequences: int, steps: int, seed: int) -> np.ndarray:
    """Random walks with per-column scales and levels, stored as float32 like the data files."""
    rng = np.random.default_rng(seed)
    width = competitions.A.n_features
    scale = rng.uniform(0.1, 2.0, size=width)
    level = rng.normal(scale=5.0, size=width)
    walks = rng.normal(size=(sequences, steps, width)).cumsum(axis=1) * 0.1 * scale + level
    return walks.astype(np.float32)


def random_b(sequences: int, steps: int, seed: int) -> np.ndarray:
    """Order-book-like rows in B's column layout (bids below asks, sparse trades), float32."""
    rng = np.random.default_rng(seed)
    names = competitions.B.feature_columns
    levels = sum(name.startswith("p") for name in names) // 2
    trades = sum(name.startswith("dp") for name in names)
    count = sequences * steps
    mid = 100.0 + rng.normal(scale=0.02, size=(sequences, steps)).cumsum(axis=1).reshape(-1)
    depth = 0.01 * (np.arange(levels) + 0.5)
    volumes = rng.exponential(10.0, size=(count, 2 * levels))
    traded = rng.random((count, trades)) > 0.7
    trade_prices = np.where(traded, mid[:, None] + rng.normal(scale=0.01, size=(count, trades)), 0.0)
    trade_volumes = np.where(traded, rng.exponential(3.0, size=(count, trades)), 0.0)
    rows = np.concatenate([mid[:, None] - depth, mid[:, None] + depth, volumes, trade_prices, trade_volumes], axis=1)
    return rows.reshape(sequences, steps, -1).astype(np.float32)


def streaming_cost(pipeline: Pipeline, sequences: np.ndarray, block: int = 20) -> dict[str, float]:
    """Microseconds per row of ``update``: best 20-row block, CPU-time mean, wall-time median."""
    rows = [[np.array(row) for row in sequence] for sequence in sequences]  # rows as the grader hands them
    pipeline.reset()
    for row in rows[0][:200]:  # warm caches and lazily built tables
        pipeline.update(row)
    cpu = 0.0
    counted = 0
    blocks: list[float] = []
    for sequence_rows in rows:
        pipeline.reset()
        for start in range(0, len(sequence_rows), block):
            chunk = sequence_rows[start : start + block]
            wall_start, cpu_start = time.perf_counter(), time.thread_time()
            for row in chunk:
                pipeline.update(row)
            cpu += time.thread_time() - cpu_start
            blocks.append((time.perf_counter() - wall_start) / len(chunk))
            counted += len(chunk)
    return {"best": min(blocks) * 1e6, "cpu": cpu / counted * 1e6, "median": float(np.median(blocks)) * 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream-sequences", type=int, default=5, help="sequences streamed per pipeline")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target is missed")
    args = parser.parse_args()

    console = Console()
    a, b = competitions.A, competitions.B
    steps = competitions.SEQUENCE_LENGTH
    console.print(f"[bold]feature benchmark[/bold]  load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    train_a = random_a(a.train_sequences, steps, seed=0)
    fit_start = time.perf_counter()
    pipeline_a = preset_pipeline("next_state", a.feature_columns).fit(train_a[:64])
    fit_a = time.perf_counter() - fit_start
    pipeline_b = preset_pipeline("lob", b.feature_columns).fit(random_b(32, steps, seed=1))

    a_stream = streaming_cost(pipeline_a, random_a(args.stream_sequences, steps, seed=2))
    b_stream = streaming_cost(pipeline_b, random_b(args.stream_sequences, steps, seed=3))

    batch_start, batch_cpu_start = time.perf_counter(), time.process_time()
    features = pipeline_a.transform(train_a)
    batch_a = time.process_time() - batch_cpu_start
    batch_a_wall = time.perf_counter() - batch_start

    table = Table(title="features: streaming and batch speed")
    for column in ("measure", "outputs", "measured", "also seen", "target", "verdict"):
        table.add_column(column, justify="left" if column in ("measure", "also seen") else "right")

    def seen(cost: dict[str, float]) -> str:
        return f"CPU mean {cost['cpu']:.1f}, wall p50 {cost['median']:.1f}"

    results = [
        (f"A stream ({a.name}), us/row", pipeline_a.n_outputs, a_stream["best"], seen(a_stream), A_STREAM_TARGET_US),
        (f"B stream ({b.name}), us/row", pipeline_b.n_outputs, b_stream["best"], seen(b_stream), B_STREAM_TARGET_US),
        (
            f"A batch {features.shape[0]}x{features.shape[1]} rows, s (CPU)",
            pipeline_a.n_outputs, batch_a, f"wall {batch_a_wall:.1f}", A_BATCH_TARGET_S,
        ),
    ]
    passed = True
    for label, outputs, measured, also, target in results:
        ok = measured <= target
        passed &= ok
        verdict = "[green]PASS[/green]" if ok else "[red]FAIL[/red]"
        table.add_row(label, str(outputs), f"{measured:.1f}", also, f"<= {target:g}", verdict)
    console.print(table)
    console.print(f"A pipeline fit on 64 training sequences: {fit_a:.2f} s")
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    raise SystemExit(main())
