"""How the B market's state shows in the 32 order-book features, and how to read it back.

Four observed signals drive the oracle, and each sits in the features so that it can be read
back exactly (up to float32 rounding) from the rows up to and including its own:

* volatility ``sigma_t``: the first bid gap ``p1 = gap_scale * sigma_t ** gap_vol_power``, and
  its burst-free part ``exp(m + h_t)`` the first ask gap ``p7`` the same way (a burst widens
  the bid side first);
* book-imbalance flow ``f_t``: level 1 shows order-flow *increments*,
  ``log(v0 / v6) = flow_display * (f_t - flow_memory * f_{t-1})`` (the level itself at step 0),
  so the flow is an exact running filter of the rows so far, ``f_t = u_t + flow_memory * f_{t-1}``,
  but one row alone shows only a fraction of it;
* mid return ``r_t``: the mean of the first two trade-price moves, ``(dp0 + dp1) / 2``
  (their difference is a bid/ask bounce);
* trade-flow imbalance ``o_t``: ``log(dv0 / dv1) = trade_flow_display * o_t`` (buy against sell volume);
  with ``trade_volume_offset`` every trade volume is shown less that offset (signed prints, some
  zero or negative) and read back by adding it again.

Everything else is nuisance drawn independently of the signals and of the future: per-sequence
levels, autocorrelated noise and bounces chosen so the features' marginals and
autocorrelations look like the real ones (``shared/calibration.md``). Independence is what keeps
the oracle exact: a nuisance value tells nothing about the targets that the signals do not.

Encoding and decoding live together here so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.competitions import B
from harness.market.b_params import BParams

COL = {name: i for i, name in enumerate(B.feature_columns)}
"""Feature name -> column index, from the contract (never a hard-coded position)."""

BID_PRICES = tuple(COL[f"p{i}"] for i in range(6))
ASK_PRICES = tuple(COL[f"p{i}"] for i in range(6, 12))
BID_VOLUMES = tuple(COL[f"v{i}"] for i in range(6))
ASK_VOLUMES = tuple(COL[f"v{i}"] for i in range(6, 12))
TRADE_PRICES = tuple(COL[f"dp{i}"] for i in range(4))
TRADE_VOLUMES = tuple(COL[f"dv{i}"] for i in range(4))

# Nuisance shapes (not part of the oracle; tuned to the table's feature statistics).
_PRICE_SHARES = (0.24, 0.112, 0.365)  # log p0 variance: per-sequence, slow AR, medium AR (rest iid)
_PRICE_ARS = (0.983, 0.767)
_PRICE_LOG_SD = 0.33
_SPREAD_LOG_SD = 0.5  # p6 - p0 = p1 * lognormal
_DEEP_GAP_LOG_SD = (0.7, 0.8, 0.9, 1.0)  # gaps between deeper levels, relative to the first gap
_DEEP_GAP_MEAN = (0.22, 0.24, 0.26, 0.28)
_VOLUME_SEQ_SD = 0.08
_VOLUME_AR = 0.6  # persistence of the common level-1 size
_DEEP_VOLUME_MA = 0.7  # deeper sizes: MA(1) noise, a little persistence at no filtering cost
_BOUNCE = 1.15  # trade-price bounce relative to sigma
_TRADE_VOLUME_MA = 0.9  # MA(1) coefficient of log trade volume (the negative lag-1 bounce)


@dataclass
class Signals:
    """The observed signals of a block of sequences, each (S, T) float64."""

    base_log_vol: np.ndarray  # m + h_t: log-vol without the burst
    burst: np.ndarray  # b_t
    flow: np.ndarray  # f_t
    ret: np.ndarray  # r_t
    trade_flow: np.ndarray  # o_t

    @property
    def log_vol(self) -> np.ndarray:
        """x_t = log sigma_t."""
        return self.base_log_vol + self.burst


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], phi: float, sd: float) -> np.ndarray:
    """Stationary AR(1) paths along the last axis with marginal sd ``sd``, float32."""
    e = rng.standard_normal(shape, dtype=np.float32)
    e[..., 1:] *= np.float32(np.sqrt(1.0 - phi * phi))
    e *= np.float32(sd)
    from scipy.signal import lfilter  # not at the top: 1 s to import, and `simulate` imports this module

    return lfilter([1.0], [1.0, -phi], e, axis=-1).astype(np.float32, copy=False)


def _lognormal(rng: np.random.Generator, shape: tuple[int, ...], sd: float | np.ndarray) -> np.ndarray:
    """exp(N(0, sd^2)) draws, float32; ``sd`` may broadcast along the leading axes."""
    z = rng.standard_normal(shape, dtype=np.float32)
    z *= np.asarray(sd, dtype=np.float32)
    return np.exp(z, out=z)


def flow_increments(flow: np.ndarray, memory: float) -> np.ndarray:
    """u_0 = f_0 and u_t = f_t - memory * f_{t-1}: what the level-1 book shows of the flow."""
    u = flow.copy()
    u[:, 1:] -= memory * flow[:, :-1]
    return u


def accumulate_flow(increments: np.ndarray, memory: float) -> np.ndarray:
    """The inverse of ``flow_increments``: f_t = u_t + memory * f_{t-1}, a causal IIR filter
    (memory < 1, so float32 rounding of the rows does not accumulate)."""
    from scipy.signal import lfilter  # not at the top: 1 s to import, and `simulate` imports this module

    return lfilter([1.0], [1.0, -memory], increments, axis=1)


def encode(signals: Signals, params: BParams, rng: np.random.Generator) -> np.ndarray:
    """The (S, T, n_features) float32 features showing ``signals``, with fresh nuisance from ``rng``.

    Built feature-major (one contiguous (S, T) plane per feature) and returned as an (S, T, F)
    view, so that both writing a column and reading one back are contiguous.
    """
    s, t = signals.flow.shape
    planes = np.empty((B.n_features, s, t), dtype=np.float32)
    f32 = np.float32

    # Prices: p0 a positive, right-skewed level with a per-sequence part; p1 and p7 show the
    # volatility exactly; deeper levels are distances built from them with heavy-tailed gaps.
    seq_share, slow_share, mid_share = _PRICE_SHARES
    log_p0 = _ar1(rng, (s, t), _PRICE_ARS[0], _PRICE_LOG_SD * np.sqrt(slow_share))
    log_p0 += _ar1(rng, (s, t), _PRICE_ARS[1], _PRICE_LOG_SD * np.sqrt(mid_share))
    log_p0 += rng.standard_normal((s, t), dtype=np.float32) * f32(
        _PRICE_LOG_SD * np.sqrt(1.0 - seq_share - slow_share - mid_share)
    )
    log_p0 += rng.standard_normal((s, 1), dtype=np.float32) * f32(_PRICE_LOG_SD * np.sqrt(seq_share))
    log_p0 += f32(params.price_level_mean + params.price_shift)
    p0 = np.exp(log_p0, out=log_p0)
    gap_scale = f32(params.gap_scale)
    bid_gap = np.exp(params.gap_vol_power * signals.log_vol).astype(np.float32) * gap_scale
    ask_gap = np.exp(params.gap_vol_power * signals.base_log_vol).astype(np.float32) * gap_scale
    planes[BID_PRICES[0]] = p0
    planes[ASK_PRICES[0]] = p0 + bid_gap * _lognormal(rng, (s, t), _SPREAD_LOG_SD)
    deep_sd = np.asarray(_DEEP_GAP_LOG_SD, dtype=np.float32)[:, None, None]
    deep_mean = np.asarray(_DEEP_GAP_MEAN, dtype=np.float32)[:, None, None]
    for side, gap in ((BID_PRICES, bid_gap), (ASK_PRICES, ask_gap)):
        steps = _lognormal(rng, (len(side) - 2, s, t), deep_sd)
        steps *= deep_mean
        steps *= gap
        planes[side[1]] = gap
        planes[list(side[2:])] = gap + np.cumsum(steps, axis=0)

    # Book volumes: level 1 shows the flow as the bid/ask log-ratio around a common noisy size;
    # deeper levels are nuisance sizes with a per-sequence level.
    common = _ar1(rng, (s, t), _VOLUME_AR, params.volume_log_sd)
    common += rng.standard_normal((s, 1), dtype=np.float32) * f32(_VOLUME_SEQ_SD)
    half = (0.5 * params.flow_display * flow_increments(signals.flow, params.flow_memory)).astype(np.float32)
    planes[BID_VOLUMES[0]] = np.exp(common + half)
    planes[ASK_VOLUMES[0]] = np.exp(common - half)
    deep = list(BID_VOLUMES[1:] + ASK_VOLUMES[1:])
    e = rng.standard_normal((len(deep), s, t + 1), dtype=np.float32)
    log_deep = e[:, :, 1:] + f32(_DEEP_VOLUME_MA) * e[:, :, :-1]
    log_deep *= f32(params.volume_log_sd / np.sqrt(1.0 + _DEEP_VOLUME_MA**2))
    log_deep += rng.standard_normal((1, s, 1), dtype=np.float32) * f32(_VOLUME_SEQ_SD)
    log_deep += (f32(0.15) * (1 + np.arange(len(deep), dtype=np.float32) % 5))[:, None, None]
    planes[deep] = np.exp(log_deep, out=log_deep)

    # Trade prices: every print moves with the mid return plus its own bid/ask bounce; the first
    # two bounce in opposite directions, so their mean is the return itself.
    ret = signals.ret.astype(np.float32)
    sigma = np.exp(signals.log_vol).astype(np.float32) * f32(_BOUNCE)
    u = rng.standard_normal((3, s, t + 1), dtype=np.float32)
    bounce = (u[:, :, 1:] - u[:, :, :-1]) * sigma
    planes[TRADE_PRICES[0]] = ret + bounce[0]
    planes[TRADE_PRICES[1]] = f32(2.0) * ret - planes[TRADE_PRICES[0]]
    planes[list(TRADE_PRICES[2:])] = ret + bounce[1:]

    # Trade volumes: buy and sell volume around a common MA(1) size (lag-1 bounce); the log of
    # their ratio shows the trade-flow imbalance. The other two prints are nuisance.
    e = rng.standard_normal((2, s, t + 1), dtype=np.float32) * f32(params.trade_volume_sd)
    size = e[:, :, 1:] - f32(_TRADE_VOLUME_MA) * e[:, :, :-1]
    tilt = np.empty((2, s, t), dtype=np.float32)
    tilt[0] = 0.5 * params.trade_flow_display * signals.trade_flow
    tilt[1] = rng.standard_normal((s, t), dtype=np.float32) * f32(0.5 * params.trade_flow_display)
    planes[[TRADE_VOLUMES[0], TRADE_VOLUMES[2]]] = np.exp(size + tilt)
    planes[[TRADE_VOLUMES[1], TRADE_VOLUMES[3]]] = np.exp(size - tilt)
    if params.trade_volume_offset > 0:  # signed prints: small ones read zero or negative
        planes[list(TRADE_VOLUMES)] -= f32(params.trade_volume_offset)
    if params.empty_volume_prob > 0:  # drawn last, so markets without empty levels keep their bytes
        empty = list(BID_VOLUMES[1:] + ASK_VOLUMES[1:] + TRADE_VOLUMES[2:])
        planes[empty] *= rng.random((len(empty), s, t)) >= params.empty_volume_prob
    return planes.transpose(1, 2, 0)


def decode(features: np.ndarray, params: BParams) -> Signals:
    """The observed signals read back from (S, T, n_features) features, as float64.

    Causal: row t's signals depend on rows 0..t only (the flow is a forward filter of the
    level-1 imbalance), so the oracle built on them uses only what a model at row t has seen.
    """
    x = np.asarray(features)
    if x.ndim != 3 or x.shape[2] != B.n_features:
        raise ValueError(f"B features must have shape (sequences, steps, {B.n_features}); got {x.shape}")
    gap = x[:, :, BID_PRICES[1]].astype(np.float64)
    ask_gap = x[:, :, ASK_PRICES[1]].astype(np.float64)
    vb = x[:, :, BID_VOLUMES[0]].astype(np.float64)
    va = x[:, :, ASK_VOLUMES[0]].astype(np.float64)
    db = x[:, :, TRADE_VOLUMES[0]].astype(np.float64) + params.trade_volume_offset
    ds = x[:, :, TRADE_VOLUMES[1]].astype(np.float64) + params.trade_volume_offset
    if min(gap.min(), ask_gap.min(), vb.min(), va.min(), db.min(), ds.min()) <= 0:
        raise ValueError("B features carry non-positive gaps or volumes: not a B market the oracle can read")
    base = np.log(ask_gap / params.gap_scale) / params.gap_vol_power
    return Signals(
        base_log_vol=base,
        burst=np.log(gap / params.gap_scale) / params.gap_vol_power - base,
        flow=accumulate_flow(np.log(vb / va) / params.flow_display, params.flow_memory),
        ret=0.5 * (x[:, :, TRADE_PRICES[0]].astype(np.float64) + x[:, :, TRADE_PRICES[1]].astype(np.float64)),
        trade_flow=np.log(db / ds) / params.trade_flow_display,
    )
