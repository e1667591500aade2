"""Replay fidelity: grader types, pairing and alignment, targets never reaching the model."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from harness import competitions as C, metrics
from harness.data import ParquetSource, targets_of
from harness.replay import replay
from harness.utils import ScorerStepByStep


class Recorder:
    """Keeps every DataPoint and returns the current state (or its first k values)."""

    def __init__(self, k):
        self.k, self.points = k, []

    def predict(self, dp):
        self.points.append(dp)
        return dp.state[: self.k].copy() if dp.need_prediction else None


def file_values(path, columns):
    table = pq.read_table(path)
    return np.column_stack([table.column(c).to_numpy() for c in columns]).astype(np.float64)


@pytest.mark.parametrize("which", ["A", "B"])
def test_values_reach_predict_with_the_graders_types(which, a_file, b_file):
    comp = C.get(which)
    path = a_file if which == "A" else b_file
    model = Recorder(comp.n_outputs)
    result = replay(model.predict, comp, ParquetSource(path).blocks())
    assert result.error is None and result.rows == 3000
    dp = model.points[150]
    for name in ("seq_ix", "step_in_seq", "need_prediction"):
        assert type(getattr(dp, name)) is np.float64
    assert dp.step_in_seq == 150.0 and dp.need_prediction == 1.0
    assert model.points[0].need_prediction == 0.0
    assert dp.state.dtype == np.float64 and dp.state.shape == (comp.n_features,)
    # as a row of DataFrame.values: a writeable strided view, neither C- nor F-contiguous
    assert dp.state.base is not None and not dp.state.flags["OWNDATA"] and dp.state.flags.writeable
    assert not dp.state.flags["C_CONTIGUOUS"] and not dp.state.flags["F_CONTIGUOUS"]
    # targets never reach the model, and states kept by reference are never overwritten later
    feats = file_values(path, comp.feature_columns)
    kept = np.array([p.state for p in model.points])
    np.testing.assert_array_equal(kept, feats)


@pytest.mark.parametrize("which", ["A", "B"])
def test_state_base_holds_this_row_only(which, a_file, b_file):
    """The organizers' base is the whole table (future rows too); here it is this row's values."""
    comp = C.get(which)
    model = Recorder(comp.n_outputs)
    replay(model.predict, comp, ParquetSource(a_file if which == "A" else b_file).blocks())
    for dp in model.points[::97]:
        base = dp.state.base
        assert base.size == 2 * comp.n_features
        assert set(np.unique(base)) == set(np.unique(dp.state))


def test_A_prediction_at_998_is_scored_against_999(a_file):
    """A model that knows the file predicts each next state exactly and scores R² = 1."""
    feats = file_values(a_file, C.A.feature_columns)
    rows = iter(range(3000))

    class NextRow:
        def predict(self, dp):
            r = next(rows)
            return feats[r + 1].copy() if dp.need_prediction else None

    result = replay(NextRow().predict, C.A, ParquetSource(a_file).blocks())
    y = targets_of(C.A, ParquetSource(a_file).blocks())
    # Exact by construction: the predictions are the targets, so every residual is 0.0 and R² = 1 - 0/SS_tot.
    assert metrics.score(C.A, y, result.predictions)["mean_r2"] == 1.0
    # the current state instead scores what an independent pairing says
    same = replay(Recorder(32).predict, C.A, ParquetSource(a_file).blocks()).predictions
    mask = (np.arange(3000) % 1000 >= 100) & (np.arange(3000) % 1000 <= 998)
    nxt = np.roll(mask, 1)
    from sklearn.metrics import r2_score
    assert metrics.score(C.A, y, same)["mean_r2"] == pytest.approx(r2_score(feats[nxt], feats[mask]), abs=1e-12)


def test_B_same_row_targets(b_file):
    targets = file_values(b_file, C.B.target_columns)
    rows = iter(range(3000))

    class SameRow:
        def predict(self, dp):
            r = next(rows)
            return targets[r].copy() if dp.need_prediction else None

    scores = ScorerStepByStep(str(b_file)).score(SameRow())
    assert scores["t0"] == pytest.approx(1.0, abs=1e-12) and scores["weighted_pearson"] == pytest.approx(1.0, abs=1e-12)
    assert set(scores) == {"t0", "t1", "weighted_pearson"}


def test_scorer_keys_for_A(a_file):
    scores = ScorerStepByStep(str(a_file)).score(Recorder(32))
    assert set(scores) == set(C.A.feature_columns) | {"mean_r2"}


@pytest.mark.parametrize(
    "body, kind, step",
    [
        ("return [0.0] * 32 if dp.need_prediction else None", "bad_output", 100),
        ("return np.zeros((32, 1)) if dp.need_prediction else None", "bad_output", 100),
        ("return np.zeros(32, dtype=int) if dp.need_prediction else None", "bad_output", 100),
        ("return None", "missing_prediction", 100),
        ("return np.zeros(32)", "unexpected_prediction", 0),
        ("return np.full(32, np.nan if dp.step_in_seq == 321 else 0.0) if dp.need_prediction else None", "non_finite", 321),
        ("return {}['boom'] if dp.step_in_seq == 7 else None", "predict_error", 7),
    ],
)
def test_each_bad_return_is_named_with_its_row(body, kind, step, a_file):
    namespace = {"np": np}
    exec(f"def predict(dp):\n    {body}", namespace)
    result = replay(namespace["predict"], C.A, ParquetSource(a_file).blocks())
    assert result.error is not None and result.error.kind == kind
    assert result.error.step == step and result.error.row == step
    assert result.error.seq_ix == pq.read_table(a_file).column("seq_ix")[0].as_py()
