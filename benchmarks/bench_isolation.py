"""What the sandbox's isolation costs: start-up with and without it, and the data pipe.

Rows: a bare interpreter start (`python -I -S -c pass`); the same started by the supervisor
(child subreaper, one core, address-space cap), then with the network namespace, then with
Landlock as well; a null candidate through the whole sandbox (copy, supervisor, Landlock, import of the
child's libraries, one sequence). Then the data pipe: rows a second that the parent can stream
to a reader process. Medians of several runs. Usage: python benchmarks/bench_isolation.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import channel, isolation  # noqa: E402
from harness import competitions as C  # noqa: E402
from harness.data import ParquetSource  # noqa: E402
from harness.randomdata import write_random_file  # noqa: E402
from harness.sandbox import SandboxOptions, _interpreter, _site_paths, run_in_sandbox  # noqa: E402

REPEATS = 11
PYTHON = _interpreter()
NULL = "class PredictionModel:\n    def predict(self, dp):\n        return dp.state.copy() if dp.need_prediction else None\n"


def _medians_s(cases: dict) -> dict[str, float]:
    """Median wall time of each case, the cases interleaved so that drifts in load hit all alike."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(REPEATS):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def bare() -> None:
    subprocess.run([PYTHON, "-I", "-S", "-c", "pass"], check=True)


def supervised(landlock: dict | None, work: Path, netns: bool) -> None:
    with open(os.devnull, "wb") as sink:
        job = {"argv": [PYTHON, "-I", "-S", "-c", "pass"], "cwd": str(work), "env": {}, "cpu": sorted(os.sched_getaffinity(0))[-1],
               "memory_bytes": 4 * 1024**3, "block_network": netns, "landlock": landlock, "pass_fds": [],
               "stdout_fd": sink.fileno(), "stderr_fd": sink.fileno()}
        out = subprocess.run([PYTHON, "-I", "-S", "-B", str(ROOT / "harness" / "isolation.py")], input=json.dumps(job).encode(),
                             capture_output=True, pass_fds=(sink.fileno(),), check=True).stdout
    facts = json.loads(out.splitlines()[0])["facts"]
    if landlock is not None and not str(facts.get("landlock")).startswith("Landlock"):
        raise SystemExit(f"Landlock did not hold here: {facts}")


def pipe_rows_per_s(path: Path) -> float:
    """Stream every block of ``path`` to a child that reads them as the sandbox's child does."""
    reader = ("import sys; sys.path[:0] = [{root!r}] + {site!r}\nfrom harness.channel import read_blocks\n"
              "print('ready', flush=True)\nn = sum(b.values.shape[0] for b in read_blocks(0, {width}))\n"
              ).format(root=str(ROOT), site=_site_paths(), width=len(C.B.columns))
    blocks = list(ParquetSource(path).blocks())
    rows = sum(b.values.shape[0] for b in blocks)
    proc = subprocess.Popen([PYTHON, "-I", "-S", "-c", reader], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    proc.stdout.readline()  # its imports done: time the stream only
    start = time.perf_counter()
    fd = proc.stdin.fileno()
    for block in blocks:
        channel.send_block(fd, block)
    channel.send_end(fd)
    proc.stdin.close()
    proc.wait()
    return rows / (time.perf_counter() - start)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        one = write_random_file(C.A, work / "one.parquet", 1, seed=1)
        many = write_random_file(C.B, work / "many.parquet", 200, seed=2)
        cand = work / "cand"
        cand.mkdir()
        (cand / "solution.py").write_text(NULL)
        paths = {"read": isolation.read_roots([sys.base_prefix, *_site_paths()], [str(ROOT), str(work)]),
                 "write": [str(work)]}
        opts = SandboxOptions(memory_bytes=4 * 1024**3, time_limit_s=120)
        rows = list(_medians_s({
            "bare interpreter start": bare,
            "supervisor (subreaper, core, memory cap)": lambda: supervised(None, work, False),
            "+ network namespace (what the sandbox had before)": lambda: supervised(None, work, True),
            "+ Landlock (filesystem, ptrace, signals, TCP)": lambda: supervised(paths, work, True),
            "null candidate, 1 sequence, whole sandbox": lambda: run_in_sandbox(cand, one, C.A, opts),
        }).items())
        pipe = pipe_rows_per_s(many)
    table = Table(title=f"Isolation start-up (median of {REPEATS}; Landlock ABI {isolation.landlock_abi()})")
    table.add_column("what")
    table.add_column("wall", justify="right")
    table.add_column("over the row above", justify="right")
    for i, (name, seconds) in enumerate(rows):
        delta = "" if i == 0 else f"{(seconds - rows[i - 1][1]) * 1e3:+.0f} ms"
        table.add_row(name, f"{seconds * 1e3:.0f} ms", delta)
    console = Console()
    console.print(table)
    console.print(f"data pipe (parent reads parquet, child receives blocks; B, 200 sequences): "
                  f"{pipe:,.0f} rows/s = {1e6 / pipe:.2f} us a row (target: well under the replay's own cost)")


if __name__ == "__main__":
    main()
