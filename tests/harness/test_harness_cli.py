"""The command line end to end: exit codes, the JSON report, the plot, and clean user errors."""

import json

from harness.cli import main

MEAN = """
import numpy as np
class PredictionModel:
    def __init__(self):
        self.seq, self.total, self.n = None, None, 0
    def predict(self, dp):
        if dp.seq_ix != self.seq:
            self.seq, self.total, self.n = dp.seq_ix, np.zeros(32), 0
        self.total += dp.state
        self.n += 1
        return self.total / self.n if dp.need_prediction else None
"""


def test_simulate_writes_json_and_plot_and_exits_zero(candidate, a_file, tmp_path, capsys):
    from harness.baselines import baseline_score
    from harness.data import ParquetSource

    out, png = tmp_path / "r.json", tmp_path / "r.png"
    code = main(["simulate", str(candidate(MEAN)), "--data", str(a_file), "--json", str(out), "--plot", str(png)])
    report = json.loads(out.read_text())
    assert code == 0 and report["verdict"] == "PASS"
    src = ParquetSource(a_file)
    assert abs(report["score"]["headline"] - baseline_score(src.competition, src)) < 1e-12
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "verdict" in capsys.readouterr().out


def test_simulate_failure_exits_one_and_names_the_row(candidate, a_file, capsys):
    bad = MEAN.replace("return self.total / self.n if", "return None if")
    assert main(["simulate", str(candidate(bad)), "--data", str(a_file)]) == 1
    out = capsys.readouterr().out
    assert "missing_prediction" in out and "step_in_seq 100" in " ".join(out.split())


def test_user_errors_exit_two_without_traceback(tmp_path, capsys):
    assert main(["simulate", str(tmp_path), "--data", str(tmp_path / "none.parquet")]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "Traceback" not in err


def test_gate_cli_prints_the_reproduce_command(candidate, a_file, capsys):
    code = main(["gate", str(candidate("import hypothesis\n" + MEAN)), "--data", str(a_file), "--only", "dependencies"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 1 and "reproduce dependencies: python -m harness gate" in out
