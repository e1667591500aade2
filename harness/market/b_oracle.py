"""The B oracle: E[t0, t1 | what is observable up to row t], in closed form.

The process (``b_params``) is built so this expectation is exact, not estimated:

* log-vol is ``m + h_t + b_t``; ``m + h_t`` and ``b_t`` are both displayed. The per-sequence
  level ``m`` has a normal prior and ``m + h`` is an AR(1) around it, so m's posterior is
  normal with a running-sum mean (no loop over time). Bursts ``b`` are a Markov process whose
  future exponential moments have a closed form (``BParams.burst_moments``);
* the drift regime (three states) and the flow response (two states) are Markov chains whose
  evidence (trade-flow imbalance, and the return net of the mean flow term) has a known
  density, so a forward (HMM) filter over their 6 joint states gives the exact posterior;
  ``d = (-1, 0, 1)`` and ``s = (-1, 1)`` are eigenvectors of the symmetric transition
  matrices, so their k-step forecasts are ``decay**k`` times today's posterior means;
* volatility, flow, regime and response are independent, so an expected future return
  factorizes into E[sigma_{t+k}^c] (a lognormal mean times the burst term) times the expected
  drift.

Targets are fixed linear combinations of future returns, so the oracle is the same combination
of expected returns. The hidden-state oracle plugs the true ``m``, regime and response into the
same formula (an upper bound: it still cannot know future shocks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from harness.market.b_display import Signals, decode
from harness.market.b_params import BParams


@dataclass
class VolLevel:
    """What is known of the per-sequence volatility level m at each row: a normal with mean
    ``mean`` (S, T) and variance ``var`` (T,). The hidden-state oracle passes the true m, var 0."""

    mean: np.ndarray
    var: np.ndarray


def vol_level_posterior(base_log_vol: np.ndarray, params: BParams) -> VolLevel:
    """The posterior of m given y_0..y_t, y = m + h (the burst-free log-vol), for every row t.

    y_0 is stationary around m and y_j - phi y_{j-1} ~ N((1 - phi) m, s^2) for j >= 1, so the
    likelihood in m is normal and the prior updates in closed form.
    """
    phi = params.vol_ar
    s2 = params.vol_ar_sd**2
    prior_prec = 1.0 / params.vol_level_sd**2
    t = base_log_vol.shape[1]
    innov = np.zeros_like(base_log_vol)
    innov[:, 1:] = base_log_vol[:, 1:] - phi * base_log_vol[:, :-1]
    num = (
        params.vol_level_mean * prior_prec
        + base_log_vol[:, :1] * (1.0 - phi * phi) / s2
        + np.cumsum(innov, axis=1) * (1.0 - phi) / s2
    )
    prec = prior_prec + (1.0 - phi * phi) / s2 + np.arange(t) * (1.0 - phi) ** 2 / s2
    return VolLevel(mean=num / prec, var=1.0 / prec)


def _log_eps_density(e: np.ndarray, params: BParams) -> np.ndarray:
    """log density of the return shock eps (a two-scale normal mixture), up to a constant."""
    sd0, sd1 = params.eps_sds
    a = np.log1p(-params.jump_prob) - np.log(sd0) - 0.5 * (e / sd0) ** 2
    if params.jump_prob == 0:
        return a
    b = np.log(params.jump_prob) - np.log(sd1) - 0.5 * (e / sd1) ** 2
    return np.logaddexp(a, b)


@dataclass
class HiddenStates:
    """What is known of the two hidden chains at each row, (S, T) each: the drift regime's
    expected ``d(z_t)`` and the flow response's expected ``s_t``. The hidden-state oracle passes
    the true values."""

    regime: np.ndarray
    response: np.ndarray


def hidden_state_posterior(signals: Signals, params: BParams) -> HiddenStates:
    """E[d(z_t) | F_t] and E[s_t | F_t] for every row: the forward filter of the joint chain.

    The regime z (3 states) and the response s (2 states) are independent chains, but one return
    carries evidence on both (its mean is ``beta(s) * f_{t-1} + drift * d(z)``), so they are
    filtered jointly over the 6 pairs; a transition applies each chain's matrix along its axis.
    """
    # r_t / sigma_t = sigma_t ** (c - 1) * (beta(s_t) * f_{t-1} + drift * d(z_t)) + eps_t
    relative = np.exp((params.signal_vol_power - 1.0) * signals.log_vol)
    flow_prev = np.zeros_like(signals.flow)
    flow_prev[:, 1:] = signals.flow[:, :-1]
    net = signals.ret * np.exp(-signals.log_vol) - relative * params.flow_beta * flow_prev
    d = np.array([-1.0, 0.0, 1.0])[:, None]
    resp = np.array([-1.0, 1.0])[None, :]
    mean = relative[:, :, None, None] * (
        params.drift * d + params.flow_beta_spread * resp * flow_prev[:, :, None, None]
    )  # (S, T, 3, 2)
    loglik = _log_eps_density(net[:, :, None, None] - mean, params) + (
        params.flow_signal * d * signals.trade_flow[:, :, None, None] - 0.5 * params.flow_signal**2 * d * d
    )
    loglik -= loglik.max(axis=(2, 3), keepdims=True)
    lik = np.exp(loglik)
    s, t = signals.flow.shape
    lam_z, jump_z = params.regime_decay, params.regime_switch / 2.0
    lam_s, jump_s = params.response_decay, params.response_switch
    alpha = np.full((s, 3, 2), 1.0 / 6.0)  # the stationary distribution: the prior at step 0
    regime = np.empty((s, t))
    response = np.empty((s, t))
    for step in range(t):
        if step:  # one transition of each symmetric chain, along its own axis
            alpha = lam_z * alpha + jump_z * alpha.sum(axis=1, keepdims=True)
            alpha = lam_s * alpha + jump_s * alpha.sum(axis=2, keepdims=True)
        alpha = alpha * lik[:, step]
        alpha /= alpha.sum(axis=(1, 2), keepdims=True)
        z = alpha.sum(axis=2)
        regime[:, step] = z[:, 2] - z[:, 0]
        response[:, step] = alpha[:, :, 1].sum(axis=1) - alpha[:, :, 0].sum(axis=1)
    return HiddenStates(regime=regime, response=response)


_BLOCK_ROWS = 2048
"""Rows per block of the (horizon x rows) moment matrix: ~1 MB, so it stays in cache. The
products are small, so BLAS runs single-threaded here (threads only cost at this size)."""


def _horizon_weights(params: BParams) -> np.ndarray:
    """(6, horizon) weights of E[sigma_{t+k}^c] in: t0's flow term, t0's regime term, t1's flow
    term, t1's regime term, t0's and t1's response term (kernel or box, times flow_ar^(k-1),
    regime decay^k or flow_ar^(k-1) * response decay^k)."""
    k = np.arange(1, params.horizon + 1)
    kernel0 = np.zeros(params.horizon)
    kernel0[: params.t0_length] = params.t0_kernel
    box1 = (k <= params.t1_horizon).astype(np.float64)
    flow_k = params.flow_ar ** (k - 1.0)
    regime_k = params.regime_decay ** k.astype(np.float64)
    response_k = flow_k * params.response_decay ** k.astype(np.float64)
    return np.stack(
        [kernel0 * flow_k, kernel0 * regime_k, box1 * flow_k, box1 * regime_k, kernel0 * response_k, box1 * response_k]
    )


def _exponent_coefficients(params: BParams) -> np.ndarray:
    """(2 * horizon, 4) coefficients on (dev, burst, level variance, 1) of the logs of the two
    terms of E[sigma_{t+k}^c] / exp(c * level mean): rows k of the first half carry the "no new
    burst" term, rows of the second half the "a new burst" term (``BParams.burst_moments``), so a
    block's moments are one matrix product, one exp and one more product."""
    c = params.signal_vol_power
    k = np.arange(1, params.horizon + 1, dtype=np.float64)
    pk = params.vol_ar**k
    no_burst, new_burst = params.burst_moments
    with np.errstate(divide="ignore"):  # a zero burst rate gives log(0) = -inf: exp(-inf) = 0
        log_new = np.log(new_burst)
    base = 0.5 * c * c * params.vol_stationary_var * (1.0 - pk * pk)
    level_var = 0.5 * c * c * (1.0 - pk) ** 2
    first = np.stack([c * pk, c * params.burst_decay**k, level_var, base + np.log(no_burst)], axis=1)
    second = np.stack([c * pk, np.zeros_like(k), level_var, base + log_new], axis=1)
    return np.concatenate([first, second])


def expected_targets(
    base_log_vol: np.ndarray,
    burst: np.ndarray,
    level: VolLevel,
    flow: np.ndarray,
    states: HiddenStates,
    params: BParams,
) -> np.ndarray:
    """E[(t0, t1)] given, per row, the burst-free log-vol, the burst, what is known of the level,
    the flow and the hidden chains' expected states: (S, T, 2) float64.

    E[r_{t+k}] = E[sigma_{t+k}^c] * ((flow_beta + spread * response_decay^k * E[s_t]) * flow_ar^(k-1) * f_t
    + drift * decay^k * E[d(z_t)])
    with c = signal_vol_power; log sigma_{t+k} = phi^k y_t + (1 - phi^k) m + (AR noise of variance
    stat_var (1 - phi^2k)) + b_{t+k}, each part independent, so E[sigma_{t+k}^c] is a lognormal
    mean times E[exp(c b_{t+k}) | b_t] (``BParams.burst_moments``).
    """
    s, t = base_log_vol.shape
    n = s * t
    level_var = np.broadcast_to(np.asarray(level.var, dtype=np.float64), (t,))
    inputs = np.empty((4, n))
    inputs[0] = (base_log_vol - level.mean).ravel()
    inputs[1] = burst.ravel()
    inputs[2] = np.broadcast_to(level_var, (s, t)).ravel()
    inputs[3] = 1.0
    coef = _exponent_coefficients(params)
    weights = np.tile(_horizon_weights(params), 2)
    sums = np.empty((weights.shape[0], n))
    with threadpool_limits(limits=1, user_api="blas"):
        for a in range(0, n, _BLOCK_ROWS):
            b = min(a + _BLOCK_ROWS, n)
            moments = coef @ inputs[:, a:b]
            np.exp(moments, out=moments)
            sums[:, a:b] = weights @ moments
    sums = sums.reshape(-1, s, t)
    c = params.signal_vol_power
    beta_f = params.flow_beta * flow
    drift_d = params.drift * states.regime
    spread_f = params.flow_beta_spread * states.response * flow
    log_vol = base_log_vol + burst
    scale0 = np.exp(c * level.mean - params.t0_vol_norm * log_vol) / params.t0_scale
    scale1 = np.exp(c * level.mean - params.t1_vol_norm * log_vol) / params.t1_scale
    out = np.empty((s, t, 2))
    out[:, :, 0] = scale0 * (beta_f * sums[0] + drift_d * sums[1] + spread_f * sums[4]) + params.t0_mean
    out[:, :, 1] = scale1 * (beta_f * sums[2] + drift_d * sums[3] + spread_f * sums[5]) + params.t1_mean
    return out


def oracle_from_signals(signals: Signals, params: BParams) -> np.ndarray:
    """The observable oracle (S, T, 2) from decoded signals."""
    level = vol_level_posterior(signals.base_log_vol, params)
    states = hidden_state_posterior(signals, params)
    return expected_targets(signals.base_log_vol, signals.burst, level, signals.flow, states, params)


def oracle_from_observations(features: np.ndarray, params: BParams | None = None) -> np.ndarray:
    """E[(t0, t1) | features of rows 0..t] for every row t of (S, T, n_features) features.

    ``params`` must be the parameters the set was drawn with (``BGenerator.params_for(**knobs)``;
    the unshifted defaults when omitted). Exact up to the float32 rounding of the stored features.

    Causal by construction: row t's value depends on rows 0..t only (running sums and a
    forward filter), which ``tests/market/test_market_b_oracle.py`` checks by perturbing futures.
    """
    p = params or BParams()
    p.validate()
    return oracle_from_signals(decode(features, p), p)
