"""The typed grading report: its JSON round trip, its schema, and readers that read it typed."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from rich.console import Console

from harness import competitions as C
from harness.errors import CandidateError, ErrorKind
from harness.plots import budget_per_call_us
from harness.report import render, write_json
from harness.metrics import SequenceStats
from harness.simulate import SimulateOptions, simulate
from harness.simulation import (BySequence, Flag, Latency, Memory, Projection, SandboxFacts, Score, SimulationReport,
                                Timing)
from models.evaluate import parity

GOOD = """
import numpy as np

class PredictionModel:
    def predict(self, dp):
        return dp.state.copy() if dp.need_prediction else None
"""

FAILS = GOOD.replace("return dp.state.copy()", "return {}['boom'] if dp.step_in_seq == 300 else dp.state.copy()")

TOP_KEYS = {"candidate", "data", "competition", "metric", "status", "error", "sequences", "rows", "score", "timing",
            "memory", "sandbox", "threads", "modules", "stderr_tail", "verdict", "reasons", "data_sha256",
            "candidate_bytes"}
"""The ``--json`` report's keys (README, "simulate"): other programs read these."""


def _report(**changes) -> SimulationReport:
    """A report with a value in every field, none of them a default."""
    timing = Timing(0.25, 0.5, 0.75, 3.0, 2.0, 3600.0, 1.5, 1444, 2.9, 0.4,
                    Latency(1.0, 2.0, 3.0, 4.0, 1.5, 300), Latency(5.0, 6.0, 7.0, 8.0, 5.5, 2697),
                    Projection(1e5, 10.0, 0.9, 1234.5))
    fields = dict(candidate="sol", data="d.parquet", competition="A", metric="r2",
                  error=CandidateError(ErrorKind.PREDICT_ERROR, "boom", 7, 8, 9, "Traceback..."), sequences=3,
                  rows=3000, score=Score(0.1, {"f0": 0.2}, (0.05, 0.15), {"observable": 0.3}, Flag("WARN", "why"),
                              BySequence([4, 9], SequenceStats("mean_r2", *(np.array([[0.1 * k], [1 / 3]]) for k in range(7))))),
                  timing=timing, memory=Memory(10, 20, [0.0, 0.05], [5, 10]),
                  sandbox=SandboxFacts("pinned", 1.0, "net", "fs", "procs", 0),
                  threads=["t"], modules=["numpy"], stderr_tail="tail", verdict="FAIL", reasons=["r"], plot="p.png",
                  data_sha256="ab" * 32, candidate_bytes=1234)
    return SimulationReport(**{**fields, **changes})


@pytest.mark.parametrize("source, verdict", [(GOOD, "PASS"), (FAILS, "FAIL")])
def test_a_simulated_report_reads_back_from_its_json_equal(source, verdict, candidate, a_file):
    report = simulate(candidate(source), a_file, options=SimulateOptions(bootstrap=50, fingerprint=True))
    assert report.verdict == verdict
    data = json.loads(json.dumps(report.to_json()))  # Python's float repr reads back to the same float
    assert set(data) == TOP_KEYS
    assert SimulationReport.from_json(data) == report
    assert report.data_sha256 == hashlib.sha256(a_file.read_bytes()).hexdigest()  # harness compare checks it
    assert report.candidate_bytes is None  # a folder, not a zip


def test_every_field_survives_the_json_round_trip():
    report = _report()
    assert SimulationReport.from_json(json.loads(json.dumps(report.to_json()))) == report
    timing = report.to_json()["timing"]
    # the projection's keys sit flat in "timing", as they always did, and only when there is one
    assert timing["projected_test_s"] == 1234.5 and timing["headroom_s"] == 3600.0 - 1234.5
    bare = _report(timing=Timing(None, None, None, 0.1, None, 60.0, 1.5, 10)).to_json()["timing"]
    assert "projected_test_s" not in bare and "scored" not in bare


def test_write_json_writes_the_json_form(tmp_path):
    path = write_json(_report(), tmp_path / "out" / "r.json")
    assert SimulationReport.from_json(json.loads(path.read_text())) == _report()
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temporary left behind


def _rendered(report: SimulationReport) -> str:
    console = Console(record=True, width=200)
    render(report, console)
    return console.export_text()


def test_the_terminal_report_reads_the_typed_report():
    text = _rendered(_report(error=None, verdict="WARN", reasons=["a reason"]))
    for shown in ("0.1000", "[0.0500, 0.1500]", "20.6 min of 60", "5.0 / 6.0 / 7.0 / 8 us", "2.90 s",
                  "verdict: WARN", "a reason"):
        assert shown in text, shown
    failed = _rendered(_report())
    assert "none: the run failed" in failed and "Traceback..." in failed and "tail" in failed


def test_the_plot_budget_and_the_parity_check_read_the_typed_report():
    report = _report(error=None)
    assert budget_per_call_us(report, C.A) == pytest.approx(3600.0 / (1444 * 1000) / 1.5 * 1e6)
    result = parity({"score": 0.125, "per_output": {"f0": 0.2}}, report)
    assert result["max_abs_diff"] == pytest.approx(0.025) and result["online_score"] == 0.1
    with pytest.raises(RuntimeError, match="predict_error at seq_ix 7"):
        parity({"score": 0.1, "per_output": {}}, _report())


def test_an_error_is_one_line_and_reads_back_only_as_the_harness_writes_it():
    error = CandidateError(ErrorKind.NON_FINITE, "returned nan", 3, 400, 3400)
    assert str(error) == "non_finite at seq_ix 3, step_in_seq 400 (row 3400): returned nan"
    assert CandidateError.from_dict(json.loads(json.dumps(error.to_dict()))) == error
    for forged in ({"kind": "pwned", "message": ""}, {"kind": "layout", "message": 3},
                   {"kind": "layout", "message": "", "extra": 1}, {"kind": "layout", "message": "", "row": -1},
                   {"kind": ["layout"], "message": ""}, "layout"):
        with pytest.raises(ValueError):
            CandidateError.from_dict(forged)
