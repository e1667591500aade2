"""The A market's process: its structure, its simulation and its exact filter.

Why this shape. The oracle must be exact, so the process is conditionally linear-Gaussian:

* 32 raw components ``y``, independent given what has been observed. Each is
  ``level + drift * tau_t + slow_t + input_t + white_t``: a per-sequence level and linear
  drift (hidden, Gaussian priors), a slow AR(1) (hidden), white noise, and an ``input`` that
  is a *deterministic function of past observations*: linear lead-lag links (a component
  reacts to another's last values) and a non-linear recurrence (leaky tanh units of
  different memories whose products feed back). Because the input is
  computable from the observations, a per-component Kalman filter over (level, drift, slow)
  is exact given the regime.
* A hidden per-sequence regime (one of a few volatility scales, known prior) multiplies
  everything; the non-linear recurrence reads the observations *divided by* that scale, so
  a model must infer the scale to use it (the real data rewarded per-sequence rescaling).
  The observable oracle is the posterior mixture over regimes of the per-regime Kalman
  predictions: exact, by Bayes over a finite set.
* Observations are a fixed invertible linear map of the scaled components, ``x = T (sigma y)``,
  with ``T = Q sqrt(Lambda) W``: ``W`` whitens the raw components (measured once on a pilot
  run of the base process), ``Q`` and ``Lambda`` give the real eigen-spectrum with unit
  feature variances. The map is known, so the filter inverts it exactly.

The marginal is a Gaussian scale mixture (plus the bounded non-linear term), already close
to N(0, 1) per feature; no monotone transform is applied (it would break the conditional
mean). Values are clipped at the real bound, which touches only extreme tails, and rounded
to float32; the process continues from the rounded, clipped values the model sees, so the
recurrence and lead-lag inputs are exact, and the filter treats the rounding error
(relative 1e-7) as part of the white noise.

Where each baseline's score comes from (see ``DESIGN``): levels, drifts and slow AR parts
give the univariate predictors theirs (mean so far, EMA); lead-lag links add what only a
multivariate linear model sees (VAR); fast products of single features add what trees on
lagged features can learn (gradient boosting); slow-times-fast products of oblique mixes,
the volatility regime and long-memory level estimates are the room recurrent models have.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from threadpoolctl import threadpool_limits

from harness.competitions import SEQUENCE_LENGTH

CLIP_BOUND = 5.199338
"""The real files' hard clip (what a normal-output quantile transform produces); calibration.md."""

EIGEN_HEAD = (11.6, 8.7, 4.7, 2.4, 1.9, 0.88, 0.60, 0.21)
"""The real cross-feature correlation spectrum's leading eigenvalues (calibration.md)."""

STRUCTURE_SEED = 20250917
"""Seeds the market's structure (loadings, couplings): fixed, so every split shares one market."""

PILOT_SEED = 7
PILOT_SEQUENCES = 160

ACTIVATIONS = {
    "tanh": np.tanh,
    "softsign": lambda z: z / (1.0 + np.abs(z)),
    "hardtanh": lambda z: np.clip(z, -1.0, 1.0),
    "sin": np.sin,
}
"""Kinds of the units' non-linearity. Each is bounded and a deterministic function of past
observations, so whichever a market uses, its input stays computable and the filter exact."""


@dataclass(frozen=True)
class ComponentShares:
    """Variance shares of one raw component (before whitening); the white share is the rest."""

    level: float
    drift: float
    slow: float
    slow_phi: float
    nonlinear: float


@dataclass(frozen=True)
class Link:
    """A linear lead-lag: component ``dst`` receives ``weight`` times a filter of ``src``'s past.

    The filter is a fixed kernel over the last ``KERNEL_LAGS`` observations with random signs
    and magnitudes decaying as ``decay ** lag`` (unit norm): ``decay`` 0 is a plain lag-1
    coupling, larger values spread it over more lags, which VAR(16) can use and VAR(1) only
    partly. Random signs keep the filtered input nearly free of autocorrelation, so the
    link adds cross-sectional predictability without making any feature more persistent.
    """

    dst: int
    src: int
    weight: float
    decay: float


KERNEL_LAGS = 12


@dataclass(frozen=True)
class Unit:
    """A tanh unit of the non-linear recurrence: h = memory * h + (1 - memory) * tanh(gain * p . y).

    A unit reads either one feature (``feature`` >= 0: p is that feature's loading row, so
    trees on lagged features can split on it) or a random mix of ``inputs`` components (an
    oblique direction that only a model learning projections finds).
    """

    memory: float
    gain: float
    inputs: tuple[int, ...] = ()
    feature: int = -1


@dataclass(frozen=True)
class ADesign:
    """Every tunable choice of the A market, in one place."""

    components: tuple[tuple[int, ComponentShares], ...]  # (eigen-rank, shares); others get ``rest``
    rest: ComponentShares
    links: tuple[Link, ...]
    units: tuple[Unit, ...]
    pairs: tuple[tuple[int, int], ...]  # products of units that feed back
    pair_weights: tuple[float, ...]  # relative loading of each product
    targets: tuple[tuple[int, tuple[int, ...]], ...]  # (component, products loading on it)
    log_sigmas: tuple[float, ...]
    regime_prob: tuple[float, ...]
    activation: str = "tanh"  # a key of ACTIVATIONS
    eigen_head: tuple[float, ...] = EIGEN_HEAD  # the target correlation spectrum's head (the factors)
    structure_seed: int = STRUCTURE_SEED  # seeds loadings, kernels and projections

    def shares(self, n: int) -> list[ComponentShares]:
        table = dict(self.components)
        return [table.get(j, self.rest) for j in range(n)]


@dataclass(frozen=True, eq=False)
class AProcess:
    """Everything the simulation and the filter need; built once per knob setting."""

    n: int  # number of features / components
    tau: np.ndarray  # (T + 1,) drift clock, mean ~0 over a sequence
    level_mean: np.ndarray  # (n,) prior mean of the level (the shift knob moves it)
    level_var: np.ndarray  # (n,)
    drift_var: np.ndarray  # (n,)
    slow_var: np.ndarray  # (n,) stationary variance of the slow AR(1)
    slow_phi: np.ndarray  # (n,)
    white_var: np.ndarray  # (n,)
    link_src: np.ndarray  # (L,) source component of each lead-lag link
    link_kernel: np.ndarray  # (L, KERNEL_LAGS) filter of each link, lag 0 = the latest observation
    link_mix: np.ndarray  # (n, L) weight of each link on its destination
    proj: np.ndarray  # (H, n) inputs of the tanh units
    gain: np.ndarray  # (H,)
    leak: np.ndarray  # (H,) memory of each unit
    pairs: np.ndarray  # (M, 2) unit indices whose products form the non-linear features
    psi_mean: np.ndarray  # (M,) centring of the non-linear features
    mix: np.ndarray  # (n, M) loadings of the non-linear features on the components
    sigmas: np.ndarray  # (K,) regime volatility scales
    regime_prob: np.ndarray  # (K,) regime prior
    to_x: np.ndarray  # (n, n) T: raw scaled components -> features
    from_x: np.ndarray  # (n, n) T^-1
    clip: float = CLIP_BOUND
    activation: str = "tanh"  # a key of ACTIVATIONS

    def psi(self, h: np.ndarray) -> np.ndarray:
        """Centred non-linear features of the tanh units (last axis H -> M)."""
        return h[..., self.pairs[:, 0]] * h[..., self.pairs[:, 1]] - self.psi_mean

    def advance(
        self, h: np.ndarray, c: np.ndarray, y: np.ndarray, projected: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Advance the tanh units h and the links' history c (..., L, lags) with observation y.

        ``projected`` may carry ``y @ proj.T`` when the caller has it more cheaply.
        """
        if projected is None:
            projected = y @ self.proj.T
        h = self.leak * h + (1.0 - self.leak) * ACTIVATIONS[self.activation](self.gain * projected)
        if c.shape[-1] > 1:
            c[..., 1:] = c[..., :-1]
        c[..., 0] = y[..., self.link_src]
        return h, c

    def history(self, *lead: int) -> np.ndarray:
        """An empty link history for a batch of shape ``lead``."""
        return np.zeros((*lead, self.link_src.size, self.link_kernel.shape[1]))

    def inputs(self, h: np.ndarray, c: np.ndarray) -> np.ndarray:
        """The known input of the next step: the lead-lag links plus the non-linear term."""
        if c.shape[-1] == 1:
            filtered = c[..., 0] * self.link_kernel[:, 0]
        else:
            filtered = np.einsum("...lk,lk->...l", c, self.link_kernel)
        return filtered @ self.link_mix.T + self.psi(h) @ self.mix.T


# ---------------------------------------------------------------------------------------------
# Structure
# ---------------------------------------------------------------------------------------------

_FAST, _MEDIUM, _SLOW = 0.0, 0.6, 0.95
_NOISY = (1, 3, 5, 6, 8, 9, 10, 11)

DESIGN = ADesign(
    components=(
        (0, ComponentShares(level=0.33, drift=0.02, slow=0.242, slow_phi=0.95, nonlinear=0.045)),
        (1, ComponentShares(level=0.033, drift=0.0, slow=0.022, slow_phi=0.90, nonlinear=0.246)),
        (2, ComponentShares(level=0.275, drift=0.02, slow=0.22, slow_phi=0.93, nonlinear=0.056)),
        (3, ComponentShares(level=0.044, drift=0.0, slow=0.022, slow_phi=0.90, nonlinear=0.336)),
        (4, ComponentShares(level=0.088, drift=0.01, slow=0.088, slow_phi=0.95, nonlinear=0.168)),
    ),
    rest=ComponentShares(level=0.088, drift=0.0, slow=0.033, slow_phi=0.90, nonlinear=0.0),
    # Lag-1 lead-lags from noisy small components into the big ones: what VAR(1) sees and
    # no univariate predictor can.
    links=tuple(Link(dst, src, 0.33, 0.0) for dst, src in ((0, 5), (1, 6), (2, 7), (3, 8), (4, 9))),
    # Fast units on single features (trees on lagged features can split on them), medium and
    # slow units on oblique mixes of noisy components (only a learned projection finds them).
    units=(
        Unit(_FAST, 1.5, feature=3),
        Unit(_FAST, 1.5, feature=11),
        Unit(_FAST, 1.5, feature=17),
        Unit(_FAST, 1.5, feature=25),
        Unit(_MEDIUM, 2.0, _NOISY),
        Unit(_MEDIUM, 2.0, _NOISY),
        Unit(_SLOW, 2.0, _NOISY),
        Unit(_SLOW, 2.0, _NOISY),
        Unit(_FAST, 2.0, _NOISY),
    ),
    # fast x fast (what gradient boosting on lags can partly learn), then medium x fast and
    # slow x fast (a slowly varying state modulating a fast signal: temporal and non-linear,
    # nearly invisible to linear models, the room recurrent models have above the rest).
    pairs=((0, 1), (2, 3), (0, 0), (2, 2), (4, 8), (5, 8), (6, 8), (7, 0)),
    pair_weights=(1.0, 1.0, 0.5, 0.5, 1.5, 1.5, 1.5, 1.5),
    targets=tuple((j, tuple(range(8))) for j in range(5)),
    log_sigmas=(-0.25, 0.0, 0.25),
    regime_prob=(0.3, 0.4, 0.3),
)
"""The calibrated design (see ``reports/calibration_A.md`` for what it produces)."""


def eigenvalues(n: int, eigen_head: tuple[float, ...] = EIGEN_HEAD) -> np.ndarray:
    """The leading spectrum (the real one by default), with the remainder spread geometrically so the sum is n."""
    head = np.array(eigen_head[:n], dtype=np.float64)
    k = n - head.size
    if k <= 0:
        return head * n / head.sum()
    remainder = n - head.sum()
    tail = 0.7 ** np.arange(k)
    return np.concatenate([head, tail * remainder / tail.sum()])


def _loadings(n: int, rng: np.random.Generator, eigen_head: tuple[float, ...] = EIGEN_HEAD) -> tuple[np.ndarray, np.ndarray]:
    """(Q, lambda): eigenvectors and eigenvalues of a random unit-diagonal correlation matrix."""
    lam = eigenvalues(n, eigen_head)
    from scipy.stats import random_correlation  # not at the top: 1 s to import, and `simulate` imports this module

    corr = random_correlation.rvs(lam, random_state=rng)
    vals, vecs = np.linalg.eigh(corr)
    order = np.argsort(vals)[::-1]
    return vecs[:, order], vals[order]


@lru_cache(maxsize=8)
def build_process(
    n: int, shift: float = 0.0, noise: float = 1.0, vol_spread: float = 1.0, design: ADesign = DESIGN
) -> AProcess:
    """The process for n features; knobs move it away from the calibrated base.

    ``shift`` moves the level prior's mean along a fixed direction (in level standard
    deviations) and raises volatility by ``1 + 0.25 * shift``; ``noise`` multiplies the white
    noise variance; ``vol_spread`` scales the log-spread of the regime volatilities. The
    oracle knows the knobs, so it stays exact under every setting.
    """
    for name, value in (("noise", noise), ("vol_spread", vol_spread)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"knob {name} must be a non-negative number, got {value}")
    if not np.isfinite(shift):
        raise ValueError(f"knob shift must be finite, got {shift}")
    base = _base_process(n, design)
    rng = np.random.default_rng([design.structure_seed, 99])
    direction = rng.standard_normal(n)
    direction /= np.linalg.norm(direction)
    prob = base.regime_prob
    sig = np.exp(np.log(base.sigmas) * vol_spread)
    sig = sig / np.sqrt(np.sum(prob * sig**2))  # keep E[sigma^2] = 1 before the shift
    return replace(
        base,
        level_mean=shift * direction * np.sqrt(base.level_var * n),
        white_var=base.white_var * noise,
        sigmas=sig * (1.0 + 0.25 * shift),
    )


def _structure(n: int, design: ADesign) -> tuple[AProcess, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The un-normalized process, the non-linear loading directions and shares, and (Q, lambda)."""
    if design.activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {design.activation!r}; known: {', '.join(ACTIVATIONS)}")
    rng = np.random.default_rng(design.structure_seed)
    shares = design.shares(n)
    q, lam = _loadings(n, rng, design.eigen_head)
    steps = np.arange(SEQUENCE_LENGTH + 1, dtype=np.float64)
    tau = (steps - (SEQUENCE_LENGTH - 1) / 2.0) / (SEQUENCE_LENGTH / 2.0)
    tau_var = float(np.mean(tau[:SEQUENCE_LENGTH] ** 2))

    level = np.array([s.level for s in shares])
    drift = np.array([s.drift for s in shares]) / tau_var
    slow = np.array([s.slow for s in shares])
    phi = np.array([s.slow_phi for s in shares])
    nonlin = np.array([s.nonlinear for s in shares])
    white = 1.0 - level - drift * tau_var - slow - nonlin
    if np.any(white <= 0.05):
        raise ValueError("component shares leave too little white noise")

    links = [lk for lk in design.links if max(lk.dst, lk.src) < n]
    link_mix = np.zeros((n, len(links)))
    kernels = np.zeros((len(links), KERNEL_LAGS))
    for i, lk in enumerate(links):
        link_mix[lk.dst, i] = lk.weight
        signs = np.where(rng.random(KERNEL_LAGS) < 0.5, -1.0, 1.0)
        signs[0] = 1.0
        kern = signs * (0.5 + rng.random(KERNEL_LAGS)) * lk.decay ** np.arange(KERNEL_LAGS)
        kernels[i] = kern / np.linalg.norm(kern)
    used = np.flatnonzero(np.any(kernels != 0, axis=0))
    kernels = kernels[:, : (used[-1] + 1 if used.size else 1)]  # keep only the lags in use

    h_units = len(design.units)
    proj = np.zeros((h_units, n))
    loading = q * np.sqrt(lam)  # feature i = loading[i] . y before whitening
    for i, unit in enumerate(design.units):
        if 0 <= unit.feature < n:
            proj[i] = loading[unit.feature] / np.linalg.norm(loading[unit.feature])
            continue
        cols = [j for j in unit.inputs if j < n]
        if not cols:
            raise ValueError(f"unit {i} reads nothing: give a feature or input components")
        w = rng.standard_normal(len(cols))
        proj[i, cols] = w / np.linalg.norm(w)
    pairs = np.array(design.pairs, dtype=np.int64).reshape(-1, 2)
    m = pairs.shape[0]
    mix_dir = np.zeros((n, m))
    for j, products in design.targets:
        if j < n:
            weights = np.array([design.pair_weights[k] for k in products])
            mix_dir[j, list(products)] = rng.standard_normal(len(products)) * weights

    prob = np.array(design.regime_prob, dtype=np.float64)
    sigmas = np.exp(np.array(design.log_sigmas, dtype=np.float64))
    sigmas = sigmas / np.sqrt(np.sum(prob * sigmas**2))
    proc = AProcess(
        n=n, tau=tau, level_mean=np.zeros(n), level_var=level, drift_var=drift, slow_var=slow,
        slow_phi=phi, white_var=white,
        link_src=np.array([lk.src for lk in links], dtype=np.int64),
        link_kernel=kernels,
        link_mix=link_mix, proj=proj,
        gain=np.array([u.gain for u in design.units]), leak=np.array([u.memory for u in design.units]),
        pairs=pairs, psi_mean=np.zeros(m), mix=np.zeros((n, m)), sigmas=sigmas, regime_prob=prob,
        to_x=np.eye(n), from_x=np.eye(n), clip=np.inf, activation=design.activation,
    )
    return proc, mix_dir, nonlin, q, lam


@lru_cache(maxsize=4)
def _base_process(n: int, design: ADesign = DESIGN) -> AProcess:
    """The calibrated process: structure from STRUCTURE_SEED, then two pilot runs to normalize.

    Pilot 1 measures the non-linear products' moments (to centre them and give each
    component its non-linear variance share); pilot 2 measures the raw components'
    covariance, whitened so the features get exactly the target correlation spectrum.
    """
    with threadpool_limits(limits=1):  # same BLAS path everywhere: the pilots set the market
        return _normalize(n, design)


def _normalize(n: int, design: ADesign) -> AProcess:
    proc, mix_dir, nonlin, q, lam = _structure(n, design)
    m = proc.pairs.shape[0]
    _, _, raw = simulate(proc, np.random.default_rng(PILOT_SEED), PILOT_SEQUENCES, keep_raw=True)
    psi = raw["psi"].reshape(-1, m)
    psi_mean = psi.mean(axis=0)
    psi_cov = np.atleast_2d(np.cov(psi, rowvar=False))
    var = np.einsum("im,mk,ik->i", mix_dir, psi_cov, mix_dir)
    scale = np.where(var > 0, np.sqrt(nonlin / np.where(var > 0, var, 1.0)), 0.0)
    mix = mix_dir * scale[:, None]
    proc = replace(proc, psi_mean=psi_mean, mix=mix)
    _, _, raw = simulate(proc, np.random.default_rng(PILOT_SEED + 1), PILOT_SEQUENCES, keep_raw=True)
    cov = np.cov(raw["y"].reshape(-1, n), rowvar=False)
    evals, evecs = np.linalg.eigh(cov)
    whiten = evecs @ np.diag(evals**-0.5) @ evecs.T
    to_x = q @ np.diag(np.sqrt(lam)) @ whiten
    return replace(proc, to_x=to_x, from_x=np.linalg.inv(to_x), clip=CLIP_BOUND)


# ---------------------------------------------------------------------------------------------
# Simulation (true regime, hidden oracle)
# ---------------------------------------------------------------------------------------------


def simulate(
    proc: AProcess, rng: np.random.Generator, n_seq: int, keep_raw: bool = False
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Simulate n_seq sequences: (features float32 (S, T, n), hidden oracle float64 (S, T, n), raw).

    The loop runs over time steps with whole-chunk array operations; the hidden oracle at row
    t is E[x_{t+1} | regime, level, drift, slow_t, observations up to t].
    """
    n, t_len = proc.n, SEQUENCE_LENGTH
    regime = rng.choice(proc.sigmas.size, size=n_seq, p=proc.regime_prob)
    sigma = proc.sigmas[regime][:, None]
    level = proc.level_mean + np.sqrt(proc.level_var) * rng.standard_normal((n_seq, n))
    drift = np.sqrt(proc.drift_var) * rng.standard_normal((n_seq, n))
    slow = np.sqrt(proc.slow_var) * rng.standard_normal((n_seq, n))
    slow_sd = np.sqrt(proc.slow_var * (1.0 - proc.slow_phi**2))
    white_sd = np.sqrt(proc.white_var)
    h = np.zeros((n_seq, proc.leak.size))
    c = proc.history(n_seq)
    u = proc.inputs(h, c)
    features = np.empty((n_seq, t_len, n), dtype=np.float32)
    hidden = np.empty((n_seq, t_len, n), dtype=np.float64)
    raw: dict[str, np.ndarray] = {}
    if keep_raw:
        raw["y"] = np.empty((n_seq, t_len, n))
        raw["psi"] = np.empty((n_seq, t_len, proc.pairs.shape[0]))
    to_x_t = proc.to_x.T
    from_x_t = proc.from_x.T
    for t in range(t_len):
        y = level + drift * proc.tau[t] + slow + u + white_sd * rng.standard_normal((n_seq, n))
        x = np.clip((sigma * y) @ to_x_t, -proc.clip, proc.clip).astype(np.float32)
        features[:, t] = x
        y_seen = (x.astype(np.float64) @ from_x_t) / sigma
        h, c = proc.advance(h, c, y_seen)
        u = proc.inputs(h, c)
        if keep_raw:
            raw["y"][:, t] = y
            raw["psi"][:, t] = proc.psi(h)
        mean_next = level + drift * proc.tau[t + 1] + proc.slow_phi * slow + u
        hidden[:, t] = (sigma * mean_next) @ to_x_t
        slow = proc.slow_phi * slow + slow_sd * rng.standard_normal((n_seq, n))
    raw["regime"] = regime
    return features, hidden, raw


# ---------------------------------------------------------------------------------------------
# Exact filter (observable oracle)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class KalmanSchedule:
    """Gains and innovation variances of the per-component filter over (level, drift, slow).

    In standardized units these do not depend on the data, the sequence or the regime, so
    they are computed once per process.
    """

    k_level: np.ndarray  # (T, n)
    k_drift: np.ndarray  # (T, n)
    k_slow: np.ndarray  # (T, n)
    innov_var: np.ndarray  # (T, n)


@lru_cache(maxsize=8)
def kalman_schedule(proc: AProcess) -> KalmanSchedule:
    n, t_len = proc.n, SEQUENCE_LENGTH
    cov = np.zeros((n, 3, 3))
    cov[:, 0, 0] = proc.level_var
    cov[:, 1, 1] = proc.drift_var
    cov[:, 2, 2] = proc.slow_var
    phi = proc.slow_phi
    q = proc.slow_var * (1.0 - phi**2)
    gains = np.empty((t_len, n, 3))
    innov = np.empty((t_len, n))
    for t in range(t_len):
        hvec = np.array([1.0, proc.tau[t], 1.0])
        ph = cov @ hvec  # (n, 3)
        f = ph @ hvec + proc.white_var
        k = ph / f[:, None]
        gains[t] = k
        innov[t] = f
        cov = cov - k[:, :, None] * ph[:, None, :]
        cov[:, 2, :] *= phi[:, None]
        cov[:, :, 2] *= phi[:, None]
        cov[:, 2, 2] += q
    return KalmanSchedule(gains[:, :, 0].copy(), gains[:, :, 1].copy(), gains[:, :, 2].copy(), innov)


def observable_oracle(proc: AProcess, features: np.ndarray) -> np.ndarray:
    """E[x_{t+1} | x_0..x_t] for every row: the regime-mixture of exact per-regime filters.

    Reads only rows 0..t to produce row t (one forward pass), so it never looks ahead.
    """
    feats = np.asarray(features)
    if feats.ndim != 3 or feats.shape[1:] != (SEQUENCE_LENGTH, proc.n):
        raise ValueError(f"features must be (sequences, {SEQUENCE_LENGTH}, {proc.n}), got {feats.shape}")
    sched = kalman_schedule(proc)
    n_seq, n = feats.shape[0], proc.n
    n_reg = proc.sigmas.size
    inv_sig = (1.0 / proc.sigmas)[None, :, None]  # (1, K, 1)
    log_sig = n * np.log(proc.sigmas)[None, :]
    gains = np.stack([sched.k_level, sched.k_drift, sched.k_slow], axis=1)  # (T, 3, n)
    state = np.zeros((n_seq, n_reg, 3, n))  # filtered (level, drift, slow) per regime
    state[:, :, 0] = proc.level_mean
    ll = np.broadcast_to(np.log(proc.regime_prob), (n_seq, n_reg)).copy()
    h = np.zeros((n_seq, n_reg, proc.leak.size))
    c = proc.history(n_seq, n_reg)
    pred = state[:, :, 0] + proc.tau[0] * state[:, :, 1] + state[:, :, 2] + proc.inputs(h, c)
    inv_innov = 1.0 / sched.innov_var
    out = np.empty((n_seq, SEQUENCE_LENGTH, n), dtype=np.float64)
    to_x_t = proc.to_x.T
    v_all = feats.astype(np.float64) @ proc.from_x.T  # (S, T, n): sigma * y
    pv_all = v_all @ proc.proj.T  # (S, T, H): the units' inputs, before dividing by sigma
    for t in range(SEQUENCE_LENGTH):
        y = v_all[:, t][:, None, :] * inv_sig  # (S, K, n)
        e = y - pred  # innovation against the prediction made at t - 1
        ll -= 0.5 * ((e * e) @ inv_innov[t]) + log_sig
        state += gains[t] * e[:, :, None, :]
        state[:, :, 2] *= proc.slow_phi
        h, c = proc.advance(h, c, y, pv_all[:, t][:, None, :] * inv_sig)
        pred = state[:, :, 0] + proc.tau[t + 1] * state[:, :, 1] + state[:, :, 2] + proc.inputs(h, c)
        w = np.exp(ll - ll.max(axis=1, keepdims=True))
        w *= proc.sigmas / w.sum(axis=1, keepdims=True)
        out[:, t] = np.einsum("sk,skn->sn", w, pred) @ to_x_t
    return out
