"""Ridge families: ``ridge_var`` (a VAR(p) on lagged raw values) and ``ridge_poly`` (degree-2
products of the top-k pipeline outputs, ranked by LightGBM importance).

The pipeline runs once over the train set (every ``sample_stride``-th scored step kept, float32).
Per-fold sufficient statistics are accumulated in one pass (``models.ridge``); the model without
fold f is the total minus fold f, solved in closed form, for every candidate ``alpha``. The alpha
with the best out-of-fold score is refitted on all folds and the weak-target guard is fitted on
its OOF predictions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness import metrics
from models import cv, ridge
from models.artifacts import PipelineFamily, PipelineModel
from models.config import ConfigError, FeaturesConfig, require, to_dict
from models.data import SequenceSet
from models.family import Trained
from models.guard import describe, fit_guard
from models.runtime.linear import LinearHead, all_pairs
from models.training import Timer, fit_pipeline, oof_payload, sample_rows, seed_everything

LINEAR_TERMS = ("all", "top")


@dataclass
class RidgeConfig:
    """What both ridge families share: seeds, folds (``stratify_folds``: balance them by a
    per-sequence statistic, ``models.cv.STRATIFY``), the alphas tried, the guard, row sampling."""

    seed: int = 0
    folds: int = cv.DEFAULT_FOLDS
    stratify_folds: str | None = None
    alphas: list[float] = field(default_factory=lambda: [1e-6, 1e-5, 1e-4, 1e-3])
    guard_threshold: float = 0.0
    sample_stride: int = 1
    fit_sequences: int = 256


@dataclass
class RidgeVarConfig(RidgeConfig):
    """``lags``: the VAR order (the current row and ``lags - 1`` earlier rows)."""

    lags: int = 16

    def __post_init__(self) -> None:
        cv.check_stratify(self.stratify_folds)
        require(isinstance(self.lags, int) and self.lags >= 1, "lags", f"a VAR order is at least 1, got {self.lags}")


@dataclass
class RidgePolyConfig(RidgeConfig):
    """``features``: the pipeline; products of its ``top_k`` columns ranked by LightGBM
    importance (on ``rank_rows`` rows, ``rank_rounds`` rounds); ``linear`` "all" keeps every
    column as a linear term, "top" only the top k."""

    features: FeaturesConfig = field(default_factory=lambda: FeaturesConfig(extra=[{"kind": "identity"}]))
    top_k: int = 12
    linear: str = "all"
    rank_rows: int = 100_000
    rank_rounds: int = 80
    threads: int = 1

    def __post_init__(self) -> None:
        cv.check_stratify(self.stratify_folds)
        require(self.linear in LINEAR_TERMS, "linear", f"must be one of {LINEAR_TERMS}, got {self.linear!r}")


def var_steps(order: int) -> list[dict]:
    """Pipeline steps of a VAR(order) design: the current row and ``order - 1`` lags."""
    steps: list[dict] = [{"kind": "identity"}]
    if order > 1:
        steps.append({"kind": "lags", "lags": list(range(1, order))})
    return steps


def rank_by_lightgbm(x: np.ndarray, y: np.ndarray, rounds: int, seed: int, threads: int) -> np.ndarray:
    """Column order by LightGBM gain importance, summed over targets (each target's gains normalized)."""
    import lightgbm as lgb

    params = {"objective": "regression", "learning_rate": 0.1, "num_leaves": 15, "min_data_in_leaf": 200,
              "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "max_bin": 63, "verbose": -1,
              "seed": seed, "num_threads": threads, "deterministic": True, "force_row_wise": True}
    dataset = lgb.Dataset(x, label=y[:, 0], params={"max_bin": 63, "verbose": -1}, free_raw_data=False).construct()
    total = np.zeros(x.shape[1])
    for k in range(y.shape[1]):
        dataset.set_label(y[:, k])
        gain = lgb.train(params, dataset, rounds).feature_importance("gain")
        if gain.sum() > 0:
            total += gain / gain.sum()
    return np.argsort(-total, kind="stable")


def rank_and_pair(names: tuple[str, ...], x: np.ndarray, y: np.ndarray, candidates: np.ndarray | None, top_k: int,
                  linear: str, rank_rows: int, rank_rounds: int, seed: int, threads: int):
    """(columns, pairs, top-k names) of a design with degree-2 products of the ``top_k`` best columns.

    ``candidates`` restricts the columns considered (None: all); they are ranked by LightGBM
    importance on a seeded sample of at most ``rank_rows`` rows. ``linear`` "all" keeps every
    candidate as a linear term (the top k first, since products are taken among the first k),
    "top" keeps only the top k.
    """
    pool = np.arange(x.shape[1]) if candidates is None else np.asarray(candidates)
    if not 1 <= top_k <= len(pool):
        raise ConfigError(f"train.top_k must be between 1 and the {len(pool)} candidate columns, got {top_k}")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(x), min(len(x), rank_rows), replace=False))
    order = pool[rank_by_lightgbm(x[pick][:, pool], y[pick], rank_rounds, seed, threads)]
    columns = order if linear == "all" else order[:top_k]
    return columns, all_pairs(top_k), [names[i] for i in order[:top_k]]


class RidgeFamily(PipelineFamily):
    """``ridge_var`` and ``ridge_poly``: one training path, two configs."""

    def __init__(self, name: str, config: type) -> None:
        self.name, self.config = name, config

    def train(self, config: RidgeConfig, train: SequenceSet, valid: SequenceSet, console) -> Trained:
        timer = Timer()
        seeds = seed_everything(config.seed)
        comp = train.competition
        k = comp.n_outputs
        poly = isinstance(config, RidgePolyConfig)
        steps = config.features.steps(comp.feature_columns) if poly else var_steps(config.lags)
        pipeline = fit_pipeline(steps, train, config.fit_sequences)
        rows = sample_rows(pipeline, train, config.sample_stride, config.seed)
        console.print(f"{self.name}: {len(rows)} rows x {pipeline.n_outputs} pipeline outputs in {timer():.0f} s")
        columns = pairs = ranking = None
        if poly:
            columns, pairs, ranking = rank_and_pair(pipeline.output_names, rows.x, rows.y, None, config.top_k,
                                                    config.linear, config.rank_rows, config.rank_rounds, config.seed,
                                                    config.threads)
            console.print(f"top {len(ranking)} by LightGBM importance: {', '.join(ranking)} ({timer():.0f} s)")
        width = pipeline.n_outputs if columns is None else len(columns)
        template = LinearHead(np.zeros((width + (0 if pairs is None else len(pairs)), k)), np.zeros(k), columns, pairs)
        folds = cv.folds_for(train, config.folds, config.seed, config.stratify_folds)
        row_fold = folds[rows.owner]
        n_folds = int(folds.max()) + 1
        alphas = [float(a) for a in config.alphas]
        stats = ridge.fold_stats(rows.x, rows.y, row_fold, template, n_folds)
        total = ridge.total_of(stats)
        models = {alpha: [(total - part).solve(alpha) for part in stats] for alpha in alphas}
        oof_by_alpha = ridge.out_of_fold(rows.x, row_fold, template, models)
        scores_by_alpha = {alpha: metrics.score(comp, rows.y, oof)[comp.metric] for alpha, oof in oof_by_alpha.items()}
        alpha = max(alphas, key=lambda a: scores_by_alpha[a])
        oof = oof_by_alpha[alpha]
        summary = cv.summarize(comp, rows.y, oof, row_fold, alpha=alpha, sample_stride=config.sample_stride,
                               oof_by_alpha={str(a): s for a, s in scores_by_alpha.items()})
        per_output = np.array([summary["oof_per_output"][name] for name in comp.prediction_names])
        guard = fit_guard(oof, rows.y, total.mean_y, per_output, config.guard_threshold, competition=comp)
        summary["oof_guarded"] = metrics.score(comp, rows.y, guard.apply_batch(oof.copy()))[comp.metric]
        console.print(f"cross-validated {len(alphas)} alpha(s) x {n_folds} folds, alpha {alpha:g} ({timer():.0f} s)")
        payload = oof_payload(train, rows, oof)
        head = LinearHead(*total.solve(alpha), columns, pairs)
        model = PipelineModel(comp, self.name, pipeline, {"kind": "linear"}, {**head.arrays("head/"), **guard.arrays()})
        record = {"config": to_dict(config), "cv": summary, "guard": describe(guard, comp.prediction_names),
                  "seeds": seeds, "top_k_features": ranking, "design_columns": int(head.coef.shape[0])}
        return Trained(model, record, payload)


RIDGE_VAR = RidgeFamily("ridge_var", RidgeVarConfig)
RIDGE_POLY = RidgeFamily("ridge_poly", RidgePolyConfig)
