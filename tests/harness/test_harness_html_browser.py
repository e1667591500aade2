"""The HTML report in a real browser: Debian's chromium, headless, opens the page from disk, logs
no console message, and draws something (its screenshot is not one flat colour).

chromium is installed by ``.ci/run`` where it can be (root with apt-get); elsewhere this check
is skipped with the reason. A control page with a script error and nothing to draw shows that
the check sees what it looks for."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from harness import competitions as C
from harness.errors import CandidateError, ErrorKind
from harness.randomdata import synthetic_by_sequence
from harness.html_report import simulation_html, write_html
from harness.simulation import Latency, Memory, Projection, SandboxFacts, Score, SimulationReport, Timing

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not found: the HTML report's browser check needs Debian's "
                       "chromium (apt-get install chromium; .ci/run installs it when run as root)"),
    pytest.mark.slow,  # 6-16 s for the first test on the shared 2-core VM (two browser starts, five figures)
]


def _report(error: CandidateError | None = None) -> SimulationReport:
    """A report with every section filled: 12 sequences of A, a memory curve, a projection."""
    rng = np.random.default_rng(0)
    names = [str(k) for k in range(32)]
    score = Score(0.21, dict(zip(names, rng.uniform(0, 0.4, 32))), (0.18, 0.24),
                  {"observable": 0.3, "fraction_of_observable": 0.7, "hidden": 0.5,
                   "per_output": dict(zip(names, rng.uniform(0.2, 0.5, 32)))},
                  by_sequence=synthetic_by_sequence(C.A, range(100, 112), rng))
    timing = Timing(0.4, 0.6, 1.0, 9.0, 7.0, 3600.0, 1.5, 517, 8.5, 0.5,
                    Latency(20.0, 30.0, 60.0, 900.0, 25.0, 1200), Latency(40.0, 50.0, 90.0, 1500.0, 45.0, 10788),
                    Projection(2e4, 50.0, 1.2, 60.0 * 41))
    memory = Memory(300 * 2**20, 16 * 2**30, [0.05 * i for i in range(200)],
                    [int(2**20 * (80 + min(i, 120))) for i in range(200)])
    sandbox = SandboxFacts("pinned to core 1 of 2; used 0.99 cores", 0.99, "internet sockets refused",
                           "read-only except the run folder", "every process counted", 0)
    return SimulationReport("solutions/x", "data/A/valid.parquet", "A", "mean_r2", error, 12, 12000,
                            None if error else score, timing, memory, sandbox, modules=["numpy"],
                            verdict="FAIL" if error else "PASS",
                            reasons=[str(error)] if error else [])


def _open_in_chromium(page: Path, tmp_path: Path) -> tuple[list[str], np.ndarray]:
    """The console lines chromium logged for ``page``, and its screenshot as an RGB(A) array."""
    shot = tmp_path / f"{page.stem}.png"
    run = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", "--window-size=1100,2400", "--enable-logging=stderr", "--v=0", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.is_file(), f"chromium wrote no screenshot (exit {run.returncode}): {run.stderr[-2000:]}"
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    return console, image.imread(shot)


def _colours(pixels: np.ndarray) -> int:
    """Distinct RGB colours (each pixel packed into one integer: a 1-D unique is fast)."""
    rgb = (pixels[..., :3] * 255).round().astype(np.uint32)
    return len(np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]))


def test_the_report_opens_in_chromium_without_console_messages_and_draws(tmp_path):
    latency_ns = np.random.default_rng(1).lognormal(np.log(40_000), 0.4, 12000).astype(np.int64)
    page = write_html(simulation_html(_report(), latency_ns), tmp_path / "report.html")
    console, pixels = _open_in_chromium(page, tmp_path)
    assert console == []
    assert _colours(pixels) > 50  # text, coloured badges and five figures, not a blank page

    control = tmp_path / "control.html"
    control.write_text("<!DOCTYPE html><html><body><script>console.error('planted'); missing();</script></body></html>")
    console, pixels = _open_in_chromium(control, tmp_path)
    assert any("planted" in line for line in console) and any("missing" in line for line in console)
    assert _colours(pixels) == 1


def test_a_failed_runs_report_opens_without_console_messages(tmp_path):
    error = CandidateError(ErrorKind.PREDICT_ERROR, "<script>console.error('x')</script>", 100, 150, 150,
                           "Traceback (most recent call last):\n  ...\nRuntimeError: <b>boom</b>")
    page = write_html(simulation_html(_report(error), None), tmp_path / "failed.html")
    console, pixels = _open_in_chromium(page, tmp_path)
    assert console == [] and _colours(pixels) > 2
