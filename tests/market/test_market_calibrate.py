"""Each calibration statistic and baseline, computed on tiny hand-made cases with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from harness.competitions import A, SEQUENCE_LENGTH
from harness.market.calibrate import (
    RidgeVAR,
    correlation_stats,
    lag1_pooled,
    lag1_within,
    lagged,
    level_share,
    marginal_stats,
    pooled,
    predict_ema,
    predict_mean_so_far,
    scored_rows,
    targets,
    volatility_spread,
)
from harness.market.calrow import CalRow, summary, to_json, to_markdown


def test_marginal_stats_match_scipy():
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, size=(3, 50, 2))
    m = marginal_stats(x)
    flat = x.reshape(-1, 2)
    np.testing.assert_allclose(m["mean"], flat.mean(axis=0))
    np.testing.assert_allclose(m["std"], flat.std(axis=0))
    np.testing.assert_allclose(m["skew"], stats.skew(flat, axis=0))
    np.testing.assert_allclose(m["kurt"], stats.kurtosis(flat, axis=0))


def test_correlation_stats_on_a_known_matrix():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 500, 1))
    b = rng.standard_normal((4, 500, 1))
    x = np.concatenate([a, a, b], axis=-1)  # features 0 and 1 identical, 2 independent
    c = correlation_stats(x)
    assert c["max_abs"] == pytest.approx(1.0)
    # off-diagonals: 1, ~0, ~0 (each twice) -> mean |corr| ~ 1/3
    assert c["mean_abs"] == pytest.approx(1 / 3, abs=0.03)
    np.testing.assert_allclose(c["eigenvalues"], [2.0, 1.0, 0.0], atol=0.05)
    assert c["explained"][-1] == pytest.approx(1.0)


def test_lag1_autocorrelations_by_hand():
    # two sequences with levels +1 and -1 and an alternating +-1 wiggle
    wiggle = np.array([1.0, -1.0, 1.0, -1.0])
    x = np.stack([1 + wiggle, -1 + wiggle])[:, :, None]
    # pooled: global mean 0, var 2; products of neighbours: (2*0 + 0*2 + 2*0)=0 and (0*-2 + -2*0 + 0*-2)=0
    assert lag1_pooled(x) == pytest.approx(0.0)
    # within: each sequence centred is the wiggle: autocov sum -3 over 4 -> -0.75, var 1
    assert lag1_within(x) == pytest.approx(-0.75)
    # levels carry half of the variance: between var 1, total 2
    assert level_share(x) == pytest.approx(0.5)
    # a constant-trend pair: every neighbour product positive
    y = np.arange(6, dtype=float).reshape(1, 6, 1)
    d = y - 2.5
    expected = (d[0, 1:, 0] * d[0, :-1, 0]).mean() / d.var()
    assert lag1_pooled(y) == pytest.approx(expected)


def test_volatility_spread():
    scales = np.repeat(np.arange(1.0, 11.0), 1)[:, None, None]
    x = scales * np.tile(np.array([1.0, -1.0]), 5)[None, :, None]
    p10, p90 = np.percentile(np.arange(1.0, 11.0), [10, 90])
    assert volatility_spread(x) == pytest.approx(p90 / p10)


def test_mean_so_far_and_ema_by_hand():
    x = np.array([[1.0, 3.0, 2.0, 6.0]])[:, :, None]
    np.testing.assert_allclose(predict_mean_so_far(x)[0, :, 0], [1.0, 2.0, 2.0, 3.0])
    # e0 = 1; e1 = .5*3 + .5*1 = 2; e2 = .5*2 + .5*2 = 2; e3 = .5*6 + .5*2 = 4
    np.testing.assert_allclose(predict_ema(x, 0.5)[0, :, 0], [1.0, 2.0, 2.0, 4.0])
    np.testing.assert_allclose(predict_ema(x, 1.0), x)
    with pytest.raises(ValueError, match="alpha"):
        predict_ema(x, 0.0)


def test_scored_rows_and_targets_pair_row_t_with_row_t_plus_one():
    rows, tgt = scored_rows(A)
    assert (rows.start, rows.stop) == (A.first_scored_step, A.last_scored_step + 1)
    assert tgt.start == rows.start + A.target_offset
    x = np.broadcast_to(np.arange(SEQUENCE_LENGTH, dtype=float)[None, :, None], (2, SEQUENCE_LENGTH, 1))
    assert targets(x)[0, 0] == A.first_scored_step + 1
    assert pooled(x)[0, 0] == A.first_scored_step
    assert targets(x).shape[0] == 2 * A.scored_steps_per_sequence


def test_lagged_design_orders_lags_newest_first():
    x = np.arange(2 * 6 * 2, dtype=float).reshape(2, 6, 2)
    d = lagged(x, 3, slice(2, 4))
    # row for t=2 of sequence 0: [x2, x1, x0]
    np.testing.assert_array_equal(d[0], np.concatenate([x[0, 2], x[0, 1], x[0, 0]]))
    np.testing.assert_array_equal(d[-1], np.concatenate([x[1, 3], x[1, 2], x[1, 1]]))
    with pytest.raises(ValueError, match="history"):
        lagged(x, 4, slice(2, 4))


def test_ridge_var_recovers_a_known_var1():
    rng = np.random.default_rng(3)
    coef = np.array([[0.5, 0.2], [-0.3, 0.4]])
    x = np.zeros((6, SEQUENCE_LENGTH, 2))
    for t in range(1, SEQUENCE_LENGTH):
        x[:, t] = x[:, t - 1] @ coef.T + 0.1 * rng.standard_normal((6, 2)) + 0.05
    model = RidgeVAR.fit(x, 1, alpha=1e-6)
    np.testing.assert_allclose(model.coef[:2].T, coef, atol=0.03)
    np.testing.assert_allclose(model.coef[2], [0.05, 0.05], atol=0.01)
    pred = model.predict_scored(x)
    assert pred.shape == (6 * A.scored_steps_per_sequence, 2)


def test_calrow_verdicts_and_renderings():
    inside = CalRow.ranged("x", "1", 0.5, 0.0, 1.0)
    outside = CalRow.ranged("y", "1", 1.5, 0.0, 1.0)
    floor = CalRow.ranged("z", "1", 0.3, 0.2, None)
    above = CalRow.above("g", "0.34", 0.31, 0.32, "VAR(16)")
    info = CalRow("eig", "11.6", "1, 2")
    nan = CalRow.ranged("n", "?", float("nan"), 0.0, 1.0)
    assert (inside.ok, outside.ok, floor.ok, above.ok, info.ok, nan.ok) == (True, False, True, False, None, False)
    assert floor.accept == ">= 0.2"
    rows = [inside, outside, floor, above, info]
    assert summary(rows) == (4, 2)
    md = to_markdown(rows, "T", ["a note"])
    assert "| y | 1 | 1.5000 | [0, 1] | FAIL |" in md and "2 of 4" in md and "- a note" in md
    doc = json.loads(to_json(rows, {"k": 1}))
    assert doc["passed"] == 2 and doc["rows"][4]["generated"] == "1, 2" and doc["meta"] == {"k": 1}
