"""The ``baseline`` family: current state, mean so far, EMA. Nothing is fitted.

Each rule is a feature transform followed by a fixed linear head, so a baseline is served,
evaluated and packaged exactly like a trained model. On A the rule applies to the 32 state
columns and predicts the next state. On B it applies to one signal column (default: the
best-level book imbalance from ``features.orderbook``) and that signal is returned for both
targets; a correlation metric needs only its sign and ordering.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models import artifacts
from models.data import SequenceSet
from models.evaluate import evaluate
from models.runtime import pipelines
from models.runtime.linear import LinearHead
from models.runtime.predictor import Guard, load
from models.training import Timer, base_record, read_config, seed_everything

DEFAULTS = {"rule": "mean_so_far", "alpha": 0.1, "column": "ob_imbalance0", "seed": 0}
RULES = ("current", "mean_so_far", "ema")
BOOK_PREFIX = "ob_"


def rule_step(rule: str, alpha: float) -> dict:
    """The transform of a rule: identity, expanding mean, or EMA with smoothing ``alpha``."""
    if rule == "current":
        return {"kind": "identity"}
    if rule == "mean_so_far":
        return {"kind": "rolling_moments", "outputs": [["mean", None]]}
    if rule == "ema":
        if not 0 < alpha <= 1:
            raise ValueError(f"EMA alpha must be in (0, 1], got {alpha}")
        return {"kind": "ema", "spans": [2.0 / alpha - 1.0]}
    raise ValueError(f"unknown baseline rule {rule!r}; use one of {RULES}")


def baseline_steps(competition, rule: str, alpha: float, column: str) -> list[dict]:
    """Pipeline steps of a baseline on ``competition`` (see the module docstring)."""
    step = rule_step(rule, alpha)
    if not competition.target_columns:  # A: the rule on every state column predicts the next state
        return [step]
    if column.startswith(BOOK_PREFIX):
        source = [{"kind": "order_book", "prefix": BOOK_PREFIX}, {"kind": "select", "columns": [column]}]
    elif column in competition.feature_columns:
        source = [{"kind": "select", "columns": [column]}]
    else:
        raise ValueError(f"baseline column {column!r} is neither a raw feature nor an order-book output ({BOOK_PREFIX}*)")
    return [{"kind": "chain", "steps": source + [step]}]


def train_solution(solution_dir: Path, manifest: dict, train: SequenceSet, valid: SequenceSet, console) -> dict:
    """Write a baseline solution (nothing to fit; the train score is reported beside valid)."""
    timer = Timer()
    config = read_config(manifest, DEFAULTS, "baseline")
    seeds = seed_everything(int(config["seed"]))
    comp = train.competition
    steps = baseline_steps(comp, config["rule"], float(config["alpha"]), str(config["column"]))
    pipeline = pipelines.build(comp.feature_columns, steps)
    width = pipeline.n_outputs
    coef = np.eye(width) if width == comp.n_outputs else np.ones((width, comp.n_outputs))
    head = LinearHead(coef, np.zeros(comp.n_outputs))
    files = artifacts.save_model(solution_dir, manifest, competition=comp.key, family="baseline",
                                 input_names=comp.feature_columns, output_names=comp.prediction_names,
                                 pipeline=pipeline, head={"kind": "linear"},
                                 arrays={**head.arrays("head/"), **Guard.none().arrays()})
    predictor = load(solution_dir)
    train_report = evaluate(predictor, train)
    console.print(f"baseline {config['rule']}: train {train_report['score']:.4f}")
    return base_record("baseline", config, timer(), evaluate(predictor, valid), None, files, solution_dir,
                                train_score=train_report["score"], seeds=seeds)
