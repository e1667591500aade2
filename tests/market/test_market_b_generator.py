"""The B generator: determinism, seeds, contract shapes and dtypes, knobs, and the written files."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from harness.competitions import B, SEQUENCE_LENGTH
from harness.market.b import BGenerator
from harness.market.base import load_sidecar, write_set
from harness.market.calibrate_b import load_b, pooled_scored
from harness.metrics import score


def _all(n: int, seed: int, split: str = "train", **knobs: object) -> dict[str, np.ndarray]:
    chunks = list(BGenerator().chunks(n, seed, split, **knobs))
    return {
        name: np.concatenate([getattr(c, name) for c in chunks])
        for name in ("seq_ix", "features", "targets", "observable", "hidden")
    }


@pytest.fixture(scope="module")
def small() -> dict[str, np.ndarray]:
    return _all(5, seed=3, chunk_size=2)


def test_same_seed_same_values(small):
    again = _all(5, seed=3, chunk_size=2)
    for name, arr in small.items():
        np.testing.assert_array_equal(arr, again[name], err_msg=name)


def test_different_seeds_and_splits_differ(small):
    other_seed = _all(5, seed=4, chunk_size=2)
    other_split = _all(5, seed=3, split="valid", chunk_size=2)
    for other in (other_seed, other_split):
        for name in ("features", "targets", "observable"):
            assert not np.allclose(small[name], other[name]), name


def test_shapes_and_dtypes_follow_the_contract(small):
    s = 5
    assert small["seq_ix"].dtype == np.int64
    assert sorted(small["seq_ix"].tolist()) == list(range(s))
    assert small["features"].shape == (s, SEQUENCE_LENGTH, B.n_features)
    assert small["features"].dtype == np.dtype(B.feature_dtype)
    assert small["targets"].shape == (s, SEQUENCE_LENGTH, len(B.target_columns))
    assert small["targets"].dtype == np.float32
    for name in ("observable", "hidden"):
        assert small[name].shape == (s, SEQUENCE_LENGTH, B.n_outputs)
        assert small[name].dtype == np.float64
    for name in ("features", "targets", "observable", "hidden"):
        assert np.isfinite(small[name]).all(), name


def test_bad_knobs_raise_clear_errors():
    gen = BGenerator()
    with pytest.raises(ValueError, match="noise"):
        next(gen.chunks(2, 0, "train", noise=0.0))
    with pytest.raises(ValueError, match="shift"):
        next(gen.chunks(2, 0, "valid", shift=-1.0))
    with pytest.raises(ValueError, match="split"):
        next(gen.chunks(2, 0, "holdout"))
    with pytest.raises(TypeError):
        next(gen.chunks(2, 0, "train", volatility=2.0))


def test_shift_widens_targets_and_moves_price_levels():
    base = _all(24, seed=5, split="valid")
    shifted = _all(24, seed=5, split="valid", shift=1.0)
    ratio = pooled_scored(shifted["targets"]).std(axis=0) / pooled_scored(base["targets"]).std(axis=0)
    assert (ratio > 1.3).all(), ratio
    p0 = B.feature_columns.index("p0")
    before, after = base["features"][:, :, p0], shifted["features"][:, :, p0]
    assert after.mean() > before.mean() + 0.5 * before.std()


def test_write_set_round_trip(tmp_path):
    out = write_set(BGenerator(), 3, 9, "test", tmp_path / "test.parquet", chunk_size=2)
    table = pq.read_table(out)
    assert tuple(table.column_names) == B.columns
    assert table.schema.field("need_prediction").type.to_pandas_dtype() == np.dtype(B.need_prediction_dtype)
    need = table.column("need_prediction").to_numpy().reshape(3, SEQUENCE_LENGTH)
    steps = np.arange(SEQUENCE_LENGTH)
    expected = (steps >= B.first_scored_step) & (steps <= B.last_scored_step)
    assert (need == expected).all()
    side = load_sidecar(out, B)
    assert side is not None and side.hidden is not None
    data = load_b(out)
    direct = _all(3, seed=9, split="test", chunk_size=2)
    np.testing.assert_array_equal(data.features, direct["features"])
    np.testing.assert_array_equal(data.targets, direct["targets"].astype(np.float64))
    np.testing.assert_array_equal(side.observable, pooled_scored(direct["observable"]))


def test_noise_knob_makes_the_task_harder():
    def oracle_score(**knobs: object) -> float:
        data = _all(20, seed=6, **knobs)
        return score(B, pooled_scored(data["targets"]), pooled_scored(data["observable"]))[B.metric]

    assert oracle_score(noise=2.0) < oracle_score() - 0.05
