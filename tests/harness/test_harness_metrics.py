"""The metrics equal independent computations, and their mergeable forms equal the direct ones."""

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.metrics import r2_score

from harness import competitions as C, metrics


def pearson_from_formula(y, p):
    """Written from the contract's words, with NumPy's weighted covariance."""
    p = np.clip(p, -6, 6)
    w = np.maximum(np.abs(y), 1e-8)
    cov = np.cov(y, p, aweights=w, ddof=0)
    if cov[0, 0] <= 0 or cov[1, 1] <= 0:
        return 0.0
    return cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 400), st.integers(0, 2**31 - 1), st.floats(0.0, 3.0))
def test_r2_equals_sklearn(n, seed, noise):
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((n, 32)) * rng.uniform(0.1, 5, 32) + rng.normal(size=32)
    p = y + noise * rng.standard_normal(y.shape)
    np.testing.assert_allclose(metrics.r2_per_column(y, p), r2_score(y, p, multioutput="raw_values"), rtol=0, atol=1e-12)
    assert metrics.score(C.A, y, p)["mean_r2"] == pytest.approx(r2_score(y, p), abs=1e-12)


def test_r2_edge_cases_follow_sklearn():
    y = np.ones((10, 2))
    y[:, 1] = np.arange(10)
    p_exact = y.copy()
    p_off = y + 1.0
    for p in (p_exact, p_off, np.zeros_like(y)):
        np.testing.assert_allclose(metrics.r2_per_column(y, p), r2_score(y, p, multioutput="raw_values"), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 500), st.integers(0, 2**31 - 1), st.floats(0.1, 10.0))
def test_weighted_pearson_equals_formula(n, seed, scale):
    rng = np.random.default_rng(seed)
    y = rng.standard_t(3, size=n)
    p = 0.3 * y * scale + rng.standard_normal(n) * scale  # large scales exercise the clip
    assert metrics.weighted_pearson(y, p) == pytest.approx(pearson_from_formula(y, p), abs=1e-12)


def test_weighted_pearson_edge_cases():
    y = np.random.default_rng(0).standard_normal(100)
    assert metrics.weighted_pearson(y, np.zeros(100)) == 0.0
    assert metrics.weighted_pearson(y, np.full(100, 1.0)) == 0.0
    assert metrics.weighted_pearson(np.zeros(100), y) == 0.0  # all weights at the 1e-8 floor, no variance
    assert metrics.weighted_pearson(y, np.full(100, 50.0)) == 0.0  # clipped to a constant
    assert metrics.weighted_pearson(y, y) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("comp", [C.A, C.B])
def test_mergeable_sums_equal_direct_score_and_combine_across_shards(comp):
    rng = np.random.default_rng(5)
    n_seq, per = 7, comp.scored_steps_per_sequence
    y = rng.standard_t(4, size=(n_seq * per, comp.n_outputs)) + rng.normal(size=(n_seq, 1, comp.n_outputs)).repeat(per, 0).reshape(-1, comp.n_outputs)
    p = 0.4 * y + rng.standard_normal(y.shape)
    starts = np.arange(0, len(y), per)
    direct = metrics.score(comp, y, p)
    whole = metrics.score_from_stats(comp, metrics.sequence_stats(comp, y, p, starts))
    cut = 3 * per
    shards = metrics.SequenceStats.concat([
        metrics.sequence_stats(comp, y[:cut], p[:cut], starts[:3]),
        metrics.sequence_stats(comp, y[cut:], p[cut:], starts[3:] - cut),
    ])
    for name, value in direct.items():
        assert whole[name] == pytest.approx(value, abs=1e-12)
        assert metrics.score_from_stats(comp, shards)[name] == pytest.approx(value, abs=1e-12)


@pytest.mark.parametrize("constant", [0.0, 0.37, -1234.5])
def test_a_constant_prediction_scores_zero_in_both_forms(constant):
    """Rounding leaves a constant's variance a tiny positive number (the weighted mean of copies of
    c is c only to a few ulps), and the correlation then is noise: 5e-17 directly and 0.098 from
    merged sums on one b_ridge run. The contract scores a constant 0, so both forms must."""
    rng = np.random.default_rng(3)
    per = C.B.scored_steps_per_sequence
    y = rng.standard_t(3, size=(3 * per, 2)) * 0.01
    p = np.column_stack([np.full(len(y), constant), 0.3 * y[:, 1] + 0.01 * rng.standard_normal(len(y))])
    direct = metrics.score(C.B, y, p)
    merged = metrics.score_from_stats(C.B, metrics.sequence_stats(C.B, y, p, np.arange(0, len(y), per)))
    assert direct["t0"] == 0.0 and merged["t0"] == 0.0
    assert direct["t1"] > 0.5 and merged["t1"] == pytest.approx(direct["t1"], abs=1e-12)


def test_sequence_stats_read_back_from_json_exactly_and_reject_malformed_input():
    rng = np.random.default_rng(2)
    per = C.A.scored_steps_per_sequence
    y = rng.standard_normal((3 * per, 32))
    stats = metrics.sequence_stats(C.A, y, y + rng.standard_normal(y.shape), np.arange(0, len(y), per))
    again = metrics.SequenceStats.from_json(json.loads(json.dumps(stats.to_json())))
    assert again == stats  # Python's JSON writes a float by repr, which reads back to the same bits
    assert stats.take([2, 0]) == metrics.SequenceStats.concat([stats.take([2]), stats.take([0])])
    broken = stats.to_json()
    broken["sse"] = broken["sse"][:2]
    with pytest.raises(ValueError, match="shapes"):
        metrics.SequenceStats.from_json(broken)
    with pytest.raises(ValueError, match="malformed"):
        metrics.SequenceStats.from_json({"metric": "mean_r2"})


def test_bootstrap_interval_brackets_the_score_and_is_reproducible():
    rng = np.random.default_rng(1)
    per = C.B.scored_steps_per_sequence
    y = rng.standard_normal((20 * per, 2))
    p = 0.3 * y + rng.standard_normal(y.shape)
    stats = metrics.sequence_stats(C.B, y, p, np.arange(0, len(y), per))
    lo, hi = metrics.bootstrap_interval(stats, n_resamples=300, seed=3)
    assert lo < metrics.score(C.B, y, p)["weighted_pearson"] < hi
    assert (lo, hi) == metrics.bootstrap_interval(stats, n_resamples=300, seed=3)
    assert hi - lo < 0.1


def test_weighted_pearson_leaves_its_inputs_unchanged():
    rng = np.random.default_rng(1)
    y, p = rng.standard_t(3, 500), rng.normal(scale=8, size=500)  # some predictions beyond the clip
    y0, p0 = y.copy(), p.copy()
    metrics.weighted_pearson(y, p)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(p, p0)


def test_paired_bootstrap_decides_a_small_consistent_gain_that_unpaired_intervals_cannot():
    """Sequences differ a lot in difficulty; a candidate slightly better on every one of them is
    told apart from the reference only when both are resampled on the same draws."""
    rng = np.random.default_rng(2)
    per, n_seq = C.A.scored_steps_per_sequence, 30
    noise = rng.uniform(0.3, 3.0, n_seq).repeat(per)[:, None]
    y = rng.standard_normal((n_seq * per, 32))
    signal = y + rng.standard_normal(y.shape) * noise
    better = signal / (1 + noise**2)  # the best shrinkage on each sequence
    reference = 0.8 * better
    starts = np.arange(0, len(y), per)
    s_better = metrics.sequence_stats(C.A, y, better, starts)
    s_reference = metrics.sequence_stats(C.A, y, reference, starts)
    lo, hi = metrics.paired_bootstrap_interval(s_better, s_reference, n_resamples=300)
    gain = metrics.score(C.A, y, better)["mean_r2"] - metrics.score(C.A, y, reference)["mean_r2"]
    assert 0 < lo < gain < hi
    assert metrics.paired_bootstrap_interval(s_reference, s_better, n_resamples=300) == pytest.approx((-hi, -lo))
    # unpaired, the two intervals overlap: the gain is smaller than the spread between sequences
    assert metrics.bootstrap_interval(s_better, 300)[0] < metrics.bootstrap_interval(s_reference, 300)[1]


@pytest.mark.parametrize("comp", [C.A, C.B])
def test_each_sequence_scored_alone_equals_the_direct_score_of_its_rows(comp):
    rng = np.random.default_rng(8)
    n_seq, per = 5, comp.scored_steps_per_sequence
    y = rng.standard_t(4, size=(n_seq * per, comp.n_outputs))
    p = rng.uniform(0, 0.8, size=(n_seq, 1, 1)).repeat(per, 1).reshape(-1, 1) * y + rng.standard_normal(y.shape)
    starts = np.arange(0, len(y), per)
    alone = metrics.sequence_scores(metrics.sequence_stats(comp, y, p, starts))
    assert alone.shape == (n_seq, comp.n_outputs)
    # different summation orders (moments vs. the direct formula): equal to float tolerance only
    direct = [[metrics.score(comp, y[s:s + per], p[s:s + per])[n] for n in comp.prediction_names] for s in starts]
    np.testing.assert_allclose(alone, direct, rtol=0, atol=1e-12)
    alone = alone.mean(axis=1)
    assert len(set(np.round(alone, 6))) == n_seq  # the sequences differ, so a mixed-up order would show
