"""What ``models auto`` may try: one search space per family, and the feature choices.

A space is a function ``(trial, context) -> Candidate``: it asks an Optuna trial for the
family's main settings and returns the manifest's ``train`` object, the artifacts that family
writes and the ``solution.py`` that serves them. Every parameter name is prefixed with the
family's name, so conditional branches never share a distribution. A family in
``models.registry.FAMILIES`` joins the search by adding its space to ``SPACES``; families
without one (``baseline``) are not searched.

Feature choices are read from ``features.pipelines.PRESETS`` when the search starts: every
preset that builds on the competition's columns, plus ``raw`` (the raw columns alone), so a new
preset joins the search without a change here and the data, not a guess, decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from features import pipelines
from harness.competitions import Competition
from models.recurrent.config import LOSSES
from models.recurrent.serving import ARTIFACTS as RECURRENT_ARTIFACTS
from models.recurrent.serving import FEATURES as RECURRENT_FEATURES
from models.runtime.predictor import MODEL_FILE, PIPELINE_FILE, TREES_FILE, WEIGHTS_FILE

RAW = "raw"
"""The feature choice "the competition's raw columns, nothing derived"."""

ROW_BUDGET = 1_000_000
"""Sampled training rows the pipeline families keep at most (every k-th scored step), so a
trial's memory and time stay bounded on large train sets such as B's."""

EPOCH_SEQUENCES = 256
"""Train sequences a network sees per epoch: short epochs let early stopping and the time cap
act often on large train sets (an epoch is a random draw of this many sequences)."""

STOP_SEQUENCES = 256
"""Selection sequences a network is scored on after each epoch (its best epoch is chosen on
them); the trial's selection score still reads the whole selection part."""

TRAINING_TIME_SHARE = 0.8
"""Share of the search's minutes left that a network's epochs or a tree trial's boosting may
take: the rest is for its feature pipeline, export checks and the timing replay, so it ends
before the deadline cuts it."""

PIPELINE_SOLUTION = '''"""Chosen and trained by ``python -m models auto``: a feature pipeline and a head."""

from pathlib import Path

from models.runtime.predictor import load
from models.runtime.solution import SequenceModel


class PredictionModel(SequenceModel):
    def __init__(self):
        super().__init__(load(Path(__file__).resolve().parent))
'''

RECURRENT_SOLUTION = '''"""Chosen and trained by ``python -m models auto``: a recurrent network, stepped in numpy."""

from pathlib import Path

from models.recurrent.serving import load_runtime
from models.runtime.solution import SequenceModel


class PredictionModel(SequenceModel):
    def __init__(self):
        super().__init__(load_runtime(Path(__file__).resolve().parent, "numpy"))
'''


@dataclass(frozen=True)
class Context:
    """What a space may read: the competition, the data's size, the feature choices, the seed,
    and the minutes left in the search (a network's own time cap)."""

    competition: Competition
    train_sequences: int
    features: tuple[str, ...]
    seed: int = 0
    minutes_left: float = 30.0
    trial_minutes: float | None = None
    """At most this many minutes for a network's epochs (None: no cap but the minutes left); the
    search sets it to the time it keeps for the refit, so a chosen network's refit fits there."""

    @property
    def sample_stride(self) -> int:
        """Every how many scored steps a pipeline family keeps a row (``ROW_BUDGET``)."""
        rows = self.train_sequences * self.competition.scored_steps_per_sequence
        return max(1, math.ceil(rows / ROW_BUDGET))

    def folds(self, wanted: int) -> int:
        """``wanted`` cross-validation folds, fewer when there are fewer train sequences."""
        return max(2, min(wanted, self.train_sequences))


@dataclass(frozen=True)
class Candidate:
    """One trial's solution: the manifest's family, ``train`` and ``artifacts``, and solution.py."""

    family: str
    train: dict[str, Any]
    artifacts: list[str]
    solution: str = field(repr=False)

    def manifest(self, competition: Competition) -> dict[str, Any]:
        return {"competition": competition.key, "trained": True, "family": self.family, "train": self.train,
                "artifacts": self.artifacts}


def feature_choices(competition: Competition) -> tuple[str, ...]:
    """``raw`` and every preset of ``features.pipelines.PRESETS`` that builds on the columns.

    A preset that does not apply (an order-book preset on A's columns) refuses to build with a
    ValueError; anything else is a bug in the preset and is not hidden."""
    names = competition.feature_columns
    usable = []
    for name in sorted(pipelines.PRESETS):
        try:
            pipelines.build(names, pipelines.resolve(names, name))
        except ValueError:
            continue
        usable.append(name)
    return (RAW, *usable)


def _max_minutes(ctx: Context) -> float:
    """A trial's training cap (a network's epochs, a tree trial's boosting): a share of the
    minutes left, and at most the refit's reserve, so a chosen trial's refit fits there."""
    return round(max(0.05, min(TRAINING_TIME_SHARE * ctx.minutes_left, ctx.trial_minutes or math.inf)), 2)


def _pipeline_features(choice: str) -> dict[str, Any]:
    return {"extra": [{"kind": "identity"}]} if choice == RAW else {"preset": choice}


PIPELINE_FILES = [MODEL_FILE, PIPELINE_FILE, WEIGHTS_FILE]


def ridge_var(trial, ctx: Context) -> Candidate:
    """A VAR(p) ridge: the order p; the family cross-validates its alphas itself."""
    train = {"lags": trial.suggest_int("ridge_var.lags", 1, 32, log=True), "folds": ctx.folds(5),
             "alphas": [1e-6, 1e-5, 1e-4, 1e-3, 1e-2], "seed": ctx.seed, "sample_stride": ctx.sample_stride}
    return Candidate("ridge_var", train, list(PIPELINE_FILES), PIPELINE_SOLUTION)


def ridge_poly(trial, ctx: Context) -> Candidate:
    """A ridge on pipeline outputs plus products of the top k: features, k, linear terms."""
    train = {"features": _pipeline_features(trial.suggest_categorical("ridge_poly.features", ctx.features)),
             "top_k": trial.suggest_int("ridge_poly.top_k", 4, 24),
             "linear": trial.suggest_categorical("ridge_poly.linear", ["all", "top"]),
             "alphas": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1], "folds": ctx.folds(5), "seed": ctx.seed,
             "sample_stride": ctx.sample_stride, "rank_rows": 50_000}
    return Candidate("ridge_poly", train, list(PIPELINE_FILES), PIPELINE_SOLUTION)


def lightgbm(trial, ctx: Context) -> Candidate:
    """Trees on a pipeline, optionally on a ridge base: features, leaves, learning rate, leaf
    size, column sampling; rounds run until early stopping says the trees converged, within the
    same time cap as a network's epochs (A's 32 targets x folds on one core outlast a search)."""
    params = {"num_leaves": trial.suggest_int("lightgbm.num_leaves", 7, 63, log=True),
              "learning_rate": trial.suggest_float("lightgbm.learning_rate", 0.02, 0.2, log=True),
              "min_data_in_leaf": trial.suggest_int("lightgbm.min_data_in_leaf", 20, 1000, log=True),
              "feature_fraction": trial.suggest_float("lightgbm.feature_fraction", 0.3, 1.0)}
    train: dict[str, Any] = {
        "features": _pipeline_features(trial.suggest_categorical("lightgbm.features", ctx.features)),
        "params": params, "rounds": 1000, "early_stopping": 30, "folds": ctx.folds(3), "seed": ctx.seed,
        "sample_stride": ctx.sample_stride, "max_fit_rows": 100_000, "max_minutes": _max_minutes(ctx)}
    if trial.suggest_categorical("lightgbm.base", ["none", "ridge"]) == "ridge":
        train["base"] = {"alpha": 1e-4}
    if ctx.competition.target_columns:  # a metric weighted by |target| (B): the loss may be too
        weight = trial.suggest_categorical("lightgbm.weight", ["none", "abs_target"])
        train["weight"] = None if weight == "none" else weight
    return Candidate("lightgbm", train, PIPELINE_FILES + [TREES_FILE], PIPELINE_SOLUTION)


def gru(trial, ctx: Context) -> Candidate:
    """A stateful GRU/LSTM: size, depth, learning rate, input features, per-sequence scaling, a
    ridge skip, and for distinct targets (B) the loss, the metric's own Pearson loss included.
    Epochs run until early stopping on the selection part, within the minutes left."""
    choice = trial.suggest_categorical("gru.features", ctx.features)
    loss = trial.suggest_categorical("gru.loss", list(LOSSES)) if ctx.competition.target_columns else "mse"
    train: dict[str, Any] = {
        "cell": trial.suggest_categorical("gru.cell", ["gru", "lstm"]),
        "hidden": trial.suggest_int("gru.hidden", 16, 128, log=True),
        "layers": trial.suggest_int("gru.layers", 1, 2),
        "lr": trial.suggest_float("gru.lr", 5e-4, 5e-3, log=True),
        "seqnorm": {"enabled": trial.suggest_categorical("gru.seqnorm", [False, True])},
        "skip": trial.suggest_categorical("gru.skip", ["none", "ridge"]),
        "loss": {"name": loss}, "loss_steps": "scored", "chunk": 200, "batch_size": 32,
        "epochs": 200, "patience": 6, "plateau_patience": 2, "stop_on": "valid", "train_limit": 3000,
        "train_sequences": min(ctx.train_sequences, EPOCH_SEQUENCES), "stop_sequences": STOP_SEQUENCES,
        "max_minutes": _max_minutes(ctx),
        "seed": ctx.seed, "threads": 1}
    artifacts = [RECURRENT_ARTIFACTS["numpy"]]
    if choice != RAW:
        train["features"] = {"preset": choice}
        artifacts.append(RECURRENT_FEATURES)
    return Candidate("gru", train, artifacts, RECURRENT_SOLUTION)


SPACES: dict[str, Callable[[Any, Context], Candidate]] = {
    "ridge_var": ridge_var,
    "ridge_poly": ridge_poly,
    "lightgbm": lightgbm,
    "gru": gru,
}
"""Family name (as in ``models.registry.FAMILIES``) -> its search space."""

FIRST_TRIALS: dict[str, dict[str, Any]] = {
    "ridge_var": {"ridge_var.lags": 16},
    "gru": {"gru.features": RAW, "gru.cell": "gru", "gru.hidden": 64, "gru.layers": 1, "gru.lr": 2e-3,
            "gru.seqnorm": True, "gru.skip": "none", "gru.loss": "mse"},
    "lightgbm": {"lightgbm.features": RAW, "lightgbm.num_leaves": 15, "lightgbm.learning_rate": 0.08,
                 "lightgbm.min_data_in_leaf": 200, "lightgbm.feature_fraction": 0.5, "lightgbm.base": "ridge",
                 "lightgbm.weight": "abs_target"},
    "ridge_poly": {"ridge_poly.features": RAW, "ridge_poly.top_k": 12, "ridge_poly.linear": "all"},
}
"""Settings each family is tried with first (in this order, cheapest first), so a short search
has one sensible trial of each before the sampler explores; a family not searched is skipped."""


def searchable(families: list[str] | None = None) -> list[str]:
    """The families to search: ``families`` when given (each must have a space), else every
    family of the registry that has one, in the registry's order."""
    from models.config import ConfigError
    from models.registry import FAMILIES

    known = [name for name in FAMILIES if name in SPACES]
    if not families:
        return known
    unknown = [name for name in families if name not in known]
    if unknown:
        raise ConfigError(f"--families: {', '.join(unknown)} cannot be searched; use some of {', '.join(known)}")
    return list(dict.fromkeys(families))


def suggest(trial, ctx: Context, families: list[str]) -> Candidate:
    """The candidate of one trial: a family, then that family's settings."""
    name = trial.suggest_categorical("family", families)
    return SPACES[name](trial, ctx)


def first_trials(families: list[str], ctx: Context) -> list[dict[str, Any]]:
    """The parameters of the first trials (``FIRST_TRIALS``), for ``study.enqueue_trial``; keys
    of a space that does not ask them (B's loss on A) are dropped by Optuna itself."""
    out = []
    for name, params in FIRST_TRIALS.items():
        if name in families:
            chosen = {key: value for key, value in params.items()
                      if not key.endswith(".features") or value in ctx.features}
            out.append({"family": name, **chosen})
    return out


# -- the refit of a chosen trial ----------------------------------------------------------------------


def chosen_by_training(record: dict[str, Any]) -> dict[str, Any]:
    """What a trial's training chose itself that its refit repeats: a network's best epoch and
    the learning rate of each epoch up to it (its plateau schedule read the stopping set, which
    a refit no longer has). Empty for families that choose by their own CV on the data they fit."""
    if "best_epoch" not in record or not record.get("history"):
        return {}
    best = int(record["best_epoch"])
    return {"best_epoch": best, "epoch_lrs": [float(h["epoch_lr"]) for h in record["history"][:best]]}


def _refit_network(train: dict[str, Any], training: dict[str, Any], selection_sequences: int) -> dict[str, Any]:
    """The network's epochs at the chosen count and rates, without a stopping set; the refit
    data puts the selection sequences first, so ``train_limit`` grows by their number."""
    if not training.get("best_epoch"):
        raise ValueError("the trial's record has no best epoch to repeat")
    changed = {key: value for key, value in train.items() if key not in ("patience", "stop_sequences")}
    changed.update(stop_on="none", epochs=training["best_epoch"], lr_schedule=list(training["epoch_lrs"]),
                   converge=False)
    if changed.get("train_limit") is not None:
        changed["train_limit"] += selection_sequences
    return changed


REFITS: dict[str, Callable[[dict[str, Any], dict[str, Any], int], dict[str, Any]]] = {"gru": _refit_network}
"""Family -> how its refit's ``train`` block differs from the searched one. A family not listed
refits with its searched settings on the larger data (its own CV chooses alphas or tree counts
there, on sequences the report part never joins)."""


def refit_candidate(searched: dict[str, Any], training: dict[str, Any], ctx: Context,
                    selection_sequences: int) -> Candidate:
    """The candidate a chosen trial is refitted as: its space asked again with the values the
    sampler chose (so settings sized by the data, such as row strides and sequences per epoch,
    follow the refit data's ``ctx.train_sequences``), then its family's ``REFITS`` change."""
    import optuna

    trial = optuna.trial.FixedTrial(searched)
    candidate = SPACES[searched["family"]](trial, ctx)
    change = REFITS.get(candidate.family)
    if change is None:
        return candidate
    return Candidate(candidate.family, change(candidate.train, training, selection_sequences), candidate.artifacts,
                     candidate.solution)
