"""The runtime pieces a solution ships: linear heads, JSON pipelines, the predictor's two forms."""

import numpy as np
import pytest

from harness import competitions as C
from features import pipelines
from features.storage import save_npz
from models.artifacts import PipelineFamily, PipelineModel
from models.config import ConfigError
from models.family import Trained
from models.runtime.linear import LinearHead, all_pairs
from models.runtime.predictor import Guard, Predictor


def test_linear_head_row_equals_batch_with_columns_and_products():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 9))
    columns = np.array([4, 0, 7, 2])
    pairs = all_pairs(2)
    head = LinearHead(rng.standard_normal((4 + len(pairs), 3)), rng.standard_normal(3), columns, pairs)
    head.check_inputs(9)
    batch = head.predict_batch(x)
    design = head.design_batch(x)
    np.testing.assert_array_equal(design[:, 4], x[:, 4] * x[:, 4])
    np.testing.assert_array_equal(design[:, 5], x[:, 4] * x[:, 0])
    for i in range(50):
        np.testing.assert_allclose(head.predict_row(x[i]), batch[i], rtol=0, atol=1e-12)
    again = LinearHead.from_arrays(head.arrays("h/"), "h/")
    np.testing.assert_array_equal(again.predict_batch(x), batch)
    with pytest.raises(ValueError, match="design columns"):
        LinearHead(np.zeros((3, 3)), np.zeros(3), columns, pairs).check_inputs(9)


def test_pipeline_steps_are_checked():
    with pytest.raises(ValueError, match="unknown pipeline step kind 'nope'"):
        pipelines.build(C.A.feature_columns, [{"kind": "nope"}])
    with pytest.raises(ValueError, match="steps"):
        pipelines.build(C.A.feature_columns, [{"kind": "chain"}])
    chained = pipelines.build(C.B.feature_columns, [{"kind": "chain", "steps": [
        {"kind": "order_book"}, {"kind": "select", "columns": ["ob_mid"]}, {"kind": "ema", "spans": [5]}]}])
    assert chained.output_names == ("ob_mid__ema5",)


def test_predictor_stream_equals_batch_and_resets_between_sequences():
    rng = np.random.default_rng(1)
    pipeline = pipelines.build(C.A.feature_columns, [{"kind": "identity"}, {"kind": "ema", "spans": [3]},
                                                     {"kind": "lags", "lags": [2]}])
    head = LinearHead(rng.standard_normal((pipeline.n_outputs, 32)) * 0.1, rng.standard_normal(32))
    guard = Guard(np.array([3, 5]), np.array([0.5, -1.0]), np.array([0.2, 0.0]))
    predictor = Predictor(pipeline, head, guard, C.A.prediction_names)
    x = rng.standard_normal((2, 1000, 32)).astype(np.float32)
    batch = predictor.predict_sequences(x)
    for s in (1, 0, 1):  # replaying a sequence after another gives the same predictions
        predictor.reset()
        stream = np.array([predictor.update(row.astype(np.float64)).copy() for row in x[s]])
        np.testing.assert_allclose(stream, batch[s], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(batch[..., 5], -1.0)


def test_manifest_must_list_what_the_family_writes(tmp_path):
    pipeline = pipelines.build(C.A.feature_columns, [{"kind": "identity"}])
    model = PipelineModel(C.A, "lightgbm", pipeline, {"kind": "trees", "base": False}, {}, "tree text")
    with pytest.raises(ConfigError, match="trees.txt"):
        PipelineFamily().write(Trained(model, {}), tmp_path, ["model.json", "pipeline.npz", "weights.npz"])
    assert not (tmp_path / "model.json").exists()  # refused before anything is written


def test_weights_file_is_byte_reproducible(tmp_path):
    arrays = {"b": np.arange(5.0), "a": np.eye(3), "spec": np.array("{}"), "t": np.eye(3).T}
    first = save_npz(tmp_path / "one.npz", arrays).read_bytes()
    second = save_npz(tmp_path / "two.npz", dict(reversed(arrays.items()))).read_bytes()
    assert first == second
    with np.load(tmp_path / "one.npz", allow_pickle=False) as loaded:
        for key, value in arrays.items():  # values and shapes (a 0-d string stays 0-d) come back
            assert loaded[key].shape == value.shape, key
            np.testing.assert_array_equal(loaded[key], value)


def test_log_ratio_stream_equals_batch_and_names_its_columns():
    rng = np.random.default_rng(2)
    x = np.abs(rng.standard_normal((2, 300, 32))) + 1e-3
    x[0, 5, C.B.feature_columns.index("v6")] = 0.0  # an empty side is floored, not infinite
    steps = [{"kind": "log_ratio", "pairs": [["v0", "v6"], ["dv0", "dv1"]]},
             {"kind": "chain", "steps": [{"kind": "log_ratio", "pairs": [["v0", "v6"]], "prefix": "e_"},
                                         {"kind": "ema", "spans": [10]}]}]
    pipeline = pipelines.build(C.B.feature_columns, steps)
    assert pipeline.output_names == ("lr_v0_v6", "lr_dv0_dv1", "e_v0_v6__ema10")
    batch = pipeline.transform(x)
    assert np.isfinite(batch).all()
    for s in range(2):
        pipeline.reset()
        stream = np.array([pipeline.update(row).copy() for row in x[s]])
        # Stream and batch are different code paths (numpy may take a SIMD log for the batch
        # and another loop for one row): equal to rounding, not bit for bit.
        np.testing.assert_allclose(stream, batch[s], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="not among the inputs"):
        pipelines.build(C.B.feature_columns, [{"kind": "log_ratio", "pairs": [["v0", "q9"]]}])


def test_product_stream_equals_batch_and_multiplies_named_columns():
    rng = np.random.default_rng(3)
    x = np.abs(rng.standard_normal((2, 300, 32))) + 1e-3
    flow = {"kind": "chain", "steps": [{"kind": "log_ratio", "pairs": [["v0", "v6"]], "prefix": "lre_"},
                                       {"kind": "ema", "spans": [10]}]}
    steps = [{"kind": "chain", "steps": [{"kind": "concat", "steps": [{"kind": "select", "columns": ["p1"]}, flow]},
                                         {"kind": "product", "pairs": [["lre_v0_v6__ema10", "p1"], ["p1", "p1"]]}]}]
    pipeline = pipelines.build(C.B.feature_columns, steps)
    assert pipeline.output_names == ("x_lre_v0_v6__ema10_p1", "x_p1_p1")
    batch = pipeline.transform(x)
    ema = pipelines.build(C.B.feature_columns, [flow]).transform(x)[..., 0]
    p1 = x[..., C.B.feature_columns.index("p1")]
    np.testing.assert_allclose(batch[..., 0], ema * p1, rtol=1e-12)
    np.testing.assert_allclose(batch[..., 1], p1 * p1, rtol=1e-12)
    for s in range(2):
        pipeline.reset()
        stream = np.array([pipeline.update(row).copy() for row in x[s]])
        # Stream and batch are different code paths (numpy may take a SIMD log for the batch
        # and another loop for one row): equal to rounding, not bit for bit.
        np.testing.assert_allclose(stream, batch[s], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="not among the inputs"):
        pipelines.build(C.B.feature_columns, [{"kind": "product", "pairs": [["p1", "q9"]]}])
