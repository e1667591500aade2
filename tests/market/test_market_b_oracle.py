"""The B oracle: causal, exact (checked against brute force and Monte Carlo), and above baselines."""

from __future__ import annotations

import itertools
import numpy as np
import pytest

from harness.competitions import B
from harness.market.b import BGenerator
from harness.market.b_display import Signals, accumulate_flow, decode, encode, flow_increments
from harness.market.b_oracle import (
    VolLevel,
    expected_targets,
    oracle_from_observations,
    HiddenStates,
    hidden_state_posterior,
    vol_level_posterior,
)
from harness.market.b_params import BParams
from harness.market.calibrate_b import BSet, gbm_predict, pooled_scored, ridge_predict
from harness.metrics import score


@pytest.fixture(scope="module")
def chunk():
    return next(BGenerator().chunks(3, seed=11, split="train"))


def test_sidecar_oracle_is_the_function_of_the_features(chunk):
    np.testing.assert_array_equal(oracle_from_observations(chunk.features), chunk.observable)


def test_no_look_ahead(chunk):
    """Changing every row after t leaves the oracle at rows 0..t bit-for-bit unchanged."""
    base = oracle_from_observations(chunk.features)
    rng = np.random.default_rng(0)
    for t in (B.first_scored_step, 500, B.last_scored_step - 1):
        changed = np.array(chunk.features, copy=True)
        changed[:, t + 1 :] *= rng.uniform(0.5, 1.5, size=changed[:, t + 1 :].shape).astype(np.float32)
        out = oracle_from_observations(changed)
        np.testing.assert_array_equal(out[:, : t + 1], base[:, : t + 1])
        assert not np.allclose(out[:, t + 1 :], base[:, t + 1 :])


def test_decode_reads_back_what_encode_shows():
    rng = np.random.default_rng(1)
    s, t = 2, 50
    params = BParams()
    signals = Signals(
        base_log_vol=rng.normal(0, 0.4, (s, t)),
        burst=np.abs(rng.normal(0, 0.5, (s, t))),
        flow=rng.normal(0, 1, (s, t)),
        ret=rng.normal(0, 1, (s, t)),
        trade_flow=rng.normal(0, 1, (s, t)),
    )
    back = decode(encode(signals, params, rng), params)
    for name in ("base_log_vol", "burst", "flow", "ret", "trade_flow"):
        np.testing.assert_allclose(getattr(back, name), getattr(signals, name), atol=2e-5, err_msg=name)
    np.testing.assert_allclose(accumulate_flow(flow_increments(signals.flow, 0.9), 0.9), signals.flow, atol=1e-12)


def test_state_filter_matches_brute_force_over_all_paths():
    """The joint forward filter equals summing the joint density over all 6^T paths of
    (regime, response) and reading off both posterior means."""
    params = BParams(
        jump_prob=0.2, regime_switch=0.2, drift=0.8, flow_signal=0.7, signal_vol_power=0.5,
        flow_beta_spread=0.6, response_switch=0.15,
    )
    rng = np.random.default_rng(2)
    s, t = 2, 4
    sig = Signals(
        base_log_vol=rng.normal(0, 0.5, (s, t)),
        burst=np.zeros((s, t)),
        flow=rng.normal(0, 1, (s, t)),
        ret=rng.normal(0, 1.5, (s, t)),
        trade_flow=rng.normal(0, 1.5, (s, t)),
    )
    fast = hidden_state_posterior(sig, params)
    d = np.array([-1.0, 0.0, 1.0])
    signs = np.array([-1.0, 1.0])
    q, p = params.regime_switch, params.response_switch
    trans_z = np.full((3, 3), q / 2) + np.eye(3) * (1 - 1.5 * q)
    trans_s = np.full((2, 2), p) + np.eye(2) * (1 - 2 * p)
    sd0, sd1 = params.eps_sds

    def normal(x, sd):
        return np.exp(-0.5 * (x / sd) ** 2) / (sd * np.sqrt(2 * np.pi))

    states = list(itertools.product(range(3), range(2)))
    for i in range(s):
        sigma = np.exp(sig.log_vol[i])
        drift_scale = sigma**params.signal_vol_power
        flow_prev = np.concatenate([[0.0], sig.flow[i, :-1]])
        for last in range(t):
            num_z = num_s = den = 0.0
            for path in itertools.product(states, repeat=last + 1):
                w = 1.0 / 6.0
                for step, (z, r) in enumerate(path):
                    if step:
                        w *= trans_z[path[step - 1][0], z] * trans_s[path[step - 1][1], r]
                    beta = params.flow_beta + params.flow_beta_spread * signs[r]
                    mean = drift_scale[step] * (beta * flow_prev[step] + params.drift * d[z])
                    e = (sig.ret[i, step] - mean) / sigma[step]
                    w *= ((1 - params.jump_prob) * normal(e, sd0) + params.jump_prob * normal(e, sd1)) / sigma[step]
                    w *= normal(sig.trade_flow[i, step] - params.flow_signal * d[z], 1.0)
                num_z += w * d[path[-1][0]]
                num_s += w * signs[path[-1][1]]
                den += w
            assert fast.regime[i, last] == pytest.approx(num_z / den, rel=1e-9, abs=1e-12)
            assert fast.response[i, last] == pytest.approx(num_s / den, rel=1e-9, abs=1e-12)


def test_vol_level_posterior_matches_a_grid():
    params = BParams()
    rng = np.random.default_rng(3)
    y = params.vol_level_mean + rng.normal(0, 0.3, (1, 30))
    post = vol_level_posterior(y, params)
    grid = np.linspace(-3, 3, 20001)
    phi, s2 = params.vol_ar, params.vol_ar_sd**2
    logp = -0.5 * ((grid - params.vol_level_mean) / params.vol_level_sd) ** 2
    logp += -0.5 * (y[0, 0] - grid) ** 2 * (1 - phi * phi) / s2
    for t in range(y.shape[1]):
        if t:
            logp += -0.5 * (y[0, t] - phi * y[0, t - 1] - (1 - phi) * grid) ** 2 / s2
        w = np.exp(logp - logp.max())
        mean = (w * grid).sum() / w.sum()
        var = (w * (grid - mean) ** 2).sum() / w.sum()
        assert post.mean[0, t] == pytest.approx(mean, abs=1e-6)
        assert post.var[t] == pytest.approx(var, rel=1e-4)


def test_expected_targets_match_monte_carlo():
    """Simulate the future from one known state many times; the sample means of the targets
    must match the closed form (strong signals and frequent bursts make the check sharp)."""
    params = BParams(
        flow_beta=2.0, drift=0.6, burst_rate=0.05, regime_switch=0.05, vol_ar_sd=0.08,
        flow_beta_spread=1.5, response_switch=0.03,
    )
    rng = np.random.default_rng(4)
    n = 60_000
    level_mean, level_var = 0.2, 0.04
    y_now, b_now, f_now, regime_now, response_up = 0.5, 0.7, 1.2, np.array([0.1, 0.2, 0.7]), 0.8
    m = level_mean + np.sqrt(level_var) * rng.standard_normal(n)
    h = np.full(n, y_now) - m
    b = np.full(n, b_now)
    f = np.full(n, f_now)
    z = rng.choice(3, size=n, p=regime_now)
    resp = np.where(rng.random(n) < response_up, 1.0, -1.0)
    sd0, sd1 = params.eps_sds
    c = params.signal_vol_power
    fwd0 = np.zeros(n)
    fwd1 = np.zeros(n)
    for k in range(1, params.horizon + 1):
        h = params.vol_ar * h + params.vol_ar_sd * rng.standard_normal(n)
        b = np.where(rng.random(n) < params.burst_rate, params.burst_size, params.burst_decay * b)
        stay = rng.random(n) >= params.regime_switch
        z = np.where(stay, z, (z + rng.integers(1, 3, size=n)) % 3)
        resp = np.where(rng.random(n) < params.response_switch, -resp, resp)
        x = m + h + b
        eps = rng.standard_normal(n) * np.where(rng.random(n) < params.jump_prob, sd1, sd0)
        beta = params.flow_beta + params.flow_beta_spread * resp
        r = np.exp(c * x) * (beta * f + params.drift * (z - 1.0)) + np.exp(x) * eps
        f = params.flow_ar * f + np.sqrt(1 - params.flow_ar**2) * rng.standard_normal(n)
        if k <= params.t0_length:
            fwd0 += params.t0_kernel[k - 1] * r
        if k <= params.t1_horizon:
            fwd1 += r
    x_now = y_now + b_now
    mc0 = fwd0 * np.exp(-params.t0_vol_norm * x_now) / params.t0_scale + params.t0_mean
    mc1 = fwd1 * np.exp(-params.t1_vol_norm * x_now) / params.t1_scale + params.t1_mean
    closed = expected_targets(
        np.array([[y_now]]),
        np.array([[b_now]]),
        VolLevel(mean=np.array([[level_mean]]), var=np.array([level_var])),
        np.array([[f_now]]),
        HiddenStates(
            regime=np.array([[regime_now @ np.array([-1.0, 0.0, 1.0])]]),
            response=np.array([[2.0 * response_up - 1.0]]),
        ),
        params,
    )[0, 0]
    for got, sample in zip(closed, (mc0, mc1)):
        se = sample.std() / np.sqrt(n)
        assert abs(got - sample.mean()) < 4 * se, (got, sample.mean(), se)


def test_oracle_beats_every_baseline_on_a_small_set():
    gen = BGenerator()
    tr = list(gen.chunks(40, seed=21, split="train"))
    va = list(gen.chunks(30, seed=22, split="valid"))

    def as_set(chunks) -> BSet:
        feats = np.concatenate([c.features for c in chunks])
        return BSet(None, feats, np.concatenate([c.targets for c in chunks]).astype(float))  # type: ignore[arg-type]

    train, valid = as_set(tr), as_set(va)
    y = pooled_scored(valid.targets)
    oracle = score(B, y, pooled_scored(np.concatenate([c.observable for c in va])))[B.metric]
    hidden = score(B, y, pooled_scored(np.concatenate([c.hidden for c in va])))[B.metric]
    baselines = {
        "constant": score(B, y, np.zeros_like(y))[B.metric],
        "ridge": score(B, y, ridge_predict(train, valid))[B.metric],
        "lightgbm": score(B, y, gbm_predict(train, valid, max_rows=10_000, rounds=40))[B.metric],
    }
    for name, value in baselines.items():
        assert oracle > value + 0.05, (name, value, oracle)
    assert hidden > oracle - 0.01


def test_oracle_is_calibrated():
    """E[y | oracle] = oracle: regressing the targets on the oracle gives slope ~1, intercept ~0.

    Light tails (no bursts or jumps) keep the slope's sampling error small enough to check on a
    small set; the property holds for any parameters. t1's 40-step windows overlap, so fewer
    independent rows back its slope and its tolerance is wider.
    """
    gen = BGenerator(BParams(burst_rate=0.0, jump_prob=0.0, vol_level_sd=0.1))
    chunks = list(gen.chunks(60, seed=31, split="train"))
    y = pooled_scored(np.concatenate([c.targets for c in chunks]).astype(float))
    o = pooled_scored(np.concatenate([c.observable for c in chunks]))
    for k, tolerance in zip(range(y.shape[1]), (0.05, 0.2)):
        slope, intercept = np.polyfit(o[:, k], y[:, k], 1)
        assert slope == pytest.approx(1.0, abs=tolerance), (B.target_columns[k], slope)
        assert intercept == pytest.approx(0.0, abs=0.05)
