"""Folds are whole sequences, balanced, and fixed by the seed."""

import numpy as np
import pytest

from harness import competitions as C
from models.cv import group_folds, summarize
from models.data import load_sequences
from features import pipelines
from models.training import sample_rows


def test_every_sequence_is_in_exactly_one_fold_and_folds_are_balanced():
    seq_ix = np.random.default_rng(0).permutation(103)
    folds = group_folds(seq_ix, 5, seed=1)
    assert folds.shape == seq_ix.shape and set(folds) == set(range(5))
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 1


def test_sequences_sharing_a_seq_ix_share_a_fold():
    seq_ix = np.array([4, 9, 4, 2, 9, 7, 2, 4, 1, 3])
    folds = group_folds(seq_ix, 3, seed=0)
    for value in np.unique(seq_ix):
        assert len(set(folds[seq_ix == value])) == 1


def test_the_seed_fixes_the_folds():
    seq_ix = np.arange(50)
    assert np.array_equal(group_folds(seq_ix, 5, seed=3), group_folds(seq_ix, 5, seed=3))
    assert not np.array_equal(group_folds(seq_ix, 5, seed=3), group_folds(seq_ix, 5, seed=4))


@pytest.mark.parametrize("n_folds,count", [(1, 10), (6, 5)])
def test_impossible_fold_counts_are_refused(n_folds, count):
    with pytest.raises(ValueError, match="fold"):
        group_folds(np.arange(count), n_folds)


def test_rows_of_one_sequence_never_straddle_folds(a_random):
    data = load_sequences(a_random)
    pipeline = pipelines.build(C.A.feature_columns, [{"kind": "identity"}])
    rows = sample_rows(pipeline, data, stride=7, seed=0)
    row_fold = group_folds(data.seq_ix, 3, seed=0)[rows.owner]
    for owner in np.unique(rows.owner):
        assert len(set(row_fold[rows.owner == owner])) == 1
    assert set(rows.owner) == set(range(len(data)))  # every sequence has rows (and OOF predictions)
    summary = summarize(C.A, rows.y, rows.y * 0.5, row_fold)
    assert summary["n_folds"] == 3 and len(summary["fold_scores"]) == 3


def test_sampled_rows_are_the_scored_targets(a_random):
    data = load_sequences(a_random)
    pipeline = pipelines.build(C.A.feature_columns, [{"kind": "identity"}])
    rows = sample_rows(pipeline, data, stride=1, seed=0)
    np.testing.assert_array_equal(rows.y, data.scored_targets())
    x = data.features[:, data.scored].reshape(-1, data.features.shape[-1])
    np.testing.assert_array_equal(rows.x, x.astype(np.float32))  # identity outputs, sequence-major
    assert (rows.step == np.tile(np.flatnonzero(data.scored), len(data))).all()


def test_stratified_folds_balance_a_per_sequence_statistic():
    rng = np.random.default_rng(4)
    seq_ix = rng.permutation(60)
    loud = np.exp(rng.normal(size=60) * 1.5)  # a few sequences with large targets
    folds = group_folds(seq_ix, 5, seed=2, balance_by=loud)
    assert np.bincount(folds).tolist() == [12] * 5
    ranks = np.argsort(np.argsort(loud))
    for block in range(12):  # every fold holds exactly one of each block of 5 sequences sorted by the statistic
        in_block = (ranks >= 5 * block) & (ranks < 5 * block + 5)
        assert sorted(folds[in_block]) == [0, 1, 2, 3, 4]
    assert np.array_equal(folds, group_folds(seq_ix, 5, seed=2, balance_by=loud))


def test_a_config_names_a_known_statistic_and_the_summary_carries_the_fold_spread():
    from models.config import ConfigError, from_dict
    from models.linear import RidgeVarConfig

    assert from_dict(RidgeVarConfig, {"stratify_folds": "target_scale"}).stratify_folds == "target_scale"
    with pytest.raises(ConfigError, match="stratify_folds"):
        from_dict(RidgeVarConfig, {"stratify_folds": "loudness"})
    rng = np.random.default_rng(0)
    y, oof = rng.normal(size=(40, 32)), rng.normal(size=(40, 32))
    spread = summarize(C.A, y, oof, np.repeat([0, 1], 20))["fold_spread"]
    scores = summarize(C.A, y, oof, np.repeat([0, 1], 20))["fold_scores"]
    assert spread["range"] == pytest.approx(max(scores) - min(scores))
