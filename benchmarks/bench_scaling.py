"""Scaling out (issue #17): whole commands on one worker against two, ratios measured in one run.

- simulate: ``python -m harness simulate CANDIDATE --workers 1`` against ``--workers 2`` (local
  processes) and ``--workers 2 --backend ray`` (a local Ray instance started and stopped by the
  command, so its start-up is in the time): wall time of the whole process, the scores compared
  for identity (target: two workers take at most 0.6 of one worker's time, the same score);
- gate-all: ``python -m harness gate-all`` serial against ``--workers 2`` on a folder holding
  copies of the chosen solutions (target: at least 1.6 times faster);
- train --all: ``python -m models train --all`` serial against ``--workers 2`` on copies of the
  chosen solutions (default: the quick-training ridge solutions of A and B; target at least 1.6).

Simulate times are the median of ``--repeats`` interleaved runs, the others of one run each, on
whatever else the machine is doing: run it on an idle machine with at least 2 cores (the load
average is in the table's title). Tiny settings (a few sequences) show that it works, not how
it scales: start-up costs dominate them.

Usage: python benchmarks/bench_scaling.py [--candidate solutions/a_gru] [--sequences N]
       [--gate-solutions a_gru,a_ridge_var] [--gate-args "..."] [--train-solutions a_ridge_var,b_ridge]
       [--train-sequences N] [--no-ray] [--repeats 3] [--only simulate,gate,train]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def timed(cmd: list[str], cwd: Path = ROOT) -> float:
    """Wall time of ``cmd`` as a whole process; its output is kept only when it fails."""
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode not in (0, 1):  # 1: a candidate failed, which still times the command
        raise SystemExit(f"{shlex.join(cmd)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    return seconds


def copy_solutions(names: list[str], root: Path) -> Path:
    """Copies of ``solutions/<name>`` under ``root/solutions`` (commands write into them)."""
    target = root / "solutions"
    for name in names:
        shutil.copytree(ROOT / "solutions" / name, target / name)
    return target


def simulate_rows(table: Table, args: argparse.Namespace, tmp: Path) -> None:
    base = [PYTHON, "-m", "harness", "simulate", args.candidate]
    if args.sequences:
        base += ["--sequences", str(args.sequences)]
    runs = [("1 worker", []), ("2 workers, local processes", ["--workers", "2"])]
    if not args.no_ray:
        runs.append(("2 workers, Ray (local instance)", ["--workers", "2", "--backend", "ray"]))
    times, scores = {name: [] for name, _ in runs}, {}
    for attempt in range(args.repeats):  # interleaved, so that a change in the machine's load hits every setting
        for name, extra in runs:
            out = tmp / f"{attempt}-{len(scores)}.json"
            times[name].append(timed(base + extra + ["--json", str(out)]))
            score = json.loads(out.read_text())["score"]
            if scores.setdefault(name, score) != score:
                raise SystemExit(f"simulate {args.candidate}, {name}: the score changed between two runs")
    seconds = {name: statistics.median(t) for name, t in times.items()}
    one = seconds["1 worker"]
    headline = scores["1 worker"]["headline"] if scores["1 worker"] else None
    for name, s in seconds.items():
        same = scores[name] == scores["1 worker"] if name != "1 worker" else None
        table.add_row(f"simulate {args.candidate}, {name}", f"{s:.1f} s (median of {args.repeats})",
                      "" if name == "1 worker" else f"{s / one:.2f} of 1 worker (target <= 0.60)",
                      f"score {headline}" if same is None else ("score identical" if same else "SCORE DIFFERS"))
    if "2 workers, Ray (local instance)" in seconds:
        table.add_row("  Ray's overhead over local processes",
                      f"{seconds['2 workers, Ray (local instance)'] - seconds['2 workers, local processes']:+.1f} s",
                      "", "")


def gate_rows(table: Table, args: argparse.Namespace, tmp: Path) -> None:
    root = copy_solutions(args.gate_solutions.split(","), tmp / "gate")
    base = [PYTHON, "-m", "harness", "gate-all", "--root", str(root), *shlex.split(args.gate_args)]
    serial = timed(base)
    parallel = timed(base + ["--workers", "2"])
    table.add_row(f"gate-all ({args.gate_solutions}), serial", f"{serial:.1f} s", "", "")
    table.add_row("gate-all, 2 workers", f"{parallel:.1f} s", f"{serial / parallel:.2f}x (target >= 1.6)", "")


def train_rows(table: Table, args: argparse.Namespace, tmp: Path) -> None:
    names = args.train_solutions.split(",")
    times, each = {}, {}
    for label, extra in (("serial", []), ("2 workers", ["--workers", "2"])):
        work = tmp / f"train-{len(times)}"
        copy_solutions(names, work)
        cmd = [PYTHON, "-m", "models", "train", "--all", "--runs", str(work / "runs"), *extra]
        if args.train_sequences:
            cmd += ["--sequences", str(args.train_sequences), "--valid-sequences", str(args.train_sequences)]
        (work / "data").symlink_to(ROOT / "data")  # the default generated sets, read where they are
        times[label] = timed(cmd, cwd=work)  # train --all trains the solutions under ./solutions
        if label == "serial":  # each training's own seconds, from its run record
            records = [json.loads(f.read_text()) for f in (work / "runs").glob("*.json")]
            each = {r["solution"]: r["seconds"] for r in records}
    longest = max(each, key=each.get)
    # No schedule on 2 workers beats the longest training alone: the ratio's ceiling for this set.
    bound = f"at most {sum(each.values()) / each[longest]:.2f}x for this set ({longest} alone is " \
            f"{each[longest]:.0f} of {sum(each.values()):.0f} s of training)"
    table.add_row(f"train --all ({args.train_solutions}), serial", f"{times['serial']:.1f} s", "",
                  ", ".join(f"{n} {s:.0f} s" for n, s in each.items()))
    table.add_row("train --all, 2 workers", f"{times['2 workers']:.1f} s",
                  f"{times['serial'] / times['2 workers']:.2f}x (target >= 1.6)", bound)


def rows_wanted(value: str) -> set[str]:
    parts = set(value.split(","))
    unknown = parts - {"simulate", "gate", "train"}
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown part(s) {', '.join(sorted(unknown))}: use simulate, gate, train")
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidate", default="solutions/a_gru")
    parser.add_argument("--sequences", type=int, help="simulate only the first N sequences (default: all)")
    parser.add_argument("--gate-solutions", default="a_gru,a_ridge_var,b_ridge,a_lightgbm")
    parser.add_argument("--gate-args", default="", help="extra gate options, e.g. \"--score-seconds 5\"")
    parser.add_argument("--train-solutions", default="a_ridge_var,b_ridge")
    parser.add_argument("--train-sequences", type=int, help="train and valid sequences (default: all)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray run")
    parser.add_argument("--repeats", type=int, default=3, help="simulate runs of each setting (the median is shown)")
    parser.add_argument("--only", type=rows_wanted, default={"simulate", "gate", "train"},
                        help="the parts to run, of simulate,gate,train (default: all)")
    args = parser.parse_args()
    table = Table(title=f"Scaling out (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    for column in ("what", "wall time", "ratio", "result"):
        table.add_column(column)
    with tempfile.TemporaryDirectory(prefix="wunderbench-bench-scaling-") as tmp:
        for part, rows in (("simulate", simulate_rows), ("gate", gate_rows), ("train", train_rows)):
            if part in args.only:
                rows(table, args, Path(tmp))
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
