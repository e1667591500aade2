"""Ridge families: ``ridge_var`` (a VAR(p) on lagged raw values) and ``ridge_poly`` (degree-2
products of the top-k pipeline outputs, ranked by LightGBM importance).

The pipeline runs once over the train set (every ``sample_stride``-th scored step kept, float32).
Per-fold sufficient statistics are accumulated in one pass (``models.ridge``); the model without
fold f is the total minus fold f, solved in closed form, for every candidate ``alpha``. The alpha
with the best out-of-fold score is refitted on all folds and the weak-target guard is fitted on
its OOF predictions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness import metrics
from models import artifacts, cv, ridge
from models.data import SequenceSet
from models.evaluate import evaluate
from models.guard import describe, fit_guard
from models.runtime.linear import LinearHead, all_pairs
from models.runtime.predictor import load
from models.training import (Timer, base_record, fit_pipeline, oof_payload, read_config, sample_rows,
                             seed_everything)

COMMON_DEFAULTS = {
    "seed": 0,
    "folds": cv.DEFAULT_FOLDS,
    "alphas": [1e-6, 1e-5, 1e-4, 1e-3],
    "guard_threshold": 0.0,
    "sample_stride": 1,
    "fit_sequences": 256,
}
VAR_DEFAULTS = {**COMMON_DEFAULTS, "lags": 16}
POLY_DEFAULTS = {
    **COMMON_DEFAULTS,
    "steps": [{"kind": "identity"}],
    "top_k": 12,
    "linear": "all",
    "rank_rows": 100_000,
    "rank_rounds": 80,
    "threads": 1,
}


def var_steps(order: int) -> list[dict]:
    """Pipeline steps of a VAR(order) design: the current row and ``order - 1`` lags."""
    if order < 1:
        raise ValueError(f"a VAR order is at least 1, got {order}")
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
        raise ValueError(f"top_k must be between 1 and the {len(pool)} candidate columns, got {top_k}")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(x), min(len(x), rank_rows), replace=False))
    order = pool[rank_by_lightgbm(x[pick][:, pool], y[pick], rank_rounds, seed, threads)]
    if linear == "all":
        columns = order
    elif linear == "top":
        columns = order[:top_k]
    else:
        raise ValueError(f"'linear' must be \"all\" or \"top\", got {linear!r}")
    return columns, all_pairs(top_k), [names[i] for i in order[:top_k]]


def train_solution(solution_dir: Path, manifest: dict, train: SequenceSet, valid: SequenceSet, console) -> dict:
    """Train a ``ridge_var`` or ``ridge_poly`` solution (see the registry for the contract)."""
    timer = Timer()
    family = manifest.get("family", "ridge_var")
    config = read_config(manifest, VAR_DEFAULTS if family == "ridge_var" else POLY_DEFAULTS, family)
    seeds = seed_everything(int(config["seed"]))
    comp = train.competition
    k = comp.n_outputs
    steps = var_steps(int(config["lags"])) if family == "ridge_var" else list(config["steps"])
    pipeline = fit_pipeline(steps, train, int(config["fit_sequences"]))
    rows = sample_rows(pipeline, train, int(config["sample_stride"]), int(config["seed"]))
    console.print(f"{family}: {len(rows)} rows x {pipeline.n_outputs} pipeline outputs in {timer():.0f} s")
    columns = pairs = ranking = None
    if family == "ridge_poly":
        columns, pairs, ranking = rank_and_pair(pipeline.output_names, rows.x, rows.y, None, int(config["top_k"]),
                                                config["linear"], int(config["rank_rows"]), int(config["rank_rounds"]),
                                                int(config["seed"]), int(config["threads"]))
        console.print(f"top {len(ranking)} by LightGBM importance: {', '.join(ranking)} ({timer():.0f} s)")
    width = pipeline.n_outputs if columns is None else len(columns)
    template = LinearHead(np.zeros((width + (0 if pairs is None else len(pairs)), k)), np.zeros(k), columns, pairs)
    folds = cv.group_folds(train.seq_ix, int(config["folds"]), int(config["seed"]))
    row_fold = folds[rows.owner]
    n_folds = int(folds.max()) + 1
    alphas = [float(a) for a in config["alphas"]]
    stats = ridge.fold_stats(rows.x, rows.y, row_fold, template, n_folds)
    total = ridge.total_of(stats)
    models = {alpha: [(total - part).solve(alpha) for part in stats] for alpha in alphas}
    oof_by_alpha = ridge.out_of_fold(rows.x, row_fold, template, models)
    scores_by_alpha = {alpha: metrics.score(comp, rows.y, oof)[comp.metric] for alpha, oof in oof_by_alpha.items()}
    alpha = max(alphas, key=lambda a: scores_by_alpha[a])
    oof = oof_by_alpha[alpha]
    summary = cv.summarize(comp, rows.y, oof, row_fold, alpha=alpha, sample_stride=int(config["sample_stride"]),
                           oof_by_alpha={str(a): s for a, s in scores_by_alpha.items()})
    per_output = np.array([summary["oof_per_output"][name] for name in comp.prediction_names])
    guard = fit_guard(oof, rows.y, total.mean_y, per_output, float(config["guard_threshold"]))
    summary["oof_guarded"] = metrics.score(comp, rows.y, guard.apply_batch(oof.copy()))[comp.metric]
    console.print(f"cross-validated {len(alphas)} alpha(s) x {n_folds} folds, alpha {alpha:g} ({timer():.0f} s)")
    payload = oof_payload(train, rows, oof)
    del rows, oof_by_alpha
    head = LinearHead(*total.solve(alpha), columns, pairs)
    files = artifacts.save_model(solution_dir, manifest, competition=comp.key, family=family,
                                 input_names=comp.feature_columns, output_names=comp.prediction_names,
                                 pipeline=pipeline, head={"kind": "linear"},
                                 arrays={**head.arrays("head/"), **guard.arrays()})
    report = evaluate(load(solution_dir), valid)
    return base_record(family, config, timer(), report, summary, files, solution_dir, oof=payload,
                                guard=describe(guard, comp.prediction_names), seeds=seeds, top_k_features=ranking,
                                design_columns=int(head.coef.shape[0]))
