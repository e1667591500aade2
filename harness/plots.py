"""A one-page picture of a grading: where the time goes per call, and which outputs score."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from harness.competitions import SEQUENCE_LENGTH, Competition  # noqa: E402
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
