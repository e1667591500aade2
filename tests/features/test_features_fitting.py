"""Fitted state: saved to a small file and loaded back exactly; learned from training sequences only."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from feature_checks import CATALOGUE, book_rows, stream

from harness import competitions
from features.pipeline import Pipeline
from features.pipelines import load, preset_pipeline, resolve
from features.splits import rows_to_sequences, split_sequence_ids, take_sequences


def _a_sequences(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(count, 120, competitions.A.n_features)).cumsum(axis=1)


def _b_sequences(count: int, seed: int) -> np.ndarray:
    comp = competitions.B
    levels = sum(name.startswith("p") for name in comp.feature_columns) // 2
    trades = sum(name.startswith("dp") for name in comp.feature_columns)
    return book_rows(np.random.default_rng(seed), count * 120, levels, trades).reshape(count, 120, -1)


@pytest.mark.parametrize(
    "build, data",
    [
        (lambda: preset_pipeline("next_state", competitions.A.feature_columns),
         _a_sequences),
        (lambda: preset_pipeline("lob", competitions.B.feature_columns), _b_sequences),
    ],
    ids=["next_state", "lob"],
)
def test_saved_pipeline_loads_to_identical_outputs(tmp_path, build, data) -> None:
    pipeline = build().fit(data(10, 0))
    path = pipeline.save(tmp_path / "features.npz")
    probe = data(2, 1)
    loaded = load(path, pipeline.input_names, pipeline.steps)
    assert loaded.output_names == pipeline.output_names
    np.testing.assert_array_equal(loaded.transform(probe), pipeline.transform(probe))
    np.testing.assert_array_equal(stream(loaded, probe[0]), stream(pipeline, probe[0]))
    rebuilt = build().load_state(path)
    np.testing.assert_array_equal(rebuilt.transform(probe), pipeline.transform(probe))
    assert path.stat().st_size < 200_000, "the fitted-state file should be small enough to ship in a zip"


def test_saved_file_holds_no_pickles(tmp_path) -> None:
    comp = competitions.A
    pipeline = preset_pipeline("next_state", comp.feature_columns).fit(_a_sequences(10, 0))
    path = pipeline.save(tmp_path / "features.npz")
    with zipfile.ZipFile(path) as archive, np.load(path, allow_pickle=False) as arrays:
        assert all(name.endswith(".npy") for name in archive.namelist())
        assert all(arrays[name].dtype != object for name in arrays.files)


def test_a_file_saved_from_other_steps_is_refused(tmp_path) -> None:
    """pipeline.npz keeps only a hash of its steps: state saved from other steps (even with the
    same output names) must not load silently."""
    names = competitions.A.feature_columns
    steps = resolve(names, "next_state")
    pipeline = preset_pipeline("next_state", names).fit(_a_sequences(10, 0))
    path = pipeline.save(tmp_path / "features.npz")
    other = [dict(step) for step in steps]
    other[-1] = {**other[-1], "seed": 1}  # a different k-means seed: same outputs, other fitted state
    with pytest.raises(ValueError, match="other pipeline steps"):
        load(path, names, other)
    assert load(path, names, steps).output_names == pipeline.output_names


def test_every_fitted_transform_round_trips_its_state() -> None:
    for case in CATALOGUE:
        transform = case.fresh()
        state = transform.fitted_state()
        again = case.build()
        again.setup(case.input_names)
        again.load_fitted_state(state)
        assert set(again.fitted_state()) == set(state), case.name
        for key, value in state.items():
            np.testing.assert_array_equal(again.fitted_state()[key], value)


def test_loading_mismatched_state_fails_clearly(tmp_path) -> None:
    comp = competitions.A
    pipeline = preset_pipeline("next_state", comp.feature_columns).fit(_a_sequences(10, 0))
    path = pipeline.save(tmp_path / "a.npz")
    other = preset_pipeline("lob", competitions.B.feature_columns)
    with pytest.raises(ValueError, match="inputs"):
        other.load_state(path)
    state = pipeline.fitted_state()
    broken = {key: (value[:-1] if key.endswith("inverse_volatility") else value) for key, value in state.items()}
    with pytest.raises(ValueError, match="shape"):
        preset_pipeline("next_state", comp.feature_columns).load_fitted_state(broken)


def test_unfitted_pipeline_refuses_to_run() -> None:
    comp = competitions.A
    pipeline = preset_pipeline("next_state", comp.feature_columns)
    with pytest.raises(RuntimeError, match="fit"):
        pipeline.transform(_a_sequences(1, 0))
    with pytest.raises(RuntimeError, match="fit"):
        pipeline.update(np.zeros(comp.n_features))


@pytest.mark.parametrize("builder", ["next_state", "lob"])
def test_fitting_sees_only_training_sequences(builder: str) -> None:
    """Split by seq_ix; changing every validation sequence leaves the fitted state unchanged."""
    comp = competitions.A if builder == "next_state" else competitions.B
    make = _a_sequences if builder == "next_state" else _b_sequences
    sequences = make(14, 0)
    seq_ix = np.repeat(np.arange(100, 114), sequences.shape[1])
    step = np.tile(np.arange(sequences.shape[1]), 14)
    order = np.random.default_rng(0).permutation(len(seq_ix))  # rows arrive shuffled
    ids, grouped = rows_to_sequences(sequences.reshape(-1, comp.n_features)[order], seq_ix[order], step[order])
    np.testing.assert_array_equal(grouped, sequences)
    train_ids, valid_ids = split_sequence_ids(ids, valid_fraction=0.25, seed=3)
    assert not set(train_ids) & set(valid_ids) and len(train_ids) + len(valid_ids) == len(ids)

    fitted = preset_pipeline(builder, comp.feature_columns).fit(take_sequences(ids, grouped, train_ids))
    tampered = grouped.copy()
    valid_rows = np.isin(ids, valid_ids)
    tampered[valid_rows] = make(int(valid_rows.sum()), 99) * 10.0
    refitted = preset_pipeline(builder, comp.feature_columns).fit(take_sequences(ids, tampered, train_ids))
    before, after = fitted.fitted_state(), refitted.fitted_state()
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])
    with_valid = preset_pipeline(builder, comp.feature_columns).fit(grouped)
    assert any(not np.array_equal(before[key], with_valid.fitted_state()[key]) for key in before), (
        "fitting on all sequences should differ, or this test proves nothing"
    )


def test_split_helpers_validate_their_inputs() -> None:
    with pytest.raises(ValueError, match="length"):
        rows_to_sequences(np.zeros((5, 2)), np.array([0, 0, 0, 1, 1]))
    with pytest.raises(ValueError, match="valid_fraction"):
        split_sequence_ids(np.arange(10), valid_fraction=1.5)
    with pytest.raises(KeyError):
        take_sequences(np.arange(3), np.zeros((3, 4, 2)), np.array([7]))


def test_hand_assembled_pipeline_round_trips_with_load_state(tmp_path) -> None:
    from features.cross import CrossFeatures
    from features.lags import Lags

    names = ("x", "y", "z")
    data = np.random.default_rng(5).normal(size=(6, 30, 3)).cumsum(axis=1)
    pipeline = Pipeline("custom", names, [Lags((1,)), CrossFeatures(n_pairs=2)]).fit(data)
    path = pipeline.save(tmp_path / "custom.npz")
    again = Pipeline("custom", names, [Lags((1,)), CrossFeatures(n_pairs=2)]).load_state(path)
    np.testing.assert_array_equal(again.transform(data), pipeline.transform(data))
