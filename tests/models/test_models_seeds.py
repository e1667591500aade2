"""Seeds make two trainings identical: same artifacts, same scores."""

import json

import numpy as np
import pytest

from features.storage import load_fitted
from models.data import load_sequences
from models.registry import trainer

LINEAR = ["model.json", "pipeline.npz", "weights.npz"]
CASES = [
    ("ridge_poly", {"folds": 2, "top_k": 3, "rank_rounds": 5, "rank_rows": 2000, "alphas": [1e-4, 1e-2],
                    "sample_stride": 3, "steps": [{"kind": "identity"}, {"kind": "order_book"}]}, LINEAR),
    ("lightgbm", {"folds": 2, "rounds": 6, "early_stopping": 2, "max_fit_rows": 1500, "sample_stride": 2,
                  "params": {"min_data_in_leaf": 30, "num_leaves": 5, "bagging_fraction": 0.5,
                             "feature_fraction": 0.5},
                  "base": {"alpha": 1e-3}, "steps": [{"kind": "identity"}, {"kind": "order_book"}]},
     LINEAR + ["trees.txt"]),
]


@pytest.mark.parametrize("family,config,files", CASES, ids=[c[0] for c in CASES])
def test_two_trainings_with_one_seed_are_identical(family, config, files, tmp_path, quiet, b_generated):
    data = load_sequences(b_generated)
    records = []
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        manifest = {"competition": "B", "trained": True, "family": family, "train": config, "artifacts": files}
        (folder / "manifest.json").write_text(json.dumps(manifest))
        record = trainer(family)(folder, manifest, data.subset(np.arange(4)), data.subset(np.arange(4, 6)), quiet)
        record.pop("seconds")
        records.append(record)
    first, second = tmp_path / "first", tmp_path / "second"
    for name in files:
        if name == "pipeline.npz":  # written by features.storage: compare contents, not zip timestamps
            (spec_a, state_a), (spec_b, state_b) = load_fitted(first / name), load_fitted(second / name)
            assert spec_a == spec_b and state_a.keys() == state_b.keys()
        else:
            assert (first / name).read_bytes() == (second / name).read_bytes(), name
    oof_a, oof_b = records[0].pop("oof"), records[1].pop("oof")
    for key in oof_a:
        np.testing.assert_array_equal(oof_a[key], oof_b[key])
    assert records[0] == records[1]
