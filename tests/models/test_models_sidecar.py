"""Oracle sidecars a user's files may carry: foreign ones ignored with a notice, stale ones
stopped before any work (one line, exit 2), ``--no-oracle``; oracle rows travel with the set."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness import competitions as C
from harness.cli import main as harness_main
from harness.market import get_generator
from harness.market.base import SidecarMismatch, load_sidecar, sidecar_path, write_set
from harness.randomdata import write_random_file
from models.cli import main
from models.data import load_sequences

ROOT = Path(__file__).resolve().parents[2]


def _ridge(folder: Path, competition: str = "B") -> Path:
    folder.mkdir()
    (folder / "solution.py").write_text((ROOT / "solutions" / "b_ridge" / "solution.py").read_text())
    manifest = {"competition": competition, "trained": True, "family": "ridge_var",
                "train": {"lags": 1, "folds": 2, "alphas": [1e-2]},
                "artifacts": ["model.json", "pipeline.npz", "weights.npz"]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture
def user_b(tmp_path) -> Path:
    """A user's own B file (no stamp)."""
    return write_random_file(C.B, tmp_path / "user.parquet", 4, seed=7, sequences_per_group=2)


def _no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started although the inputs were wrong")

    monkeypatch.setattr("models.cli.train_solution", refuse)


def test_a_foreign_file_at_the_sidecar_place_is_ignored_with_a_notice(tmp_path, user_b, capsys):
    shutil.copy(user_b, sidecar_path(user_b))  # the user's own file, other columns and rows
    folder, runs = _ridge(tmp_path / "sol"), tmp_path / "runs"
    assert main(["train", str(folder), "--train", str(user_b), "--valid", str(user_b), "--runs", str(runs)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "is not an oracle sidecar" in out and "ignored" in out
    [record] = runs.glob("sol-*.json")
    assert "oracle" not in json.loads(record.read_text())


def test_a_stale_sidecar_of_ours_beside_a_users_file_stops_before_training(tmp_path, user_b, b_generated,
                                                                           monkeypatch, capsys):
    shutil.copy(sidecar_path(b_generated), sidecar_path(user_b))  # 6 sequences' oracle beside 4
    folder = _ridge(tmp_path / "sol")
    before = sorted(p.name for p in folder.iterdir())
    _no_training(monkeypatch)
    assert main(["train", str(folder), "--train", str(user_b), "--valid", str(user_b)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "--no-oracle" in err and "regenerate" not in err  # a user's file cannot be regenerated
    assert sorted(p.name for p in folder.iterdir()) == before


def test_no_oracle_trains_beside_a_stale_sidecar(tmp_path, user_b, b_generated, capsys):
    shutil.copy(sidecar_path(b_generated), sidecar_path(user_b))
    folder, runs = _ridge(tmp_path / "sol"), tmp_path / "runs"
    assert main(["train", str(folder), "--train", str(user_b), "--valid", str(user_b), "--runs", str(runs),
                 "--no-oracle"]) == 0


def test_a_stale_generated_set_says_regenerate(tmp_path, monkeypatch, capsys):
    gen = get_generator("B")
    small = write_set(gen, 2, 11, "valid", tmp_path / "small.parquet")
    big = write_set(gen, 3, 11, "valid", tmp_path / "big.parquet")
    sidecar_path(big).replace(sidecar_path(small))
    _no_training(monkeypatch)
    assert main(["train", str(_ridge(tmp_path / "sol")), "--train", str(small), "--valid", str(small)]) == 2
    assert "regenerate the set" in capsys.readouterr().err


def test_oracle_rows_travel_with_a_subset(b_generated):
    full = load_sequences(b_generated)
    side = load_sidecar(b_generated, C.B)
    per = C.B.scored_steps_per_sequence
    part = full.subset(np.array([4, 1]))
    expected = np.concatenate([side.observable[4 * per : 5 * per], side.observable[per : 2 * per]])
    assert np.array_equal(part.oracle.observable, expected)
    first = load_sequences(b_generated, max_sequences=2)
    assert np.array_equal(first.oracle.observable, side.observable[: 2 * per])
    assert load_sequences(b_generated, oracle=False).oracle is None


MEAN_B = """
import numpy as np
class PredictionModel:
    def predict(self, dp):
        return np.zeros(2) if dp.need_prediction else None
"""


def test_simulate_stops_on_a_stale_sidecar_before_the_run(tmp_path, user_b, b_generated, monkeypatch, capsys):
    shutil.copy(sidecar_path(b_generated), sidecar_path(user_b))
    cand = tmp_path / "cand"
    cand.mkdir()
    (cand / "solution.py").write_text(MEAN_B)

    def refuse(*args, **kwargs):
        raise AssertionError("the candidate ran although the inputs were wrong")

    monkeypatch.setattr("harness.simulate.run_in_sandbox", refuse)
    assert harness_main(["simulate", str(cand), "--data", str(user_b)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "SidecarMismatch" not in err and "--no-oracle" in err


def test_gate_stops_on_a_stale_sidecar_before_any_replay(tmp_path, user_b, b_generated, monkeypatch, capsys):
    shutil.copy(sidecar_path(b_generated), sidecar_path(user_b))
    cand = tmp_path / "cand"
    cand.mkdir()
    (cand / "solution.py").write_text(MEAN_B)
    (cand / "manifest.json").write_text(json.dumps({"competition": "B"}))

    def refuse(*args, **kwargs):
        raise AssertionError("the candidate ran although the inputs were wrong")

    monkeypatch.setattr("harness.gate.run_in_sandbox", refuse)
    assert harness_main(["gate", str(cand), "--data", str(user_b)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "SidecarMismatch" not in err and "--no-oracle" in err
    # --no-oracle gets past it (the candidate runs: here, the refusal above)
    with pytest.raises(AssertionError, match="the candidate ran"):
        harness_main(["gate", str(cand), "--data", str(user_b), "--no-oracle"])


def test_simulate_ignores_a_foreign_sidecar_with_a_notice(tmp_path, user_b, capsys):
    shutil.copy(user_b, sidecar_path(user_b))
    cand = tmp_path / "cand"
    cand.mkdir()
    (cand / "solution.py").write_text(MEAN_B)
    out = tmp_path / "r.json"
    assert harness_main(["simulate", str(cand), "--data", str(user_b), "--sequences", "2", "--json", str(out)]) == 0
    assert "is not an oracle sidecar" in capsys.readouterr().err
    assert "oracle" not in json.loads(out.read_text())["score"]


def test_a_foreign_sidecar_is_its_own_error_for_strict_readers(tmp_path, user_b):
    shutil.copy(user_b, sidecar_path(user_b))
    with pytest.raises(SidecarMismatch, match="not stamped"):
        load_sidecar(user_b)
