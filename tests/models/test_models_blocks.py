"""The tcn and window_attn families: numpy one row at a time computes what PyTorch computes over
whole sequences, forgets a sequence on reset, is causal; training writes checked artifacts."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from models.config import ConfigError, from_dict
from models.recurrent.block_nets import TcnNet, WindowAttnNet
from models.recurrent.block_spec import BlockSpec
from models.recurrent.config import TcnConfig, WindowAttnConfig
from models.recurrent.export_blocks import export_window_onnx
from models.recurrent.runtime_blocks import run_sequences, step_runtime
from models.recurrent.spec import SpecError
from models.recurrent.train import run_steps
from models.recurrent.serving import load_runtime
from models.registry import family

ROOT = Path(__file__).resolve().parents[2]
# numpy (one step, float32, tanh-form sigmoid) and PyTorch (whole sequences, its own kernels) sum
# in different orders: equal only to rounding, hence a tolerance, the one training enforces
TOL = 1e-5
N_FEAT, NAMES, STEPS = 5, ("a", "b", "c"), 90


def tiny_net(kind: str, seqnorm: bool = True, skip: bool = True, head_hidden: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    frame = dict(n_features=N_FEAT, output_names=NAMES, groups=[[2], [0, 1]], head_hidden=head_hidden,
                 in_shift=rng.normal(size=N_FEAT), in_scale=rng.uniform(0.5, 2, N_FEAT), in_clip=4.0,
                 out_shift=rng.normal(size=3), out_scale=rng.uniform(0.5, 2, 3),
                 seqnorm_prior=10.0 if seqnorm else 0.0, seqnorm_log_input=True, seqnorm_rescale_output=True,
                 mean_prior=5.0 if seqnorm else 0.0, skip=skip)
    if kind == "tcn":
        return TcnNet(channels=8, dilations=(1, 2, 4), kernel=3, **frame)
    return WindowAttnNet(hidden=6, window=7, attn_dim=5, **frame)


@pytest.fixture(scope="module")
def sequences() -> np.ndarray:
    rng = np.random.default_rng(1)
    # different volatilities, so the per-sequence scale matters
    return (rng.normal(size=(3, STEPS, N_FEAT)) * np.array([0.5, 3.0, 1.0])[:, None, None]).astype(np.float32)


KINDS = ["tcn", "window_attn"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seqnorm,skip,head_hidden", [(False, False, 0), (True, True, 6)])
def test_one_step_runtimes_equal_pytorch_over_whole_sequences(kind, seqnorm, skip, head_hidden, sequences, tmp_path):
    net = tiny_net(kind, seqnorm, skip, head_hidden)
    reference = net.predict(sequences)
    spec = net.to_spec()
    assert np.abs(run_steps(step_runtime(spec), sequences) - reference).max() <= TOL
    assert np.abs(run_sequences(spec, sequences) - reference).max() <= TOL
    if kind == "window_attn":  # the body in onnxruntime too
        onnx_step = step_runtime(spec, export_window_onnx(spec, tmp_path / "w.onnx"))
        assert np.abs(run_steps(onnx_step, sequences) - reference).max() <= TOL


@pytest.mark.parametrize("kind", KINDS)
def test_reset_forgets_the_previous_sequence(kind, sequences):
    step = step_runtime(tiny_net(kind).to_spec())
    first = run_steps(step, sequences[:1])
    for row in sequences[1]:  # leave another sequence's history in the rings
        step.step(row.astype(np.float64))
    step.reset()
    again = np.stack([step.step(row.astype(np.float64)) for row in sequences[0]])
    np.testing.assert_array_equal(again, first[0])  # same code path, same inputs: bit-equal


@pytest.mark.parametrize("kind", KINDS)
def test_output_at_t_ignores_later_rows(kind, sequences):
    net = tiny_net(kind)
    step = step_runtime(net.to_spec())
    t = 40
    changed = sequences.copy()
    changed[:, t + 1 :] = np.random.default_rng(2).normal(size=changed[:, t + 1 :].shape) * 5
    before, after = run_steps(step, sequences), run_steps(step, changed)
    np.testing.assert_array_equal(before[:, : t + 1], after[:, : t + 1])
    assert np.abs(before[:, t + 1 :] - after[:, t + 1 :]).max() > 1e-3  # later rows do matter
    torch_before, torch_after = net.predict(sequences), net.predict(changed)
    assert np.abs(torch_before[:, : t + 1] - torch_after[:, : t + 1]).max() <= TOL


@pytest.mark.parametrize("kind", KINDS)
def test_sampled_training_steps_are_those_steps_of_the_whole_sequence(kind, sequences):
    net = tiny_net(kind).eval()
    x = torch.from_numpy(sequences)
    at = torch.tensor([0, 3, 17, 89])
    with torch.no_grad():
        full, _ = net(x)
        some, _ = net(x, at=at)
    assert torch.allclose(some, full[:, at], atol=1e-6)


def test_window_net_computes_every_step_in_blocks(sequences, monkeypatch):
    from models.recurrent import block_nets

    net = tiny_net("window_attn").eval()
    whole = net.predict(sequences)
    monkeypatch.setattr(block_nets, "WINDOW_BLOCK", 30)  # blocks of 10 steps of 3 sequences
    assert np.abs(net.predict(sequences) - whole).max() <= 1e-6


@pytest.mark.parametrize("kind", KINDS)
def test_spec_survives_save_and_load(kind, sequences, tmp_path):
    spec = tiny_net(kind).to_spec({"note": "x"})
    loaded = BlockSpec.load(spec.save(tmp_path / "model.npz"))
    assert loaded.meta == {"note": "x"} and loaded.dilations == spec.dilations and loaded.window == spec.window
    np.testing.assert_array_equal(run_sequences(loaded, sequences), run_sequences(spec, sequences))


def test_spec_refuses_a_wrong_shape():
    spec = tiny_net("tcn").to_spec()
    body = dict(spec.body, **{"conv1.b": np.zeros(3, np.float32)})
    with pytest.raises(SpecError, match="conv1.b"):
        replace(spec, body=body)


def test_configs_refuse_chunks_and_bad_dilations():
    assert from_dict(TcnConfig, {}).dilations == [1, 2, 4, 8, 16]
    assert from_dict(WindowAttnConfig, {}).window == 100
    with pytest.raises(ConfigError, match="train.chunk"):
        from_dict(TcnConfig, {"chunk": 100})
    with pytest.raises(ConfigError, match="train.dilations"):
        from_dict(TcnConfig, {"dilations": [1, 0]})
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(WindowAttnConfig, {"windows": 5})


TINY = {"epochs": 2, "batch_size": 2, "eval_batch": 4, "check_sequences": 1, "stop_on": "fold", "folds": 2,
        "seqnorm": {"enabled": True}}
TRAIN = {"tcn": {**TINY, "channels": 6, "dilations": [1, 2], "kernel": 2},
         "window_attn": {**TINY, "hidden": 4, "window": 5, "attn_dim": 3, "step_sample": 16}}


@pytest.mark.parametrize("kind", KINDS)
def test_python_m_models_train_writes_checked_artifacts_and_oof(kind, tmp_path, a_random):
    folder = tmp_path / "sol"
    folder.mkdir()
    (folder / "solution.py").write_text((ROOT / "solutions" / "a_gru" / "solution.py").read_text())
    artifacts = ["model.npz"] + (["model.onnx"] if kind == "window_attn" else [])
    manifest = {"competition": "A", "trained": True, "family": kind, "train": TRAIN[kind], "artifacts": artifacts}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    runs = tmp_path / "runs"
    done = subprocess.run([sys.executable, "-m", "models", "train", str(folder), "--train", str(a_random), "--valid",
                           str(a_random), "--sequences", "4", "--valid-sequences", "2", "--runs", str(runs)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    [path] = runs.glob("sol-*.json")
    record = json.loads(path.read_text())
    assert record["family"] == kind and record["export"]["numpy_max_abs_diff"] <= TOL
    assert ("onnx_max_abs_diff" in record["export"]) == (kind == "window_attn")
    # valid_score comes from the written files through numpy, torch_valid_score from PyTorch
    assert abs(record["valid_score"] - record["torch_valid_score"]) < 1e-4
    with np.load(path.with_suffix(".oof.npz")) as oof:
        assert oof["prediction"].shape == oof["target"].shape == (2 * 899, 32)  # the held-out fold of 4
    # what solution.py runs (load_online) equals what evaluation scores (load_offline)
    from models.data import load_sequences

    rows = load_sequences(a_random, 1).features
    fam = family(kind)
    offline = fam.load_offline(folder).predict_sequences(rows)
    assert np.abs(run_steps(fam.load_online(folder), rows) - offline).max() <= TOL
    if kind == "window_attn":
        assert np.abs(run_steps(load_runtime(folder, "onnx"), rows) - offline).max() <= TOL
