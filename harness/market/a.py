"""The A ("next-state") generator: chunks of sequences with their exact oracles.

The process itself (structure, simulation, filter) lives in ``a_process``; this module turns
it into the ``Generator`` protocol: seeding per chunk, shuffled ids, knobs.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from threadpoolctl import threadpool_limits

from harness.competitions import A, Competition
from harness.market.a_process import DESIGN, ADesign, AProcess, build_process, observable_oracle, simulate
from harness.market.base import Chunk, check_split, chunk_bounds, default_workers, ordered_map, shuffled_ids, split_seed

DEFAULT_CHUNK = 128
"""Sequences per chunk (and per row group): ~150 MB of working memory, few enough numpy calls per row."""


def _make_chunk(
    n_features: int, knobs: tuple[float, float, float], design: ADesign, seed: int, split: str, index: int, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, hidden oracle, observable oracle) of chunk ``index``: a pure function of its arguments."""
    proc = build_process(n_features, *knobs, design=design)
    rng = np.random.default_rng(split_seed(seed, split, 1, index))
    # The per-step products are tiny: BLAS threads only add overhead (and contention).
    with threadpool_limits(limits=1):
        features, hidden, _ = simulate(proc, rng, size)
        observable = observable_oracle(proc, features)
    return features, hidden, observable


class AGenerator:
    """Synthetic A market. Deterministic for (seed, split, knobs, chunk_size), whatever ``workers``.

    Knobs: ``shift`` (level-prior offset in level standard deviations and a volatility rise,
    the train/valid shift stress), ``noise`` (white-noise variance multiplier), ``vol_spread``
    (spread of the hidden volatility regimes), ``chunk_size``. ``workers`` (processes that
    compute chunks in parallel) changes speed only. ``design`` is the market's structure (the
    calibrated ``DESIGN`` by default; ``harness.market.scenarios`` draws others) and
    ``scenario`` the name stamped into the files it writes (None for the default market).
    """

    competition: Competition = A
    version: str = "3"
    """Bump whenever the process or the writer changes what a seed produces."""

    def __init__(self, workers: int | None = None, design: ADesign = DESIGN, scenario: int | None = None) -> None:
        self.workers = default_workers() if workers is None else max(1, int(workers))
        self.design = design
        self.scenario = scenario

    def process(self, shift: float = 0.0, noise: float = 1.0, vol_spread: float = 1.0) -> AProcess:
        """The process for these knobs (cached): the same market for every split and seed."""
        return build_process(self.competition.n_features, float(shift), float(noise), float(vol_spread), self.design)

    def chunks(
        self,
        n_sequences: int,
        seed: int,
        split: str,
        shift: float = 0.0,
        noise: float = 1.0,
        vol_spread: float = 1.0,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> Iterator[Chunk]:
        """Yield the set in chunks; each chunk draws from its own seeded stream."""
        check_split(split)
        knobs = (float(shift), float(noise), float(vol_spread))
        self.process(*knobs)  # build (and validate) once here; forked workers inherit the cache
        ids = shuffled_ids(n_sequences, seed, split)
        bounds = chunk_bounds(n_sequences, int(chunk_size))
        n = self.competition.n_features
        tasks = [(n, knobs, self.design, seed, split, i, b - a) for i, (a, b) in enumerate(bounds)]
        for (start, stop), (features, hidden, observable) in zip(bounds, ordered_map(_make_chunk, tasks, self.workers)):
            yield Chunk(seq_ix=ids[start:stop], features=features, targets=None, observable=observable, hidden=hidden)

    def oracle(self, features: np.ndarray, shift: float = 0.0, noise: float = 1.0, vol_spread: float = 1.0) -> np.ndarray:
        """The observable oracle for given (S, T, F) features: for tests and for re-scoring edits."""
        return observable_oracle(self.process(shift, noise, vol_spread), features)
