"""Per-target LightGBM models merged into one file predict exactly what each model predicts."""

import lightgbm as lgb
import numpy as np
import pytest

from models.runtime.trees import TreeHead, _FastRow
from models.tree_merge import merge_models

PARAMS = {"objective": "regression", "num_leaves": 7, "min_data_in_leaf": 20, "verbose": -1, "num_threads": 1,
          "deterministic": True, "seed": 0}


@pytest.fixture(scope="module")
def models():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 6))
    labels = [x[:, 0] + np.sin(x[:, 1]), np.full(600, 3.0), x[:, 2] * x[:, 3]]
    dataset = lgb.Dataset(x, label=labels[0], params={"verbose": -1}, free_raw_data=False).construct()
    boosters = []
    for rounds, label in zip((12, 3, 7), labels):  # unequal lengths; one constant target (a one-leaf tree)
        dataset.set_label(label)
        boosters.append(lgb.train(PARAMS, dataset, rounds))
    return x, boosters


def test_merged_raw_scores_equal_each_model(models, tmp_path):
    x, boosters = models
    merged = merge_models([b.model_to_string() for b in boosters])
    path = tmp_path / "trees.txt"
    path.write_text(merged)
    head = TreeHead(path, n_outputs=3)
    expected = np.column_stack([b.predict(x, raw_score=True) for b in boosters])
    # Exact by construction: LightGBM sums a row's tree outputs one tree at a time in iteration
    # order, merged or not (the padding trees add 0.0), whatever the batch shape.
    np.testing.assert_array_equal(head.predict_batch(x), expected)
    for row in x[:20]:
        np.testing.assert_array_equal(head.predict_row(row), head.predict_batch(row[None])[0])


def test_prepared_single_row_path_equals_booster_predict(models, tmp_path):
    x, boosters = models
    (tmp_path / "t.txt").write_text(merge_models([b.model_to_string() for b in boosters]))
    booster = lgb.Booster(model_file=str(tmp_path / "t.txt"))
    fast = _FastRow(booster, x.shape[1], 3)
    for row in x[:20]:
        # Same library, same trees, same per-row summation order: exact by construction.
        np.testing.assert_array_equal(fast.predict(row), booster.predict(row[None], raw_score=True)[0])


def test_models_on_different_features_are_refused(models):
    x, boosters = models
    other = lgb.train(PARAMS, lgb.Dataset(x[:, :4], label=x[:, 0], params={"verbose": -1}), 2)
    with pytest.raises(ValueError, match="different features"):
        merge_models([boosters[0].model_to_string(), other.model_to_string()])


def test_head_refuses_a_file_with_the_wrong_number_of_outputs(models, tmp_path):
    _, boosters = models
    (tmp_path / "t.txt").write_text(merge_models([b.model_to_string() for b in boosters[:2]]))
    with pytest.raises(ValueError, match="one per output"):
        TreeHead(tmp_path / "t.txt", n_outputs=3)
