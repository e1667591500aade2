"""``python -m models train``: manifests, the run record, clear errors; the solutions' manifests."""

import json
from pathlib import Path

import numpy as np
import pytest

from models.cli import main
from models.config import ConfigError, from_dict
from models.family import Family
from models.record import file_sha256
from models.registry import FAMILIES, family, train_solution

ROOT = Path(__file__).resolve().parents[2]
HEADS = {"ridge_var": "linear", "ridge_poly": "linear", "baseline": "linear", "lightgbm": "trees"}
LINEAR = ["model.json", "pipeline.npz", "weights.npz"]


def files_for(head: str) -> list[str]:
    return LINEAR + ["trees.txt"] if head == "trees" else LINEAR


def _manifest(folder: Path, family: str, train: dict, competition: str = "A") -> Path:
    folder.mkdir()
    (folder / "solution.py").write_text((ROOT / "solutions" / "a_ridge_var" / "solution.py").read_text())
    manifest = {"competition": competition, "trained": True, "family": family, "train": train,
                "artifacts": files_for(HEADS[family])}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_train_writes_artifacts_and_a_run_record(tmp_path, a_random, capsys):
    folder = _manifest(tmp_path / "sol", "ridge_var", {"lags": 2, "folds": 2, "alphas": [1e-3]})
    runs = tmp_path / "runs"
    code = main(["train", str(folder), "--train", str(a_random), "--valid", str(a_random), "--sequences", "4",
                 "--valid-sequences", "2", "--runs", str(runs)])
    assert code == 0
    assert all((folder / name).is_file() for name in files_for("linear"))
    [record_path] = runs.glob("sol-*.json")
    record = json.loads(record_path.read_text())
    assert record["data"]["train"]["sha256"] == file_sha256(a_random)
    assert record["data"]["train"]["sequences"] == 4 and record["seeds"] == {"seed": 0}
    assert len(record["cv"]["fold_scores"]) == 2 and "valid_score" in record
    with np.load(record_path.with_suffix(".oof.npz")) as oof:
        assert oof["prediction"].shape == oof["target"].shape == (4 * 899, 32)
    assert "CV fold 1" in capsys.readouterr().out


def test_baseline_family_scores_the_mean_so_far(tmp_path, a_random, quiet):
    from models.data import load_sequences

    folder = _manifest(tmp_path / "base", "baseline", {"rule": "mean_so_far"})
    data = load_sequences(a_random)
    record = train_solution(folder, data, data, quiet).record
    x = data.features.astype(np.float64)
    expected = data.score(np.cumsum(x, axis=1) / np.arange(1, 1001)[None, :, None])
    assert abs(record["valid_score"] - expected["mean_r2"]) < 1e-12


def test_unknown_setting_is_a_clear_error(tmp_path, a_random, capsys):
    folder = _manifest(tmp_path / "bad", "ridge_var", {"lagz": 3})
    code = main(["train", str(folder), "--train", str(a_random), "--valid", str(a_random), "--sequences", "2",
                 "--runs", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "unknown key(s) ['lagz']" in err and "'lags'" in err and "Traceback" not in err


def test_a_bug_in_training_keeps_its_traceback(tmp_path, a_random, monkeypatch):
    """Only ConfigError is the user's mistake; any other error is a bug and must not be swallowed."""
    folder = _manifest(tmp_path / "sol", "ridge_var", {"lags": 2, "folds": 2})

    def broken(*args, **kwargs):
        raise ValueError("a bug, not a configuration mistake")

    monkeypatch.setattr(family("ridge_var"), "train", broken)
    with pytest.raises(ValueError, match="a bug"):
        main(["train", str(folder), "--train", str(a_random), "--valid", str(a_random), "--sequences", "2",
              "--runs", str(tmp_path / "runs")])


def test_nested_and_checked_settings_are_config_errors():
    lightgbm = family("lightgbm").config
    with pytest.raises(ConfigError, match=r"train.base: unknown key\(s\) \['alpah'\]; valid keys are .*'alpha'"):
        from_dict(lightgbm, {"base": {"alpah": 1e-3}})
    with pytest.raises(ConfigError, match="train.weight"):
        from_dict(lightgbm, {"weight": "squared"})
    with pytest.raises(ConfigError, match="unknown feature preset 'b_bok'"):
        from_dict(lightgbm, {"features": {"preset": "b_bok"}}).features.steps(("p0",))
    assert from_dict(lightgbm, {"base": {"alpha": 0.5}}).base.alpha == 0.5


def test_every_family_follows_the_protocol_with_a_dataclass_config():
    from dataclasses import is_dataclass

    for name in FAMILIES:
        fam = family(name)
        assert isinstance(fam, Family) and fam.name == name and is_dataclass(fam.config), name
        assert from_dict(fam.config, {}) == fam.config(), name  # defaults alone make a valid config


def test_unknown_family_names_the_known_ones():
    with pytest.raises(ConfigError, match="known families"):
        family("forest")


def test_repository_solutions_name_a_family_and_its_files():
    for manifest_path in sorted((ROOT / "solutions").glob("*/manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        if "family" not in manifest or manifest["family"] not in HEADS:
            continue
        assert manifest["family"] in FAMILIES and manifest["trained"] is True
        assert sorted(manifest["artifacts"]) == sorted(files_for(HEADS[manifest["family"]])), manifest_path
        source = (manifest_path.parent / "solution.py").read_text()
        assert all(name in source for name in manifest["artifacts"]), manifest_path
