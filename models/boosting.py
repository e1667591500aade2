"""The ``lightgbm`` family: one LightGBM model per target on a feature pipeline, optionally on top
of a ridge base (the trees then fit what the ridge leaves), merged into one model file.

Rows: the pipeline runs over every train sequence once; every ``sample_stride``-th scored step
(random phase) of every sequence is kept, so every sequence has rows and out-of-fold predictions.
Cross-validation is grouped by sequence: for fold f, the base ridge and the trees are fitted on
the other folds (at most ``max_fit_rows`` rows, early stopping on a held-out eighth of their
sequences) and predict fold f. The final model is refitted on all folds, each target with the
mean of its folds' best iteration counts. The weak-target guard is fitted on the OOF predictions.

``max_minutes`` caps the whole training, as a network's epochs are capped: each booster (targets
x (folds + 1)) may boost until an even share of the minutes left ends, so boosters that stop
early leave time to the next ones; a booster cut there keeps the trees it has, and the record
says ``stopped_by: time budget``. Without it 32 targets on one core can outlast a search.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np

from harness import metrics
from models import cv, ridge
from models.artifacts import PipelineFamily, PipelineModel
from models.config import ConfigError, FeaturesConfig, require, to_dict
from models.data import SequenceSet
from models.family import Trained
from models.guard import describe, fit_guard
from models.linear import rank_and_pair
from models.runtime.linear import LinearHead
from models.training import Timer, fit_pipeline, oof_payload, sample_rows, seed_everything
from models.tree_merge import merge_models

DEFAULT_PARAMS = {
    "objective": "regression",
    "learning_rate": 0.08,
    "num_leaves": 15,
    "min_data_in_leaf": 200,
    "feature_fraction": 0.5,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_bin": 63,
}
WEIGHTS = (None, "abs_target")


@dataclass
class BaseConfig:
    """The ridge under the trees: on the pipeline outputs matching ``columns`` (a regex; None:
    all), with products of the ``top_k`` best of them when ``top_k`` > 0 (as ``ridge_poly``)."""

    columns: str | None = None
    alpha: float = 1e-5
    top_k: int = 0
    rank_rows: int = 100_000
    rank_rounds: int = 80


@dataclass
class LightGBMConfig:
    """``tree_columns``: a regex over pipeline outputs the trees read (None: all); ``params``
    override ``DEFAULT_PARAMS``; ``weight`` "abs_target" weighs rows by |target| (B's metric)."""

    seed: int = 0
    folds: int = cv.DEFAULT_FOLDS
    stratify_folds: str | None = None
    features: FeaturesConfig = field(default_factory=lambda: FeaturesConfig(extra=[{"kind": "identity"}]))
    tree_columns: str | None = None
    base: BaseConfig | None = None
    sample_stride: int = 1
    max_fit_rows: int = 100_000
    rounds: int = 300
    early_stopping: int = 30
    params: dict = field(default_factory=dict)
    guard_threshold: float = 0.0
    threads: int = 1
    fit_sequences: int = 256
    weight: str | None = None
    max_minutes: float | None = None

    def __post_init__(self) -> None:
        cv.check_stratify(self.stratify_folds)
        require(self.weight in WEIGHTS, "weight", f"must be one of {WEIGHTS}, got {self.weight!r}")
        require(self.max_minutes is None or self.max_minutes > 0, "max_minutes",
                f"must be positive (or absent: no cap), got {self.max_minutes!r}")


class TimeShare:
    """``seconds`` (from ``started``, a ``time.monotonic()``; None: unlimited) split over ``parts``
    boosters as each starts: a booster may run until an even share of what is left has passed."""

    def __init__(self, seconds: float | None, parts: int, started: float) -> None:
        self.end = None if seconds is None else started + seconds
        self.parts_left = parts
        self.cut = 0
        """Boosters stopped by their share, not by early stopping or their round count."""

    def next_deadline(self) -> float | None:
        if self.end is None:
            return None
        now = time.monotonic()
        share = max(0.0, self.end - now) / max(1, self.parts_left)
        self.parts_left -= 1
        return now + share

    def callback(self, deadline: float):
        """A LightGBM callback that ends boosting, keeping the trees so far, once ``deadline`` passed."""
        import lightgbm as lgb

        def stop_at_deadline(env) -> None:
            if time.monotonic() > deadline:
                self.cut += 1
                raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list or [])

        stop_at_deadline.order = 40  # after early stopping (30), which may already have ended the booster
        return stop_at_deadline


def select_columns(names: tuple[str, ...], pattern: str | None) -> np.ndarray:
    """Positions of the pipeline outputs whose name matches ``pattern`` (a regex; None: all)."""
    if pattern is None:
        return np.arange(len(names))
    regex = re.compile(pattern)
    chosen = np.array([i for i, name in enumerate(names) if regex.search(name)], dtype=np.intp)
    if not len(chosen):
        raise ConfigError(f"no pipeline output matches {pattern!r}; outputs look like {list(names[:6])}")
    return chosen


class TargetTrainer:
    """Fits one booster per target on a fixed set of rows (the data is binned once per fit set)."""

    def __init__(self, config: LightGBMConfig, tree_columns: np.ndarray, clock: TimeShare | None = None) -> None:
        self.clock = clock or TimeShare(None, 0, 0.0)
        self.params = {**DEFAULT_PARAMS, **config.params, "verbose": -1, "seed": config.seed,
                       "num_threads": config.threads, "deterministic": True, "force_row_wise": True}
        self.rounds = config.rounds
        self.weighted = config.weight == "abs_target"
        self.patience = config.early_stopping
        self.columns = tree_columns

    def fit(self, x, y, base, fit_rows, stop_rows=None, rounds=None) -> list:
        """Boosters (one per target) on ``fit_rows``; early stopping on ``stop_rows`` when given."""
        import lightgbm as lgb

        xf = x[fit_rows][:, self.columns]
        train = lgb.Dataset(xf, label=y[fit_rows, 0], init_score=base[fit_rows, 0], free_raw_data=False,
                            params={"max_bin": self.params["max_bin"], "verbose": -1}).construct()
        stop = None
        if stop_rows is not None:
            stop = lgb.Dataset(x[stop_rows][:, self.columns], label=y[stop_rows, 0],
                               init_score=base[stop_rows, 0], reference=train, free_raw_data=False,
                               params={"max_bin": self.params["max_bin"], "verbose": -1}).construct()
        boosters = []
        for k in range(y.shape[1]):
            train.set_label(y[fit_rows, k])
            train.set_init_score(base[fit_rows, k])
            if self.weighted:  # B's metric weighs a row by |target|: so does the loss
                train.set_weight(np.maximum(np.abs(y[fit_rows, k]), 1e-8))
            callbacks = []
            deadline = self.clock.next_deadline()
            if deadline is not None:
                callbacks.append(self.clock.callback(deadline))
            if stop is not None:
                stop.set_label(y[stop_rows, k])
                stop.set_init_score(base[stop_rows, k])
                if self.weighted:
                    stop.set_weight(np.maximum(np.abs(y[stop_rows, k]), 1e-8))
                callbacks.append(lgb.early_stopping(self.patience, verbose=False))
            n_rounds = self.rounds if rounds is None else max(1, int(rounds[k]))
            booster = lgb.train(self.params, train, n_rounds, valid_sets=[stop] if stop is not None else None,
                                callbacks=callbacks)
            if stop is not None and booster.best_iteration > 0:
                booster = _truncated(booster, booster.best_iteration)
            boosters.append(booster)
        return boosters


def _truncated(booster, iterations: int):
    """A booster keeping only its first ``iterations`` trees (so the saved file is what was validated)."""
    import lightgbm as lgb

    return lgb.Booster(model_str=booster.model_to_string(num_iteration=iterations))


def predict_trees(boosters: list, x: np.ndarray, rows: np.ndarray, columns: np.ndarray, threads: int) -> np.ndarray:
    out = np.empty((len(rows), len(boosters)))
    for start in range(0, len(rows), 262144):
        part = rows[start : start + 262144]
        chosen = x[part][:, columns].astype(np.float64)
        for k, booster in enumerate(boosters):
            out[start : start + len(part), k] = booster.predict(chosen, raw_score=True, num_threads=threads)
    return out


def _subsample(rows: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    return rows if len(rows) <= limit else np.sort(rng.choice(rows, limit, replace=False))


def ridge_bases(base_config: BaseConfig | None, names: tuple[str, ...], rows, row_fold: np.ndarray, n_folds: int,
                config: LightGBMConfig, console, timer: Timer):
    """(final base head or None, base predictions per fold on every row, final base predictions on every row).

    With ``top_k`` > 0 the base is a ``ridge_poly`` design (products of the top k columns).
    """
    k = rows.y.shape[1]
    if base_config is None:
        zeros = np.zeros((len(rows), k))
        return None, [zeros] * n_folds, zeros
    columns = None if base_config.columns is None else select_columns(names, base_config.columns)
    pairs = None
    if base_config.top_k > 0:
        columns, pairs, ranking = rank_and_pair(names, rows.x, rows.y, columns, base_config.top_k, "all",
                                                base_config.rank_rows, base_config.rank_rounds, config.seed,
                                                config.threads)
        console.print(f"base products among: {', '.join(ranking)} ({timer():.0f} s)")
    width = len(names) if columns is None else len(columns)
    template = LinearHead(np.zeros((width + (0 if pairs is None else len(pairs)), k)), np.zeros(k), columns, pairs)
    stats = ridge.fold_stats(rows.x, rows.y, row_fold, template, n_folds)
    total = ridge.total_of(stats)
    alpha = float(base_config.alpha)
    heads = [LinearHead(*(total - part).solve(alpha), columns, pairs) for part in stats]
    base = LinearHead(*total.solve(alpha), columns, pairs)
    *per_fold, final = ridge.predict_all(heads + [base], rows.x)
    console.print(f"ridge bases fitted ({template.coef.shape[0]} design columns), {timer():.0f} s")
    return base, per_fold, final


def cross_validate_trees(trainer: TargetTrainer, rows, row_fold: np.ndarray, fold_bases: list[np.ndarray],
                         config: LightGBMConfig, rng: np.random.Generator, console, timer: Timer):
    """(OOF predictions, OOF base-only predictions, trees per target per fold)."""
    k = rows.y.shape[1]
    oof = np.full((len(rows), k), np.nan)
    oof_base = np.zeros((len(rows), k))
    best_rounds = []
    limit = config.max_fit_rows
    for f in range(len(fold_bases)):
        held = np.flatnonzero(row_fold == f)
        others = np.flatnonzero(row_fold != f)
        sequences = np.unique(rows.owner[others])
        stop_sequences = rng.choice(sequences, max(1, len(sequences) // 8), replace=False)
        is_stop = np.isin(rows.owner[others], stop_sequences)
        fit_rows = _subsample(others[~is_stop], limit, rng)
        stop_rows = _subsample(others[is_stop], max(1, limit // 2), rng)
        boosters = trainer.fit(rows.x, rows.y, fold_bases[f], fit_rows, stop_rows)
        best_rounds.append([b.num_trees() for b in boosters])
        oof_base[held] = fold_bases[f][held]
        oof[held] = oof_base[held] + predict_trees(boosters, rows.x, held, trainer.columns, config.threads)
        console.print(f"fold {f + 1}: {np.mean(best_rounds[-1]):.0f} trees per target on average, {timer():.0f} s")
    return oof, oof_base, best_rounds


class LightGBMFamily(PipelineFamily):
    name = "lightgbm"
    config = LightGBMConfig

    def train(self, config: LightGBMConfig, train: SequenceSet, valid: SequenceSet, console) -> Trained:
        timer, started = Timer(), time.monotonic()
        seeds = seed_everything(config.seed)
        rng = np.random.default_rng(config.seed)
        comp = train.competition
        pipeline = fit_pipeline(config.features.steps(comp.feature_columns), train, config.fit_sequences)
        names = pipeline.output_names
        tree_columns = select_columns(names, config.tree_columns)
        rows = sample_rows(pipeline, train, config.sample_stride, config.seed)
        console.print(f"lightgbm: {len(rows)} rows x {len(names)} pipeline outputs (trees read {len(tree_columns)}) "
                      f"in {timer():.0f} s")
        folds = cv.folds_for(train, config.folds, config.seed, config.stratify_folds)
        boosters_to_fit = comp.n_outputs * (int(folds.max()) + 2)  # each fold's, then the final model's
        clock = TimeShare(None if config.max_minutes is None else config.max_minutes * 60, boosters_to_fit, started)
        trainer = TargetTrainer(config, tree_columns, clock)
        row_fold = folds[rows.owner]
        base, fold_bases, final_base = ridge_bases(config.base, names, rows, row_fold, int(folds.max()) + 1, config,
                                                   console, timer)
        oof, oof_base, best_rounds = cross_validate_trees(trainer, rows, row_fold, fold_bases, config, rng, console,
                                                          timer)
        summary = cv.summarize(comp, rows.y, oof, row_fold, sample_stride=config.sample_stride,
                               oof_base_only=None if base is None else metrics.score(comp, rows.y, oof_base)[comp.metric])
        per_output = np.array([summary["oof_per_output"][name] for name in comp.prediction_names])
        guard = fit_guard(oof, rows.y, rows.y.mean(axis=0), per_output, config.guard_threshold, competition=comp)
        summary["oof_guarded"] = metrics.score(comp, rows.y, guard.apply_batch(oof.copy()))[comp.metric]
        rounds = np.maximum(1, np.rint(np.mean(best_rounds, axis=0))).astype(int)
        fit_rows = _subsample(np.arange(len(rows)), config.max_fit_rows, rng)
        boosters = trainer.fit(rows.x, rows.y, final_base, fit_rows, rounds=rounds)
        trees = [b.num_trees() for b in boosters]  # fewer than ``rounds`` where the time budget cut
        console.print(f"final model: {sum(trees)} trees, {timer():.0f} s")
        payload = oof_payload(train, rows, oof)
        arrays = {**guard.arrays(), "trees/columns": tree_columns}
        if base is not None:
            arrays.update(base.arrays("base/"))
        model = PipelineModel(comp, self.name, pipeline, {"kind": "trees", "base": base is not None}, arrays,
                              merge_models([b.model_to_string() for b in boosters]))
        record = {"config": to_dict(config), "cv": summary, "guard": describe(guard, comp.prediction_names),
                  "seeds": seeds, "trees_per_target": dict(zip(comp.prediction_names, trees)),
                  "tree_inputs": int(len(tree_columns)),
                  "stopped_by": "time budget" if clock.cut else "early stopping", "boosters_cut": clock.cut}
        if clock.cut:
            console.print(f"time budget: {clock.cut} of {boosters_to_fit} boosters stopped at their share of "
                          f"{config.max_minutes:g} min, keeping their trees so far")
        return Trained(model, record, payload)


FAMILY = LightGBMFamily()
