"""``python -m harness generate | calibrate | data`` end to end on tiny sets."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.market import defaults, sidecar_path
from harness.market.base import read_stamp
from harness.market.calibrate import load_sequences


def test_generate_writes_data_and_sidecar(tmp_path, capsys):
    out = tmp_path / "a" / "train.parquet"
    args = ["generate", "-c", "A", "--split", "train", "-n", "2", "--seed", "4", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert out.exists() and sidecar_path(out).exists()
    seq, x = load_sequences(out)
    assert x.shape[0] == 2
    shifted = tmp_path / "s.parquet"
    assert main([*args[:-3], "--out", str(shifted), "--knob", "shift=2", "--quiet"]) == 0
    assert abs(load_sequences(shifted)[1] - x).max() > 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-n", "0"], "--sequences"),
        (["-n", "2", "--knob", "bogus=1"], "knob"),
        (["-n", "2", "--seed", "-1"], "--seed"),
    ],
)
def test_generate_reports_user_mistakes(tmp_path, capsys, extra, message):
    base = ["generate", "-c", "A", "--split", "valid", "--out", str(tmp_path / "x.parquet"), "--quiet"]
    if "--seed" not in extra:
        base += ["--seed", "1"]
    assert main(base + extra) == 2
    assert message in capsys.readouterr().err


def test_calibrate_on_given_files_writes_markdown_and_json(tmp_path, capsys):
    train, valid = tmp_path / "train.parquet", tmp_path / "valid.parquet"
    for path, split, n in ((train, "train", 12), (valid, "valid", 6)):
        assert main(["generate", "-c", "A", "--split", split, "-n", str(n), "--seed", "3", "--out", str(path), "--quiet"]) == 0
    out_dir = tmp_path / "reports"
    code = main(["calibrate", "-c", "A", "--train", str(train), "--valid", str(valid), "--no-gbm", "--out-dir", str(out_dir)])
    assert code == 0
    doc = json.loads((out_dir / "calibration_A.json").read_text())
    names = [r["statistic"] for r in doc["rows"]]
    for wanted in ("R² current state", "R² mean so far", "R² EMA 0.1", "R² VAR(16) ridge", "R² observable oracle",
                   "lag-1 autocorrelation, pooled", "variance explained, top 5 components"):
        assert wanted in names
    oracle = next(r for r in doc["rows"] if r["statistic"] == "R² observable oracle")["generated"]
    var16 = next(r for r in doc["rows"] if r["statistic"] == "R² VAR(16) ridge")["generated"]
    assert oracle > var16
    assert doc["meta"]["train_sequences"] == 12 and doc["meta"]["source"] == "given files"
    assert "| R² observable oracle |" in (out_dir / "calibration_A.md").read_text()


def test_calibrate_option_mistakes(tmp_path, capsys):
    assert main(["calibrate", "-c", "A", "--train", str(tmp_path / "t.parquet")]) == 2
    assert "both" in capsys.readouterr().err
    assert main(["calibrate", "-c", "A", "--train", "a", "--valid", "b"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_data_builds_missing_default_sets(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(defaults.DEFAULT_SETS, ("A", "valid"), (2, 77))
    assert main(["data", "--only", "A/valid", "--root", str(tmp_path)]) == 0
    path = defaults.default_path("A", "valid", tmp_path)
    assert path == tmp_path / "A" / "valid.parquet"
    assert path.exists() and sidecar_path(path).exists()
    stamp = path.stat().st_mtime_ns
    assert main(["data", "--only", "A/valid", "--root", str(tmp_path)]) == 0  # present: left alone
    assert path.stat().st_mtime_ns == stamp
    monkeypatch.setitem(defaults.DEFAULT_SETS, ("A", "valid"), (2, 78))  # another seed: stale, remade
    assert main(["data", "--only", "A/valid", "--root", str(tmp_path)]) == 0
    assert read_stamp(path)["seed"] == 78 and read_stamp(sidecar_path(path))["seed"] == 78
    assert main(["data", "--only", "A/dev", "--root", str(tmp_path)]) == 2
    assert "KEY/SPLIT" in capsys.readouterr().err


def test_default_sets_cover_both_competitions_with_distinct_seeds():
    assert defaults.DEFAULT_SETS[("A", "train")][0] == 517
    assert defaults.DEFAULT_SETS[("B", "train")][0] == 10721
    seeds = [seed for _, seed in defaults.DEFAULT_SETS.values()]
    assert len(set(seeds)) == len(seeds)
    with pytest.raises(KeyError, match="split"):
        defaults.default_path("A", "dev")


def test_default_b_valid_carries_the_train_valid_shift(tmp_path, monkeypatch):
    """B's default valid set is drawn with shift=1, recorded in its stamp; a set made without the
    knob counts as stale and is remade; the shift shows as wider targets than train's."""
    import numpy as np
    import pyarrow.parquet as pq

    assert defaults.default_knobs("B", "valid") == {"shift": 1.0}
    assert defaults.default_knobs("B", "train") == {} and defaults.default_knobs("A", "valid") == {}
    monkeypatch.setitem(defaults.DEFAULT_SETS, ("B", "train"), (24, 91))
    monkeypatch.setitem(defaults.DEFAULT_SETS, ("B", "valid"), (24, 92))
    monkeypatch.setitem(defaults.DEFAULT_KNOBS, ("B", "valid"), {})
    path = defaults.ensure("B", "valid", tmp_path, quiet=True)
    unshifted = path.stat().st_mtime_ns
    monkeypatch.setitem(defaults.DEFAULT_KNOBS, ("B", "valid"), {"shift": 1.0})
    defaults.ensure("B", "valid", tmp_path, quiet=True)
    assert path.stat().st_mtime_ns != unshifted
    assert read_stamp(path)["knobs"] == {"shift": 1.0} and read_stamp(sidecar_path(path))["knobs"] == {"shift": 1.0}
    train = defaults.ensure("B", "train", tmp_path, quiet=True)

    def t1_std(p):
        return float(np.std(pq.read_table(p, columns=["t1"]).column("t1").to_numpy()))

    assert t1_std(path) > 1.3 * t1_std(train)
