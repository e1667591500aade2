"""The data's *form*: the calibration rows every market, default or scenario, must pass.

``shared/calibration.md`` mixes two kinds of statistics. Some describe what the data looks
like (marginals, A's clip, correlation spectrum, autocorrelations, kurtosis, target tails);
a market drawn from a scenario must keep them, or it stops looking like the competition's
data. Others describe how predictable it is (baseline and oracle scores, linear signal, the
train/valid shift); scenarios are *meant* to move those. This module names the first kind,
once, by the statistic labels the calibration tables already use, so the acceptance bands
live in one place (``calibrate`` / ``calibrate_b``) and are only selected here.
"""

from __future__ import annotations

import numpy as np

from harness.market.calrow import CalRow

FORM_STATISTICS: dict[str, tuple[str, ...]] = {
    "A": (
        "marginal mean, pooled",
        "marginal std, pooled",
        "skew, mean over features",
        "excess kurtosis, mean over features",
        "largest |value| (hard clip)",
        "variance explained, top 5 components",
        "lag-1 autocorrelation, pooled",
        "lag-1 autocorrelation, within sequence",
    ),
    "B": (
        "per-sequence level share, p0",
        "p0 autocorrelation, lag 1",
        "t0 excess kurtosis",
        "t1 excess kurtosis",
        "t0 autocorrelation, lag",
        "t1 autocorrelation, lag",
        "t0 weight share of the top 20%",
        "t1 weight share of the top 20%",
        "corr(t0, t1), train",
    ),
}
"""Competition key -> label prefixes of the checked calibration rows that describe the data's form."""


def is_form(key: str, statistic: str) -> bool:
    """Whether a calibration row labelled ``statistic`` describes competition ``key``'s form."""
    return statistic.startswith(FORM_STATISTICS[key])


def form_rows(key: str, rows: list[CalRow]) -> list[CalRow]:
    """The checked rows of a calibration table that describe the data's form."""
    return [r for r in rows if r.ok is not None and is_form(key, r.statistic)]


def failures(key: str, rows: list[CalRow]) -> list[str]:
    """One line per form row outside its band (empty when the form holds)."""
    return [f"{r.statistic}: {r.generated_text()} not in {r.accept}" for r in form_rows(key, rows) if not r.ok]


def floor_margin_holds(row: CalRow, margin: float) -> bool:
    """Whether a row with only a lower bound clears it by ``margin`` (a fraction of the bound):
    a pilot run that just clears a noisy floor (a kurtosis) would fail it on the next seed."""
    if row.lo is None or row.hi is not None:
        return bool(row.ok)
    return isinstance(row.generated, float) and row.generated >= row.lo + margin * abs(row.lo)


def pilot_rows(key: str, features: np.ndarray, targets: np.ndarray | None) -> list[CalRow]:
    """The form rows of arrays of a pilot run (no files): A from (S, T, F) features, B from
    features and (S, T, 2) targets. Used when drawing a scenario, to keep only forms that hold."""
    if key == "A":
        from harness.market.calibrate import data_rows_a

        return form_rows(key, data_rows_a(np.asarray(features, dtype=np.float64)))
    from pathlib import Path

    from harness.market.calibrate_b import BSet, feature_rows, target_rows

    pilot = BSet(Path("<pilot>"), np.asarray(features), np.asarray(targets, dtype=np.float64))
    return form_rows(key, feature_rows(pilot) + target_rows(pilot))
