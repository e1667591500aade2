"""Grader overhead: our streaming replay against the naive reference loop, with a null model.

Each case runs in its own process so that its peak RSS is its own. Targets (issue #2): overhead
at most 1.0 us a row and at least 3x less than the naive loop; a 10,721-sequence B file replayed
within 1.5 GB peak RSS. Usage: python benchmarks/bench_harness.py [--skip-large]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import competitions as C  # noqa: E402
from harness.randomdata import write_random_file  # noqa: E402


class NullModel:
    """Returns a preallocated zero vector: the cheapest valid candidate."""

    def __init__(self, k: int):
        self.out = np.zeros(k)

    def predict(self, dp):
        return self.out if dp.need_prediction else None


def run_case(case: str, path: str) -> dict:
    from harness.data import ParquetSource, TargetTap
    from harness import metrics

    source = ParquetSource(path)
    comp = source.competition
    model = NullModel(comp.n_outputs)
    start = time.perf_counter()
    if case == "ours":
        from harness.replay import replay

        tap = TargetTap(comp)
        result = replay(model.predict, comp, tap(source.blocks()))
        metrics.score(comp, tap.targets(), result.predictions)
        rows = result.rows
    else:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from naive_reference import naive_score

        naive_score(path, model, comp.target_columns)
        rows = source.num_rows
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": rows, "us_per_row": seconds / rows * 1e6,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(case: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--case", case, "--file", str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_file(comp: C.Competition, path: Path, sequences: int) -> Path:
    """Write the random file in a child process: a child's peak RSS (``ru_maxrss``) starts from
    its parent's size at fork, so a parent that had built the table itself would inflate every
    measurement after it."""
    subprocess.run([sys.executable, __file__, "--write", comp.key, "--file", str(path), "--sequences", str(sequences)],
                   check=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case")
    parser.add_argument("--file")
    parser.add_argument("--write", help="write a random file of this competition to --file")
    parser.add_argument("--sequences", type=int)
    parser.add_argument("--skip-large", action="store_true", help="skip the 10,721-sequence B file")
    args = parser.parse_args()
    if args.write:
        write_random_file(C.get(args.write), Path(args.file), args.sequences)
        return
    if args.case:
        print(json.dumps(run_case(args.case, args.file)))
        return
    console = Console()
    table = Table(title="Grader overhead with a null model (read + validate + replay + score)")
    for col in ("file", "loop", "us/row", "peak RSS MB", "target"):
        table.add_column(col, justify="right" if col != "file" else "left")
    with tempfile.TemporaryDirectory() as tmp:
        files = [(C.A, 517), (C.B, 1444)] + ([] if args.skip_large else [(C.B, C.B.train_sequences)])
        for comp, n in files:
            with console.status(f"writing a {n}-sequence {comp.key} file"):
                path = write_file(comp, Path(tmp) / f"{comp.key}_{n}.parquet", n)
            with console.status(f"replaying {path.name}"):
                ours = measure("ours", path)
                naive = measure("naive", path) if n < 5000 else None
            label = f"{comp.key}, {n:,} seq"
            if naive:
                ratio = naive["us_per_row"] / ours["us_per_row"]
                table.add_row(label, "naive (pandas, DataFrame.values)", f"{naive['us_per_row']:.2f}",
                              f"{naive['peak_rss_mb']:,.0f}", "")
                ok = ours["us_per_row"] <= 1.0 and ratio >= 3
                table.add_row("", "ours (streaming)", f"{ours['us_per_row']:.2f}", f"{ours['peak_rss_mb']:,.0f}",
                              f"<= 1.0 us and >= 3x: {ratio:.1f}x {'PASS' if ok else 'FAIL'}")
            else:
                ok = ours["peak_rss_mb"] <= 1536
                table.add_row(label, "ours (streaming)", f"{ours['us_per_row']:.2f}", f"{ours['peak_rss_mb']:,.0f}",
                              f"<= 1,536 MB: {'PASS' if ok else 'FAIL'} (naive not run: needs ~12 GB)")
            table.add_section()
    console.print(table)


if __name__ == "__main__":
    main()
