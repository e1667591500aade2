"""A grading as one self-contained HTML page: ``simulate ... --report FILE.html`` and ``gate``'s.

The page is meant to be mailed, archived beside a run record, or opened years later on a machine
without network: nothing in it is fetched. The CSS is inline, each figure is a PNG embedded as
base64 (``harness.plots``), and there is no script at all. Everything that came from the
candidate's side (error messages, tracebacks, stderr, module names, the candidate's path) is
escaped: a message holding markup is shown as text, never run or fetched.

Sections, in order (each an ``<section id=...>``; the figure sections hold exactly one figure
when the run produced what they show, and a line saying why not otherwise):

- ``verdict``: PASS/WARN/FAIL and the reasons; the error with its place, traceback and stderr.
- ``checks`` (gate only): each named check, its result, reason and reproduce command.
- ``score`` (figure): the headline with its 95% interval, the oracle, per-output scores.
- ``sequences`` (figure): each sequence scored alone, their distribution and the worst ones.
- ``latency`` (figure): per-call latencies of warm-up and scored rows against the budget.
- ``memory`` (figure): resident memory over the run, sampled by the parent, against the cap.
- ``projection`` (figure): the projected test-set time and its parts against the limit.
- ``sandbox``: the protections in force, cores used, thread warnings and imported modules.
"""

from __future__ import annotations

import base64
import io
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from harness import competitions, plots
from harness.competitions import GIB
from harness.simulation import SimulationReport

if TYPE_CHECKING:  # the gate imports this module to write its page; only its types are named here
    from harness.gate import GateReport

FIGURE_SECTIONS = ("score", "sequences", "latency", "memory", "projection")
"""The sections that each carry one figure when the run gave what they show."""
WORST_SEQUENCES = 10
FIGURE_DPI = 90

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 60em;
       color: #222; background: #fff; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.8em; }
.meta { color: #555; font-size: 0.9em; }
.verdict { display: inline-block; padding: 0.2em 0.8em; border-radius: 0.3em; color: #fff; font-weight: bold; }
.PASS { background: #2e7d32; } .WARN { background: #b26a00; } .FAIL { background: #c62828; }
.SKIP { background: #757575; }
td.PASS, td.WARN, td.FAIL, td.SKIP { color: #fff; font-weight: bold; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
img { max-width: 100%; height: auto; display: block; margin: 0.6em 0; }
.none { color: #777; font-style: italic; }
"""


def _e(value: object) -> str:
    """Text for the page: every value passes here, so markup in it is shown, not obeyed."""
    return escape(str(value), quote=True)


def _num(value: float | None, spec: str = ".4f", unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def _table(rows: Iterable[Iterable[object]], header: Iterable[str] | None = None) -> str:
    """A table of escaped cells; a cell given as ``(text, "num")`` is right-aligned."""
    out = ["<table>"]
    if header is not None:
        out.append("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, tuple):
                cells.append(f'<td class="{_e(cell[1])}">{_e(cell[0])}</td>')
            else:
                cells.append(f"<td>{_e(cell)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _none(why: str) -> str:
    return f'<p class="none">{_e(why)}</p>'


def _figure(fig, alt: str) -> str:
    """The figure as an embedded PNG (``data:`` URI); the figure is closed."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=FIGURE_DPI)
    finally:
        plots.plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _section(name: str, title: str, body: str) -> str:
    return f'<section id="{name}">\n<h2>{_e(title)}</h2>\n{body}\n</section>'


# ------------------------------------------------------------------------------------------ sections


def _verdict_section(verdict: str, reasons: list[str], report: SimulationReport | None) -> str:
    body = [f'<p><span class="verdict {_e(verdict)}">{_e(verdict)}</span></p>']
    if reasons:
        body.append("<ul>" + "".join(f"<li>{_e(r)}</li>" for r in reasons) + "</ul>")
    else:
        body.append("<p>No reason to doubt this candidate in what was checked.</p>")
    error = report.error if report is not None else None
    if error is not None:
        body.append(_table([("kind", error.kind), ("message", error.message),
                            ("seq_ix", _num(error.seq_ix, "d")), ("step_in_seq", _num(error.step, "d")),
                            ("row", _num(error.row, "d"))], header=("error", "")))
        if error.traceback:
            body.append(f"<p>Traceback:</p><pre>{_e(error.traceback)}</pre>")
    if report is not None and report.stderr_tail:
        body.append(f"<p>stderr (last lines):</p><pre>{_e(report.stderr_tail)}</pre>")
    return _section("verdict", "Verdict", "\n".join(body))


def _checks_section(gate: GateReport) -> str:
    rows = [(c.name, (c.status, c.status), c.reason, c.reproduce or "") for c in gate.checks]
    # the status cell's class is the status word: the same colours as the verdict badge
    return _section("checks", "Gate checks", _table(rows, header=("check", "result", "reason", "reproduce")))


def _score_section(report: SimulationReport, comp: competitions.Competition) -> str:
    score = report.score
    if score is None:
        return _section("score", "Score", _none(f"no score: the run ended with {report.status}"))
    rows = [("headline (" + comp.metric_label + ")", (_num(score.headline), "num")),
            ("95% interval (bootstrap over sequences)",
             (f"[{score.interval95[0]:.4f}, {score.interval95[1]:.4f}]" if score.interval95 else "-", "num")),
            ("sequences", (report.sequences, "num"))]
    oracle = score.oracle or {}
    if oracle:
        rows += [("observable oracle", (_num(oracle.get("observable")), "num")),
                 ("fraction of the oracle", (_num(oracle.get("fraction_of_observable"), ".1%"), "num")),
                 ("hidden-state bound", (_num(oracle.get("hidden")), "num"))]
    if score.impossible is not None:
        rows.append((f"flag ({score.impossible.status})", score.impossible.reason))
    per_oracle = oracle.get("per_output") or {}
    per_rows = [(name, (_num(value), "num"), (_num(per_oracle.get(name)), "num"))
                for name, value in score.per_output.items()]
    body = [_table(rows), _figure(plots.score_figure(report, comp), "per-output scores beside the oracle's"),
            "<details><summary>per-output scores</summary>",
            _table(per_rows, header=("output", "candidate", "observable oracle")), "</details>"]
    return _section("score", "Score", "\n".join(body))


def _sequences_section(report: SimulationReport, comp: competitions.Competition) -> str:
    title = "Score by sequence"
    by_sequence = report.score.by_sequence.headlines() if report.score and report.score.by_sequence else None
    if not by_sequence:
        return _section("sequences", title, _none(f"no score by sequence: the run ended with {report.status}"))
    values = np.array(list(by_sequence.values()))
    q = np.quantile(values, [0.0, 0.1, 0.5, 0.9, 1.0])
    summary = (f"<p>Each sequence scored alone with the competition's metric: min {q[0]:.4f}, 10% {q[1]:.4f}, "
               f"median {q[2]:.4f}, 90% {q[3]:.4f}, max {q[4]:.4f}. The competition pools all rows, so its score "
               "is not their mean: a sequence alone is judged against its own mean and spread, and a candidate "
               "whose gain is in telling sequences apart scores higher pooled than on any one of them.</p>")
    worst = sorted(by_sequence.items(), key=lambda item: item[1])[:WORST_SEQUENCES]
    table = _table([(seq, (f"{value:.4f}", "num")) for seq, value in worst], header=("seq_ix", comp.metric_label))
    body = [summary, _figure(plots.sequence_figure(report, comp), "distribution of per-sequence scores"),
            f"<p>The {len(worst)} worst sequences:</p>", table]
    return _section("sequences", title, "\n".join(body))


def _latency_section(report: SimulationReport, latency_ns: np.ndarray | None,
                     comp: competitions.Competition) -> str:
    title = "Latency per call"
    timing = report.timing
    if latency_ns is None or latency_ns.size == 0:
        return _section("latency", title, _none("no per-call times: the run ended before the replay"))
    budget = plots.budget_per_call_us(report, comp)
    rows = [(phase, (lat.rows, "num"), (f"{lat.p50_us:.1f}", "num"), (f"{lat.p90_us:.1f}", "num"),
             (f"{lat.p99_us:.1f}", "num"), (f"{lat.max_us:.0f}", "num"), (f"{lat.mean_us:.1f}", "num"))
            for phase, lat in (("warm-up rows", timing.warmup), ("scored rows", timing.scored)) if lat is not None]
    body = [f"<p>Budget {budget:,.0f} us a call: the {timing.limit_s / 60:g} min limit over the test set's calls, "
            f"divided by the safety factor {timing.safety:g}. The times are the child's own measure; the "
            "projection below is bounded by the grader's clock.</p>",
            _figure(plots.latency_figure(report, latency_ns, comp), "per-call latency histograms"),
            _table(rows, header=("rows", "calls", "p50 us", "p90 us", "p99 us", "max us", "mean us"))]
    return _section("latency", title, "\n".join(body))


def _memory_section(report: SimulationReport) -> str:
    mem = report.memory
    title = "Memory over the run"
    line = (f"<p>Peak {mem.peak_bytes / 1024**2:,.0f} MiB of the {mem.limit_bytes / GIB:g} GiB cap (the "
            "candidate and every process it started).</p>")
    if not mem.series_s:
        return _section("memory", title, line + _none("no memory samples: the process ended before the first"))
    note = (f"<p>Sampled by the harness every 50 ms from outside the sandbox; {len(mem.series_s)} points, each "
            "the largest sample of its interval.</p>")
    return _section("memory", title, line + note + _figure(plots.memory_figure(report), "memory over the run"))


def _projection_section(report: SimulationReport) -> str:
    timing = report.timing
    title = "Projected test-set time"
    parts = timing.projection_parts()
    if not parts:
        why = "none: the run failed (its times cover only the rows before the failure)" if not report.ok else \
            "none: nothing was timed"
        return _section("projection", title, _none(why))
    projected = timing.projection.projected_test_s
    rows = [(label, (f"{seconds:,.1f}", "num"), (f"{seconds / 60:.2f}", "num")) for label, seconds in parts]
    rows.append(("projected", (f"{projected:,.1f}", "num"), (f"{projected / 60:.2f}", "num")))
    rows.append(("limit", (f"{timing.limit_s:,.0f}", "num"), (f"{timing.limit_s / 60:g}", "num")))
    rows.append(("headroom", (f"{timing.headroom_s:,.1f}", "num"), (f"{timing.headroom_s / 60:.2f}", "num")))
    body = [f"<p>{timing.test_sequences} sequences at {timing.projection.per_row_us:.1f} us a row "
            f"(harness included). The grader's clock measured {_num(timing.measured_run_s, '.2f', ' s')} for "
            f"start-up and replay here.</p>",
            _figure(plots.projection_figure(report), "projected test-set time and its parts"),
            _table(rows, header=("part", "seconds", "minutes"))]
    return _section("projection", title, "\n".join(body))


def _sandbox_section(report: SimulationReport) -> str:
    s = report.sandbox
    rows = [("cpu", s.cpu), ("cores used", _num(s.cores_used, ".2f")), ("network", s.network or "-"),
            ("filesystem", s.filesystem or "-"), ("processes", s.processes or "-"),
            ("exit code", _num(s.exit_code, "d"))]
    body = [_table(rows, header=("protection", "in force in this run"))]
    if report.threads:
        body.append("<p>Threads raised by the candidate:</p><ul>"
                    + "".join(f"<li>{_e(t)}</li>" for t in report.threads) + "</ul>")
    if report.modules:
        body.append(f"<details><summary>{len(report.modules)} modules imported</summary><p>"
                    + _e(", ".join(report.modules)) + "</p></details>")
    return _section("sandbox", "Sandbox", "\n".join(body))


# ------------------------------------------------------------------------------------------ pages


def _page(title: str, subtitle: str, sections: list[str]) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',  # no request for /favicon.ico
        f"<title>{_e(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        f"<h1>{_e(title)}</h1>", f'<p class="meta">{_e(subtitle)}; written {stamp}</p>',
        *sections, "</body>", "</html>", ""])


def _run_sections(report: SimulationReport, latency_ns: np.ndarray | None) -> list[str]:
    comp = competitions.get(report.competition)
    return [_score_section(report, comp), _sequences_section(report, comp),
            _latency_section(report, latency_ns, comp), _memory_section(report), _projection_section(report),
            _sandbox_section(report)]


def simulation_html(report: SimulationReport, latency_ns: np.ndarray | None) -> str:
    """The page of one ``simulate`` run; ``latency_ns`` are its per-call times (the child's)."""
    comp = competitions.get(report.competition)
    subtitle = f"{comp.title}; {report.candidate} on {report.data}, {report.sequences} sequences"
    return _page(f"simulate: {report.candidate}", subtitle,
                 [_verdict_section(report.verdict, report.reasons, report), *_run_sections(report, latency_ns)])


def gate_html(gate: GateReport, run: SimulationReport | None, latency_ns: np.ndarray | None) -> str:
    """The page of a gate: its verdict and checks, then the sections of ``run`` (the score
    sample's replay, or the replay that failed), or a line saying no replay was shown."""
    comp = competitions.get(gate.competition)
    verdict = "FAIL" if gate.failed else ("WARN" if any(c.status == "WARN" for c in gate.checks) else "PASS")
    reasons = [f"{c.name}: {c.reason}" for c in gate.checks if c.status in ("FAIL", "WARN")]
    subtitle = f"{comp.title}; {gate.candidate} on {gate.data}"
    sections = [_verdict_section(verdict, reasons, run), _checks_section(gate)]
    if run is None:
        sections.append(_section("run", "Replay", _none("no replay to show: the checks run stopped before one")))
    else:
        sections.append(f'<p class="meta">The sections below show the replay of {run.sequences} sequences '
                        f"(the score sample, or the replay that failed): its own verdict was "
                        f"{_e(run.verdict)}.</p>")
        sections += _run_sections(run, latency_ns)
    return _page(f"gate: {gate.candidate}", subtitle, sections)


def failure_html(candidate: str, reason: str) -> str:
    """The page of a candidate that could not be run at all (it cannot be unpacked, say)."""
    return _page(f"simulate: {candidate}", f"{candidate}: cannot be run as submitted",
                 [_verdict_section("FAIL", [reason], None)])


def write_html(text: str, path: str | Path) -> Path:
    """``text`` at ``path``, written beside it first and moved in (never half a page)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def write_simulation_html(report: SimulationReport, latency_ns: np.ndarray | None, path: str | Path) -> Path:
    """``simulation_html`` written to ``path``."""
    return write_html(simulation_html(report, latency_ns), path)
