"""No look-ahead, and reset: the properties that make streaming features safe to train on."""

from __future__ import annotations

import numpy as np
import pytest
from feature_checks import CATALOGUE, Case, case_ids, inputs_for, stream
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import competitions
from features.pipelines import preset_pipeline

FAST = settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@pytest.mark.parametrize("case", CATALOGUE, ids=case_ids())
@FAST
@given(data=st.data())
def test_changing_later_rows_leaves_earlier_features_unchanged(case: Case, data: st.DataObject) -> None:
    transform = case.fresh()
    sequence = data.draw(inputs_for(case))
    cut = data.draw(st.integers(min_value=0, max_value=len(sequence) - 1))
    changed = sequence.copy()
    replacement = data.draw(inputs_for(case))
    rows_after = len(sequence) - cut - 1
    changed[cut + 1 :] = np.resize(replacement, (rows_after, sequence.shape[1])) * 3.0 + 1.0
    before = transform.transform(sequence[None])[0]
    after = transform.transform(changed[None])[0]
    np.testing.assert_array_equal(before[: cut + 1], after[: cut + 1])
    np.testing.assert_array_equal(stream(transform, sequence)[: cut + 1], stream(transform, changed)[: cut + 1])


@pytest.mark.parametrize("case", CATALOGUE, ids=case_ids())
@FAST
@given(data=st.data())
def test_reset_gives_what_a_fresh_transform_gives(case: Case, data: st.DataObject) -> None:
    first = data.draw(inputs_for(case))
    second = data.draw(inputs_for(case))
    used = case.fresh()
    stream(used, first)
    used.update(first[0])  # a partial third sequence, interrupted by the reset below
    np.testing.assert_array_equal(stream(used, second), stream(case.fresh(), second))


def test_pipeline_resets_when_the_sequence_id_changes() -> None:
    comp = competitions.A
    rng = np.random.default_rng(11)
    train = rng.normal(size=(10, 120, comp.n_features)).cumsum(axis=1)
    pipeline = preset_pipeline("next_state", comp.feature_columns).fit(train)
    first, second = rng.normal(size=(2, 60, comp.n_features)).cumsum(axis=1)
    automatic = [pipeline.update(row, sequence_id=7.0).copy() for row in first]
    automatic = [pipeline.update(row, sequence_id=8.0).copy() for row in second]
    np.testing.assert_array_equal(np.array(automatic), stream(pipeline, second))
    fresh = preset_pipeline("next_state", comp.feature_columns)
    fresh.load_fitted_state(pipeline.fitted_state())
    np.testing.assert_array_equal(np.array(automatic), stream(fresh, second))


def test_pipeline_rebinds_if_a_member_was_streamed_on_its_own() -> None:
    comp = competitions.A
    rng = np.random.default_rng(12)
    pipeline = preset_pipeline("next_state", comp.feature_columns).fit(
        rng.normal(size=(10, 120, comp.n_features)).cumsum(axis=1)
    )
    sequence = rng.normal(size=(40, comp.n_features)).cumsum(axis=0)
    expected = stream(pipeline, sequence)
    stream(pipeline.transforms[3], sequence)  # binds that member to a private stream
    np.testing.assert_array_equal(stream(pipeline, sequence), expected)
