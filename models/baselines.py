"""The ``baseline`` family: current state, mean so far, EMA. Nothing is fitted.

Each rule is a feature transform followed by a fixed linear head, so a baseline is served,
evaluated and packaged exactly like a trained model. On A the rule applies to the 32 state
columns and predicts the next state. On B it applies to one signal column (default: the
best-level book imbalance from ``features.orderbook``) and that signal is returned for both
targets; a correlation metric needs only its sign and ordering.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.artifacts import PipelineFamily, PipelineModel
from models.config import ConfigError, build_pipeline, require, to_dict
from models.data import SequenceSet
from models.evaluate import evaluate
from models.family import Trained
from models.runtime.linear import LinearHead
from models.runtime.predictor import Guard, Predictor
from models.training import seed_everything

RULES = ("current", "mean_so_far", "ema")
BOOK_PREFIX = "ob_"


@dataclass
class BaselineConfig:
    """``rule`` over the state (A) or over one signal ``column`` (B); ``alpha``: the EMA's smoothing."""

    rule: str = "mean_so_far"
    alpha: float = 0.1
    column: str = "ob_imbalance0"
    seed: int = 0

    def __post_init__(self) -> None:
        require(self.rule in RULES, "rule", f"unknown baseline rule {self.rule!r}; use one of {RULES}")
        require(self.rule != "ema" or 0 < self.alpha <= 1, "alpha", f"EMA alpha must be in (0, 1], got {self.alpha}")


def rule_step(rule: str, alpha: float) -> dict:
    """The transform of a rule: identity, expanding mean, or EMA with smoothing ``alpha``."""
    if rule == "current":
        return {"kind": "identity"}
    if rule == "mean_so_far":
        return {"kind": "rolling_moments", "outputs": [["mean", None]]}
    return {"kind": "ema", "spans": [2.0 / alpha - 1.0]}


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
        raise ConfigError(f"train.column: baseline column {column!r} is neither a raw feature nor an order-book output ({BOOK_PREFIX}*)")
    return [{"kind": "chain", "steps": source + [step]}]


class BaselineFamily(PipelineFamily):
    name = "baseline"
    config = BaselineConfig

    def train(self, config: BaselineConfig, train: SequenceSet, valid: SequenceSet, console) -> Trained:
        """Nothing to fit; the train score is recorded beside valid."""
        seeds = seed_everything(config.seed)
        comp = train.competition
        pipeline = build_pipeline(comp.feature_columns, baseline_steps(comp, config.rule, config.alpha, config.column))
        width = pipeline.n_outputs
        coef = np.eye(width) if width == comp.n_outputs else np.ones((width, comp.n_outputs))
        head = LinearHead(coef, np.zeros(comp.n_outputs))
        train_score = evaluate(Predictor(pipeline, head, Guard.none(), comp.prediction_names), train)["score"]
        console.print(f"baseline {config.rule}: train {train_score:.4f}")
        model = PipelineModel(comp, self.name, pipeline, {"kind": "linear"},
                              {**head.arrays("head/"), **Guard.none().arrays()})
        return Trained(model, {"config": to_dict(config), "train_score": train_score, "seeds": seeds})


FAMILY = BaselineFamily()
