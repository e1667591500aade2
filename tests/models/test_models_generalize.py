"""``python -m models generalize``: trains a copy per scenario, scores the test file, never touches the solution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.market.oracle import oracle_scores
from models.cli import main
from models.generalize import GeneralizeOptions, generalize, summary
from models.record import file_sha256

ROOT = Path(__file__).resolve().parents[2]


def _ridge(folder: Path) -> Path:
    folder.mkdir()
    (folder / "solution.py").write_text((ROOT / "solutions" / "a_ridge_var" / "solution.py").read_text())
    manifest = {"competition": "A", "trained": True, "family": "ridge_var",
                "train": {"lags": 2, "folds": 2, "alphas": [1e-3]},
                "artifacts": ["model.json", "pipeline.npz", "weights.npz"]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_scores_the_test_file_in_a_copy(tmp_path, quiet):
    folder = _ridge(tmp_path / "sol")
    before = {p.name: file_sha256(p) for p in folder.iterdir()}
    options = GeneralizeOptions([None], sequences=6, valid_sequences=3, test_sequences=4, seed=2, cache=tmp_path / "cache")
    result = generalize(folder, options, quiet)
    assert {p.name: file_sha256(p) for p in folder.iterdir()} == before  # nothing written into the shipped folder
    [row] = result["scenarios"]
    [test_file] = (tmp_path / "cache").rglob("test.parquet")
    assert row["test_oracle"] == pytest.approx(oracle_scores(test_file)["observable"], rel=1e-12)
    assert row["fraction_of_oracle"] == pytest.approx(row["test_score"] / row["test_oracle"], rel=1e-12)
    assert row["sequences"] == {"train": 6, "valid": 3, "test": 4}
    assert result["mean_fraction"] == result["worst_fraction"] == row["fraction_of_oracle"]
    # A second run finds the sets current and reuses them.
    stamp = test_file.stat().st_mtime_ns
    generalize(folder, options, quiet)
    assert test_file.stat().st_mtime_ns == stamp


def test_summary_takes_mean_and_worst():
    rows = [{"scenario": "1", "fraction_of_oracle": 0.9}, {"scenario": "2", "fraction_of_oracle": 0.7},
            {"scenario": "3", "fraction_of_oracle": None}]
    out = summary(rows)
    assert out["mean_fraction"] == pytest.approx(0.8) and out["worst_fraction"] == 0.7 and out["worst_scenario"] == "2"


@pytest.mark.parametrize("args, words", [
    (["--scenarios", "5-1"], "--scenarios"),
    (["--scenarios", "one"], "--scenarios"),
    (["--seed", "-1"], "--seed"),
])
def test_bad_options_are_one_line(tmp_path, capsys, args, words):
    folder = _ridge(tmp_path / "sol")
    assert main(["generalize", str(folder), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def test_unknown_solution_folder_is_one_line(tmp_path, capsys):
    assert main(["generalize", str(tmp_path / "nope"), "--scenarios", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "manifest.json" in err and len(err.splitlines()) == 1
