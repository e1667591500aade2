"""The A generator: determinism, contract, oracle alignment, oracle quality, no look-ahead."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from harness.competitions import A, SEQUENCE_LENGTH
from harness.market import get_generator, load_sidecar, sidecar_path, write_set
from harness.market.a import AGenerator
from harness.market.a_process import CLIP_BOUND
from harness.market.calibrate import (
    EMA_ALPHAS,
    VAR_ORDERS,
    RidgeVAR,
    load_sequences,
    pooled,
    predict_current,
    predict_ema,
    predict_mean_so_far,
    targets,
)
from harness.metrics import r2_per_column, score


@pytest.fixture(scope="module")
def small_sets(tmp_path_factory):
    """A small train and valid set (enough for every baseline), written once for the module."""
    root = tmp_path_factory.mktemp("a_sets")
    gen = AGenerator()
    train = write_set(gen, 16, 11, "train", root / "train.parquet", chunk_size=8)
    valid = write_set(gen, 12, 12, "valid", root / "valid.parquet")
    return train, valid


def test_registry_builds_the_a_generator():
    gen = get_generator("A")
    assert isinstance(gen, AGenerator)
    assert gen.competition is A


def test_same_seed_same_bytes_different_seed_different_values(tmp_path):
    gen = AGenerator()
    a = write_set(gen, 2, 5, "train", tmp_path / "a.parquet")
    b = write_set(gen, 2, 5, "train", tmp_path / "b.parquet")
    c = write_set(gen, 2, 6, "train", tmp_path / "c.parquet")
    d = write_set(gen, 2, 5, "valid", tmp_path / "d.parquet")
    assert a.read_bytes() == b.read_bytes()
    assert sidecar_path(a).read_bytes() == sidecar_path(b).read_bytes()
    xa, xc, xd = (load_sequences(p)[1] for p in (a, c, d))
    assert not np.allclose(xa, xc)
    assert not np.allclose(xa, xd)


def test_file_follows_the_a_contract(small_sets):
    train, _ = small_sets
    pf = pq.ParquetFile(train)
    assert tuple(pf.schema_arrow.names) == A.columns
    assert pf.metadata.num_row_groups == 2  # 16 sequences in chunks of 8
    table = pf.read()
    assert str(table.column("need_prediction").type) == A.need_prediction_dtype
    assert str(table.column(A.feature_columns[0]).type) == "float" and A.feature_dtype == "float32"
    need = table.column("need_prediction").to_numpy().reshape(-1, SEQUENCE_LENGTH)
    assert (need.sum(axis=1) == A.scored_steps_per_sequence).all()
    assert need[:, A.first_scored_step].all() and not need[:, A.first_scored_step - 1].any()
    assert need[:, A.last_scored_step].all() and not need[:, SEQUENCE_LENGTH - 1].any()
    seq, x = load_sequences(train)
    assert sorted(seq) == list(range(16)) and not np.array_equal(seq, np.arange(16))  # shuffled ids
    assert np.isfinite(x).all() and np.abs(x).max() <= np.float32(CLIP_BOUND)


def test_oracle_sidecar_matches_the_file_and_a_recomputation(small_sets):
    _, valid = small_sets
    side = load_sidecar(valid, A)
    assert side is not None and side.hidden is not None
    _, x = load_sequences(valid)
    assert side.observable.shape == (x.shape[0] * A.scored_steps_per_sequence, A.n_outputs)
    again = AGenerator().oracle(x.astype(np.float32))
    np.testing.assert_allclose(pooled(again), side.observable, rtol=1e-12, atol=1e-12)


def test_oracle_beats_every_linear_baseline_and_hidden_bounds_it(small_sets):
    train, valid = small_sets
    _, xt = load_sequences(train)
    _, xv = load_sequences(valid)
    side = load_sidecar(valid, A)
    y = targets(xv)
    oracle = score(A, y, side.observable)[A.metric]
    hidden = score(A, y, side.hidden)[A.metric]
    baselines = {
        "current": pooled(predict_current(xv)),
        "mean so far": pooled(predict_mean_so_far(xv)),
        **{f"ema {a}": pooled(predict_ema(xv, a)) for a in EMA_ALPHAS},
        **{f"var {p}": RidgeVAR.fit(xt, p).predict_scored(xv) for p in VAR_ORDERS},
    }
    for name, pred in baselines.items():
        assert oracle > score(A, y, pred)[A.metric] + 0.02, name
    assert hidden > oracle


def test_oracle_residual_is_unpredictable_from_the_past(small_sets):
    """An exact conditional mean leaves nothing a regression on the recent past can use."""
    train, valid = small_sets
    _, xt = load_sequences(train)
    _, xv = load_sequences(valid)
    gen = AGenerator()
    res_t = xt.copy()
    res_v = xv.copy()
    off = A.target_offset
    for src, dst in ((xt, res_t), (xv, res_v)):
        o = gen.oracle(src.astype(np.float32))
        dst[:, off:] = src[:, off:] - o[:, :-off]
    # Regress the residual at t+1 on the raw features at t..t-3: R² must be ~0 out of sample.
    model = RidgeVAR.fit(np.concatenate([xt, res_t], axis=-1), 4)
    rows = slice(A.first_scored_step, A.last_scored_step + 1)
    from harness.market.calibrate import lagged

    design = lagged(np.concatenate([xv, res_v], axis=-1), 4, rows)
    pred = design @ model.coef[:-1] + model.coef[-1]
    r2 = r2_per_column(targets(res_v), pred[:, A.n_features :])
    assert r2.mean() < 0.01


def test_no_look_ahead():
    gen = AGenerator()
    x = next(gen.chunks(2, 3, "test")).features
    before = gen.oracle(x)
    for t in (0, 150, 600, SEQUENCE_LENGTH - 2):
        changed = x.copy()
        changed[:, t + 1 :] = np.random.default_rng(t).standard_normal(changed[:, t + 1 :].shape)
        after = gen.oracle(changed)
        np.testing.assert_array_equal(after[:, : t + 1], before[:, : t + 1])
        assert not np.allclose(after[:, t + 1 :], before[:, t + 1 :])


def test_knobs_change_the_process_and_bad_knobs_fail():
    gen = AGenerator()
    base = next(gen.chunks(4, 1, "valid")).features.astype(np.float64)
    shifted = next(gen.chunks(4, 1, "valid", shift=2.0)).features.astype(np.float64)
    noisy = next(gen.chunks(4, 1, "valid", noise=3.0)).features.astype(np.float64)
    assert abs(shifted.mean() - base.mean()) > 0.1 or shifted.std() > base.std() * 1.2
    assert noisy.std() > base.std() * 1.2
    with pytest.raises(ValueError, match="noise"):
        next(gen.chunks(2, 1, "train", noise=-1.0))
    with pytest.raises(TypeError):
        next(gen.chunks(2, 1, "train", bogus=1))
    with pytest.raises(ValueError, match="split"):
        next(gen.chunks(2, 1, "dev"))


def test_parallel_workers_change_speed_only():
    serial = list(AGenerator(workers=1).chunks(5, 9, "train", chunk_size=2))
    parallel = list(AGenerator(workers=2).chunks(5, 9, "train", chunk_size=2))
    assert [c.n_sequences for c in parallel] == [2, 2, 1]
    # Exact by construction: each chunk is made by the same code on the same shapes with BLAS
    # limited to one thread in every process, so only the process differs.
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a.seq_ix, b.seq_ix)
        np.testing.assert_array_equal(a.features, b.features)
        np.testing.assert_array_equal(a.observable, b.observable)
        np.testing.assert_array_equal(a.hidden, b.hidden)
