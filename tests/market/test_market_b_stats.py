"""Each B calibration statistic on tiny hand-made cases whose answer is known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from harness.competitions import B, SEQUENCE_LENGTH
from harness.market import b_stats as st
from harness.market.calibrate_b import BSet, pooled_scored, ridge_predict, scored


def test_pooled_autocorr_alternating_and_constant_slope():
    alternating = np.array([[1.0, -1.0, 1.0, -1.0, 1.0, -1.0]])
    assert st.pooled_autocorr(alternating, 1) == pytest.approx(-1.0)
    assert st.pooled_autocorr(alternating, 2) == pytest.approx(1.0)
    # Pairs are taken within sequences only: the jump between the two rows never forms a pair.
    two = np.array([[0.0, 1.0, 2.0], [10.0, 11.0, 12.0]])
    # pairs (0,1),(1,2),(10,11),(11,12): x = [0,1,10,11], y = [1,2,11,12] -> y = x + 1, corr 1
    assert st.pooled_autocorr(two, 1) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="lag"):
        st.pooled_autocorr(two, 3)


def test_level_share():
    no_level = np.array([[1.0, -1.0], [1.0, -1.0]])
    assert st.level_share(no_level) == pytest.approx(0.0)
    only_level = np.array([[1.0, 1.0], [-1.0, -1.0]])
    assert st.level_share(only_level) == pytest.approx(1.0)
    # means 0 and 2 (std of means 1); values 0,0,1,3 ... here: [[-1, 1], [1, 3]] pooled std sqrt(2)
    mixed = np.array([[-1.0, 1.0], [1.0, 3.0]])
    assert st.level_share(mixed) == pytest.approx(1.0 / np.sqrt(2.0))


def test_moments():
    x = np.array([-1.0, 1.0])  # two-point symmetric: kurtosis 1, excess -2, skew 0
    assert st.excess_kurtosis(x) == pytest.approx(-2.0)
    assert st.skewness(x) == pytest.approx(0.0)
    y = np.array([0.0, 0.0, 0.0, 1.0])  # mean .25; central moments m2=3/16, m3=... skew = 2/sqrt(3)
    assert st.skewness(y) == pytest.approx(2.0 / np.sqrt(3.0))


def test_abs_quantiles_and_top_weight_share():
    x = np.array([-4.0, 3.0, -2.0, 1.0, 0.0])
    assert st.abs_quantiles(x, (0.5,)) == (2.0,)
    # |x| sorted 4,3,2,1,0: the top 20% (one row) carries 4 of 10
    assert st.top_weight_share(x) == pytest.approx(0.4)
    assert st.top_weight_share(np.ones(10)) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        st.top_weight_share(np.zeros(4))


def test_large_move_persistence():
    # 20 values per row; the 95% quantile of |x| falls between the small values and the big ones.
    x = np.zeros((1, 40))
    x[0, 10:12] = 5.0  # one run of two big values: one of the two "big now" steps is followed by big
    assert st.large_move_persistence(x, q=0.95) == pytest.approx(0.5)
    x[0, 12] = 5.0  # a run of three: two of three
    assert st.large_move_persistence(x, q=0.9) == pytest.approx(2.0 / 3.0)


def test_column_corrs_and_constant_column():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    feats = np.column_stack([y, -2 * y, np.ones(4), [1.0, -1.0, -1.0, 1.0]])
    c = st.column_corrs(feats, y)
    assert c == pytest.approx([1.0, -1.0, 0.0, 0.0])


def test_ks_statistic():
    assert st.ks_statistic(np.arange(10.0), np.arange(10.0)) == pytest.approx(0.0)
    assert st.ks_statistic(np.zeros(5), np.ones(5)) == pytest.approx(1.0)
    assert st.ks_statistic(np.array([0.0, 1.0]), np.array([1.0, 2.0])) == pytest.approx(0.5)


def test_scored_rows_follow_the_contract():
    x = np.arange(2 * SEQUENCE_LENGTH, dtype=np.float64).reshape(2, SEQUENCE_LENGTH, 1)
    part = scored(x)
    assert part.shape[1] == B.scored_steps_per_sequence
    assert part[0, 0, 0] == B.first_scored_step
    assert part[0, -1, 0] == B.last_scored_step
    flat = pooled_scored(x)
    assert flat.shape == (2 * B.scored_steps_per_sequence, 1)
    assert flat[B.scored_steps_per_sequence, 0] == SEQUENCE_LENGTH + B.first_scored_step


def test_ridge_recovers_a_linear_target():
    rng = np.random.default_rng(0)
    s = 3
    feats = rng.standard_normal((2 * s, SEQUENCE_LENGTH, B.n_features)).astype(np.float32)
    coef = np.zeros((B.n_features, 2))
    coef[0, 0], coef[5, 1] = 2.0, -1.0
    tg = feats.astype(np.float64) @ coef + np.array([0.5, -0.5])
    train = BSet(path=None, features=feats[:s], targets=tg[:s])  # type: ignore[arg-type]
    valid = BSet(path=None, features=feats[s:], targets=tg[s:])  # type: ignore[arg-type]
    pred = ridge_predict(train, valid, alpha=1e-6)
    np.testing.assert_allclose(pred, pooled_scored(valid.targets), atol=1e-4)
