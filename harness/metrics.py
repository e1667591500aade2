"""The two competition metrics, exactly as the organizers compute them, plus mergeable forms.

The direct functions (``r2_per_column``, ``weighted_pearson``) are the reference: they follow
scikit-learn's ``r2_score`` and the contract's weighted Pearson step for step. The mergeable
forms keep a few sums per sequence so that shards of a file (or bootstrap resamples of its
sequences) combine to the same score without keeping every row; they are tested equal to the
direct functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.competitions import Competition

PEARSON_CLIP = 6.0
PEARSON_MIN_WEIGHT = 1e-8
CONSTANT_RELATIVE_STD = 1e-9
"""A prediction whose weighted std is at most this fraction of its weighted mean is constant: its
variance is then rounding (the mean of n copies of c is c only to about n ulps), the correlation
noise of either sign, and both forms below score it 0 as the contract scores a zero variance."""


# ---------------------------------------------------------------------------------------------
# Direct (reference) forms
# ---------------------------------------------------------------------------------------------


def _r2_from_parts(ss_res: np.ndarray, ss_tot: np.ndarray) -> np.ndarray:
    """scikit-learn's ``force_finite`` rule: a constant target scores 1 if predicted exactly, else 0."""
    ss_res = np.asarray(ss_res, dtype=np.float64)
    ss_tot = np.asarray(ss_tot, dtype=np.float64)
    out = np.ones_like(ss_tot)
    nonzero_tot = ss_tot != 0
    out[nonzero_tot] = 1.0 - ss_res[nonzero_tot] / ss_tot[nonzero_tot]
    out[~nonzero_tot & (ss_res != 0)] = 0.0
    return out


def r2_per_column(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """R² of each column over all rows pooled, as ``sklearn.metrics.r2_score(multioutput='raw_values')``."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim == 1:
        y_true = y_true[:, None]
        y_pred = y_pred.reshape(-1, 1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has {y_pred.shape}")
    if y_true.shape[0] < 2:
        raise ValueError("R² needs at least two scored rows")
    ss_res = ((y_true - y_pred) ** 2).sum(axis=0)
    ss_tot = ((y_true - np.average(y_true, axis=0)) ** 2).sum(axis=0)
    return _r2_from_parts(ss_res, ss_tot)


def weighted_pearson(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Weighted Pearson correlation of one target, per the B contract.

    Predictions are clipped to [-6, 6] (targets are not); weights are max(|y_true|, 1e-8);
    a zero weight sum or a non-positive variance scores 0.0.
    """
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.clip(np.asarray(y_pred, dtype=np.float64).ravel(), -PEARSON_CLIP, PEARSON_CLIP)
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} values but y_pred has {p.size}")
    # Each product below is formed elementwise in the formula's order into one scratch array, so
    # the sums are bit for bit those of the plain expressions while a B train set's worth of
    # rows needs five arrays of memory, not nine.
    w = np.maximum(np.abs(y), PEARSON_MIN_WEIGHT)
    sw = w.sum()
    if sw == 0:
        return 0.0
    t = np.multiply(w, y)
    my = t.sum() / sw
    mp = np.multiply(w, p, out=t).sum() / sw
    dy = y - my
    dp = np.subtract(p, mp, out=p)
    np.multiply(w, dy, out=t)
    cov = np.multiply(t, dp, out=t).sum() / sw
    np.multiply(w, dy, out=t)
    var_y = np.multiply(t, dy, out=t).sum() / sw
    np.multiply(w, dp, out=t)
    var_p = np.multiply(t, dp, out=t).sum() / sw
    if var_y <= 0 or _is_constant(np.float64(var_p), np.float64(mp)):
        return 0.0
    return float(cov / (np.sqrt(var_y) * np.sqrt(var_p)))


def _is_constant(var_p: np.ndarray, mean_p: np.ndarray) -> np.ndarray:
    """A variance that is zero or within rounding of it (``CONSTANT_RELATIVE_STD``)."""
    return var_p <= (CONSTANT_RELATIVE_STD * mean_p) ** 2


def score(competition: Competition, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Score pooled rows with the organizers' keys: per-output scores plus the headline metric."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    names = competition.prediction_names
    if y_true.ndim != 2 or y_true.shape[1] != len(names) or y_pred.shape != y_true.shape:
        raise ValueError(
            f"{competition.key} expects (rows, {len(names)}) arrays; got {y_true.shape} and {y_pred.shape}"
        )
    if competition.metric == "mean_r2":
        per = r2_per_column(y_true, y_pred)
    elif competition.metric == "weighted_pearson":
        per = np.array([weighted_pearson(y_true[:, k], y_pred[:, k]) for k in range(len(names))])
    else:  # pragma: no cover - guarded by competitions.py
        raise ValueError(f"unknown metric {competition.metric!r}")
    out = {name: float(v) for name, v in zip(names, per)}
    out[competition.metric] = float(np.mean(per))
    return out


# ---------------------------------------------------------------------------------------------
# Mergeable forms: per-sequence sums that combine exactly
# ---------------------------------------------------------------------------------------------


@dataclass(eq=False)
class SequenceStats:
    """Per-sequence sufficient statistics, shape (sequences, outputs) each.

    For R²: ``weight`` is the row count, ``mean_y`` the mean target, ``m2_y`` the centred sum of
    squares and ``sse`` the residual sum of squares. For weighted Pearson the same fields are the
    weight sum, weighted means and weighted centred (co)variances, with ``mean_p``, ``m2_p`` and
    ``c_yp`` for the (clipped) predictions.
    """

    metric: str
    weight: np.ndarray
    mean_y: np.ndarray
    m2_y: np.ndarray
    sse: np.ndarray
    mean_p: np.ndarray
    m2_p: np.ndarray
    c_yp: np.ndarray

    def __len__(self) -> int:
        return self.weight.shape[0]

    FIELDS = ("weight", "mean_y", "m2_y", "sse", "mean_p", "m2_p", "c_yp")

    def __eq__(self, other: object) -> bool:
        """Exactly the same sums (a JSON round trip or a re-read keeps every bit)."""
        if not isinstance(other, SequenceStats):
            return NotImplemented
        return self.metric == other.metric and all(
            np.array_equal(getattr(self, f), getattr(other, f)) for f in SequenceStats.FIELDS)

    @staticmethod
    def concat(parts: list["SequenceStats"]) -> "SequenceStats":
        if not parts:
            raise ValueError("nothing to concatenate")
        if len({p.metric for p in parts}) > 1:
            raise ValueError(f"cannot concatenate statistics of different metrics: {sorted({p.metric for p in parts})}")
        return SequenceStats(
            parts[0].metric, *(np.concatenate([getattr(p, f) for p in parts]) for f in SequenceStats.FIELDS)
        )

    def take(self, rows: np.ndarray | list[int]) -> "SequenceStats":
        """The statistics of the sequences at positions ``rows``, in that order."""
        index = np.asarray(rows, dtype=np.int64)
        return SequenceStats(self.metric, *(getattr(self, f)[index] for f in SequenceStats.FIELDS))

    def to_json(self) -> dict:
        """Plain lists; Python's JSON writes floats by ``repr``, which reads back to the same float."""
        return {"metric": self.metric, **{f: getattr(self, f).tolist() for f in SequenceStats.FIELDS}}

    @classmethod
    def from_json(cls, data: dict) -> "SequenceStats":
        """Statistics ``to_json`` wrote; raises ``ValueError`` on a malformed or inconsistent object."""
        try:
            arrays = [np.asarray(data[f], dtype=np.float64) for f in cls.FIELDS]
            metric = str(data["metric"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed per-sequence statistics: {exc}") from None
        shape = arrays[0].shape
        if len(shape) != 2 or any(a.shape != shape for a in arrays):
            raise ValueError(f"malformed per-sequence statistics: shapes {[a.shape for a in arrays]}")
        return cls(metric, *arrays)


def sequence_stats(
    competition: Competition, y_true: np.ndarray, y_pred: np.ndarray, seq_starts: np.ndarray
) -> SequenceStats:
    """Sufficient statistics of each sequence; ``seq_starts`` are the first row of each sequence."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    starts = np.asarray(seq_starts, dtype=np.int64)
    counts = np.diff(np.append(starts, y.shape[0]))[:, None].astype(np.float64)
    if competition.metric == "weighted_pearson":
        p = np.clip(p, -PEARSON_CLIP, PEARSON_CLIP)
        w = np.maximum(np.abs(y), PEARSON_MIN_WEIGHT)
    else:
        w = np.ones_like(y)
    sw = np.add.reduceat(w, starts, axis=0)
    my = np.add.reduceat(w * y, starts, axis=0) / sw
    mp = np.add.reduceat(w * p, starts, axis=0) / sw
    rep = np.repeat(np.arange(len(starts)), counts[:, 0].astype(np.int64))
    dy = y - my[rep]
    dp = p - mp[rep]
    return SequenceStats(
        metric=competition.metric,
        weight=sw,
        mean_y=my,
        m2_y=np.add.reduceat(w * dy * dy, starts, axis=0),
        sse=np.add.reduceat((y - p) ** 2, starts, axis=0),
        mean_p=mp,
        m2_p=np.add.reduceat(w * dp * dp, starts, axis=0),
        c_yp=np.add.reduceat(w * dy * dp, starts, axis=0),
    )


def _merge(stats: SequenceStats, counts: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Chan's pairwise combination of per-sequence moments; ``counts`` weight whole sequences."""
    c = np.ones(len(stats)) if counts is None else np.asarray(counts, dtype=np.float64)
    cw = c[:, None] * stats.weight
    total = cw.sum(axis=0)
    my = (cw * stats.mean_y).sum(axis=0) / total
    mp = (cw * stats.mean_p).sum(axis=0) / total
    ey = stats.mean_y - my
    ep = stats.mean_p - mp
    return {
        "weight": total,
        "mean_p": mp,
        "m2_y": (c[:, None] * stats.m2_y).sum(axis=0) + (cw * ey * ey).sum(axis=0),
        "m2_p": (c[:, None] * stats.m2_p).sum(axis=0) + (cw * ep * ep).sum(axis=0),
        "c_yp": (c[:, None] * stats.c_yp).sum(axis=0) + (cw * ey * ep).sum(axis=0),
        "sse": (c[:, None] * stats.sse).sum(axis=0),
    }


def _per_output(metric: str, merged: dict[str, np.ndarray]) -> np.ndarray:
    if metric == "mean_r2":
        return _r2_from_parts(merged["sse"], merged["m2_y"])
    var_y = merged["m2_y"] / merged["weight"]
    var_p = merged["m2_p"] / merged["weight"]
    cov = merged["c_yp"] / merged["weight"]
    mean_p = merged["mean_p"]
    ok = (merged["weight"] != 0) & (var_y > 0) & ~_is_constant(var_p, mean_p)
    out = np.zeros_like(var_y)
    out[ok] = cov[ok] / (np.sqrt(var_y[ok]) * np.sqrt(var_p[ok]))
    return out


def score_from_stats(competition: Competition, stats: SequenceStats) -> dict[str, float]:
    """The same dictionary as :func:`score`, from merged per-sequence statistics."""
    per = _per_output(stats.metric, _merge(stats))
    out = {name: float(v) for name, v in zip(competition.prediction_names, per)}
    out[competition.metric] = float(np.mean(per))
    return out


def sequence_scores(stats: SequenceStats) -> np.ndarray:
    """Each sequence's own score per output, shape (sequences, outputs): what one sequence alone
    would score (R² against its own mean, or its own weighted correlation), for reports that show
    the spread and the worst sequences. Not a part of the headline, which pools the sequences.

    A sequence's own sums are already its merged statistics, so each row of ``stats`` scored as
    a whole file gives what :func:`score` gives that sequence's rows.
    """
    own = {"weight": stats.weight, "mean_p": stats.mean_p, "m2_y": stats.m2_y, "m2_p": stats.m2_p,
           "c_yp": stats.c_yp, "sse": stats.sse}
    return _per_output(stats.metric, own)


def _resample_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """Bootstrap draws of whole sequences: how often each of ``n`` sequences is taken, per resample."""
    if n < 2:
        raise ValueError("a bootstrap over sequences needs at least two sequences")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples)


def _per_output_draws(stats: SequenceStats, draws: np.ndarray) -> np.ndarray:
    """Per-output scores on each resample, shape (resamples, outputs)."""
    return np.array([_per_output(stats.metric, _merge(stats, d)) for d in draws]).reshape(len(draws), -1)


def _headlines(stats: SequenceStats, draws: np.ndarray) -> np.ndarray:
    # each headline is the plain mean of one resample's per-output vector, as ``score_from_stats``
    return np.array([row.mean() for row in _per_output_draws(stats, draws)])


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def bootstrap_interval(
    stats: SequenceStats, n_resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the headline score when whole sequences are resampled."""
    return _percentiles(_headlines(stats, _resample_counts(len(stats), n_resamples, seed)), level)


def paired_bootstrap_interval(
    stats: SequenceStats, reference: SequenceStats, n_resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of headline(stats) - headline(reference) over the same sequences.

    Both are scored on each resample of the same draw of sequences, so what the two have in
    common (which sequences are easy) cancels and the interval is that of the difference alone.
    """
    if len(stats) != len(reference):
        raise ValueError(f"paired statistics need the same sequences; got {len(stats)} and {len(reference)}")
    return paired_bootstrap(stats, reference, n_resamples, level, seed).interval


@dataclass(frozen=True)
class PairedBootstrap:
    """A paired bootstrap of score(stats) - score(reference): the headline's and each output's.

    ``difference`` and ``per_output`` are the differences on all sequences; ``mean`` the mean of
    the resampled headline differences; ``interval`` and ``per_output_interval`` percentile
    intervals; ``p_better`` / ``p_worse`` the share of resamples where ``stats`` scores above /
    below ``reference`` (ties count for neither), headline and per output (arrays in output order).
    """

    difference: float
    mean: float
    interval: tuple[float, float]
    p_better: float
    p_worse: float
    per_output: np.ndarray
    per_output_interval: np.ndarray
    per_output_p_better: np.ndarray
    per_output_p_worse: np.ndarray
    resamples: int


def paired_bootstrap(
    stats: SequenceStats, reference: SequenceStats, n_resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> PairedBootstrap:
    """The paired bootstrap over sequences (the same draws as ``paired_bootstrap_interval`` for the
    same seed): both are scored on each resample of the same draw of sequences, headline and per
    output; position i of ``stats`` and of ``reference`` must be the same sequence."""
    if len(stats) != len(reference):
        raise ValueError(f"paired statistics need the same sequences; got {len(stats)} and {len(reference)}")
    if stats.metric != reference.metric:
        raise ValueError(f"paired statistics need the same metric; got {stats.metric} and {reference.metric}")
    draws = _resample_counts(len(stats), n_resamples, seed)
    per_a, per_b = _per_output_draws(stats, draws), _per_output_draws(reference, draws)
    heads = np.array([row.mean() for row in per_a]) - np.array([row.mean() for row in per_b])
    per = per_a - per_b
    full_a, full_b = _per_output(stats.metric, _merge(stats)), _per_output(reference.metric, _merge(reference))
    return PairedBootstrap(
        difference=float(np.mean(full_a) - np.mean(full_b)), mean=float(heads.mean()),
        interval=_percentiles(heads, level), p_better=float(np.mean(heads > 0)), p_worse=float(np.mean(heads < 0)),
        per_output=full_a - full_b, per_output_interval=np.array([_percentiles(per[:, k], level) for k in range(per.shape[1])]),
        per_output_p_better=np.mean(per > 0, axis=0), per_output_p_worse=np.mean(per < 0, axis=0),
        resamples=int(n_resamples))
