"""The parameters of the B market process, in one frozen object.

The generator draws data with these numbers and the oracle filters with the very same
numbers, so the oracle is the Bayes conditional mean of the process that made the data. Each
value was tuned so the generated set's statistics land near ``shared/calibration.md``'s table
(``python -m harness calibrate --competition B`` prints the comparison); comments say which
statistic a value mainly moves.

The process, per sequence (all innovations independent):

* log-volatility ``x_t = m + h_t + b_t``: ``m`` a hidden per-sequence level (normal prior),
  ``h`` a slow AR(1), ``b`` bursts (at rate ``burst_rate`` b is set to ``burst_size``, then
  decays by ``burst_decay`` a step; bursts do not stack, which keeps the far tails finite).
  Many short bursts, rather than a few wild sequences,
  give the targets their far tails, so the weighted Pearson is not owned by a handful of
  sequences. ``sigma_t = exp(x_t)`` and ``exp(m + h_t)`` are displayed exactly (the first bid
  and ask gaps);
* book-imbalance flow ``f_t``: a stationary AR(1); the level-1 book shows its increments
  ``f_t - flow_memory * f_{t-1}`` as ``log(v0 / v6)``, so it is exact given the rows so far
  but not given one row;
* hidden drift regime ``z_t`` in {down, flat, up}: a symmetric Markov chain;
* hidden flow-response state ``s_t`` in {-1, +1}: a slow symmetric two-state chain that sets
  how strongly the book's flow moves the price, ``beta_t = flow_beta + flow_beta_spread * s_t``
  (a book that is followed, or faded). It shows nowhere but in how returns have answered the
  flow so far, so it must be learnt from the sequence's own history, and what it is worth is a
  product of that history with today's flow: no linear model of the features can reach it;
* trade-flow imbalance ``o_t = flow_signal * d(z_t) + N(0, 1)``, displayed in ``log(dv0 / dv1)``;
* mid return ``r_t = sigma_t ** signal_vol_power * (beta_t * f_{t-1} + drift * d(z_t))
  + sigma_t * eps_t``, ``eps`` a two-scale normal mixture, displayed as the mean of the first
  two trade-price moves;
* targets: ``t0`` a kernel-weighted sum of the next returns, ``t1`` the sum of the next
  ``t1_horizon`` returns; each divided by a power of today's sigma and a constant, and shifted
  to the real means.

Everything else in the 32 features is nuisance independent of all of the above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np


SHIFT_VOL = 1.3
SHIFT_TARGET_STD = (1.5, 1.8)
SHIFT_PRICE = 0.3
"""What ``shift=1`` does (see ``BParams.with_shift``); tuned to the real train/valid gap."""


@dataclass(frozen=True)
class BParams:
    """Process constants; ``with_shift`` derives the shifted (valid-like) variant."""

    # --- volatility: kurtosis, weight concentration, large-move clustering -------------------
    vol_level_mean: float = 0.0  # prior mean of the per-sequence log-vol level m
    vol_level_sd: float = 0.3  # prior sd of m: heterogeneity across sequences
    vol_ar: float = 0.995  # persistence of h (per step)
    vol_ar_sd: float = 0.03  # innovation sd of h (stationary sd = vol_ar_sd / sqrt(1 - vol_ar^2))
    burst_rate: float = 0.001  # per-step probability of a volatility burst
    burst_size: float = 2.5  # log-vol burst component right after a burst
    burst_decay: float = 0.98  # per-step decay of the burst component
    # --- return noise: a scale mixture, the short-horizon tails --------------------------------
    jump_prob: float = 0.003
    jump_scale: float = 5.0  # sd of the rare component relative to the common one
    shock_scale: float = 1.0  # multiplies eps (the ``noise`` knob): >1 makes the task harder
    # --- flow: the short-horizon (t0) signal -------------------------------------------------
    flow_ar: float = 0.75
    flow_beta: float = 0.25  # mean return drift per unit of f_{t-1}, in units of sigma ** signal_vol_power
    # --- hidden flow response: the non-linear, temporal part of the t0 signal -----------------
    flow_beta_spread: float = 0.4  # beta_t = flow_beta +- this, by the response state s_t
    response_switch: float = 0.002  # per-step probability that s_t flips
    flow_display: float = 1.8  # log(v0 / v6) = flow_display * (f_t - flow_memory * f_{t-1})
    flow_memory: float = 0.9  # how much of the flow a single row hides (0: none, the level shows)
    # --- hidden drift regime: the long-horizon (t1) signal -----------------------------------
    regime_switch: float = 0.006  # per-step probability of leaving the current regime
    drift: float = 0.085  # return drift in the up / down regime, in units of sigma ** signal_vol_power
    signal_vol_power: float = 1.0  # drifts scale with sigma ** this (1: a constant signal-to-noise)
    flow_signal: float = 0.25  # mean trade-flow imbalance o_t in the up / down regime
    trade_flow_display: float = 0.5  # log(dv0 / dv1) = trade_flow_display * o_t
    # --- targets --------------------------------------------------------------------------------
    t0_fast: float = 1.055  # t0 kernel: exp(-k / t0_fast) + t0_mix * exp(-k / t0_slow)
    t0_slow: float = 9.02
    t0_mix: float = 0.137
    t0_length: int = 40  # kernel truncated here (the weight left beyond is < 0.3% of the first)
    t0_vol_norm: float = 0.35  # t0 is divided by sigma_t ** t0_vol_norm (a near-normal bulk, like the real t0)
    t1_vol_norm: float = 0.5  # the same for t1: tails then come from future bursts, not from a few sequences
    t1_horizon: int = 40
    t0_scale: float = 1.41  # targets are divided by these (set so the stds match the table)
    t1_scale: float = 14.71
    t0_mean: float = -0.17
    t1_mean: float = -0.06
    # --- display (nuisance) ---------------------------------------------------------------------
    gap_scale: float = 0.33  # first bid gap p1 = gap_scale * sigma_t ** gap_vol_power
    gap_vol_power: float = 0.4  # < 1 keeps the bid levels' kurtosis near the real 13-36
    price_level_mean: float = 0.27  # log of the typical price level of p0 / p6
    price_shift: float = 0.0  # added to the price level (the valid shift moves it)
    # --- volume display (nuisance shapes; scenarios vary them) ------------------------------------
    volume_log_sd: float = 0.65  # log-sd of the book sizes' noise (level 1: AR(1); deeper: MA(1))
    trade_volume_sd: float = 0.45  # log-sd of the trade prints' common MA(1) size
    trade_volume_offset: float = 0.0  # subtracted from every trade volume: > 0 shows zero and negative prints
    empty_volume_prob: float = 0.0  # chance that a nuisance volume (deeper book, dv2, dv3) reads exactly 0

    @cached_property
    def t0_kernel(self) -> np.ndarray:
        """Weights of returns t+1 .. t+t0_length in t0 (before scaling)."""
        k = np.arange(1, self.t0_length + 1, dtype=np.float64)
        return np.exp(-k / self.t0_fast) + self.t0_mix * np.exp(-k / self.t0_slow)

    @property
    def horizon(self) -> int:
        """How many returns past a row its targets use: the steps simulated past the end."""
        return max(self.t0_length, self.t1_horizon)

    @property
    def vol_stationary_var(self) -> float:
        return self.vol_ar_sd**2 / (1.0 - self.vol_ar**2)

    @cached_property
    def burst_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """(P, G) over k = 1..horizon with E[exp(c b_{t+k}) | b_t] = P_k exp(c decay^k b_t) + G_k,
        c = signal_vol_power.

        A burst sets b to burst_size (it does not stack), then b decays. Either no burst arrives
        in t+1..t+k (probability P_k = (1 - rate)^k) or the last one arrived a steps before
        t+k, with probability rate (1 - rate)^a, leaving b = burst_size * decay^a.
        """
        c, p = self.signal_vol_power, self.burst_rate
        k = np.arange(1, self.horizon + 1)
        ages = np.arange(self.horizon)
        last = p * (1.0 - p) ** ages * np.exp(c * self.burst_size * self.burst_decay**ages)
        return (1.0 - p) ** k, np.cumsum(last)

    @property
    def regime_decay(self) -> float:
        """E[d(z_{t+1}) | z_t] = regime_decay * d(z_t): d = (-1, 0, 1) is an eigenvector."""
        return 1.0 - 1.5 * self.regime_switch

    @property
    def response_decay(self) -> float:
        """E[s_{t+1} | s_t] = response_decay * s_t for the symmetric two-state chain."""
        return 1.0 - 2.0 * self.response_switch

    @property
    def eps_sds(self) -> tuple[float, float]:
        """Sds of the two normal components of eps, scaled so that Var(eps) = shock_scale^2."""
        base = self.shock_scale / math.sqrt(1.0 - self.jump_prob + self.jump_prob * self.jump_scale**2)
        return base, base * self.jump_scale

    def with_shift(self, shift: float) -> "BParams":
        """The train/valid shift, scaled by ``shift`` (0: none, 1: the real one).

        Real valid targets have 1.5x (t0) and 1.8x (t1) the train std, price levels sit about
        one train std higher and single features differ by a KS distance of up to 0.33. Here
        volatility rises by ``SHIFT_VOL`` (which moves the gap features), the price level moves
        up, and the target scales grow by what the volatility does not already give, so the
        target std ratios come out at ``SHIFT_TARGET_STD`` at shift=1.
        """
        if not math.isfinite(shift) or shift < 0:
            raise ValueError(f"shift must be a finite number >= 0, got {shift}")
        if shift == 0:
            return self
        vol = SHIFT_VOL**shift
        std0, std1 = (ratio**shift for ratio in SHIFT_TARGET_STD)
        return replace(
            self,
            vol_level_mean=self.vol_level_mean + math.log(vol),
            t0_scale=self.t0_scale * vol ** (1.0 - self.t0_vol_norm) / std0,
            t1_scale=self.t1_scale * vol ** (1.0 - self.t1_vol_norm) / std1,
            price_shift=self.price_shift + shift * SHIFT_PRICE,
        )

    def validate(self) -> None:
        """Raise ValueError on parameters the process or its filters cannot use."""
        checks = [
            (0 <= self.vol_ar < 1, "vol_ar must be in [0, 1)"),
            (0 <= self.flow_ar < 1, "flow_ar must be in [0, 1)"),
            (0 <= self.flow_memory < 1, "flow_memory must be in [0, 1)"),
            (0 < self.regime_switch <= 2 / 3, "regime_switch must be in (0, 2/3]"),
            (0 <= self.response_switch <= 0.5, "response_switch must be in [0, 0.5]"),
            (math.isfinite(self.flow_beta_spread) and self.flow_beta_spread >= 0, "flow_beta_spread must be >= 0"),
            (0 <= self.jump_prob < 1, "jump_prob must be in [0, 1)"),
            (0 <= self.burst_rate < 1 and 0 <= self.burst_decay < 1, "burst_rate and burst_decay must be in [0, 1)"),
            (self.jump_scale >= 1, "jump_scale must be >= 1"),
            (math.isfinite(self.shock_scale) and self.shock_scale > 0, "shock_scale (noise) must be positive"),
            (self.vol_level_sd > 0 and self.vol_ar_sd > 0, "volatility sds must be positive"),
            (min(self.flow_display, self.trade_flow_display, self.gap_scale, self.gap_vol_power) > 0,
             "display scales must be positive"),
            (self.t0_length >= 1 and self.t1_horizon >= 1, "target horizons must be >= 1"),
            (self.volume_log_sd > 0 and self.trade_volume_sd > 0, "volume sds must be positive"),
            (math.isfinite(self.trade_volume_offset) and self.trade_volume_offset >= 0, "trade_volume_offset must be >= 0"),
            (0 <= self.empty_volume_prob < 1, "empty_volume_prob must be in [0, 1)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"bad B market parameters: {message}")
