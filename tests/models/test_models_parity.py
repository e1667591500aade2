"""Offline evaluation equals the sandboxed online replay of the packaged solution, to 1e-9.

One case per family (A's 32-target tree file is covered in-process by the merge tests; the
sandbox replay is the slow part, so it runs once per family).
"""

import numpy as np
import pytest

from models import evaluate as evaluate_mod
from models.cli import main as models_main
from models.data import load_sequences
from models.evaluate import evaluate, package_and_replay, parity
from models.registry import train_solution
from models.runtime.predictor import load

LINEAR = ["model.json", "pipeline.npz", "weights.npz"]
TREES = LINEAR + ["trees.txt"]
TINY_TREES = {"folds": 2, "rounds": 8, "early_stopping": 3, "max_fit_rows": 5000,
              "params": {"min_data_in_leaf": 50, "num_leaves": 7}}

CASES = [
    ("a_ridge_var", "ridge_var", "A", {"lags": 4, "folds": 2, "alphas": [1e-3]}, LINEAR),
    ("b_ridge", "ridge_poly", "B", {"folds": 2, "top_k": 3, "rank_rounds": 5, "rank_rows": 3000, "alphas": [1e-3],
                                     "features": {"extra": [{"kind": "identity"}, {"kind": "order_book"},
                                                            {"kind": "ema", "spans": [5]}]}}, LINEAR),
    ("b_lightgbm", "lightgbm", "B", {**TINY_TREES, "base": {"alpha": 1e-3, "top_k": 2, "rank_rows": 2000,
                                                             "rank_rounds": 3},
                                     "weight": "abs_target", "tree_columns": "^ob_",
                                     "features": {"extra": [{"kind": "identity"}, {"kind": "order_book"}]}}, TREES),
]


@pytest.mark.parametrize("name,family,key,train,files", CASES, ids=[c[0] for c in CASES])
def test_offline_equals_online_replay(name, family, key, train, files, solution, quiet, a_random, b_generated,
                                     monkeypatch, capsys):
    path = a_random if key == "A" else b_generated
    data = load_sequences(path)
    fit, replay = data.subset(np.arange(4)), load_sequences(path, max_sequences=2)
    folder = solution(name, family, key, train, files)
    record = train_solution(folder, fit, replay, quiet).record
    offline = evaluate(load(folder), replay)
    online = package_and_replay(folder, path, sequences=2)
    result = parity(offline, online)
    assert result["max_abs_diff"] <= 1e-9, result
    assert abs(record["valid_score"] - online.score.headline) <= 1e-9  # the record reports what ships
    if key == "B":  # generated data: the oracle is scored beside the model, online and offline alike
        online_oracle, offline_oracle = online.score.oracle, offline["oracle"]
        assert abs(online_oracle["observable"] - offline_oracle["observable"]) <= 1e-12
        # one rule for the fraction: both sides divide their (equal) scores by the same oracle
        assert abs(online_oracle["fraction_of_observable"] - offline_oracle["fraction_of_observable"]) <= 1e-9
    # `parity` on the command line reads the same typed report (the replay itself is the one above)
    monkeypatch.setattr(evaluate_mod, "package_and_replay", lambda *args: online)
    capsys.readouterr()
    assert models_main(["parity", str(folder), "--data", str(path), "--sequences", "2"]) == 0
    assert f"{online.score.headline:.6f}" in capsys.readouterr().out


def test_streaming_form_equals_batch_form_row_by_row(solution, quiet, b_generated):
    folder = solution("b_lightgbm", "lightgbm", "B", {**TINY_TREES, "base": {"alpha": 1e-3},
                                                      "features": {"extra": [{"kind": "identity"},
                                                                             {"kind": "order_book"}]}}, TREES)
    data = load_sequences(b_generated)
    train_solution(folder, data.subset(np.arange(4)),
                   data.subset(np.arange(4, 6)), quiet)
    predictor = load(folder)
    batch = predictor.predict_sequences(data.features[4:6], data.scored)
    for s in range(2):
        predictor.reset()
        stream = []
        for row, need in zip(data.features[4 + s], data.scored):
            out = predictor.update(row.astype(np.float64), bool(need))  # a reused vector: copy it now
            if out is not None:
                stream.append(out.copy())
        np.testing.assert_allclose(np.array(stream), batch[s][data.scored], rtol=0, atol=1e-12)
