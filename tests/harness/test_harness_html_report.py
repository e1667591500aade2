"""The self-contained HTML report (``simulate --report``, ``gate --report``): what each section
holds, that nothing in it is fetched or run, that failures still get a page, and that the memory
curve it draws is sampled during the run and bounded."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from harness import competitions as C, metrics
from harness.cli import main
from harness.data import ParquetSource, targets_of
from harness.gate import CHECKS
from harness.html_report import FIGURE_SECTIONS
from harness.memory_series import MemorySeries
from harness.simulate import SimulateOptions, simulate
from harness.simulation import Projection, SimulationReport, Timing
from harness.randomdata import MEAN_SO_FAR_SOURCE as MEAN

HOSTILE_MESSAGE = '<script src="https://evil.example/x.js"></script><img src="http://evil.example/p.png">'
RAISES_MARKUP = MEAN.replace(
    "        self.n += 1\n",
    f"        self.n += 1\n        if dp.step_in_seq == 150:\n            raise RuntimeError({HOSTILE_MESSAGE!r})\n")


class Page(HTMLParser):
    """Every tag with its attributes, the section each sits in, and the text of each section."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict, str | None]] = []
        self.text: dict[str | None, str] = {}
        self._section: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._section = attrs.get("id")
        self.tags.append((tag, attrs, self._section))

    def handle_endtag(self, tag):
        if tag == "section":
            self._section = None

    def handle_data(self, data):
        self.text[self._section] = self.text.get(self._section, "") + data

    def sections(self) -> list[str]:
        return [attrs["id"] for tag, attrs, _ in self.tags if tag == "section"]

    def figures(self, section: str) -> int:
        return sum(1 for tag, _, where in self.tags if tag in ("img", "svg") and where == section)

    def urls(self) -> list[str]:
        return [value for _, attrs, _ in self.tags for key, value in attrs.items() if key in ("src", "href")]


def _read(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))


def test_simulate_report_holds_the_score_and_one_figure_per_section(candidate, a_file, tmp_path, capsys):
    page_path, json_path = tmp_path / "out" / "r.html", tmp_path / "r.json"
    code = main(["simulate", str(candidate(MEAN)), "--data", str(a_file), "--report", str(page_path),
                 "--json", str(json_path)])
    assert code == 0 and f"HTML report written to {page_path}" in " ".join(capsys.readouterr().out.split())
    assert [p.name for p in page_path.parent.iterdir()] == ["r.html"]  # no temporary left behind
    report = SimulationReport.from_json(json.loads(json_path.read_text()))
    page = _read(page_path)
    assert page.sections() == ["verdict", "score", "sequences", "latency", "memory", "projection", "sandbox"]
    for section in FIGURE_SECTIONS:
        assert page.figures(section) == 1, section
    assert page.figures("verdict") == 0 and page.figures("sandbox") == 0
    assert "PASS" in page.text["verdict"]
    score = report.score
    assert f"{score.headline:.4f}" in page.text["score"]
    assert f"[{score.interval95[0]:.4f}, {score.interval95[1]:.4f}]" in page.text["score"]
    # the worst sequences by seq_ix, with the score of each alone
    worst_seq, worst = min(score.by_sequence.headlines().items(), key=lambda item: item[1])
    assert f"{worst_seq}{worst:.4f}" in page.text["sequences"].replace("\n", "")
    assert f"{report.timing.projection.projected_test_s:,.1f}" in page.text["projection"]
    assert report.sandbox.filesystem in page.text["sandbox"]


def test_the_score_by_sequence_names_the_files_sequences_and_scores_each_alone(candidate, a_file):
    report = simulate(candidate(MEAN), a_file, options=SimulateOptions(bootstrap=20))
    source = ParquetSource(a_file)
    comp, per = source.competition, source.competition.scored_steps_per_sequence
    assert list(report.score.by_sequence.headlines()) == list(source.sequence_ids())
    # score every sequence the way a user would, from the rows: the direct metric of each
    from harness.baselines import baseline_predictions

    y = targets_of(comp, source.blocks())
    preds = baseline_predictions(comp, source, source.num_sequences)  # MEAN is the simple baseline
    direct = [metrics.score(comp, y[i * per:(i + 1) * per], preds[i * per:(i + 1) * per])[comp.metric]
              for i in range(source.num_sequences)]
    # moments vs. the direct formula: the same number up to rounding only
    np.testing.assert_allclose(list(report.score.by_sequence.headlines().values()), direct, rtol=0, atol=1e-9)


def test_nothing_in_the_page_is_fetched_and_a_failed_run_still_gets_one(candidate, a_file, tmp_path):
    page_path = tmp_path / "r.html"
    assert main(["simulate", str(candidate(RAISES_MARKUP)), "--data", str(a_file), "--report", str(page_path)]) == 1
    text = page_path.read_text(encoding="utf-8")
    page = Page(text)
    assert not [tag for tag, _, _ in page.tags if tag in ("script", "iframe", "object", "embed")]
    urls = page.urls()
    assert urls and all(not u.lower().startswith(("http:", "https:", "//", "ftp:")) for u in urls), urls
    assert all(u.startswith("data:") for u in urls)  # images and the favicon are inline
    assert "http://" not in text.split("<body>")[0] and "@import" not in text  # nor in the CSS
    # the candidate's error, markup included, is shown as text in the verdict section
    verdict = page.text["verdict"]
    assert "FAIL" in verdict and "predict_error" in verdict and HOSTILE_MESSAGE in verdict
    assert "no score" in page.text["score"] and "none: the run failed" in page.text["projection"]
    assert page.figures("memory") == 1  # sampled up to the failure


def test_a_candidate_that_cannot_be_unpacked_still_gets_a_page(tmp_path, a_file):
    nested = tmp_path / "cand"
    (nested / "inner").mkdir(parents=True)
    (nested / "inner" / "solution.py").write_text("class PredictionModel:\n    pass\n")
    page_path = tmp_path / "r.html"
    assert main(["simulate", str(nested), "--data", str(a_file), "--report", str(page_path)]) == 1
    page = _read(page_path)
    assert page.sections() == ["verdict"] and "FAIL" in page.text["verdict"]
    assert "not at the archive's root" in page.text["verdict"]


def test_gate_report_holds_the_checks_and_the_score_samples_sections(candidate, a_file, tmp_path):
    page_path = tmp_path / "g.html"
    code = main(["gate", str(candidate(MEAN)), "--data", str(a_file), "--report", str(page_path),
                 "--min-score", "-1"])
    page = _read(page_path)
    assert page.sections()[:2] == ["verdict", "checks"]
    assert set(FIGURE_SECTIONS) < set(page.sections())
    for section in FIGURE_SECTIONS:
        assert page.figures(section) == 1, section
    checks = page.text["checks"]
    for name in CHECKS:
        assert name in checks, name
    assert code == 0 and ("PASS" in page.text["verdict"] or "WARN" in page.text["verdict"])


def test_gate_report_of_a_candidate_without_a_replay(candidate, a_file, tmp_path):
    page_path = tmp_path / "g.html"
    assert main(["gate", str(candidate("x = 1\n")), "--data", str(a_file), "--report", str(page_path)]) == 1
    page = _read(page_path)
    assert page.sections() == ["verdict", "checks", "run"]
    assert "defines no top-level class PredictionModel" in page.text["verdict"]


# ------------------------------------------------------------------------------------------ memory over the run


def test_memory_series_stays_bounded_and_keeps_the_peak():
    series = MemorySeries(max_points=100, resolution_s=0.05)
    rng = np.random.default_rng(0)
    values = rng.integers(1, 10**9, size=20_000)
    for i, value in enumerate(values):
        series.add(i * 0.05, int(value))
        assert len(series) <= 100
    times = series.times_s()
    assert len(times) > 50  # coarsened by halves, so never below half the bound
    assert series.values_bytes()[np.argmax(series.values_bytes())] == values.max()  # a spike survives
    assert all(b > a for a, b in zip(times, times[1:])) and times[0] == 0.0
    assert times[-1] <= 20_000 * 0.05 < times[-1] + 2 * series.resolution_s  # the curve reaches the end
    # each point is the maximum of the samples in its interval
    width = series.resolution_s
    for t, v in zip(times[:5], series.values_bytes()[:5]):
        lo, hi = int(round(t / 0.05)), int(round((t + width) / 0.05))
        assert v == values[lo:hi].max()


def test_memory_series_is_sampled_during_the_run(candidate, a_file):
    # holds 300 MB from the second sequence on, and lingers there so that samples see it
    grows = MEAN.replace("            self.seq, self.total, self.n = dp.seq_ix, np.zeros(32), 0\n", """\
            self.seq, self.total, self.n = dp.seq_ix, np.zeros(32), 0
            self.count = getattr(self, "count", 0) + 1
            if self.count == 2:
                import time
                self.big = np.ones(300 * 2**20 // 8)
                time.sleep(0.4)
""")
    report = simulate(candidate(grows), a_file, options=SimulateOptions(bootstrap=0))
    mem = report.memory
    assert report.ok and 3 <= len(mem.series_s) <= 2000 and len(mem.series_s) == len(mem.series_bytes)
    assert max(mem.series_bytes) <= mem.peak_bytes and min(mem.series_bytes) > 0  # no point after the tree ended
    low, high = min(mem.series_bytes), max(mem.series_bytes)
    assert high - low > 250 * 2**20  # the rise is on the curve, not only in the peak
    rise = next(t for t, b in zip(mem.series_s, mem.series_bytes) if b - low > 250 * 2**20)
    assert rise > mem.series_s[0]


# ------------------------------------------------------------------------------------------ projection parts


@pytest.mark.parametrize("measured_run_s", [None, 500.0])
def test_the_projections_parts_add_up_to_it(measured_run_s):
    from harness.sandbox import RunOutcome
    from harness.simulate import projection

    outcome = RunOutcome(import_s=0.5, construct_s=1.5, replay_s=6.0, sequence_s=[3.0, 1.5, 1.5], rows=3000,
                         measured_run_s=measured_run_s)
    proj = projection(outcome, 517, 1.5)
    timing = Timing(0.5, 1.5, 2.0, 9.0, 6.0, 3600.0, 1.5, 517, measured_run_s, None, projection=proj)
    parts = dict(timing.projection_parts())
    assert sum(parts.values()) == pytest.approx(proj.projected_test_s, rel=1e-12)
    assert parts["start-up (import + constructor)"] == 2.0 and parts["first sequence"] == 3.0
    assert parts["516 more sequences at 1.5 s"] == pytest.approx(516 * 1.5, rel=1e-12)
    clock = parts["the grader's clock above the child's"]
    if measured_run_s is None:
        assert clock == 0.0
    else:  # 500 s measured, plus 514 sequences to come at 1.5 s, is above the child's 2 + 3 + 774
        assert clock == pytest.approx(500 + 514 * 1.5 - (2 + 3 + 516 * 1.5), rel=1e-9)
    assert Timing(0.5, 1.5, 2.0, 9.0, 6.0, 3600.0, 1.5, 517).projection_parts() == []
    assert isinstance(proj, Projection)


@pytest.mark.parametrize("command", ["simulate", "gate"])
def test_a_folder_as_the_report_path_is_refused_before_any_run(command, tmp_path, a_file, capsys):
    assert main([command, str(tmp_path), "--data", str(a_file), "--report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert f"{tmp_path} is a folder; name a file in it, such as {tmp_path / 'report.html'}" in err
