"""Seeds make two trainings identical: byte-identical artifacts, the same OOF predictions and record."""

import json

import numpy as np
import pytest

from models.data import load_sequences
from models.registry import train_solution

LINEAR = ["model.json", "pipeline.npz", "weights.npz"]
CASES = [
    ("ridge_var", "A", {"lags": 3, "folds": 2, "alphas": [1e-4, 1e-2]}, LINEAR),
    ("ridge_poly", "B", {"folds": 2, "top_k": 3, "rank_rounds": 5, "rank_rows": 2000, "alphas": [1e-4, 1e-2],
                         "sample_stride": 3, "features": {"preset": "b_book"}}, LINEAR),
    ("lightgbm", "B", {"folds": 2, "rounds": 6, "early_stopping": 2, "max_fit_rows": 1500, "sample_stride": 2,
                       "params": {"min_data_in_leaf": 30, "num_leaves": 5, "bagging_fraction": 0.5,
                                  "feature_fraction": 0.5},
                       "base": {"alpha": 1e-3}, "features": {"extra": [{"kind": "identity"}, {"kind": "order_book"}]}},
     LINEAR + ["trees.txt"]),
]


@pytest.mark.parametrize("family,key,config,files", CASES, ids=[c[0] for c in CASES])
def test_two_trainings_with_one_seed_are_identical(family, key, config, files, tmp_path, quiet, a_random,
                                                   b_generated):
    data = load_sequences(a_random if key == "A" else b_generated)
    trained = []
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        manifest = {"competition": key, "trained": True, "family": family, "train": config, "artifacts": files}
        (folder / "manifest.json").write_text(json.dumps(manifest))
        trained.append(train_solution(folder, data.subset(np.arange(4)), data.subset(np.arange(4, 6)),
                                      quiet))
    first, second = tmp_path / "first", tmp_path / "second"
    for name in files:  # every file, pipeline.npz included, is written byte for byte the same
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    for key_ in trained[0].oof:
        np.testing.assert_array_equal(trained[0].oof[key_], trained[1].oof[key_])
    assert trained[0].record == trained[1].record
    third = tmp_path / "third"
    third.mkdir()
    manifest = {"competition": key, "trained": True, "family": family, "train": dict(config, seed=1),
                "artifacts": files}
    (third / "manifest.json").write_text(json.dumps(manifest))
    other = train_solution(third, data.subset(np.arange(4)), data.subset(np.arange(4, 6)), quiet)
    assert other.record["cv"]["fold_scores"] != trained[0].record["cv"]["fold_scores"], \
        "another seed draws other folds; if it did not, this test would prove nothing"
