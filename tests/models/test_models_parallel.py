"""Training through the execution interface: ``train --all --workers N`` and seeds side by side.

Exactness: a solution trained in a worker process runs the same code on the same data with the
same BLAS thread count on this machine as one trained here, so its files are the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import models.cli as models_cli
from models.cli import main

ROOT = Path(__file__).resolve().parents[2]
LINEAR = ["model.json", "pipeline.npz", "weights.npz"]
SOLUTIONS = {"one_ridge": ("ridge_var", {"lags": 2, "folds": 2, "alphas": [1e-3]}),
             "two_base": ("baseline", {"rule": "mean_so_far"})}


def solutions(root: Path) -> Path:
    for name, (family, train) in SOLUTIONS.items():
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "solution.py").write_text((ROOT / "solutions" / "a_ridge_var" / "solution.py").read_text())
        (folder / "manifest.json").write_text(json.dumps({"competition": "A", "trained": True, "family": family,
                                                          "train": train, "artifacts": LINEAR}))
    return root


def train_all(root: Path, data: Path, runs: Path, monkeypatch, *extra: str) -> int:
    monkeypatch.setattr(models_cli, "SOLUTIONS_DIR", root)
    return main(["train", "--all", "--train", str(data), "--valid", str(data), "--sequences", "4",
                 "--valid-sequences", "2", "--runs", str(runs), *extra])


def test_train_all_on_two_workers_writes_what_serial_training_writes(tmp_path, a_random, monkeypatch, capsys):
    serial, parallel = solutions(tmp_path / "serial"), solutions(tmp_path / "parallel")
    assert train_all(serial, a_random, tmp_path / "runs1", monkeypatch) == 0
    capsys.readouterr()
    assert train_all(parallel, a_random, tmp_path / "runs2", monkeypatch, "--workers", "2") == 0
    out = capsys.readouterr().out
    assert "2 solutions on 2 local worker(s)" in out
    assert "train one_ridge: done" in out and "train two_base: done" in out
    assert out.index("one_ridge: ridge_var") < out.index("two_base: baseline")  # each one's output, in order
    for name in SOLUTIONS:
        for artifact in LINEAR:
            assert (parallel / name / artifact).read_bytes() == (serial / name / artifact).read_bytes(), artifact
    assert len(list((tmp_path / "runs2").glob("*.json"))) == 2


def test_a_solution_that_fails_in_a_worker_is_the_users_error(tmp_path, a_random, monkeypatch, capsys):
    root = solutions(tmp_path / "sols")
    manifest = json.loads((root / "two_base" / "manifest.json").read_text())
    manifest["train"] = {"rule": "no_such_rule"}
    (root / "two_base" / "manifest.json").write_text(json.dumps(manifest))
    assert train_all(root, a_random, tmp_path / "runs", monkeypatch, "--workers", "2") == 2
    err = capsys.readouterr().err
    assert "no_such_rule" in err and "Traceback" not in err


@pytest.mark.parametrize("args, says", [(["--address", "10.0.0.1:6379"], "for --backend ray"),
                                        (["--backend", "spark"], "invalid choice")])
def test_bad_execution_options_are_one_line(args, says, tmp_path, a_random, monkeypatch, capsys):
    assert train_all(solutions(tmp_path / "s"), a_random, tmp_path / "runs", monkeypatch, *args) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1
