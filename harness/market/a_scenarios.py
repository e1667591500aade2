"""A's scenario draw: an integer -> a whole market structure (an ``ADesign``).

What varies (each a choice the default market made once): the number of factors and the
correlation spectrum they give, which components carry per-sequence levels, slow parts and
non-linear terms and how much, the lead-lag graph (which component leads which, with what
kernel), the non-linearity's kind (``ACTIVATIONS``), gains, memories and which unit products
feed back, the number and spread of the hidden volatility regimes, and the loadings' seed.
What does not: the process family (conditionally linear-Gaussian given the regime), so the
observable oracle stays exact for every draw.

Shares are first drawn freely, then the level and slow shares are rescaled so that the
variance-weighted level share and lag-1 persistence land on drawn targets inside the real
ranges; a short pilot run then checks the form rows (``form.pilot_rows``), the slow and level
shares are corrected from what the pilot measured, and the next sub-draw is taken until the
rows hold, so every scenario keeps the data's form by construction.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
from threadpoolctl import threadpool_limits

from harness.market.a_process import ACTIVATIONS, ADesign, ComponentShares, Link, Unit, build_process, simulate

SCENARIO_SALT = 0x5CE4A
PILOT_SEQUENCES = 64
MAX_TRIES = 8
CORRECTIONS = 2
WITHIN_TARGET, POOLED_TARGET = 0.15, 0.30
"""Where a correction aims: the middle of the real lag-1 ranges (within a sequence, pooled)."""
WITHIN_MARGIN, POOLED_MARGIN = 0.03, 0.03
"""A pilot must land this close to those middles (inside the bands, so a set drawn with
another seed stays inside them too)."""
N_FEATURES = 32


def _spectrum(rng: np.random.Generator, n_factors: int) -> tuple[float, ...]:
    """A correlation spectrum of ``N_FEATURES`` eigenvalues: ``n_factors`` geometric big ones and a
    floored geometric tail, with the top five explaining a drawn share inside the real range."""
    ratio = rng.uniform(0.45, 0.8)
    target = rng.uniform(0.88, 0.925) * N_FEATURES
    tail = np.maximum(0.75 ** np.arange(N_FEATURES - n_factors), 0.01)  # a floor keeps the matrix well conditioned
    tail /= tail.sum()
    most = N_FEATURES - 1.5  # the tail keeps some mass: no near-singular correlation matrix

    def spectrum(mass: float, r: float) -> np.ndarray:
        factors = r ** np.arange(n_factors)
        return np.sort(np.concatenate([mass * factors / factors.sum(), (N_FEATURES - mass) * tail]))[::-1]

    while spectrum(most, ratio)[:5].sum() < target:  # too flat to reach the target: steepen
        ratio *= 0.9
    lo, hi = 0.0, most
    for _ in range(60):  # the top five grow with the factors' mass: bisection
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if spectrum(mid, ratio)[:5].sum() < target else (lo, mid)
    return tuple(float(v) for v in spectrum(lo, ratio))


def _shares(rng: np.random.Generator, n_factors: int, lam: np.ndarray) -> tuple[tuple[tuple[int, ComponentShares], ...], ComponentShares]:
    """Per-component shares, rescaled so the weighted level share and persistence hit drawn targets."""
    nonlinear = rng.permutation(n_factors)[: rng.integers(2, n_factors + 1)]
    level = rng.uniform(0.02, 0.35, n_factors)
    drift = rng.choice([0.0, 0.01, 0.02], n_factors)
    slow = rng.uniform(0.02, 0.25, n_factors)
    phi = rng.uniform(0.88, 0.96, n_factors)
    nonlin = np.where(np.isin(np.arange(n_factors), nonlinear), rng.uniform(0.1, 0.33, n_factors), 0.0)
    rest_level, rest_slow = rng.uniform(0.05, 0.12), rng.uniform(0.01, 0.05)
    w = lam / lam.sum()
    wf, wr = w[:n_factors], w[n_factors:].sum()
    # Targets inside the real ranges (level share ~0.17-0.20, within-sequence lag 1 ~0.14).
    level_target = rng.uniform(0.15, 0.21)
    persist_target = rng.uniform(0.115, 0.16)
    lv = float(wf @ level + wr * rest_level)
    level, rest_level = level * level_target / lv, rest_level * level_target / lv
    pv = float(wf @ (slow * phi + drift + 0.3 * nonlin) + wr * rest_slow * 0.9) / (1.0 - level_target)
    scale = max(0.2, 1.0 + (persist_target - pv) / max(float(wf @ (slow * phi) + wr * rest_slow * 0.9), 1e-6) * (1.0 - level_target))
    slow, rest_slow = slow * scale, rest_slow * scale
    total = level + drift + slow + nonlin
    squeeze = np.where(total > 0.85, 0.85 / total, 1.0)  # keep at least 15% white noise
    comps = tuple(
        (j, ComponentShares(level=float(level[j] * squeeze[j]), drift=float(drift[j] * squeeze[j]),
                            slow=float(slow[j] * squeeze[j]), slow_phi=float(phi[j]),
                            nonlinear=float(nonlin[j] * squeeze[j])))
        for j in range(n_factors)
    )
    rest = ComponentShares(level=float(min(rest_level, 0.4)), drift=0.0, slow=float(min(rest_slow, 0.3)),
                           slow_phi=0.9, nonlinear=0.0)
    return comps, rest


def _draw(rng: np.random.Generator) -> ADesign:
    n_factors = int(rng.integers(3, 8))
    head = _spectrum(rng, n_factors)
    comps, rest = _shares(rng, n_factors, np.asarray(head))
    noisy = tuple(int(j) for j in np.sort(rng.choice(np.arange(n_factors, N_FEATURES), 8, replace=False)))
    n_links = int(rng.integers(2, 9))
    links = tuple(
        Link(int(rng.integers(0, n_factors)), int(rng.choice(noisy)), float(rng.uniform(0.15, 0.45)),
             float(rng.choice([0.0, 0.3, 0.6])))
        for _ in range(n_links)
    )
    n_fast = int(rng.integers(1, 5))
    n_oblique = int(rng.integers(2, 6))
    units = tuple(Unit(0.0, float(rng.uniform(1.0, 2.5)), feature=int(rng.integers(0, N_FEATURES))) for _ in range(n_fast))
    units += tuple(Unit(float(rng.choice([0.0, rng.uniform(0.4, 0.97)])), float(rng.uniform(1.0, 2.5)), noisy)
                   for _ in range(n_oblique))
    h = len(units)
    n_pairs = int(rng.integers(3, 10))
    pairs = tuple((int(a), int(b)) for a, b in rng.integers(0, h, size=(n_pairs, 2)))
    weights = tuple(float(v) for v in rng.uniform(0.5, 1.5, n_pairs))
    targets = tuple((j, tuple(range(n_pairs))) for j, s in comps if s.nonlinear > 0)
    n_regimes = int(rng.integers(1, 5))
    spread = float(rng.uniform(0.1, 0.3))
    log_sigmas = tuple(float(v) for v in np.linspace(-spread, spread, n_regimes)) if n_regimes > 1 else (0.0,)
    prob = tuple(float(v) for v in rng.dirichlet(np.full(n_regimes, 3.0)))
    return ADesign(
        components=comps, rest=rest, links=links, units=units, pairs=pairs, pair_weights=weights, targets=targets,
        log_sigmas=log_sigmas, regime_prob=prob, activation=str(rng.choice(sorted(ACTIVATIONS))),
        eigen_head=head, structure_seed=int(rng.integers(0, 2**31)),
    )


def _pilot(design: ADesign) -> tuple[bool, float, float]:
    """(form holds, pooled lag-1, within-sequence lag-1) of a short pilot run of ``design``."""
    from harness.market.calibrate import lag1_pooled, lag1_within
    from harness.market.form import pilot_rows

    proc = build_process(N_FEATURES, design=design)
    with threadpool_limits(limits=1):
        features, _, _ = simulate(proc, np.random.default_rng([SCENARIO_SALT, 1]), PILOT_SEQUENCES)
    x = features.astype(np.float64)
    return all(row.ok for row in pilot_rows("A", x, None)), lag1_pooled(x), lag1_within(x)


def _rescaled(design: ADesign, slow: float, level: float) -> ADesign:
    """``design`` with every slow share times ``slow`` and level share times ``level`` (white noise
    takes up the difference, never below 15%)."""

    def one(c: ComponentShares) -> ComponentShares:
        lv, sl = c.level * level, c.slow * slow
        room = 0.85 - c.drift - c.nonlinear
        squeeze = min(1.0, room / (lv + sl)) if lv + sl > 0 else 1.0
        return replace(c, level=lv * squeeze, slow=sl * squeeze)

    return replace(design, components=tuple((j, one(c)) for j, c in design.components), rest=one(design.rest))


@lru_cache(maxsize=16)
def draw_design(scenario: int) -> ADesign:
    """The A market structure of scenario ``scenario`` (a non-negative integer). Deterministic;
    cached per process.

    Each sub-draw is run briefly; its slow and level shares are rescaled (at most
    ``CORRECTIONS`` times) toward the middle of the real lag-1 ranges, and the first design whose
    pilot keeps every form row is the scenario's.
    """
    if scenario < 0:
        raise ValueError(f"a scenario is a non-negative integer, got {scenario}")
    for attempt in range(MAX_TRIES):
        design = _draw(np.random.default_rng([SCENARIO_SALT, int(scenario), attempt]))
        for _ in range(CORRECTIONS + 1):
            try:
                ok, pooled, within = _pilot(design)
            except ValueError:  # e.g. too little white noise left: not a usable market
                break
            if ok and abs(within - WITHIN_TARGET) <= WITHIN_MARGIN and abs(pooled - POOLED_TARGET) <= POOLED_MARGIN:
                return design
            slow = float(np.clip(WITHIN_TARGET / max(within, 1e-3), 0.5, 3.0))
            level = float(np.clip((POOLED_TARGET - WITHIN_TARGET) / max(pooled - within, 1e-3), 0.5, 2.0))
            design = _rescaled(design, slow, level)
    raise RuntimeError(f"A scenario {scenario}: no draw kept the data's form in {MAX_TRIES} tries")
