"""The weak-target guard shrinks a planted useless target toward its mean and leaves a good one alone."""

import json

import numpy as np

from harness import competitions as C, metrics
from models.data import SequenceSet
from models.guard import fit_guard
from models.registry import train_solution
from models.runtime.predictor import load


def test_useless_target_is_shrunk_and_good_target_untouched():
    rng = np.random.default_rng(0)
    p = rng.standard_normal((5000, 2))
    y = np.column_stack([p[:, 0] + 0.3 * rng.standard_normal(5000), 2.0 + rng.standard_normal(5000)])
    scores = metrics.r2_per_column(y, p)
    guard = fit_guard(p, y, train_mean=np.array([0.0, 2.0]), scores=scores, threshold=0.05, competition=C.A)
    assert list(guard.index) == [1]
    assert 0.0 <= guard.scale[0] < 0.05 and guard.mean[0] == 2.0
    shrunk = guard.apply_batch(p.copy())
    np.testing.assert_array_equal(shrunk[:, 0], p[:, 0])  # bit-identical
    assert metrics.r2_per_column(y, shrunk)[1] > scores[1]
    row = p[7].copy()
    np.testing.assert_allclose(guard.apply_row(row), shrunk[7], rtol=0, atol=1e-15)


def _planted_set(n_sequences: int, seed: int) -> SequenceSet:
    """A data: feature 0 is a strong AR(1) (its next value is predictable), the rest white noise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_sequences, 1000, C.A.n_features)).astype(np.float32)
    for t in range(1, 1000):
        x[:, t, 0] = 0.9 * x[:, t - 1, 0] + 0.3 * rng.standard_normal(n_sequences)
    targets = np.full_like(x, np.nan)
    targets[:, :-1] = x[:, 1:]
    return SequenceSet(C.A, np.arange(n_sequences), x, targets)


def test_training_guards_the_planted_noise_features_only(tmp_path, quiet):
    folder = tmp_path / "planted"
    folder.mkdir()
    manifest = {"competition": "A", "trained": True, "family": "ridge_var",
                "train": {"lags": 2, "folds": 2, "alphas": [1e-3], "guard_threshold": 0.05},
                "artifacts": ["model.json", "pipeline.npz", "weights.npz"]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    record = train_solution(folder, _planted_set(6, 1), _planted_set(2, 2), quiet).record
    guard = load(folder).guard
    assert 0 not in set(guard.index) and len(guard.index) == C.A.n_features - 1
    assert set(record["guard"]) == {str(i) for i in range(1, C.A.n_features)}
    assert record["per_output"]["0"] > 0.5


def test_for_weighted_pearson_only_a_negative_output_is_replaced_and_nothing_is_shrunk():
    rng = np.random.default_rng(3)
    y = rng.standard_normal((4000, 2))
    p = np.column_stack([-0.2 * y[:, 0] + rng.standard_normal(4000),  # anti-correlated
                         0.05 * y[:, 1] + rng.standard_normal(4000)])  # weak but positive
    scores = np.array([metrics.weighted_pearson(y[:, k], p[:, k]) for k in range(2)])
    assert scores[0] < 0 < scores[1]
    guard = fit_guard(p, y, train_mean=np.array([0.1, -0.1]), scores=scores, threshold=0.5, competition=C.B)
    assert list(guard.index) == [0] and list(guard.scale) == [0.0]  # replaced by the mean, not shrunk
    guarded = guard.apply_batch(p.copy())
    np.testing.assert_array_equal(guarded[:, 1], p[:, 1])  # a positive correlation is left alone
    assert abs(metrics.weighted_pearson(y[:, 0], guarded[:, 0])) < 1e-9 < -scores[0]
    # the same outputs under R² are shrunk by a fitted factor instead
    shrunk = fit_guard(p, y, train_mean=np.array([0.1, -0.1]), scores=scores, threshold=0.5, competition=C.A)
    assert list(shrunk.index) == [0, 1] and 0 < shrunk.scale[1] < 1
