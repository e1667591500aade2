"""A training that fails part-way leaves the solution's artifacts and the run records as they were."""

import json
from pathlib import Path

import pytest

from models.cli import main

ROOT = Path(__file__).resolve().parents[2]
FILES = ["model.json", "pipeline.npz", "weights.npz"]


def _solution(folder: Path, lags: int) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "solution.py").write_text((ROOT / "solutions" / "a_ridge_var" / "solution.py").read_text())
    manifest = {"competition": "A", "trained": True, "family": "ridge_var",
                "train": {"lags": lags, "folds": 2, "alphas": [1e-3]}, "artifacts": FILES}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _train(folder: Path, data: Path, runs: Path) -> int:
    return main(["train", str(folder), "--train", str(data), "--valid", str(data), "--sequences", "4",
                 "--valid-sequences", "2", "--runs", str(runs)])


@pytest.mark.parametrize("where", ["models.registry.evaluate", "models.cli.environment"])
def test_a_failed_training_leaves_the_old_artifacts_byte_identical(where, tmp_path, a_random, monkeypatch):
    folder, runs = _solution(tmp_path / "sol", lags=1), tmp_path / "runs"
    assert _train(folder, a_random, runs) == 0
    old = {name: (folder / name).read_bytes() for name in FILES}
    records = sorted(runs.iterdir())
    _solution(folder, lags=2)  # another model: every artifact would change

    def fail(*args, **kwargs):
        raise RuntimeError("planted failure after the artifacts were written")

    monkeypatch.setattr(where, fail)
    with pytest.raises(RuntimeError, match="planted"):
        _train(folder, a_random, runs)
    assert {name: (folder / name).read_bytes() for name in FILES} == old
    assert sorted(runs.iterdir()) == records
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "sol"]  # no staging folder left behind


def test_a_successful_training_moves_the_new_artifacts_and_record_in(tmp_path, a_random):
    folder, runs = _solution(tmp_path / "sol", lags=1), tmp_path / "runs"
    assert _train(folder, a_random, runs) == 0
    old = (folder / "weights.npz").read_bytes()
    _solution(folder, lags=2)
    assert _train(folder, a_random, runs) == 0
    assert (folder / "weights.npz").read_bytes() != old
    assert len(list(runs.glob("sol-*.oof.npz"))) == 2 and len(list(runs.glob("sol-*.json"))) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "sol"]


def test_a_staging_copy_left_by_a_killed_run_is_not_a_solution_to_train(tmp_path):
    from models.cli import trainable

    folder = _solution(tmp_path / "sol", lags=1)
    left = _solution(tmp_path / ".sol.training-abc123", lags=1)
    assert trainable(folder) and not trainable(left)
