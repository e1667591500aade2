"""The ``lightgbm`` family's time cap: boosting stops at the cap, keeping the trees it has."""

import numpy as np

from models.boosting import FAMILY, LightGBMConfig
from models.data import load_sequences

SLOW = {"learning_rate": 0.001, "num_leaves": 7, "min_data_in_leaf": 20}
"""A learning rate so small that early stopping never ends a booster within its rounds."""


def _train(b_generated, quiet, **settings):
    data = load_sequences(b_generated)
    config = LightGBMConfig(folds=2, max_fit_rows=2000, early_stopping=5000, params=SLOW, **settings)
    return FAMILY.train(config, data.subset(np.arange(4)), data.subset(np.arange(4, 6)), quiet)


def test_a_time_cap_stops_boosting_and_says_so(b_generated, quiet):
    capped = _train(b_generated, quiet, rounds=100_000, max_minutes=0.01)
    assert capped.record["stopped_by"] == "time budget"
    assert capped.record["boosters_cut"] == 6  # 2 targets x (2 folds + the final model)
    trees = capped.record["trees_per_target"]
    assert 0 < min(trees.values()) and max(trees.values()) < 100_000


def test_without_a_cap_no_booster_is_cut(b_generated, quiet):
    free = _train(b_generated, quiet, rounds=30)
    assert free.record["stopped_by"] == "early stopping" and free.record["boosters_cut"] == 0
