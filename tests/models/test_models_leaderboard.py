"""``python -m models leaderboard``: the table's rows are the run records and reports it read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import cli as harness_cli, competitions as C
from harness.randomdata import write_random_file
from harness.simulation import SimulationReport
from models import leaderboard as board
from models.cli import main
from models.record import write_record

MIB = 1024 ** 2


@pytest.fixture(scope="module")
def runs(tmp_path_factory, a_random) -> Path:
    """A runs folder holding two real training records (``models train``), one real simulate
    report (``harness simulate --json``) and two files of other kinds (written by
    ``write_record``, the project's writer)."""
    root = tmp_path_factory.mktemp("board")
    folder = root / "sol"
    folder.mkdir()
    manifest = {"competition": "A", "trained": True, "family": "baseline", "train": {"rule": "mean_so_far"},
                "artifacts": ["model.json", "pipeline.npz", "weights.npz"]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "solution.py").write_text((Path(__file__).resolve().parents[2] / "solutions" / "a_ridge_var" /
                                         "solution.py").read_text())
    records = root / "runs"
    valid = write_random_file(C.A, root / "valid.parquet", 3, seed=11, sequences_per_group=1)  # not the train file
    for sequences in ("2", "3"):
        assert main(["train", str(folder), "--train", str(a_random), "--valid", str(valid), "--sequences", "2",
                     "--valid-sequences", sequences, "--runs", str(records)]) == 0
    assert harness_cli.main(["simulate", str(folder), "--data", str(valid), "--sequences", "2",
                             "--json", str(records / "sub" / "sim.json")]) in (0, 1)
    write_record("sol-generalize", {"solution": "sol", "scenarios": [], "competition": "A"}, records)
    write_record("cmp", {"command": "compare", "pairs": []}, records)  # as harness compare --json writes it
    return records


def test_the_rows_equal_the_run_records_and_reports(runs):
    rows, others = board.read_rows(board.json_files([runs]), pytest.fail)
    frame = board.table(rows)
    assert others == {"auto": 0, "generalize": 1, "compare": 1}
    by_file = {r["file"]: r for r in frame.iter_rows(named=True)}
    records = sorted(p for p in runs.glob("sol-*.json") if "generalize" not in p.name)
    assert len(records) == 2 and len(by_file) == 3
    for path in records:
        record = json.loads(path.read_text())
        assert by_file[str(path)] == {
            "solution": "sol", "kind": "train", "competition": "A", "data_sha256": record["data"]["valid"]["sha256"],
            "sequences": record["valid_scored_sequences"], "score": record["valid_score"], "interval_low": None,
            "interval_high": None,
            "fraction_of_oracle": (record.get("oracle") or {}).get("fraction_of_observable"),
            "us_per_row": None, "peak_mib": None, "size_mb": sum(record["artifacts"].values()) / MIB,
            "train_s": record["seconds"], "started_utc": record["started_utc"], "file": str(path)}
    report_path = runs / "sub" / "sim.json"
    report = SimulationReport.from_json(json.loads(report_path.read_text()))
    assert by_file[str(report_path)] == {
        "solution": "sol", "kind": "simulate", "competition": "A", "data_sha256": report.data_sha256,
        "sequences": 2, "score": report.score.headline, "interval_low": report.score.interval95[0],
        "interval_high": report.score.interval95[1], "fraction_of_oracle": None,
        "us_per_row": report.timing.projection.per_row_us, "peak_mib": report.memory.peak_bytes / MIB,
        "size_mb": None, "train_s": None, "started_utc": None, "file": str(report_path)}
    assert report.data_sha256 == by_file[str(records[0])]["data_sha256"]  # both name the same file by its bytes


def test_sort_and_filters_select_in_polars(runs):
    rows, _ = board.read_rows(board.json_files([runs]), pytest.fail)
    frame = board.table(rows)
    best_first = board.select(frame)["score"].to_list()
    assert best_first == sorted(best_first, reverse=True)
    assert board.select(frame, reverse=True)["score"].to_list() == best_first[::-1]
    assert board.select(frame, where="kind = 'simulate'")["kind"].to_list() == ["simulate"]
    sha = frame["data_sha256"][0]
    assert board.select(frame, data=sha[:6].upper()).height == 3 and board.select(frame, data="zz").height == 0
    assert board.select(frame, solution="other").height == 0 and board.select(frame, competition="B").height == 0
    cheap = board.select(frame, sort="train_s")["train_s"].to_list()
    assert cheap[:2] == sorted(cheap[:2]) and cheap[2] is None  # costs low to high, unknowns last


def test_a_malformed_record_is_skipped_with_one_line_naming_it(runs, tmp_path, capsys):
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "broken.json").write_text('{"solution": "x", "valid_score": 0.1}')  # a record without its data
    (extra / "garbage.json").write_text("{not json")
    assert main(["leaderboard", "--runs", str(runs), "--reports", str(extra), "--report", str(tmp_path / "b.html")]) == 0
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in captured.err
    assert f"{extra / 'broken.json'}: skipped" in lines[0] and "no 'competition'" in lines[0]
    assert f"{extra / 'garbage.json'}: skipped" in lines[1]
    assert "Competition A: 3 runs" in captured.out and "1 generalize, 1 compare" in captured.out
    assert "<table>" in (tmp_path / "b.html").read_text()


@pytest.mark.parametrize("args, says", [
    (["--sort", "nope"], "--sort: no column 'nope'"),
    (["--filter", "score >"], "--filter 'score >'"),
    (["--reports", "no/such/folder"], "--reports no/such/folder: no such folder"),
])
def test_bad_options_are_one_line_and_exit_two(args, says, runs, capsys):
    assert main(["leaderboard", "--runs", str(runs), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err, err
