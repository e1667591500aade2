"""The one-step runtimes (ONNX graph, numpy step) compute what the PyTorch network computes."""

import numpy as np
import pytest
import torch

from models.recurrent.export import export_onnx
from models.recurrent.nets import RecurrentNet
from models.recurrent.runtime_numpy import NumpyStep, run_sequences
from models.recurrent.runtime_onnx import OnnxStep
from models.recurrent.spec import NetSpec, SpecError, quantize
from models.recurrent.train import run_steps

TOL = 1e-5
N_FEAT, NAMES, STEPS = 6, ("a", "b", "c"), 300


def tiny_net(cell: str, seqnorm: bool, head_hidden: int, seed: int = 0, mean: bool = False,
             skip: bool = False) -> RecurrentNet:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    return RecurrentNet(
        n_features=N_FEAT, output_names=NAMES, groups=[[2], [0, 1]], cell=cell, hidden=12, layers=2,
        head_hidden=head_hidden, in_shift=rng.normal(size=N_FEAT), in_scale=rng.uniform(0.5, 2, N_FEAT), in_clip=4.0,
        out_shift=rng.normal(size=3), out_scale=rng.uniform(0.5, 2, 3), seqnorm_prior=10.0 if seqnorm else 0.0,
        seqnorm_log_input=True, seqnorm_rescale_output=True, mean_prior=5.0 if mean else 0.0, skip=skip)


@pytest.fixture(scope="module")
def sequences() -> np.ndarray:
    rng = np.random.default_rng(1)
    # sequences with different volatility, so the per-sequence scale matters
    return (rng.normal(size=(2, STEPS, N_FEAT)) * np.array([0.5, 3.0])[:, None, None]).astype(np.float32)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("seqnorm,mean", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("head_hidden,skip", [(0, False), (8, True)])
def test_one_step_runtimes_equal_pytorch_over_whole_sequences(cell, seqnorm, mean, head_hidden, skip, sequences,
                                                              tmp_path):
    net = tiny_net(cell, seqnorm, head_hidden, mean=mean, skip=skip)
    reference = net.predict(sequences)
    spec = NetSpec.load(net.to_spec().save(tmp_path / "m.npz"))
    onnx_path = export_onnx(spec, tmp_path / "m.onnx")
    assert np.abs(run_steps(OnnxStep(onnx_path), sequences) - reference).max() <= TOL
    assert np.abs(run_steps(NumpyStep(spec), sequences) - reference).max() <= TOL
    assert np.abs(run_sequences(spec, sequences) - reference).max() <= TOL


def test_runtimes_reset_between_sequences(sequences, tmp_path):
    spec = tiny_net("gru", True, 0).to_spec()
    step = NumpyStep(spec)
    first = run_steps(step, sequences[:1])
    run_steps(step, sequences[1:])  # leaves state behind; run_steps resets before each sequence
    np.testing.assert_array_equal(run_steps(step, sequences[:1]), first)


def test_returned_predictions_are_fresh_arrays(tmp_path):
    """The organizers' scorer keeps the arrays it receives: a runtime must not reuse them."""
    spec = tiny_net("gru", False, 0).to_spec()
    for runtime in (NumpyStep(spec), OnnxStep(export_onnx(spec, tmp_path / "m.onnx"))):
        row = np.ones(N_FEAT)
        a = runtime.step(row)
        b = runtime.step(row)
        assert a is not b and not np.shares_memory(a, b) and a.dtype == np.float64 and a.shape == (len(NAMES),)


def test_int8_spec_round_trips_and_both_runtimes_agree(sequences, tmp_path):
    spec = tiny_net("gru", True, 8, mean=True, skip=True).to_spec()
    q = quantize(spec)
    loaded = NetSpec.load(q.save(tmp_path / "q.npz"))
    for (name, w), (_, w2) in zip(q.weight_items(), loaded.weight_items()):
        np.testing.assert_array_equal(w, w2, err_msg=name)
    reference = run_sequences(loaded, sequences)
    assert np.abs(run_steps(OnnxStep(export_onnx(loaded, tmp_path / "q.onnx")), sequences) - reference).max() <= TOL
    assert np.abs(run_steps(NumpyStep(loaded), sequences) - reference).max() <= TOL
    float_ref = run_sequences(spec, sequences)
    assert 0 < np.abs(reference - float_ref).max() < 0.1  # rounded, but close


def test_spec_rejects_inconsistent_shapes():
    spec = tiny_net("gru", False, 0).to_spec()
    with pytest.raises(SpecError, match="layer 0"):
        NetSpec(cell="gru", layers=[spec.layers[1]], head=spec.head, in_shift=spec.in_shift, in_scale=spec.in_scale,
                out_shift=spec.out_shift, out_scale=spec.out_scale)
