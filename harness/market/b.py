"""The B market: a limit order book driven by a mid-price with clustered volatility, hidden
drift regimes and a hidden flow response, with targets t0 (short horizon) and t1 (a 40-step forward move).

The process and its parameters are described in ``b_params``, how the state shows in the 32
features in ``b_display`` and the exact oracle in ``b_oracle``. This module draws the latent
paths, vectorized over the sequences of a chunk (numpy over whole time axes; the only loop over
time is the regime filter's), and assembles ``Chunk`` objects for ``base.write_set``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from harness.competitions import B, SEQUENCE_LENGTH, Competition
from harness.market.b_display import Signals, encode
from harness.market.b_oracle import HiddenStates, VolLevel, expected_targets, oracle_from_observations
from harness.market.b_params import BParams
from harness.market.base import Chunk, chunk_bounds, shuffled_ids, split_seed

BURST_WARMUP = 300
"""Steps of bursts drawn before step 0 (burst_decay**300 is negligible for the defaults)."""

DEFAULT_CHUNK = 512
"""Sequences per chunk: a few hundred MB of working memory, and one parquet row group each."""


class BGenerator:
    """Generator of B ("lob") sets; see the module docstring.

    Knobs of ``chunks``: ``shift`` (0 = none, 1 = the real train/valid shift; applied to the
    split it is given for), ``noise`` (multiplies the unpredictable return shocks: >1 makes the
    task harder), ``chunk_size``. Output is deterministic for (seed, split, knobs).
    """

    competition: Competition = B
    version: str = "2"  # 2: the hidden flow response; stamped into files so older sets count as stale

    def __init__(self, params: BParams | None = None, scenario: int | None = None) -> None:
        self.params = params or BParams()
        self.params.validate()
        self.scenario = scenario  # stamped into the files; None for the default market

    def params_for(self, shift: float = 0.0, noise: float = 1.0) -> BParams:
        """The parameters a set with these knobs is drawn (and its oracle computed) with."""
        if not np.isfinite(noise) or noise <= 0:
            raise ValueError(f"noise must be a positive number, got {noise}")
        shifted = self.params.with_shift(float(shift))
        return replace(shifted, shock_scale=shifted.shock_scale * float(noise))

    def chunks(
        self,
        n_sequences: int,
        seed: int,
        split: str,
        shift: float = 0.0,
        noise: float = 1.0,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> Iterator[Chunk]:
        params = self.params_for(shift, noise)
        ids = shuffled_ids(n_sequences, seed, split)
        for index, (a, b) in enumerate(chunk_bounds(n_sequences, int(chunk_size))):
            rng = np.random.default_rng(split_seed(seed, split, index))
            yield simulate_chunk(ids[a:b], params, rng)


def _ar1_path(rng: np.random.Generator, n: int, length: int, phi: float, innov_sd: float) -> np.ndarray:
    """Stationary AR(1) paths (n, length) with innovation sd ``innov_sd``, float64."""
    e = rng.standard_normal((n, length)) * innov_sd
    e[:, 0] *= 1.0 / np.sqrt(1.0 - phi * phi)
    from scipy.signal import lfilter  # not at the top: 1 s to import, and `simulate` imports this module

    return lfilter([1.0], [1.0, -phi], e, axis=1)


def _two_state_path(rng: np.random.Generator, n: int, length: int, switch: float) -> np.ndarray:
    """Paths (n, length) of a symmetric two-state chain on {-1, +1}: a fair start, then each
    step flips with probability ``switch``."""
    flips = rng.random((n, length)) < switch
    flips[:, 0] = False
    start = np.where(rng.random((n, 1)) < 0.5, -1.0, 1.0)
    return start * (1.0 - 2.0 * (np.cumsum(flips, axis=1) % 2))


def _bursts(rng: np.random.Generator, n: int, length: int, params: BParams) -> np.ndarray:
    """Burst paths (n, length): burst_size * decay**(steps since the last burst), 0 before any.

    Arrivals are drawn from BURST_WARMUP steps before step 0, so step 0 sees the stationary mix.
    """
    steps = np.arange(-BURST_WARMUP, length)
    arrived = rng.random((n, steps.size)) < params.burst_rate
    last = np.maximum.accumulate(np.where(arrived, steps, np.iinfo(np.int64).min // 2), axis=1)[:, BURST_WARMUP:]
    age = np.arange(length) - last
    out = np.zeros((n, length))
    seen = age <= length + BURST_WARMUP
    out[seen] = params.burst_size * params.burst_decay ** age[seen]
    return out


def _forward_sums(ret: np.ndarray, params: BParams, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Kernel- and box-weighted sums of returns t+1.. for rows 0..steps-1: (S, steps) each."""
    kernel = params.t0_kernel
    fwd0 = np.zeros((ret.shape[0], steps))
    for k in range(1, params.t0_length + 1):
        fwd0 += kernel[k - 1] * ret[:, k : k + steps]
    csum = np.cumsum(ret, axis=1)
    h = params.t1_horizon
    fwd1 = csum[:, h : h + steps] - csum[:, :steps]
    return fwd0, fwd1


def simulate_chunk(seq_ix: np.ndarray, params: BParams, rng: np.random.Generator) -> Chunk:
    """One chunk: latent paths, features, targets and both oracles, for len(seq_ix) sequences."""
    s = int(seq_ix.shape[0])
    t = SEQUENCE_LENGTH
    total = t + params.horizon  # returns past the last row feed the last rows' targets

    # Volatility: a hidden per-sequence level, a persistent AR(1) and bursts (shot noise, started
    # far enough back that step 0 sees the stationary mix).
    level = params.vol_level_mean + params.vol_level_sd * rng.standard_normal((s, 1))
    base_log_vol = level + _ar1_path(rng, s, total, params.vol_ar, params.vol_ar_sd)
    burst = _bursts(rng, s, total, params)
    log_vol = base_log_vol + burst
    sigma = np.exp(log_vol)

    # Flow (unit stationary variance) and the drift regime d(z) in {-1, 0, 1}.
    flow = _ar1_path(rng, s, total, params.flow_ar, np.sqrt(1.0 - params.flow_ar**2))
    switches = rng.random((s, total)) < params.regime_switch
    switches[:, 0] = False
    steps = np.where(switches, rng.integers(1, 3, size=(s, total)), 0)
    regime = (rng.integers(0, 3, size=(s, 1)) + np.cumsum(steps, axis=1)) % 3
    d = regime.astype(np.float64) - 1.0
    response = _two_state_path(rng, s, total, params.response_switch)
    beta = params.flow_beta + params.flow_beta_spread * response

    sd0, sd1 = params.eps_sds
    jumps = rng.random((s, total)) < params.jump_prob
    eps = rng.standard_normal((s, total)) * np.where(jumps, sd1, sd0)
    flow_prev = np.zeros_like(flow)
    flow_prev[:, 1:] = flow[:, :-1]
    signal_scale = np.exp(params.signal_vol_power * log_vol)
    ret = signal_scale * (beta * flow_prev + params.drift * d) + sigma * eps
    trade_flow = params.flow_signal * d[:, :t] + rng.standard_normal((s, t))

    # Targets from the future returns (rows see returns t+1.., never their own).
    fwd0, fwd1 = _forward_sums(ret, params, t)
    targets = np.empty((s, t, 2), dtype=np.float32)
    norm0 = np.exp(-params.t0_vol_norm * log_vol[:, :t]) / params.t0_scale
    targets[:, :, 0] = fwd0 * norm0 + params.t0_mean
    norm1 = np.exp(-params.t1_vol_norm * log_vol[:, :t]) / params.t1_scale
    targets[:, :, 1] = fwd1 * norm1 + params.t1_mean

    signals = Signals(
        base_log_vol=base_log_vol[:, :t], burst=burst[:, :t], flow=flow[:, :t], ret=ret[:, :t], trade_flow=trade_flow
    )
    features = encode(signals, params, rng)
    observable = oracle_from_observations(features, params)
    # Given the true level, regime z_t and response s_t: the upper bound.
    known = VolLevel(mean=np.broadcast_to(level, (s, t)), var=np.zeros(t))
    states = HiddenStates(regime=d[:, :t], response=response[:, :t])
    hidden = expected_targets(base_log_vol[:, :t], burst[:, :t], known, flow[:, :t], states, params)
    return Chunk(
        seq_ix=np.asarray(seq_ix, dtype=np.int64),
        features=features,
        targets=targets,
        observable=observable,
        hidden=hidden,
    )
