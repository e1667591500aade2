"""Sandbox latency of the trained solutions, per scored row, beside the issue's targets.

Each trained solution is packaged (the zip the grader would get) and replayed in the harness's
sandbox (one core, the grader's limits) on the first sequences of its generated valid set; the
report's mean time per scored ``predict`` call is the number. Targets (issue #6): at most 0.2 ms
a scored row for the ridges, 2 ms for the LightGBM solutions; issue #7: 0.1 ms for a 2-layer
GRU of width 128 (``a_gru``). ``b_gru`` (a 1x64 GRU behind B's feature pipeline) has no target
of its own and is listed for comparison. A solution that is not trained is
skipped with a note (``make train SOLUTION=<name>`` trains it).
Usage: python benchmarks/bench_models.py [--sequences N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.market.defaults import ensure  # noqa: E402
from harness.package import read_manifest  # noqa: E402
from models.evaluate import package_and_replay  # noqa: E402

TARGETS_US: dict[str, float | None] = {
    "a_ridge_var": 200.0,
    "b_ridge": 200.0,
    "a_lightgbm": 2000.0,
    "b_lightgbm": 2000.0,
    "a_gru": 100.0,
    "b_gru": None,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=8, help="valid sequences replayed per solution (default 8)")
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"Sandbox latency per scored row ({args.sequences} valid sequences each)")
    for column in ("solution", "rows", "mean us", "p50 us", "p99 us", "target us", "verdict", "score"):
        table.add_column(column, justify="left" if column in ("solution", "verdict") else "right")
    failed = False
    for name, target in TARGETS_US.items():
        folder = ROOT / "solutions" / name
        manifest = read_manifest(folder)
        if not all((folder / artifact).is_file() for artifact in manifest.artifacts):
            console.print(f"[yellow]{name}: not trained (make train SOLUTION={name}); skipped[/]")
            continue
        with console.status(f"replaying {name}"):
            report = package_and_replay(folder, ensure(manifest.competition, "valid", quiet=True), args.sequences)
        if not report.ok:
            console.print(f"[red]{name}: {report.error}[/]", markup=False)
            failed = True
            continue
        scored = report.timing.scored
        ok = target is None or scored.mean_us <= target
        failed |= not ok
        verdict = "-" if target is None else "[green]ok[/]" if ok else "[red]over[/]"
        table.add_row(name, str(scored.rows), f"{scored.mean_us:.1f}", f"{scored.p50_us:.1f}",
                      f"{scored.p99_us:.1f}", "-" if target is None else f"{target:.0f}", verdict,
                      f"{report.score.headline:.4f}")
    console.print(table)
    console.print("Timings on a shared machine are noisy; p50 is the steadier figure.")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
