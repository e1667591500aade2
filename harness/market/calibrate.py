"""The calibration table: each statistic of ``calibration.md`` beside its generated value.

A's statistics and baselines live here (pure functions on ``(sequences, steps, features)``
arrays, so each can be checked on a tiny hand-made case); B's come from
``harness.market.calibrate_b.calibration_b``. Every score goes through ``harness.metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import lfilter

from harness import frames
from harness.competitions import A, SEQUENCE_LENGTH, Competition, get
from harness.market.calrow import CalRow
from harness.metrics import r2_per_column, score

__all__ = ["CalRow", "calibration", "calibration_a", "fresh_sets"]

EMA_ALPHAS = (0.1, 0.3, 0.5)
VAR_ORDERS = (1, 2, 4, 8, 16)
GBM_LAGS = 8
RIDGE_ALPHA = 1.0
VAR_BATCH = 32  # sequences per block when accumulating normal equations (bounded memory)


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def load_sequences(path: Path, competition: Competition = A) -> tuple[np.ndarray, np.ndarray]:
    """(seq_ix (S,), features (S, T, F) float64) of a whole file, in file order.

    Raises ValueError when the file is not whole sequences of SEQUENCE_LENGTH steps in order.
    """
    table = frames.read(path, ["seq_ix", "step_in_seq", *competition.feature_columns])
    rows = table.height
    if rows == 0 or rows % SEQUENCE_LENGTH:
        raise ValueError(f"{path}: {rows} rows is not a whole number of {SEQUENCE_LENGTH}-step sequences")
    n_seq = rows // SEQUENCE_LENGTH
    steps = frames.column(table, "step_in_seq").reshape(n_seq, SEQUENCE_LENGTH)
    if not np.array_equal(steps, np.broadcast_to(np.arange(SEQUENCE_LENGTH), steps.shape)):
        raise ValueError(f"{path}: steps are not 0..{SEQUENCE_LENGTH - 1} in order within each sequence")
    seq = frames.column(table, "seq_ix").reshape(n_seq, SEQUENCE_LENGTH)[:, 0].astype(np.int64)
    feats = frames.matrix(table, competition.feature_columns, np.float64)
    return seq, feats.reshape(n_seq, SEQUENCE_LENGTH, -1)


# ---------------------------------------------------------------------------------------------
# Statistics of the data (each checked on a hand-made case in the tests)
# ---------------------------------------------------------------------------------------------


def marginal_stats(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per-feature pooled mean, std, skew and excess kurtosis over all rows."""
    flat = x.reshape(-1, x.shape[-1])
    mean = flat.mean(axis=0)
    centred = flat - mean
    var = (centred**2).mean(axis=0)
    std = np.sqrt(var)
    skew = (centred**3).mean(axis=0) / std**3
    kurt = (centred**4).mean(axis=0) / var**2 - 3.0
    return {"mean": mean, "std": std, "skew": skew, "kurt": kurt}


def correlation_stats(x: np.ndarray) -> dict[str, Any]:
    """Cross-feature correlation: mean and max off-diagonal |corr|, eigenvalues, explained shares."""
    corr = np.corrcoef(x.reshape(-1, x.shape[-1]), rowvar=False)
    f = corr.shape[0]
    off = np.abs(corr[~np.eye(f, dtype=bool)])
    eig = np.sort(np.linalg.eigvalsh(corr))[::-1]
    share = np.cumsum(eig) / eig.sum()
    return {"mean_abs": float(off.mean()), "max_abs": float(off.max()), "eigenvalues": eig, "explained": share}


def lag1_pooled(x: np.ndarray) -> float:
    """Lag-1 autocorrelation of each feature around its global mean, pairs within sequences; mean over features."""
    flat = x.reshape(-1, x.shape[-1])
    mean = flat.mean(axis=0)
    var = flat.var(axis=0)
    d = x - mean
    cov = (d[:, 1:] * d[:, :-1]).mean(axis=(0, 1))
    return float(np.mean(cov / var))


def lag1_within(x: np.ndarray) -> float:
    """Lag-1 autocorrelation inside each sequence (own mean and variance), averaged over sequences and features."""
    d = x - x.mean(axis=1, keepdims=True)
    var = (d**2).mean(axis=1)
    cov = (d[:, 1:] * d[:, :-1]).sum(axis=1) / x.shape[1]
    return float(np.mean(cov / np.where(var > 0, var, np.nan)))


def level_share(x: np.ndarray) -> float:
    """Share of each feature's variance carried by sequence means; mean over features."""
    total = x.reshape(-1, x.shape[-1]).var(axis=0)
    between = x.mean(axis=1).var(axis=0)
    return float(np.mean(between / total))


def volatility_spread(x: np.ndarray) -> float:
    """Ratio of the 90th to the 10th percentile of per-sequence standard deviations (mean over features)."""
    sd = x.std(axis=1)
    lo, hi = np.percentile(sd, [10, 90], axis=0)
    return float(np.mean(hi / lo))


# ---------------------------------------------------------------------------------------------
# Baselines (predictions at every row; only scored rows are used)
# ---------------------------------------------------------------------------------------------


def scored_rows(competition: Competition = A) -> tuple[slice, slice]:
    """(rows whose prediction is scored, rows they are scored against), as step slices."""
    first, last, off = competition.first_scored_step, competition.last_scored_step, competition.target_offset
    return slice(first, last + 1), slice(first + off, last + off + 1)


def targets(x: np.ndarray, competition: Competition = A) -> np.ndarray:
    """The A targets of the scored rows, pooled: (S * scored steps, F)."""
    _, tgt = scored_rows(competition)
    return x[:, tgt].reshape(-1, x.shape[-1])


def pooled(pred: np.ndarray, competition: Competition = A) -> np.ndarray:
    """Predictions at the scored rows, pooled in file order: (S * scored steps, F)."""
    rows, _ = scored_rows(competition)
    return pred[:, rows].reshape(-1, pred.shape[-1])


def predict_current(x: np.ndarray) -> np.ndarray:
    return x


def predict_mean_so_far(x: np.ndarray) -> np.ndarray:
    """Mean of rows 0..t of the sequence, at row t."""
    return np.cumsum(x, axis=1) / np.arange(1, x.shape[1] + 1)[None, :, None]


def predict_ema(x: np.ndarray, alpha: float) -> np.ndarray:
    """e_0 = x_0, e_t = alpha x_t + (1 - alpha) e_{t-1}."""
    if not 0 < alpha <= 1:
        raise ValueError(f"EMA alpha must be in (0, 1], got {alpha}")
    zi = ((1 - alpha) * x[:, :1, :])  # makes e_0 = x_0
    out, _ = lfilter([alpha], [1.0, -(1.0 - alpha)], x, axis=1, zi=zi)
    return out


def lagged(x: np.ndarray, p: int, rows: slice) -> np.ndarray:
    """Design rows [x_t, x_{t-1}, ..., x_{t-p+1}] for t in ``rows``: (S * rows, p * F)."""
    start = rows.start
    if start - (p - 1) < 0:
        raise ValueError(f"VAR({p}) needs {p - 1} rows of history before step {start}")
    blocks = [x[:, rows.start - k : rows.stop - k] for k in range(p)]
    return np.concatenate(blocks, axis=-1).reshape(-1, p * x.shape[-1])


@dataclass
class RidgeVAR:
    """A VAR(p) fitted by ridge on pooled sequences; normal equations accumulated in blocks."""

    p: int
    coef: np.ndarray  # (p * F + 1, F), last row the intercept

    @classmethod
    def fit(cls, x: np.ndarray, p: int, alpha: float = RIDGE_ALPHA, competition: Competition = A) -> "RidgeVAR":
        rows, tgt = scored_rows(competition)
        d = p * x.shape[-1] + 1
        xtx = np.zeros((d, d))
        xty = np.zeros((d, x.shape[-1]))
        for a in range(0, x.shape[0], VAR_BATCH):
            blk = x[a : a + VAR_BATCH]
            design = np.hstack([lagged(blk, p, rows), np.ones((blk.shape[0] * (rows.stop - rows.start), 1))])
            xtx += design.T @ design
            xty += design.T @ blk[:, tgt].reshape(-1, x.shape[-1])
        penalty = alpha * np.eye(d)
        penalty[-1, -1] = 0.0  # the intercept is not shrunk
        return cls(p, np.linalg.solve(xtx + penalty, xty))

    def predict_scored(self, x: np.ndarray, competition: Competition = A) -> np.ndarray:
        rows, _ = scored_rows(competition)
        out = []
        for a in range(0, x.shape[0], VAR_BATCH):
            blk = x[a : a + VAR_BATCH]
            out.append(lagged(blk, self.p, rows) @ self.coef[:-1] + self.coef[-1])
        return np.concatenate(out)


def gbm_scores(
    train: np.ndarray,
    valid: np.ndarray,
    lags: int = GBM_LAGS,
    max_rows: int = 60_000,
    rounds: int = 300,
    outputs: list[int] | None = None,
    threads: int = 1,
    seed: int = 0,
) -> np.ndarray:
    """Per-feature R² of LightGBM on VAR(lags) inputs: one model per feature, fitted on train.

    Rows are subsampled to ``max_rows`` (seeded) and each model runs single-threaded with
    early stopping on held-out train sequences, so the whole table takes minutes on a shared
    two-core machine. ``outputs`` restricts the features modelled (for quick design loops).
    """
    import lightgbm as lgb

    rows, tgt = scored_rows()
    n_tr = train.shape[0]
    hold = max(1, n_tr // 8)
    xtr = lagged(train[hold:], lags, rows).astype(np.float32)
    ytr = train[hold:, tgt].reshape(-1, train.shape[-1])
    xes = lagged(train[:hold], lags, rows).astype(np.float32)
    yes = train[:hold, tgt].reshape(-1, train.shape[-1])
    rng = np.random.default_rng(seed)
    if xtr.shape[0] > max_rows:
        pick = np.sort(rng.choice(xtr.shape[0], max_rows, replace=False))
        xtr, ytr = xtr[pick], ytr[pick]
    if xes.shape[0] > max_rows // 4:
        pick = np.sort(rng.choice(xes.shape[0], max_rows // 4, replace=False))
        xes, yes = xes[pick], yes[pick]
    xva = lagged(valid, lags, rows).astype(np.float32)
    yva = targets(valid)
    params = {
        "objective": "regression", "learning_rate": 0.1, "num_leaves": 31, "min_data_in_leaf": 200,
        "feature_fraction": 0.25, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0,
        "max_bin": 63, "verbose": -1, "seed": seed, "num_threads": threads, "deterministic": True,
        "force_col_wise": True,
    }
    cols = list(range(train.shape[-1])) if outputs is None else list(outputs)
    preds = np.empty((yva.shape[0], len(cols)))
    # Bin the inputs once; only the label changes from feature to feature.
    ds = lgb.Dataset(xtr, label=ytr[:, 0], params=dict(params), free_raw_data=False).construct()
    es = lgb.Dataset(xes, label=yes[:, 0], reference=ds, params=dict(params), free_raw_data=False).construct()
    for i, k in enumerate(cols):
        ds.set_label(ytr[:, k])
        es.set_label(yes[:, k])
        model = lgb.train(params, ds, rounds, valid_sets=[es], callbacks=[lgb.early_stopping(25, verbose=False)])
        preds[:, i] = model.predict(xva, num_iteration=model.best_iteration, num_threads=threads)
    return r2_per_column(yva[:, cols], preds)


# ---------------------------------------------------------------------------------------------
# The A table
# ---------------------------------------------------------------------------------------------


def baseline_scores_a(train: np.ndarray, valid: np.ndarray, with_gbm: bool = True) -> dict[str, float]:
    """Mean R² of every A baseline on valid (VAR and GBM fitted on train)."""
    y = targets(valid)
    out: dict[str, float] = {}
    out["current state"] = score(A, y, pooled(predict_current(valid)))[A.metric]
    out["mean so far"] = score(A, y, pooled(predict_mean_so_far(valid)))[A.metric]
    for a in EMA_ALPHAS:
        out[f"EMA {a:g}"] = score(A, y, pooled(predict_ema(valid, a)))[A.metric]
    for p in VAR_ORDERS:
        out[f"VAR({p}) ridge"] = score(A, y, RidgeVAR.fit(train, p).predict_scored(valid))[A.metric]
    if with_gbm:
        out[f"gradient boosting, VAR({GBM_LAGS}) inputs"] = float(np.mean(gbm_scores(train, valid)))
    return out


def data_rows_a(pooled_x: np.ndarray) -> list[CalRow]:
    """The rows that describe the data itself (marginals, clip, correlation, autocorrelation),
    before any model: ``calibration_a``'s first part, and what ``form`` checks on a scenario's pilot."""
    from harness.market.a_process import CLIP_BOUND

    rows: list[CalRow] = []
    m = marginal_stats(pooled_x)
    rows.append(CalRow.ranged("marginal mean, pooled (mean over features)", "~0", float(m["mean"].mean()), -0.03, 0.03))
    rows.append(CalRow("marginal mean, per-feature range", "~0", f"{m['mean'].min():.3f} .. {m['mean'].max():.3f}"))
    rows.append(CalRow.ranged("marginal std, pooled (mean over features)", "0.98-1.01", float(m["std"].mean()), 0.97, 1.03))
    rows.append(CalRow("marginal std, per-feature range", "0.98-1.01", f"{m['std'].min():.3f} .. {m['std'].max():.3f}"))
    rows.append(CalRow.ranged("skew, mean over features", "~0", float(m["skew"].mean()), -0.1, 0.1))
    rows.append(CalRow.ranged("excess kurtosis, mean over features", "~0", float(m["kurt"].mean()), -0.3, 1.0))
    bound = float(np.abs(pooled_x).max())
    rows.append(CalRow.ranged("largest |value| (hard clip)", "5.199338", bound, None, float(np.float32(CLIP_BOUND))))
    clipped = int(np.sum(np.abs(pooled_x) >= np.float32(CLIP_BOUND)))
    rows.append(CalRow("values at the clip bound", "(Gaussianized)", f"{clipped} of {pooled_x.size}"))

    c = correlation_stats(pooled_x)
    rows.append(CalRow("mean off-diagonal |corr|", "0.40", c["mean_abs"]))
    rows.append(CalRow("max off-diagonal |corr|", "0.95", c["max_abs"]))
    rows.append(CalRow("eigenvalues 1-8", "11.6, 8.7, 4.7, 2.4, 1.9, 0.88, 0.60, 0.21",
                       ", ".join(f"{v:.2f}" for v in c["eigenvalues"][:8])))
    rows.append(CalRow.ranged("variance explained, top 5 components", "~0.91", float(c["explained"][4]), 0.85, 0.95))
    rows.append(CalRow("variance explained, top 7 components", "~0.96", float(c["explained"][6])))

    rows.append(CalRow.ranged("lag-1 autocorrelation, pooled", "~0.30", lag1_pooled(pooled_x), 0.25, 0.35))
    rows.append(CalRow.ranged("lag-1 autocorrelation, within sequence", "~0.14", lag1_within(pooled_x), 0.10, 0.20))
    rows.append(CalRow("variance share of sequence levels", "~0.17-0.20", level_share(pooled_x)))
    rows.append(CalRow("per-sequence std, p90 / p10", "heterogeneous", volatility_spread(pooled_x)))

    return rows


def calibration_a(train_path: Path, valid_path: Path, with_gbm: bool = True) -> tuple[list[CalRow], dict[str, Any], list[str]]:
    """A's table on a train and a valid file (oracles from the valid file's sidecar)."""
    from harness.market.base import load_sidecar

    _, train = load_sequences(train_path)
    _, valid = load_sequences(valid_path)
    pooled_x = np.concatenate([train, valid])
    notes: list[str] = []

    rows = data_rows_a(pooled_x)

    base = baseline_scores_a(train, valid, with_gbm)
    real = {
        "current state": ("-0.37 to -0.43", -0.45, -0.33),
        "mean so far": ("0.174", 0.14, 0.21),
        "EMA 0.1": ("0.22", 0.19, 0.25),
        "EMA 0.3": ("0.16", None, None),
        "EMA 0.5": ("0.06", None, None),
        "VAR(1) ridge": ("0.23", 0.20, 0.26),
        "VAR(2) ridge": ("0.28", None, None),
        "VAR(4) ridge": ("0.30", None, None),
        "VAR(8) ridge": ("0.31", None, None),
        "VAR(16) ridge": ("0.32", 0.29, 0.35),
    }
    for name, value in base.items():
        if name in real:
            text, lo, hi = real[name]
            rows.append(CalRow.ranged(f"R² {name}", text, value, lo, hi))
        else:
            rows.append(CalRow.above(f"R² {name}", "~0.34", value, base["VAR(16) ridge"], "VAR(16)"))

    y = targets(valid)
    side = load_sidecar(valid_path, A)
    if side is None:
        notes.append(f"no oracle sidecar beside {valid_path}: oracle rows omitted")
    else:
        obs = r2_per_column(y, side.observable)
        rows.append(CalRow.ranged("R² observable oracle", "board best 0.3964; aim 0.42-0.45", float(obs.mean()), 0.41, 0.46))
        if side.hidden is not None:
            rows.append(CalRow("R² hidden-state oracle (upper bound)", "-", float(r2_per_column(y, side.hidden).mean())))
        rows.append(CalRow.ranged("per-feature oracle R², max - min", "strong model 0.26 to 0.54",
                                  float(obs.max() - obs.min()), 0.2, None))
        rows.append(CalRow("per-feature oracle R², range", "0.26 to 0.54", f"{obs.min():.3f} .. {obs.max():.3f}"))
        best_base = max(base.values())
        rows.append(CalRow("best baseline / observable oracle", "0.34 / ~0.43", float(best_base / obs.mean())))
    meta = {
        "competition": "A",
        "train": str(train_path),
        "valid": str(valid_path),
        "train_sequences": int(train.shape[0]),
        "valid_sequences": int(valid.shape[0]),
        "baselines_fitted_on": "train",
        "baselines_scored_on": "valid",
    }
    notes.append("statistics of the data pool train and valid; baselines are fitted on train and scored on valid")
    if with_gbm:
        notes.append(
            "gradient boosting: one single-threaded LightGBM per feature on a seeded 60k-row subsample of train "
            "(one eighth of the train sequences held out for early stopping)"
        )
    return rows, meta, notes


def calibration(
    key: str, train_path: Path, valid_path: Path, with_gbm: bool = True
) -> tuple[list[CalRow], dict[str, Any], list[str]]:
    """(rows, meta, notes) of competition ``key``'s calibration table on two files.

    ``with_gbm`` skips the gradient-boosting baseline (passed to B's ``calibration_b`` when it takes it).
    """
    comp = get(key)
    if comp.key == "A":
        return calibration_a(train_path, valid_path, with_gbm=with_gbm)
    try:
        from harness.market.calibrate_b import calibration_b
    except ModuleNotFoundError as exc:
        if exc.name == "harness.market.calibrate_b":
            raise KeyError("the B calibration (harness.market.calibrate_b) is not built yet") from exc
        raise
    import inspect

    if "with_gbm" in inspect.signature(calibration_b).parameters:
        rows = calibration_b(train_path, valid_path, with_gbm=with_gbm)
    else:
        rows = calibration_b(train_path, valid_path)
    meta = {"competition": comp.key, "train": str(train_path), "valid": str(valid_path)}
    return rows, meta, []


def fresh_sets(key: str, n_train: int, n_valid: int, seed: int, folder: Path, scenario: int | None = None) -> tuple[Path, Path]:
    """Generate a train and a valid set of the given sizes under folder, the valid one with the
    default valid set's knobs (B's train/valid shift), of ``scenario``'s market (the default one
    for None); return their paths."""
    from harness.market.base import write_set
    from harness.market.defaults import default_knobs
    from harness.market.scenarios import scenario_generator

    gen = scenario_generator(key, scenario)
    train = write_set(gen, n_train, seed, "train", Path(folder) / "train.parquet")
    valid = write_set(gen, n_valid, seed + 1, "valid", Path(folder) / "valid.parquet", **default_knobs(key, "valid"))
    return train, valid
