"""The command line end to end: exit codes, the JSON report, the plot, and clean user errors."""

import json

from harness.cli import main
from harness.randomdata import MEAN_SO_FAR_SOURCE as MEAN


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


# --------------------------------------------------------------------------- a newcomer's first hour (issue 12)
import configparser  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import tomllib  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import pytest  # noqa: E402

import wunderbench  # noqa: E402
from harness import competitions as C, progress  # noqa: E402
from harness.plots import budget_per_call_us, report_figure  # noqa: E402
from harness.progress import PlainProgress  # noqa: E402
from harness.simulate import thread_warnings  # noqa: E402
from harness.simulation import SimulationReport  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RAISES = MEAN.replace("        self.total += dp.state\n", "        self.total += dp.state\n        if dp.step_in_seq == 150:\n            raise RuntimeError('boom')\n")


def one_line_error(capsys, after_progress: str | None = None) -> str:
    """The one line of a user error on stderr. A bad row in the data is found while the replay
    streams the file (one read), so the plain progress lines of that replay (``after_progress``
    is their label) may come first; the error is then the last line."""
    lines = capsys.readouterr().err.strip().splitlines()
    err = "\n".join(lines)
    if after_progress is not None:
        assert all(line.startswith(f"{after_progress}: ") for line in lines[:-1]), err
        lines = lines[-1:]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("args, says", [
    (["--sequences", "0"], "argument --sequences: must be at least 1, got 0"),
    (["--sequences", "-3"], "argument --sequences: must be at least 1, got -3"),
    (["--competition", "C"], "unknown competition 'C'"),
])
def test_bad_options_are_one_line_and_exit_two(args, says, candidate, a_file, capsys):
    assert main(["simulate", str(candidate(MEAN)), "--data", str(a_file), *args]) == 2
    assert says in one_line_error(capsys)


def test_a_file_with_the_columns_and_no_rows_is_refused_before_the_candidate_runs(candidate, a_file, tmp_path, capsys):
    empty = tmp_path / "empty.parquet"
    pq.write_table(pq.read_table(a_file).slice(0, 0), empty)
    ran = tmp_path / "ran"
    assert main(["simulate", str(candidate(f"open({str(ran)!r}, 'w').close()\n" + MEAN)), "--data", str(empty)]) == 2
    assert "has the A (next-state) columns but no rows" in one_line_error(capsys) and not ran.exists()


def test_a_csv_named_parquet_is_called_what_it_is(candidate, tmp_path, capsys):
    fake = tmp_path / "train.parquet"
    fake.write_text("seq_ix,step_in_seq,need_prediction,0\n0,0,0,0.5\n")
    assert main(["simulate", str(candidate(MEAN)), "--data", str(fake)]) == 2
    err = one_line_error(capsys)
    assert "not a parquet file (it looks like CSV text, starting 'seq_ix,step_in_seq" in err and "corrupt" not in err


def test_a_duplicated_seq_ix_is_named(candidate, a_file, tmp_path, capsys):
    table = pq.read_table(a_file)
    seq = table.column("seq_ix").to_numpy().copy()
    seq[1000:2000] = seq[0]  # the second sequence reuses the first one's id
    dup = tmp_path / "dup.parquet"
    pq.write_table(table.set_column(0, "seq_ix", pa.array(seq, table.schema.field("seq_ix").type)), dup)
    cand = candidate(MEAN)
    assert main(["simulate", str(cand), "--data", str(dup)]) == 2
    err = one_line_error(capsys, after_progress=f"simulate {cand.name}")
    assert f"seq_ix {seq[0]} is used again" in err and "row 1000" in err and "999 to 0" not in err


def test_gate_names_the_real_problem_with_a_folder(tmp_path, capsys):
    for name in ("one", "two"):
        (tmp_path / "solutions" / name).mkdir(parents=True)
        (tmp_path / "solutions" / name / "manifest.json").write_text('{"competition": "A"}')
    assert main(["gate", str(tmp_path / "solutions")]) == 2
    assert "is a folder of solutions (one, two), not one" in one_line_error(capsys)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "solution.py").write_text(MEAN)
    assert main(["gate", str(bare)]) == 2
    err = one_line_error(capsys)
    assert "has no manifest.json naming its competition" in err and "zip" not in err


def test_a_malformed_manifest_is_one_line_and_exit_two(tmp_path, capsys):
    folder = tmp_path / "solutions" / "bad"
    folder.mkdir(parents=True)
    (folder / "solution.py").write_text(MEAN)
    (folder / "manifest.json").write_text('{"competition": "C"}')
    assert main(["gate", str(folder)]) == 2
    assert "'competition' must be one of" in one_line_error(capsys)
    assert main(["gate-all", "--root", str(tmp_path / "solutions")]) == 2
    assert "'competition' must be one of" in one_line_error(capsys)


def test_make_gate_without_solution_says_so():
    result = subprocess.run(["make", "gate"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "SOLUTION is not set: make gate SOLUTION=<name>" in result.stderr
    assert "a_mean_so_far" in result.stderr and "manifest" not in result.stderr


def test_package_offers_no_competition_option(capsys):
    with pytest.raises(SystemExit):
        main(["package", "--help"])
    assert "--competition" not in capsys.readouterr().out


USER_ERRORS = {
    "simulate": ["simulate", "no/such/folder"],
    "profile": ["profile", "no/such/folder"],
    "gate": ["gate", "no/such/folder"],
    "gate-all": ["gate-all", "--root", "no/such/folder"],
    "package": ["package", "no/such/folder"],
    "generate": ["generate", "-c", "A", "--split", "valid", "--sequences", "0", "--seed", "1", "--out", "x.parquet"],
    "calibrate": ["calibrate", "-c", "C"],
    "data": ["data", "--only", "A/nope"],
    "train": ["train", "no/such/folder"],
    "parity": ["parity", "no/such/folder"],
    "auto": ["auto", "--competition", "A", "--train", "no/such.parquet", "--valid", "no/such.parquet",
             "--out", "no/such/folder"],
    "generalize": ["generalize", "no/such/folder"],
    "compare": ["compare", "no/such/folder", "no/other/folder"],
    "compare-offline": ["compare-offline", "no/such/folder", "no/other/folder"],
    "leaderboard": ["leaderboard", "--reports", "no/such/folder"],
}


@pytest.mark.parametrize("command", sorted(USER_ERRORS))
def test_every_command_exits_two_on_a_user_mistake_and_documents_the_codes(command, capsys):
    assert wunderbench.main(USER_ERRORS[command]) == 2
    one_line_error(capsys)
    with pytest.raises(SystemExit) as done:
        wunderbench.main([command, "--help"])
    assert done.value.code == 0
    assert "exit codes: 0 passed (or passed with warnings), 1 the candidate failed" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["simulate", "gate"])
def test_a_candidate_without_solution_py_fails_with_one_everywhere(command, tmp_path, a_file, capsys):
    folder = tmp_path / "empty_candidate"
    folder.mkdir()
    (folder / "model.py").write_text("x = 1\n")
    assert main([command, str(folder), "--data", str(a_file)]) == 1
    assert "no solution.py at the root" in " ".join(capsys.readouterr().out.split())


def test_readme_states_the_exit_codes():
    readme = " ".join((ROOT / "README.md").read_text().replace("**", "").split())
    assert "0 passed (or passed with warnings), 1 the candidate failed (or a check did), 2 the input or the command is wrong" in readme


def test_progress_lines_say_rows_rate_and_eta():
    now = [0.0]
    lines = []

    class Sink:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    bar = PlainProgress("simulate x", 10_000, stream=Sink(), period_s=5.0, clock=lambda: now[0])
    bar({"phase": "replay"})
    for t, rows in ((1.0, 1000), (2.0, 2000), (6.0, 5000)):
        now[0] = t
        bar({"phase": "replay", "rows": rows})
    text = "".join(lines)
    assert text.splitlines() == ["simulate x: replay", "simulate x: 5,000 of 10,000 rows (50%), 833 rows/s, ETA 0m06s"]


def test_simulate_prints_progress_to_stderr_when_not_on_a_terminal(candidate, a_file, monkeypatch, capsys):
    monkeypatch.setattr(progress, "PERIOD_S", 0.0)
    assert main(["simulate", str(candidate(MEAN)), "--data", str(a_file)]) == 0
    captured = capsys.readouterr()
    assert "of 3,000 rows (100%)" in captured.err and "rows/s, ETA" in captured.err
    assert "rows/s, ETA" not in captured.out


def test_gate_replays_print_progress_when_not_on_a_terminal(candidate, a_file, monkeypatch, capsys):
    monkeypatch.setattr(progress, "PERIOD_S", 0.0)
    folder = candidate(MEAN)
    assert main(["gate", str(folder), "--data", str(a_file), "--sequences", "2", "--only", "runs_clean"]) == 0
    # The gate's replays differ in size (check sample, cut copy, score sample sized by time), so
    # its lines give rows and rate without a total.
    assert f"gate {folder.name}: 2,000 rows, " in capsys.readouterr().err


def test_tracebacks_name_the_users_files_not_the_sandbox(candidate, a_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "500")  # long paths stay on one line
    folder = candidate(RAISES)
    assert main(["simulate", str(folder), "--data", str(a_file)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert f'File "{folder / "solution.py"}", line' in out and "wunderbench-run-" not in out
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(folder / "solution.py", "solution.py")
    assert main(["simulate", str(archive), "--data", str(a_file)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert f'File "{archive}:solution.py", line' in out and "wunderbench-run-" not in out


def test_a_failed_run_projects_no_test_set_time(candidate, a_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "500")
    report = tmp_path / "r.json"
    assert main(["simulate", str(candidate(RAISES)), "--data", str(a_file), "--json", str(report)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"projected full test set\s*│\s*none: the run failed", out) and " min of " not in out
    assert "projected_test_s" not in json.loads(report.read_text())["timing"]


def test_plot_budget_carries_the_safety_factor_and_labels_are_readable(candidate, a_file, tmp_path):
    out = tmp_path / "r.json"
    main(["simulate", str(candidate(MEAN)), "--data", str(a_file), "--json", str(out), "--safety", "2"])
    report = SimulationReport.from_json(json.loads(out.read_text()))  # the plot reads the typed report
    budget = budget_per_call_us(report, C.A)
    assert budget == pytest.approx(C.A.limits.seconds / C.A.test_rows / 2 * 1e6)
    fig = report_figure(report, np.full(3000, 5_000.0), C.A)
    latency, scores = fig.axes
    line = next(text.get_text() for text in latency.get_legend().get_texts() if "budget" in text.get_text())
    assert f"budget {budget:,.0f} us/call" in line and "2 safety" in line
    assert scores.get_ylabel() == C.A.output_metric_label and "mean" not in scores.get_ylabel()
    assert min(label.get_fontsize() for label in scores.get_xticklabels() + latency.get_xticklabels()) >= 10


def test_only_importing_torch_raises_no_thread_warning(candidate, a_file, tmp_path):
    out = tmp_path / "r.json"
    assert main(["simulate", str(candidate("import torch\n" + MEAN)), "--data", str(a_file), "--sequences", "1",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["verdict"] == "PASS" and report["threads"] == []
    raised = "import torch\ntorch.set_num_threads(2)\n" + MEAN
    assert main(["simulate", str(candidate(raised)), "--data", str(a_file), "--sequences", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["verdict"] == "WARN" and "torch uses 2 intra-op threads (the sandbox set 1)" in report["threads"]


def test_every_tox_environment_has_a_description_and_nothing_reinstalls_the_project():
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    envs = [section for section in tox.sections() if section.startswith("testenv:")]
    assert "testenv:tests" in envs and all(tox[env].get("description") for env in envs)
    assert tox["testenv"].getboolean("skip_install") and "install" not in tox["testenv"].get("commands_pre", "")
    assert ".venv/bin/python -m tox" in subprocess.run(["make", "-n", "tox"], cwd=ROOT, capture_output=True,
                                                        text=True, timeout=60).stdout


def test_wunderbench_is_one_command_for_grading_and_training(capsys):
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"wunderbench": "wunderbench:main"}
    with pytest.raises(SystemExit):
        wunderbench.main(["--help"])
    listed = capsys.readouterr().out
    for command in ("simulate", "profile", "gate", "gate-all", "package", "generate", "calibrate", "data", "train",
                    "parity", "compare", "compare-offline", "leaderboard"):
        assert re.search(rf"\n    {command}\s", listed), command
    assert listed.startswith("usage: wunderbench")
