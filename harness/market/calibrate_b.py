"""B's calibration table: every statistic of ``calibration.md``'s B table beside its generated
value, plus baselines and the oracle scored on generated data.

Data statistics are measured on the train file (the real table's numbers are train numbers,
except the train/valid shift rows). Baselines are fitted on train and scored on valid, with
``harness.metrics.score``; the oracle comes from the sidecar ``base.write_set`` wrote. Rows
with an acceptance range are the issue's acceptance items; the rest are reported only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import frames
from harness.competitions import B, SEQUENCE_LENGTH
from harness.market import b_stats as st
from harness.market.b_params import SHIFT_TARGET_STD
from harness.market.base import load_sidecar
from harness.market.calrow import CalRow
from harness.metrics import score

ACF_LAGS = (1, 5, 10, 20, 50)
CHECKED_LAGS = (1, 5, 20, 50)
ACF_TOLERANCE = 0.07
REAL_ACF = {"t0": (0.715, 0.379, 0.213, 0.092, 0.015), "t1": (0.976, 0.878, 0.751, 0.514, 0.034)}
RIDGE_ALPHA = 1.0
GBM_ROWS = 200_000
GBM_ROUNDS = 300
SMOOTH_SPANS = (3, 10, 30, 100)
SMOOTH_SEQUENCES = 2000  # train sequences the smoothed ridge is fitted on (memory stays ~1 GB)
SMOOTH_STRIDE = 2  # every other scored row of those
LINEAR_CEILING = 0.85
SHIFT_TOLERANCE = 0.15  # relative: heavy tails make a valid/train std ratio noisy
"""The smoothed ridge may reach at most this fraction of the observable oracle: on the real data
linear and tree models on the features saturate well below recurrent ones (``calibration.md``)."""


@dataclass
class BSet:
    """A B file in memory: features (S, T, F) float32 and targets (S, T, 2) float64, file order."""

    path: Path
    features: np.ndarray
    targets: np.ndarray

    @property
    def n_sequences(self) -> int:
        return int(self.features.shape[0])


def load_b(path: Path) -> BSet:
    """Read a B parquet file whole; raise ValueError unless it is whole sequences in step order."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    names = ["step_in_seq", *B.feature_columns, *B.target_columns]
    table = frames.read(path, names)
    rows = table.height
    if rows == 0 or rows % SEQUENCE_LENGTH:
        raise ValueError(f"{path}: {rows} rows is not a whole number of {SEQUENCE_LENGTH}-step sequences")
    s = rows // SEQUENCE_LENGTH
    steps = frames.column(table, "step_in_seq").reshape(s, SEQUENCE_LENGTH)
    if not (steps == np.arange(SEQUENCE_LENGTH)).all():
        raise ValueError(f"{path}: steps are not 0..{SEQUENCE_LENGTH - 1} in order within each sequence")
    feats = frames.matrix(table, B.feature_columns, np.float32).reshape(s, SEQUENCE_LENGTH, B.n_features)
    tg = frames.matrix(table, B.target_columns, np.float64)
    return BSet(path, feats, tg.reshape(s, SEQUENCE_LENGTH, len(B.target_columns)))


def scored(x: np.ndarray) -> np.ndarray:
    """The scored steps of (S, T, ...) per-row values (B scores each row against its own targets)."""
    return x[:, B.first_scored_step : B.last_scored_step + 1]


def pooled_scored(x: np.ndarray) -> np.ndarray:
    """Scored rows of (S, T, K) values, pooled in file order: (rows, K)."""
    part = scored(x)
    return part.reshape(-1, part.shape[-1])


# ---------------------------------------------------------------------------------------------
# Baselines on current features
# ---------------------------------------------------------------------------------------------


def ridge_predict(train: BSet, valid: BSet, alpha: float = RIDGE_ALPHA) -> np.ndarray:
    """Ridge on the current row's standardized raw features, fitted on train's scored rows."""
    x = pooled_scored(train.features).astype(np.float64)
    y = pooled_scored(train.targets)
    mu, sd = x.mean(axis=0), x.std(axis=0)
    sd[sd == 0] = 1.0
    z = (x - mu) / sd
    coef = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - y.mean(axis=0)))
    return ((pooled_scored(valid.features) - mu) / sd) @ coef + y.mean(axis=0)


def smoothed_design(features: np.ndarray) -> np.ndarray:
    """(S, T, K) float32 causal design: the raw features and the logs of the volumes, each also as
    exponential moving averages over ``SMOOTH_SPANS``: what a linear model with memory can use."""
    from scipy.signal import lfilter

    x = features.astype(np.float64)
    volumes = [i for i, c in enumerate(B.feature_columns) if c.startswith(("v", "dv"))]
    base = np.concatenate([x, np.log(np.maximum(x[:, :, volumes], 1e-12))], axis=2)
    parts = [base]
    for span in SMOOTH_SPANS:
        a = 2.0 / (span + 1.0)
        ema = lfilter([a], [1.0, a - 1.0], base, axis=1)
        ema += (1.0 - a) ** np.arange(1, base.shape[1] + 1)[None, :, None] * base[:, :1]  # start at the first row
        parts.append(ema)
    return np.concatenate(parts, axis=2).astype(np.float32)


def smoothed_ridge_predict(train: BSet, valid: BSet, alpha: float = RIDGE_ALPHA, block: int = 250) -> np.ndarray:
    """Ridge on ``smoothed_design``, fitted on every ``SMOOTH_STRIDE``-th scored row of the first
    ``SMOOTH_SEQUENCES`` train sequences (normal equations summed over blocks of sequences, so
    memory stays bounded); predictions for valid's scored rows, pooled."""
    n = min(train.n_sequences, SMOOTH_SEQUENCES)
    xtx: np.ndarray | float = 0.0
    xty: np.ndarray | float = 0.0
    rows = 0
    for a in range(0, n, block):
        x = pooled_scored(smoothed_design(train.features[a : min(a + block, n)]))[::SMOOTH_STRIDE].astype(np.float64)
        y = pooled_scored(train.targets[a : min(a + block, n)])[::SMOOTH_STRIDE]
        x = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
        xtx = xtx + x.T @ x
        xty = xty + x.T @ y
        rows += x.shape[0]
    xtx, xty = np.asarray(xtx), np.asarray(xty)
    mean = xtx[-1, :-1] / rows
    var = np.maximum(np.diag(xtx)[:-1] / rows - mean**2, 1e-12)
    penalty = alpha * np.diag(np.append(var, 0.0))  # ridge on standardized columns, not on the intercept
    coef = np.linalg.solve(xtx + penalty, xty)
    out = [
        pooled_scored(smoothed_design(valid.features[a : a + block])).astype(np.float64) @ coef[:-1] + coef[-1]
        for a in range(0, valid.n_sequences, block)
    ]
    return np.concatenate(out)


def gbm_predict(
    train: BSet, valid: BSet, seed: int = 0, max_rows: int = GBM_ROWS, rounds: int = GBM_ROUNDS
) -> np.ndarray:
    """LightGBM on the current row's raw features, one model per target, on a seeded subsample of
    train's scored rows, early-stopped on held-out train sequences."""
    import lightgbm as lgb

    rng = np.random.default_rng(seed)
    hold = max(1, train.n_sequences // 8)
    xtr = pooled_scored(train.features[hold:])
    ytr = pooled_scored(train.targets[hold:])
    xes = pooled_scored(train.features[:hold])
    yes = pooled_scored(train.targets[:hold])
    if xtr.shape[0] > max_rows:
        pick = np.sort(rng.choice(xtr.shape[0], max_rows, replace=False))
        xtr, ytr = xtr[pick], ytr[pick]
    if xes.shape[0] > max_rows // 4:
        pick = np.sort(rng.choice(xes.shape[0], max_rows // 4, replace=False))
        xes, yes = xes[pick], yes[pick]
    params = {
        "objective": "regression", "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 200,
        "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0,
        "max_bin": 63, "verbose": -1, "seed": seed, "num_threads": 1, "deterministic": True,
        "force_col_wise": True,
    }
    xva = pooled_scored(valid.features)
    out = np.empty((xva.shape[0], len(B.target_columns)))
    ds = lgb.Dataset(xtr, label=ytr[:, 0], params=dict(params), free_raw_data=False).construct()
    es = lgb.Dataset(xes, label=yes[:, 0], reference=ds, params=dict(params), free_raw_data=False).construct()
    for k in range(len(B.target_columns)):
        ds.set_label(ytr[:, k])
        es.set_label(yes[:, k])
        model = lgb.train(params, ds, rounds, valid_sets=[es], callbacks=[lgb.early_stopping(30, verbose=False)])
        out[:, k] = model.predict(xva, num_iteration=model.best_iteration, num_threads=1)
    return out


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------


def _col(data: BSet, name: str) -> np.ndarray:
    return data.features[:, :, B.feature_columns.index(name)]


def _target(data: BSet, name: str, scored_only: bool = True) -> np.ndarray:
    t = data.targets[:, :, B.target_columns.index(name)]
    return scored(t) if scored_only else t


def feature_rows(train: BSet) -> list[CalRow]:
    """Marginals, per-sequence levels and autocorrelations of the features (train)."""
    rows: list[CalRow] = []
    p0 = _col(train, "p0")
    rows.append(CalRow("p0 mean / std", "1.41 / 0.46", f"{p0.mean():.2f} / {p0.std():.2f}"))
    rows.append(CalRow("p0 range", "0.56 .. 5.2", f"{p0.min():.2f} .. {p0.max():.2f}"))
    rows.append(CalRow("p0 skew", "1.2", st.skewness(p0)))
    deep = [c for c in B.feature_columns[:12] if c not in ("p0", "p6")]
    sds = {c: float(_col(train, c).std()) for c in deep}
    kurts = {c: st.excess_kurtosis(_col(train, c)) for c in deep}
    rows.append(CalRow("deeper price levels: std range", "several 0.16-0.28",
                       f"{min(sds.values()):.3f} .. {max(sds.values()):.3f}"))
    rows.append(CalRow("deeper price levels: excess kurtosis range", "13-36",
                       f"{min(kurts.values()):.1f} .. {max(kurts.values()):.1f}"))
    price_sd = [float(_col(train, c).std()) for c in B.feature_columns[:12]]
    rows.append(CalRow("price feature std, max / min", "7.2", max(price_sd) / min(price_sd)))
    rows.append(CalRow.ranged("per-sequence level share, p0", "0.51", st.level_share(p0), 0.41, 0.61))
    for name, real in (("p6", "0.49"), ("v0", "0.10"), ("dp0", "0.03")):
        rows.append(CalRow(f"per-sequence level share, {name}", real, st.level_share(_col(train, name))))
    for name, real in (("t0", "0.13"), ("t1", "0.21")):
        rows.append(CalRow(f"per-sequence level share, {name}", real, st.level_share(_target(train, name))))
    rows.append(CalRow.ranged("p0 autocorrelation, lag 1", "0.63", st.pooled_autocorr(p0, 1), 0.53, 0.73))
    rows.append(CalRow("p0 autocorrelation, lags 5 / 20 / 100", "0.44 / 0.32 / 0.26",
                       " / ".join(f"{st.pooled_autocorr(p0, lag):.3f}" for lag in (5, 20, 100))))
    for name, real in (("v6", "0.24"), ("dp0", "-0.28"), ("dv0", "-0.34")):
        rows.append(CalRow(f"{name} autocorrelation, lag 1", real, st.pooled_autocorr(_col(train, name), 1)))
    lag5 = [st.pooled_autocorr(_col(train, name), 5) for name in ("dp0", "dv0")]
    rows.append(CalRow("dp0 / dv0 autocorrelation, lag 5", "~0 / ~0", f"{lag5[0]:.3f} / {lag5[1]:.3f}"))
    return rows


def target_rows(train: BSet) -> list[CalRow]:
    """Marginals, autocorrelations, tails and weight concentration of t0 and t1 (train, scored rows)."""
    rows: list[CalRow] = []
    real_marg = {"t0": ("-0.17 / 0.84 / 2.2", "0.48 / 1.20 / 2.96", 23.5, 10.0, 0.62),
                 "t1": ("-0.06 / 1.11 / -0.5", "0.49 / 1.60 / 3.93", 35.5, 15.0, 0.87)}
    for name in B.target_columns:
        y = _target(train, name)
        marg, quants, kurt, kurt_floor, persist = real_marg[name]
        rows.append(CalRow(f"{name} mean / std / skew", marg, f"{y.mean():.2f} / {y.std():.2f} / {st.skewness(y):.2f}"))
        rows.append(CalRow(f"{name} |{name}| quantiles 50 / 90 / 99", quants,
                           " / ".join(f"{q:.2f}" for q in st.abs_quantiles(y))))
        rows.append(CalRow.ranged(f"{name} excess kurtosis", f"{kurt}", st.excess_kurtosis(y), kurt_floor, None))
        for lag, real in zip(ACF_LAGS, REAL_ACF[name]):
            value = st.pooled_autocorr(y, lag)
            label = f"{name} autocorrelation, lag {lag}"
            if lag in CHECKED_LAGS:
                rows.append(CalRow.ranged(label, f"{real}", value, real - ACF_TOLERANCE, real + ACF_TOLERANCE))
            else:
                rows.append(CalRow(label, f"{real}", value))
        rows.append(CalRow(f"{name} large-move persistence P(next > q95 | now > q95)", f"{persist}",
                           st.large_move_persistence(y)))
        rows.append(CalRow.ranged(f"{name} weight share of the top 20% |{name}|", "0.50-0.54",
                                  st.top_weight_share(y), 0.45, 0.60))
    t0, t1 = _target(train, "t0").ravel(), _target(train, "t1").ravel()
    corr = float(np.corrcoef(t0, t1)[0, 1])
    rows.append(CalRow.ranged("corr(t0, t1), train", "0.505 train (0.440 valid)", corr, 0.42, 0.58))
    feats = pooled_scored(train.features)
    for name, real, lo, hi in (("t0", "0.136", 0.08, 0.20), ("t1", "0.036", None, 0.08)):
        corr = np.abs(st.column_corrs(feats, _target(train, name).ravel()))
        best = int(np.argmax(corr))
        rows.append(CalRow.ranged(f"best single raw feature |corr| with {name} ({B.feature_columns[best]})",
                                  real, float(corr[best]), lo, hi))
    return rows


def shift_rows(train: BSet, valid: BSet) -> list[CalRow]:
    """The train/valid shift (valid's knob ``shift`` sets it; 0 means none; the default valid
    set carries the real one, so these rows are checked)."""
    rows: list[CalRow] = []
    for name, real in zip(B.target_columns, SHIFT_TARGET_STD):
        ratio = float(_target(valid, name).std() / _target(train, name).std())
        rows.append(CalRow.ranged(f"valid / train std of {name}", f"{real}", ratio,
                                  real - SHIFT_TOLERANCE * real, real + SHIFT_TOLERANCE * real))
    p0t, p0v = _col(train, "p0"), _col(valid, "p0")
    moved = float((p0v.mean() - p0t.mean()) / p0t.std())
    rows.append(CalRow.ranged("p0 mean shift, valid - train, in train std", "~1", moved, 0.7, 1.3))
    cap = 200_000  # rows per side for the KS distance: plenty for two decimals
    ks = [st.ks_statistic(_col(train, c).ravel()[:cap], _col(valid, c).ravel()[:cap]) for c in B.feature_columns]
    worst = int(np.argmax(ks))
    label = f"largest feature KS distance, train vs valid ({B.feature_columns[worst]})"
    rows.append(CalRow(label, "up to 0.33", float(ks[worst])))
    return rows


def score_rows(train: BSet, valid: BSet, with_gbm: bool = True) -> list[CalRow]:
    """Constant, ridge and LightGBM on current features, a ridge with memory (``smoothed_design``)
    and the oracles, scored on valid; the ridge with memory also as a fraction of the oracle."""
    rows: list[CalRow] = []
    y = pooled_scored(valid.targets)
    metric = B.metric

    def both(scores: dict[str, float]) -> str:
        return f"{scores[metric]:.4f} (t0 {scores['t0']:.3f}, t1 {scores['t1']:.3f})"

    base: dict[str, float] = {}
    const = score(B, y, np.zeros_like(y))
    base["constant"] = const[metric]
    rows.append(CalRow.ranged("weighted Pearson, constant (valid)", "0", const[metric], 0.0, 0.0))
    ridge = score(B, y, ridge_predict(train, valid))
    base["ridge"] = ridge[metric]
    rows.append(CalRow.ranged("weighted Pearson, ridge on current features (valid)", "linear models weak",
                              ridge[metric], None, 0.22))
    rows.append(CalRow("  ridge per target", "-", both(ridge)))
    smooth = score(B, y, smoothed_ridge_predict(train, valid))
    base["smoothed ridge"] = smooth[metric]
    rows.append(CalRow("weighted Pearson, ridge on current and smoothed features (valid)", "-", both(smooth)))
    if with_gbm:
        gbm = score(B, y, gbm_predict(train, valid))
        base["LightGBM"] = gbm[metric]
        rows.append(CalRow("weighted Pearson, LightGBM on current features (valid)", "0.21 (LightGBM+CatBoost 0.214)",
                           gbm[metric]))
        rows.append(CalRow("  LightGBM per target", "-", both(gbm)))
    side_t = load_sidecar(train.path, B)
    if side_t is not None:
        obs_t = score(B, pooled_scored(train.targets), side_t.observable)
        rows.append(CalRow.ranged("weighted Pearson, observable oracle (train)", "board best 0.324; aim 0.33-0.36",
                                  obs_t[metric], 0.32, 0.38))
        rows.append(CalRow("  observable oracle per target (train)", "GRU t0 0.39, t1 0.13", both(obs_t)))
    side_v = load_sidecar(valid.path, B)
    if side_v is not None:
        obs_v = score(B, y, side_v.observable)
        best = max(base, key=lambda k: base[k])
        rows.append(CalRow.above("weighted Pearson, observable oracle (valid)", "above every baseline",
                                 obs_v[metric], base[best], f"best baseline, {best}"))
        rows.append(CalRow("  observable oracle per target (valid)", "-", both(obs_v)))
        rows.append(CalRow.ranged(
            "smoothed ridge / observable oracle (valid)",
            f"linear saturates well below recurrent (LightGBM 0.21, GRUs 0.26-0.285, board 0.324); <= {LINEAR_CEILING}",
            smooth[metric] / obs_v[metric], None, LINEAR_CEILING,
        ))
        if side_v.hidden is not None:
            hid = score(B, y, side_v.hidden)
            rows.append(CalRow.above("weighted Pearson, hidden-state oracle (valid, upper bound)", "-",
                                     hid[metric], obs_v[metric], "observable oracle"))
    return rows


def calibration_b(train_path: Path, valid_path: Path, with_gbm: bool = True) -> list[CalRow]:
    """B's calibration table on a train and a valid file (oracles from their sidecars)."""
    train = load_b(train_path)
    valid = load_b(valid_path)
    if train.n_sequences < 2 or valid.n_sequences < 2:
        raise ValueError("the B calibration needs at least 2 train and 2 valid sequences")
    return feature_rows(train) + target_rows(train) + shift_rows(train, valid) + score_rows(train, valid, with_gbm)
