"""Rendering a grading report (``harness.simulation.SimulationReport``) for people: tables in the
terminal, and its JSON form as a file."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness import competitions
from harness.competitions import GIB
from harness.simulation import SimulationReport
from harness.tables import write_text

_STYLE = {"PASS": "bold green", "WARN": "bold yellow", "FAIL": "bold red"}


def _fmt(value, spec: str = ".4f", unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def write_json(report: SimulationReport, path: str | Path) -> Path:
    """``report.to_json()`` at ``path``, written beside it first and moved in (never half a file)."""
    return write_text(path, json.dumps(report.to_json(), indent=2, default=float))


def _score_tables(report: SimulationReport, comp: competitions.Competition) -> list[Table]:
    score = report.score
    if score is None:
        return []
    head = Table(title=f"Score ({comp.metric_label}, {report.sequences} sequences)", show_header=True)
    head.add_column("candidate", justify="right")
    head.add_column("95% interval (bootstrap over sequences)", justify="right")
    oracle = score.oracle
    if oracle:
        head.add_column("observable oracle", justify="right")
        head.add_column("fraction of oracle", justify="right")
        head.add_column("hidden-state bound", justify="right")
    interval = score.interval95
    row = [_fmt(score.headline), f"[{interval[0]:.4f}, {interval[1]:.4f}]" if interval else "-"]
    if oracle:
        row += [_fmt(oracle["observable"]), _fmt(oracle.get("fraction_of_observable"), ".1%"),
                _fmt(oracle.get("hidden"))]
    head.add_row(*row)
    per = Table(title="Per output", show_header=True)
    items = list(score.per_output.items())
    columns = 4 if len(items) > 8 else 1
    for _ in range(columns):
        per.add_column("output")
        per.add_column("score", justify="right")
    for start in range(0, len(items), columns):
        cells = []
        for name, value in items[start : start + columns]:
            cells += [name, _fmt(value)]
        per.add_row(*cells)
    return [head, per]


def _timing_table(report: SimulationReport) -> Table:
    t = report.timing
    table = Table(title="Time and memory", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("start-up (import + constructor)", f"{_fmt(t.import_s, '.2f', ' s')} + {_fmt(t.construct_s, '.2f', ' s')}")
    for phase, lat in (("warm-up", t.warmup), ("scored", t.scored)):
        if lat is not None:
            table.add_row(f"predict latency, {phase} rows (p50/p90/p99/max)",
                          f"{lat.p50_us:.1f} / {lat.p90_us:.1f} / {lat.p99_us:.1f} / {lat.max_us:.0f} us")
    for shard in report.shards:  # a sharded run: each shard's latencies are one core's
        lat = shard.scored
        if lat is not None:
            table.add_row(f"{shard.label}, scored latency (p50/p90/p99/max)",
                          f"{lat.p50_us:.1f} / {lat.p90_us:.1f} / {lat.p99_us:.1f} / {lat.max_us:.0f} us")
    if not report.ok:
        table.add_row("projected full test set", "none: the run failed")
    elif t.projection is not None:
        p = t.projection
        table.add_row("time per row, harness included", f"{p.per_row_us:.1f} us ({p.rows_per_s:,.0f} rows/s)")
        table.add_row(f"projected full test set ({t.test_sequences} seq, x{t.safety} safety)",
                      f"{p.projected_test_s / 60:.1f} min of {t.limit_s / 60:.0f} (headroom {t.headroom_s / 60:.1f} min)")
    if t.measured_run_s is not None:
        table.add_row("start-up + replay, the grader's clock", f"{t.measured_run_s:.2f} s")
    mem = report.memory
    table.add_row("peak memory (candidate + children)",
                  f"{mem.peak_bytes / 1024**2:,.0f} MiB of {mem.limit_bytes / GIB:.0f} GiB")
    sandbox = report.sandbox
    table.add_row("cpu", sandbox.cpu)
    table.add_row("network", sandbox.network or "-")
    for protection, text in (("filesystem", sandbox.filesystem), ("processes", sandbox.processes)):
        if text:
            table.add_row(protection, text)
    return table


def render(report: SimulationReport, console: Console | None = None) -> None:
    """The report as tables, the failure's traceback and stderr, then the verdict and reasons."""
    console = console or Console()
    comp = competitions.get(report.competition)
    console.print(f"[bold]{comp.title}[/] — {report.candidate} on {report.data}")
    for table in _score_tables(report, comp):
        console.print(table)
    console.print(_timing_table(report))
    if report.error is not None:
        if report.error.traceback:
            console.print(report.error.traceback, markup=False, highlight=False)
        if report.stderr_tail:
            console.print("[dim]stderr (last lines):[/]")
            console.print(report.stderr_tail, markup=False, highlight=False)
    style = _STYLE.get(report.verdict, "bold")
    console.print(f"verdict: [{style}]{report.verdict}[/]")
    for reason in report.reasons:
        console.print(f"  - {reason}", markup=False)
