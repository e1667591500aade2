"""Pictures of a grading: where the time goes per call, which outputs and sequences score, memory
over the run and what makes up the projected test-set time.

``report_figure`` is the one-page PNG of ``simulate --plot``; the ``*_figure`` functions below
are one figure each for the sections of the HTML report (``harness.html_report``), drawn with
the same panels.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from harness.competitions import GIB, SEQUENCE_LENGTH, Competition  # noqa: E402
from harness.simulation import SimulationReport  # noqa: E402


FONT_SIZES = {"font.size": 11, "axes.titlesize": 13, "axes.labelsize": 12, "xtick.labelsize": 10,
              "ytick.labelsize": 10, "legend.fontsize": 10}
"""Readable at the saved size (15 x 5.5 in at 110 dpi) without zooming."""


def report_figure(report: SimulationReport, latency_ns: np.ndarray | None, competition: Competition) -> Figure:
    """Left: per-call latency histograms (warm-up vs scored rows) against the per-call budget.
    Right: the score of each output, beside the oracle's where the data has one."""
    with plt.rc_context(FONT_SIZES):
        fig, (left, right) = plt.subplots(1, 2, figsize=(15, 5.5), gridspec_kw={"width_ratios": [1, 1.6]})
        _latency_panel(left, report, latency_ns, competition)
        _score_panel(right, report, competition)
        fig.suptitle(f"{report.candidate} on {Path(report.data).name} ({report.sequences} sequences)")
        fig.tight_layout()
    return fig


def write_report_png(report: SimulationReport, latency_ns: np.ndarray | None, competition: Competition, path: str | Path) -> Path:
    """``report_figure`` saved as a PNG at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = report_figure(report, latency_ns, competition)
    try:
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path


def budget_per_call_us(report: SimulationReport, competition: Competition) -> float:
    """Measured time per call at which the projection meets the limit: the limit spread over the
    test set's calls, divided by the safety factor the verdict multiplies measured time by."""
    timing = report.timing
    rows = timing.test_sequences * SEQUENCE_LENGTH
    return timing.limit_s / rows / timing.safety * 1e6


def _latency_panel(left, report: SimulationReport, latency_ns: np.ndarray | None, comp: Competition) -> None:
    if latency_ns is not None and latency_ns.size:
        us = np.maximum(latency_ns / 1e3, 1e-2)
        steps = np.arange(us.size) % SEQUENCE_LENGTH
        scored = (steps >= comp.first_scored_step) & (steps <= comp.last_scored_step)
        bins = np.logspace(np.log10(us.min()), np.log10(us.max() * 1.01), 60)
        left.hist(us[~scored], bins=bins, alpha=0.6, label="warm-up rows")
        left.hist(us[scored], bins=bins, alpha=0.6, label="scored rows")
        budget_us = budget_per_call_us(report, comp)
        safety = report.timing.safety
        left.axvline(budget_us, color="red", linestyle="--",
                     label=f"budget {budget_us:,.0f} us/call\n(limit / calls / {safety:g} safety)")
        left.set_xscale("log")
        left.set_xlabel("predict time per call (us)")
        left.set_ylabel("calls")
        left.legend()
    left.set_title("Latency")


def _score_panel(right, report: SimulationReport, comp: Competition) -> None:
    score = report.score
    if score is not None:
        names = list(score.per_output)
        x = np.arange(len(names))
        right.bar(x - 0.2, [score.per_output[n] for n in names], width=0.4, label="candidate")
        oracle = (score.oracle or {}).get("per_output")
        if oracle:
            right.bar(x + 0.2, [oracle[n] for n in names], width=0.4, label="observable oracle")
        right.set_xticks(x, names, rotation=90 if len(names) > 8 else 0)
        right.axhline(0, color="black", linewidth=0.5)
        right.set_xlabel("output")
        right.set_ylabel(comp.output_metric_label)
        right.legend()
        right.set_title(f"{comp.metric_label}: {score.headline:.4f}")
    else:
        right.text(0.5, 0.5, f"no score: {report.status}", ha="center", va="center")
        right.set_axis_off()


SECTION_SIZE = (9.0, 4.2)
"""Inches of each HTML section's figure: about 800 pixels wide at the HTML report's 90 dpi."""


def latency_figure(report: SimulationReport, latency_ns: np.ndarray | None, competition: Competition) -> Figure:
    """Per-call latency histograms, warm-up and scored rows, against the per-call budget."""
    with plt.rc_context(FONT_SIZES):
        fig, ax = plt.subplots(figsize=SECTION_SIZE)
        _latency_panel(ax, report, latency_ns, competition)
        fig.tight_layout()
    return fig


def score_figure(report: SimulationReport, competition: Competition) -> Figure:
    """The score of each output beside the observable oracle's, where the data has one."""
    with plt.rc_context(FONT_SIZES):
        fig, ax = plt.subplots(figsize=SECTION_SIZE)
        _score_panel(ax, report, competition)
        fig.tight_layout()
    return fig


def sequence_figure(report: SimulationReport, competition: Competition) -> Figure:
    """How the sequences score one by one: their distribution, the pooled score beside it."""
    by_sequence = report.score.by_sequence.headlines() if report.score and report.score.by_sequence else None
    with plt.rc_context(FONT_SIZES):
        fig, ax = plt.subplots(figsize=SECTION_SIZE)
        if by_sequence:
            values = np.array(list(by_sequence.values()))
            ax.hist(values, bins=min(60, max(5, values.size // 3)), color="tab:blue", alpha=0.8,
                    label=f"{values.size} sequences, each scored alone")
            ax.axvline(report.score.headline, color="black", linestyle="--",
                       label=f"pooled score {report.score.headline:.4f}")
            ax.set_xlabel(f"{competition.metric_label} of one sequence")
            ax.set_ylabel("sequences")
            ax.legend()
        ax.set_title("Score by sequence")
        fig.tight_layout()
    return fig


def memory_figure(report: SimulationReport) -> Figure:
    """Resident memory of the candidate's process tree over the run, as the parent sampled it."""
    mem = report.memory
    with plt.rc_context(FONT_SIZES):
        fig, ax = plt.subplots(figsize=SECTION_SIZE)
        if mem.series_s:
            mib = np.array(mem.series_bytes, dtype=np.float64) / 1024**2
            ax.step(mem.series_s, mib, where="post", label="candidate and its children (RSS)")
            ax.axhline(mem.peak_bytes / 1024**2, color="tab:orange", linestyle="--",
                       label=f"peak {mem.peak_bytes / 1024**2:,.0f} MiB")
            if mem.peak_bytes > mem.limit_bytes / 4:  # the cap is only drawn where it is in view
                ax.axhline(mem.limit_bytes / 1024**2, color="red", label=f"cap {mem.limit_bytes / GIB:g} GiB")
            ax.set_ylim(bottom=0)
            ax.set_xlabel("seconds since the sandbox started the run")
            ax.set_ylabel("MiB")
            ax.legend(loc="lower right")
        ax.set_title(f"Memory over the run (cap {mem.limit_bytes / GIB:g} GiB)")
        fig.tight_layout()
    return fig


def projection_figure(report: SimulationReport) -> Figure:
    """The projected test-set time as its parts, one stacked bar, against the limit."""
    timing = report.timing
    parts = timing.projection_parts()
    with plt.rc_context(FONT_SIZES):
        fig, ax = plt.subplots(figsize=SECTION_SIZE)
        if parts:
            left = 0.0
            for label, seconds in parts:
                ax.barh([0], [seconds / 60], left=left, height=0.5, label=f"{label}: {seconds / 60:.2f} min")
                left += seconds / 60
            ax.axvline(timing.limit_s / 60, color="red", linestyle="--", label=f"limit {timing.limit_s / 60:g} min")
            ax.annotate(f"{left:.1f} min ({left * 60 / timing.limit_s:.0%} of the limit)", (left, 0),
                        xytext=(6, 0), textcoords="offset points", va="center")
            ax.set_yticks([])
            ax.set_xlim(0, max(left, timing.limit_s / 60) * 1.05)
            ax.set_xlabel("minutes for the full test set")
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, fontsize=9)
        ax.set_title(f"Projected test-set time ({timing.test_sequences} sequences)")
        fig.tight_layout()
    return fig
