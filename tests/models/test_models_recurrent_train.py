"""Training is reproducible, configurable by manifest and writes checked artifacts."""

import json

import numpy as np
import pytest
import torch
from rich.console import Console

from harness import competitions as C
from harness.randomdata import write_random_file
from models.config import ConfigError, from_dict
from models.cv import fold_split
from models.data import load_sequences
from models.recurrent import serving
from models.recurrent.config import RecurrentConfig
from models.recurrent.runtime_numpy import NumpyStep
from models.recurrent.runtime_onnx import OnnxStep
from models.recurrent.spec import NetSpec
from models.recurrent.train import TrainingError, check_runtimes, fit
from models.registry import train_solution as train_folder

TINY = {"hidden": 8, "layers": 1, "epochs": 2, "batch_size": 2, "chunk": 250, "eval_batch": 4,
        "seqnorm": {"enabled": True}, "augment": {"scale_sigma": 0.2, "noise_std": 0.1}, "check_sequences": 1}


def parse_config(values: dict) -> RecurrentConfig:
    return from_dict(RecurrentConfig, values)


def train_solution(folder, manifest, train, valid, console) -> dict:
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return train_folder(folder, train, valid, console).record


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("rec")
    out = {}
    for comp in (C.A, C.B):
        train = load_sequences(write_random_file(comp, root / f"{comp.key}_train.parquet", 4, seed=3))
        valid = load_sequences(write_random_file(comp, root / f"{comp.key}_valid.parquet", 2, seed=4))
        out[comp.key] = (train, valid)
    return out


def test_same_seed_same_weights(data):
    train, valid = data["A"]
    cfg = parse_config(TINY)
    runs = [fit(cfg, C.A, train, valid) for _ in range(2)]
    for (name, a), (_, b) in zip(runs[0].net.state_dict().items(), runs[1].net.state_dict().items()):
        assert torch.equal(a, b), name
    assert runs[0].history[-1]["stop_score"] == runs[1].history[-1]["stop_score"]
    other = fit(parse_config({**TINY, "seed": 1}), C.A, train, valid)
    assert not torch.equal(other.net.rnn.weight_hh_l0, runs[0].net.rnn.weight_hh_l0)


@pytest.mark.parametrize("key,loss", [("A", {"name": "mse"}), ("B", {"name": "pearson", "mse_weight": 0.1}),
                                      ("B", {"name": "mse_abs"})])
def test_train_solution_writes_checked_artifacts_and_a_record(data, tmp_path, key, loss):
    train, valid = data[key]
    cfg = {**TINY, "loss": loss, "stop_on": "fold", "folds": 2, "cell": "lstm" if key == "B" else "gru"}
    manifest = {"competition": key, "trained": True, "family": "gru", "train": cfg,
                "artifacts": ["model.npz", "model.onnx"]}
    record = train_solution(tmp_path, manifest, train, valid, Console(quiet=True))
    json.dumps(record)  # JSON-able
    for field in ("family", "config", "valid_score", "per_output", "export", "int8", "history"):
        assert field in record, field
    # the valid score is measured on the written numpy files, the other on the PyTorch net: a
    # wrong export (or a runtime that drifts) would separate them
    assert abs(record["valid_score"] - record["torch_valid_score"]) < 1e-4
    assert set(record["per_output"]) == set(train.competition.prediction_names)
    assert record["train_sequences"] == 2  # one of two folds held out for early stopping
    assert NetSpec.load(tmp_path / "model.npz").n_outputs == train.competition.n_outputs
    assert (tmp_path / "model.onnx").stat().st_size > 0


def test_feature_front_end_is_shipped_and_checked(data, tmp_path):
    train, valid = data["B"]
    steps = [{"kind": "identity"}, {"kind": "order_book", "mid_change_periods": [1, 5]}]
    manifest = {"competition": "B", "family": "gru", "train": {**TINY, "epochs": 1, "features": {"extra": steps}},
                "artifacts": ["model.npz", "model.onnx", "features.npz"]}
    record = train_solution(tmp_path, manifest, train, valid, Console(quiet=True))
    assert abs(record["valid_score"] - record["torch_valid_score"]) < 1e-4
    spec = NetSpec.load(tmp_path / "model.npz")
    assert spec.n_features > train.features.shape[-1]
    assert spec.meta["features"]["steps"] == steps  # the resolved steps, recorded once
    manifest["artifacts"] = ["model.npz"]
    with pytest.raises(ConfigError, match="features.npz"):
        train_solution(tmp_path, manifest, train, valid, Console(quiet=True))


def test_quantized_artifacts_are_checked_against_the_int8_network(data, tmp_path):
    train, valid = data["A"]
    manifest = {"competition": "A", "family": "gru", "train": {**TINY, "quantize": True, "epochs": 1},
                "artifacts": ["model.npz", "model.onnx"]}
    record = train_solution(tmp_path, manifest, train, valid, Console(quiet=True))
    assert record["int8"]["shipped"] and NetSpec.load(tmp_path / "model.npz").quant is not None
    # the shipped int8 files score the int8 network, not the float one
    assert abs(record["valid_score"] - record["int8"]["valid_score"]) < 1e-9


def test_export_check_refuses_a_runtime_that_disagrees(data, tmp_path):
    """Plant a disagreement of 1e-3 between the written runtimes and the reference: refused."""
    train, valid = data["A"]
    manifest = {"competition": "A", "family": "gru", "train": {**TINY, "epochs": 1}, "artifacts": ["model.npz",
                                                                                                  "model.onnx"]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    trained = train_folder(tmp_path, train, valid, Console(quiet=True))
    model = trained.model
    steps = {"onnx": OnnxStep(tmp_path / "model.onnx"), "numpy": NumpyStep(model.spec)}
    check_runtimes(tmp_path, model.spec, steps, model.check_rows, model.reference)
    with pytest.raises(TrainingError, match="disagrees"):
        check_runtimes(tmp_path, model.spec, steps, model.check_rows, model.reference + 1e-3)


def test_ridge_skip_is_the_least_squares_fit_and_stays_frozen(data):
    train, valid = data["B"]
    cfg = parse_config({**TINY, "skip": "ridge", "ridge_alpha": 0.0, "seqnorm": {"enabled": False}})
    result = fit(cfg, C.B, train, valid)
    net = result.net
    u, _ = net.prepare(torch.from_numpy(train.features))
    # B has targets on every row, and loss_steps "all" fits on all of them
    x = np.concatenate([u.numpy().reshape(-1, u.shape[-1]), np.ones((u.shape[0] * u.shape[1], 1))], axis=1)
    y = ((train.targets - net.out_shift.numpy()) / net.out_scale.numpy()).reshape(-1, 2)
    w = np.linalg.lstsq(x.astype(np.float64), y.astype(np.float64), rcond=None)[0]
    np.testing.assert_allclose(net.skip.weight.detach().numpy(), w[:-1].T, atol=1e-4)
    assert not net.skip.weight.requires_grad


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config({"hiden": 64})
    with pytest.raises(ConfigError, match="train.cell"):
        parse_config({"cell": "rnn"})
    with pytest.raises(ConfigError, match="loss.name"):
        parse_config({"loss": {"name": "mae"}})
    assert parse_config({"hidden": 64}).hidden == 64


def test_unknown_artifact_suffix_is_refused(data, tmp_path):
    train, valid = data["A"]
    manifest = {"competition": "A", "family": "gru", "train": {**TINY, "epochs": 1}, "artifacts": ["model.pt"]}
    with pytest.raises(ConfigError, match="model.npz"):
        train_solution(tmp_path, manifest, train, valid, Console(quiet=True))


def test_fold_split_holds_out_whole_sequences_fixed_by_the_seed():
    fit_idx, held = fold_split(11, 3, 1, seed=5)
    assert set(fit_idx).isdisjoint(held) and sorted([*fit_idx, *held]) == list(range(11))
    assert 3 <= len(held) <= 4
    assert np.array_equal(fold_split(11, 3, 1, seed=5)[1], held)
    assert not np.array_equal(fold_split(11, 3, 1, seed=6)[1], held)
    with pytest.raises(ConfigError):
        fold_split(2, 3, 0)
    with pytest.raises(ConfigError, match="fold"):
        fold_split(11, 3, 3)


def test_valid_splits_into_a_selection_half_and_a_report_half_fixed_by_the_file(data):
    from models.recurrent.train import selection_split

    _, valid = data["A"]
    chosen, report = selection_split(valid)
    assert len(chosen) and len(report) and set(chosen).isdisjoint(report)
    assert sorted([*chosen, *report]) == list(range(len(valid)))
    with pytest.raises(TrainingError, match="at least 2"):
        selection_split(valid.subset(np.array([0])))


def test_stopping_on_valid_reports_the_score_on_the_half_not_chosen_on(data, tmp_path):
    from models.recurrent.train import selection_split

    train, valid = data["A"]
    manifest = {"competition": "A", "trained": True, "family": "gru", "train": {**TINY, "stop_on": "valid"},
                "artifacts": ["model.npz"]}
    record = train_solution(tmp_path, manifest, train, valid, Console(quiet=True))
    chosen, report = selection_split(valid)
    assert record["selection"]["sequences"] == len(chosen) and record["report"]["sequences"] == len(report)
    assert record["valid_scored_sequences"] == len(report)
    # the written files scored on the report half equal the PyTorch net's score there
    assert abs(record["valid_score"] - record["torch_valid_score"]) < 1e-4
    best = max(h["stop_score"] for h in record["history"])
    assert record["selection"]["score"] == best


def test_a_best_epoch_at_the_end_warns_to_raise_epochs():
    from models.recurrent.train import FitResult, still_improving

    cfg = parse_config(TINY)
    assert "raise epochs" in still_improving(FitResult(None, 0.1, 2, 2), cfg)
    assert still_improving(FitResult(None, 0.1, 1, 2), cfg) is None
    assert still_improving(FitResult(None, 0.1, 4, 4, stopped_by="patience"), cfg) is None
    assert "converge_cap" in still_improving(FitResult(None, 0.1, 3, 3, stopped_by="cap"),
                                             parse_config({**TINY, "converge": True}))


def test_converge_trains_past_epochs_up_to_the_cap(data):
    train, valid = data["A"]
    cfg = parse_config({**TINY, "epochs": 1, "converge": True, "converge_cap": 3, "patience": 5})
    result = fit(cfg, C.A, train, valid)
    assert result.epochs_run == 3 and result.stopped_by == "cap"
    with pytest.raises(ConfigError, match="converge"):
        parse_config({**TINY, "converge": True, "patience": 0})


def test_fold_stopped_network_hands_over_the_held_out_fold_as_oof(data, tmp_path):
    train, valid = data["A"]
    cfg = {**TINY, "epochs": 1, "stop_on": "fold", "folds": 2}
    (tmp_path / "manifest.json").write_text(json.dumps({"competition": "A", "family": "gru", "train": cfg,
                                                        "artifacts": ["model.npz"]}))
    trained = train_folder(tmp_path, train, valid, Console(quiet=True))
    _, held = fold_split(len(train), 2, 0, 0)
    scored = np.flatnonzero(train.scored)
    oof = trained.oof
    np.testing.assert_array_equal(oof["seq_ix"], np.repeat(train.seq_ix[held], len(scored)))
    np.testing.assert_array_equal(oof["step"], np.tile(scored, len(held)))
    # the predictions of the shipped network on those sequences, not of some other epoch
    shipped = serving.load_offline(tmp_path).predict_sequences(train.features[held])[:, scored]
    assert np.abs(oof["prediction"] - shipped.reshape(-1, 32)).max() < 1e-5
    (tmp_path / "manifest.json").write_text(json.dumps({"competition": "A", "family": "gru",
                                                        "train": {**cfg, "stop_on": "valid"},
                                                        "artifacts": ["model.npz"]}))
    assert train_folder(tmp_path, train, valid, Console(quiet=True)).oof is None  # valid chose the epoch


def test_stop_on_none_trains_exactly_the_epochs_at_the_given_rates_and_keeps_the_last(data):
    """A refit repeats a chosen epoch count: no stopping set, every epoch at its scheduled rate,
    the last epoch's weights kept (not a best one chosen on some data)."""
    train, _ = data["A"]
    cfg = parse_config({**TINY, "epochs": 3, "stop_on": "none", "lr_schedule": [3e-3, 1e-3, 5e-4, 1e-4]})
    result = fit(cfg, C.A, train, None)
    assert result.epochs_run == result.best_epoch == 3 and result.best_score is None
    assert [h["epoch_lr"] for h in result.history] == [3e-3, 1e-3, 5e-4]
    assert all(h["stop_score"] is None for h in result.history)
    # the kept weights are those after the third epoch: two epochs and one more differ
    two = fit(parse_config({**TINY, "epochs": 2, "stop_on": "none", "lr_schedule": [3e-3, 1e-3]}), C.A, train, None)
    assert not torch.equal(two.net.rnn.weight_hh_l0, result.net.rnn.weight_hh_l0)
    with pytest.raises(TrainingError, match="trains without a stopping set"):
        fit(cfg, C.A, train, train)
    with pytest.raises(ConfigError, match="lr_schedule"):
        parse_config({**TINY, "epochs": 3, "lr_schedule": [1e-3]})
    with pytest.raises(ConfigError, match="converge"):
        parse_config({**TINY, "stop_on": "none", "converge": True})


def test_the_history_names_the_rate_each_epoch_trained_with(data):
    """``epoch_lr`` is the rate an epoch ran at (the plateau schedule's ``lr`` is the next one's)."""
    train, valid = data["A"]
    result = fit(parse_config({**TINY, "epochs": 3, "lr": 2e-3}), C.A, train, valid)
    assert result.history[0]["epoch_lr"] == 2e-3
    assert [h["epoch_lr"] for h in result.history[1:]] == [h["lr"] for h in result.history[:-1]]


def test_a_network_without_a_stopping_set_reports_on_all_of_valid(data, tmp_path):
    train, valid = data["B"]
    manifest = {"competition": "B", "trained": True, "family": "gru",
                "train": {**TINY, "stop_on": "none", "features": {"preset": "b_book"}},
                "artifacts": ["model.npz", "features.npz"]}
    record = train_solution(tmp_path, manifest, train, valid, Console(quiet=True))
    assert record["valid_scored_sequences"] == len(valid) and record["selection"]["sequences"] == 0
    assert record["best_epoch"] == record["epochs_run"] == TINY["epochs"] and not record["warnings"]
