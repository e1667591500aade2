"""One worker end to end: the whole `python -m harness simulate` process against the organizers'-
style scorer, with a null model, on the same file, in the same run.

Each case is a fresh process, timed from its start to its exit (interpreter start-up, imports,
reading, replay, scoring, report), its memory the peak of the summed resident memory of its
whole process tree (the harness, the supervisor and the sandboxed child for ours), sampled
every 10 ms. The reference (``naive_reference.py``) reads the table with pandas, loops over its
rows calling ``predict``, and scores with scikit-learn's ``r2_score``.

Files: A's default valid set (its sidecar read, as a user gets it, and with ``--no-oracle`` as
on real data, which has no sidecar), and a random 517-sequence A file (the size of the real set
in issue 17). Targets (issue 17, item 5, on the real set's size): ours at least 1.3 times
faster and at most half the reference's peak memory. Medians of ``--repeats`` runs, the cases
interleaved so that drifts in the machine's load hit all alike.

Usage: python benchmarks/bench_simulate.py [--repeats 3] [--skip-517]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import competitions as C  # noqa: E402
from harness.data import ParquetSource  # noqa: E402
from harness.randomdata import write_random_file  # noqa: E402

SAMPLE_S = 0.01
NULL_SOLUTION = """\
import numpy as np

class PredictionModel:
    def __init__(self):
        self.out = np.zeros(32)

    def predict(self, data_point):
        return self.out if data_point.need_prediction else None
"""
NAIVE = """\
import sys
sys.path.insert(0, {bench!r})
import numpy as np
from naive_reference import naive_score

class NullModel:
    def __init__(self):
        self.out = np.zeros(32)

    def predict(self, dp):
        return self.out if dp.need_prediction else None

naive_score({path!r}, NullModel(), ())
"""
TARGET_SPEED = 1.3
TARGET_MEMORY = 0.5


def measure(cmd: list[str]) -> tuple[float, int]:
    """(wall seconds, peak bytes of the summed RSS of the process tree) of one command."""
    start = time.perf_counter()
    proc = psutil.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        total = 0
        try:
            for p in [proc, *proc.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(SAMPLE_S)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err[-2000:]}")
    return wall, peak


def cases(candidate: Path, path: Path, oracle: bool) -> dict[str, list[str]]:
    ours = [sys.executable, "-m", "harness", "simulate", str(candidate), "--data", str(path), "--competition", "A"]
    if not oracle:
        ours.append("--no-oracle")
    naive = [sys.executable, "-c", NAIVE.format(bench=str(ROOT / "benchmarks"), path=str(path))]
    return {"ours": ours, "naive": naive}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-517", action="store_true", help="only A's default valid set")
    args = parser.parse_args()
    console = Console()
    table = Table(title="simulate, one worker, null model: the whole process against the organizers'-style scorer")
    for col in ("file", "process", "wall s", "peak MB (tree)", "ratio", "target"):
        table.add_column(col, justify="left" if col in ("file", "process", "target") else "right")
    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / "null"
        candidate.mkdir()
        (candidate / "solution.py").write_text(NULL_SOLUTION)
        valid = ROOT / "data" / "A" / "valid.parquet"
        files = [(f"A valid ({ParquetSource(valid).num_sequences} seq), sidecar read", valid, True),
                 (f"A valid ({ParquetSource(valid).num_sequences} seq), --no-oracle", valid, False)]
        if not args.skip_517:
            with console.status("writing a random 517-sequence A file"):
                random = write_random_file(C.A, Path(tmp) / "a_517.parquet", 517)
            files.append(("random A (517 seq)", random, False))
        for label, path, oracle in files:
            runs: dict[str, list[tuple[float, int]]] = {"ours": [], "naive": []}
            with console.status(f"{label}: {args.repeats} runs of each"):
                for _ in range(args.repeats):
                    for name, cmd in cases(candidate, path, oracle).items():
                        runs[name].append(measure(cmd))
            wall = {n: statistics.median(w for w, _ in r) for n, r in runs.items()}
            peak = {n: statistics.median(p for _, p in r) for n, r in runs.items()}
            speed = wall["naive"] / wall["ours"]
            memory = peak["ours"] / peak["naive"]
            table.add_row(label, "organizers'-style (pandas, rows, r2_score)", f"{wall['naive']:.2f}",
                          f"{peak['naive'] / 1e6:,.0f}", "", "")
            table.add_row("", "python -m harness simulate", f"{wall['ours']:.2f}", f"{peak['ours'] / 1e6:,.0f}",
                          f"{speed:.2f}x faster, {memory:.2f} of its memory",
                          f">= {TARGET_SPEED}x: {'PASS' if speed >= TARGET_SPEED else 'FAIL'}; "
                          f"<= {TARGET_MEMORY}: {'PASS' if memory <= TARGET_MEMORY else 'FAIL'}")
            table.add_section()
    console.print(table)
    console.print(f"medians of {args.repeats} interleaved runs; load average {os.getloadavg()[0]:.1f} on "
                  f"{os.cpu_count()} cores at the end")


if __name__ == "__main__":
    main()
