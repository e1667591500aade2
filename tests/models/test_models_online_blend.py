"""Online exponential-weights blending: the static blend at rate 0, learning within a sequence,
a rate fitted out of fold, the batch and one-row forms alike, causal, and A only."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from features.storage import save_npz
from harness import competitions as C
from models.config import ConfigError, from_dict
from models.ensemble import EnsembleConfig, OfflineBlend, fit_blend
from models.online_blend import sequence_layout
from models.runtime.members import BLEND_FILE, Blend, load_folder
from models.runtime.online_weights import ExpWeights, blend_sequences, losses_before, sequence_weights
from models.runtime.predictor import Guard

K = C.A.n_outputs
SCORED = C.A.scored_steps_per_sequence
STEPS = np.arange(C.A.first_scored_step, C.A.last_scored_step + 1)


def oof_rows(p_seq: np.ndarray, y_seq: np.ndarray, shuffle_seed: int = 0):
    """Whole-sequence arrays (M, S, T, K) / (S, T, K) as OOF rows (M, N, K), (N, K), seq_ix, step,
    in a shuffled row order (fit_blend must not rely on the rows' order)."""
    m, s, t, k = p_seq.shape
    seq_ix = np.repeat(np.arange(s) * 7 + 3, t)
    step = np.tile(STEPS[:t], s)
    order = np.random.default_rng(shuffle_seed).permutation(s * t)
    return p_seq.reshape(m, s * t, k)[:, order], y_seq.reshape(s * t, k)[order], seq_ix[order], step[order]


def noisy_members(rng, s: int, noise: np.ndarray, shared: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Targets (S, T, K) and members y + noise[m, t] * e_m with unit-variance errors e_m that share
    ``shared`` of their variance (real members err alike), per-step noise scales (M, T)."""
    y = rng.normal(size=(s, SCORED, K))
    common = rng.normal(size=(1, s, SCORED, K))
    own = rng.normal(size=(len(noise), s, SCORED, K))
    errors = np.sqrt(shared) * common + np.sqrt(1.0 - shared) * own
    return y, y[None] + noise[:, None, :, None] * errors


def test_rate_zero_is_the_static_blend():
    rng = np.random.default_rng(0)
    p, y = rng.normal(size=(3, 2, 40, 5)), rng.normal(size=(2, 40, 5))
    prior = rng.random((3, 5))
    prior /= prior.sum(axis=0)
    out = blend_sequences(prior, 0.0, np.ones(5), p, y)
    np.testing.assert_allclose(out, np.einsum("mk,mstk->stk", prior, p), rtol=0, atol=1e-12)
    assert not np.allclose(blend_sequences(prior, 1.0, np.ones(5), p, y), out)  # a rate changes it


def test_a_member_that_becomes_better_mid_sequence_gains_weight():
    """Member 1 is a little worse than member 0 in the first half and much better in the second:
    its cumulative loss falls behind, then overtakes, and its weight follows."""
    rng = np.random.default_rng(1)
    half = SCORED // 2
    noise = np.ones((2, SCORED))
    noise[1, :half] = 1.2
    noise[1, half:] = 0.3
    y, p = noisy_members(rng, 12, noise)
    prior = np.full((2, K), 0.5)
    w = sequence_weights(prior, 0.1, losses_before(p, y, np.ones(K)))
    np.testing.assert_allclose(w[:, :, 0], 0.5)  # nothing revealed yet: the prior
    assert w[1, :, half].mean() < 0.01  # member 0 led the first half
    assert w[1, :, -1].mean() > 0.99  # member 1 took over in the second
    p_rows, y_rows, seq_ix, step = oof_rows(p, y)
    # a stacker shrunk to its intercept never wins, so the online blend is judged against the static weights
    cfg = EnsembleConfig(members=["x"], blend_folds=3, online=True, online_rates=[0.01, 0.1, 1.0], stacker_alpha=1e9)
    blend = fit_blend(C.A, p_rows, y_rows, seq_ix, cfg, step)
    online = blend["online"]
    assert online["kept"] and online["rate"] > 0 and blend["combiner"] == "online"
    assert online["oof_online"] > online["oof_static"] + 0.01 and online["difference_interval"][0] > 0
    assert all(r > 0 for r in online["fold_rates"])
    assert set(blend["online_arrays"]) == {"online/rate", "online/scale"}
    # the same online blend set against itself: a positive rate, but no gain the sequences bear out
    from models.ensemble import nnls_weights
    from models.online_blend import fit_online

    args = (C.A, p_rows, y_rows, seq_ix, step, [0.01, 0.1, 1.0], 3, 0, nnls_weights)
    first = fit_online(*args, static=np.zeros_like(y_rows))
    again = fit_online(*args, static=first["prediction"])
    assert again["fit"].rate > 0 and again["interval"] == (0.0, 0.0) and not again["kept"]


def test_the_fitted_rate_is_zero_when_the_members_are_equally_good_noise():
    rng = np.random.default_rng(2)
    y, p = noisy_members(rng, 12, np.ones((2, SCORED)))
    p_rows, y_rows, seq_ix, step = oof_rows(p, y)
    cfg = EnsembleConfig(members=["x"], blend_folds=3, online=True, online_rates=[0.01, 0.1, 1.0], stacker_alpha=1e9)
    blend = fit_blend(C.A, p_rows, y_rows, seq_ix, cfg, step)
    online = blend["online"]
    assert online["fitted_rate"] == 0.0 and online["fold_rates"] == [0.0, 0.0, 0.0]
    assert not online["kept"] and online["rate"] == 0.0 and blend["combiner"] == "weights"
    assert blend["online_arrays"] == {}
    np.testing.assert_allclose(blend["coef"], 0.5, atol=0.1)  # equally good: near half each


def test_online_blend_predictions_are_out_of_fold_in_the_rows_given_order():
    """The OOF prediction rows follow the input rows (shuffled here), whatever the layout inside."""
    rng = np.random.default_rng(3)
    noise = np.ones((2, SCORED))
    noise[1, : SCORED // 2] = 1.2
    noise[1, SCORED // 2:] = 0.3
    y, p = noisy_members(rng, 6, noise)
    p_rows, y_rows, seq_ix, step = oof_rows(p, y, shuffle_seed=5)
    cfg = EnsembleConfig(members=["x"], blend_folds=2, online=True, online_rates=[0.01, 0.1], stacker_alpha=1e9)
    blend = fit_blend(C.A, p_rows, y_rows, seq_ix, cfg, step)
    assert blend["combiner"] == "online"
    # scored in the shuffled row order, the predictions give the score fitted in sequence order
    from models.ensemble import metric

    assert metric(C.A, y_rows, blend["oof_prediction"]) == pytest.approx(blend["online"]["oof_online"], abs=1e-9)
    assert blend["online"]["oof_online"] > blend["oof_weights"]


def one_row_blend(prior, rate, inv_scale, p, revealed, scored):
    """ExpWeights replayed row by row as ``Blend`` uses it (observe the last prediction's target first)."""
    online = ExpWeights(prior, rate, inv_scale)
    out = np.full(p.shape[1:], np.nan)
    for s in range(p.shape[1]):
        online.reset()
        last = None
        for t in range(p.shape[2]):
            if last is not None:
                online.observe(p[:, s, last], revealed[s, last])
                last = None
            if scored[t]:
                out[s, t] = online.blend(p[:, s, t])
                last = t
    return out


def test_batch_and_one_row_forms_agree():
    rng = np.random.default_rng(4)
    m, s, t, k = 3, 3, 60, 4
    scored = (np.arange(t) >= 10) & (np.arange(t) <= t - 2)
    p = rng.normal(size=(m, s, t, k)) * np.array([1.0, 2.0, 0.5])[:, None, None, None]
    p[:, :, ~scored] = np.nan
    revealed = rng.normal(size=(s, t, k))
    revealed[:, -1] = np.nan
    prior = np.array([[0.2] * k, [0.8] * k, [0.0] * k])  # a zero-weight member stays at zero
    inv_scale = 1.0 / rng.uniform(0.5, 2.0, size=k)
    batch = blend_sequences(prior, 0.3, inv_scale, p, revealed)
    # both sum the same losses in the same order, but with different array shapes: tolerance, not bits
    np.testing.assert_allclose(one_row_blend(prior, 0.3, inv_scale, p, revealed, scored), batch, rtol=0, atol=1e-9)
    assert np.isnan(batch[:, ~scored]).all() and np.isfinite(batch[:, scored]).all()
    w = sequence_weights(prior, 0.3, losses_before(p, revealed, inv_scale))
    assert (w[2] == 0).all()


def test_changing_a_future_target_leaves_past_blends_alone():
    rng = np.random.default_rng(5)
    p, y = rng.normal(size=(2, 2, 50, 3)), rng.normal(size=(2, 50, 3))
    prior = np.full((2, 3), 0.5)
    before = blend_sequences(prior, 0.5, np.ones(3), p, y)
    changed = y.copy()
    changed[:, 20] += 5.0  # the target of row 20, revealed when row 21 arrives
    after = blend_sequences(prior, 0.5, np.ones(3), p, changed)
    # rows <= 20 sum exactly the same prefix of losses in the same order: equal by construction
    np.testing.assert_array_equal(after[:, :21], before[:, :21])
    assert not np.allclose(after[:, 21:], before[:, 21:])


class ScaledState:
    """A causal stub member: prediction = c * state + b, in both one-row and batch forms."""

    def __init__(self, c: float, b: float) -> None:
        self.c, self.b = c, b

    def reset(self) -> None:
        pass

    def update(self, row, need=True):
        return self.c * row + self.b if need else None

    def predict_sequences(self, features, steps=None):
        out = self.c * features.astype(np.float64) + self.b
        if steps is not None:
            out[:, ~np.asarray(steps, dtype=bool)] = np.nan
        return out


def stub_blend_arrays(rate: float) -> tuple[list, dict]:
    members = [ScaledState(1.0, 0.0), ScaledState(0.6, 0.1), ScaledState(0.0, 0.0)]
    coef = np.tile(np.array([[0.3], [0.5], [0.2]]), (1, K))
    guard = Guard(np.array([1, 5]), np.array([0.1, -0.2]), np.array([0.5, 0.0]))
    online = ExpWeights(coef, rate, np.full(K, 0.8))
    return members, {"coef": coef, "intercept": np.zeros(K), **guard.arrays(), **online.arrays()}


def test_offline_blend_equals_its_row_by_row_replay_and_is_causal(row_by_row):
    rng = np.random.default_rng(6)
    features = rng.normal(size=(2, 1000, K)).astype(np.float32)
    features[:, 1:] += 0.9 * features[:, :-1]  # persistence, so the members differ in quality
    scored = np.zeros(1000, dtype=bool)
    scored[C.A.first_scored_step: C.A.last_scored_step + 1] = True
    members, arrays = stub_blend_arrays(0.05)
    online = ExpWeights.from_arrays(arrays["coef"], arrays)
    offline = OfflineBlend(members, arrays["coef"], arrays["intercept"], Guard.from_arrays(arrays), online)
    batch = offline.predict_sequences(features, scored)
    row = row_by_row(Blend(members, arrays["coef"], arrays["intercept"], Guard.from_arrays(arrays),
                       ExpWeights.from_arrays(arrays["coef"], arrays)), features, scored)
    np.testing.assert_allclose(row, batch, rtol=0, atol=1e-9)
    static = OfflineBlend(members, arrays["coef"], arrays["intercept"], Guard.from_arrays(arrays))
    assert not np.allclose(static.predict_sequences(features, scored)[:, scored], batch[:, scored], atol=1e-3)
    changed = features.copy()
    changed[:, 500] += 3.0  # the state of row 500: the target of row 499
    after = offline.predict_sequences(changed, scored)
    np.testing.assert_array_equal(after[:, :500], batch[:, :500])  # same arithmetic on the same prefix
    assert not np.allclose(after[:, 501:], batch[:, 501:])


def test_layout_refuses_oof_rows_that_skip_steps():
    seq_ix = np.repeat([4, 9], SCORED)
    step = np.tile(STEPS, 2)
    layout = sequence_layout(seq_ix, step, C.A)
    np.testing.assert_array_equal(step[layout], np.tile(STEPS, (2, 1)))
    keep = step % 2 == 0  # sample_stride 2
    with pytest.raises(ConfigError, match="sample_stride"):
        sequence_layout(seq_ix[keep], step[keep], C.A)
    with pytest.raises(ConfigError, match="sample_stride"):
        sequence_layout(seq_ix, np.where(step == 500, 999, step), C.A)


@pytest.mark.parametrize("values, message", [({"online": "yes"}, "online"),
                                              ({"online_rates": [-0.1]}, "online_rates"),
                                              ({"online_rates": []}, "online_rates"),
                                              ({"online_rates": [float("nan")]}, "online_rates")])
def test_online_settings_are_checked(values, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(EnsembleConfig, {"members": ["x"], **values})


RIDGE_FILES = ["model.json", "pipeline.npz", "weights.npz"]
RIDGE = {"lags": 3, "folds": 2, "alphas": [1e-4, 1e-2]}


def write_manifest(folder: Path, train: dict, key: str = "A") -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({"competition": key, "trained": True, "family": "ensemble",
                                                      "train": train, "artifacts": []}))
    return folder


def test_b_refuses_online_blending_before_training_a_member(tmp_path, quiet):
    from harness.randomdata import write_random_file
    from models.data import load_sequences
    from models.registry import train_solution

    data = load_sequences(write_random_file(C.B, tmp_path / "b.parquet", 2, seed=1))
    members = [{"name": "r", "family": "no_such_family", "artifacts": []}]  # never reached
    folder = write_manifest(tmp_path / "e", {"members": members, "online": True}, key="B")
    with pytest.raises(ConfigError, match="online blending is for .*A"):
        train_solution(folder, data, data, quiet)


@pytest.fixture(scope="module")
def a_split(a_random):
    from models.data import load_sequences

    data = load_sequences(a_random)
    return a_random, data.subset(np.arange(4)), data.subset(np.arange(4, 6))


def test_trained_online_ensemble_records_its_rate_and_replays_its_zip(a_split, tmp_path, quiet, row_by_row):
    import pyarrow.parquet as pq

    from models.evaluate import evaluate, package_and_replay, parity
    from models.members import load_offline_folder
    from models.registry import family, train_solution

    path, train, valid = a_split
    members = [{"name": "r3", "family": "ridge_var", "train": RIDGE, "artifacts": RIDGE_FILES},
               {"name": "r1", "family": "ridge_var", "train": {**RIDGE, "lags": 1}, "artifacts": RIDGE_FILES}]
    folder = write_manifest(tmp_path / "ens", {"members": members, "blend_folds": 2, "latency_sequences": 0,
                                               "select": False, "online": True, "online_rates": [0.01, 0.1]})
    shutil.copy(Path(__file__).resolve().parents[2] / "solutions" / "a_ensemble" / "solution.py", folder)
    record = train_solution(folder, train, valid, quiet).record
    online = record["cv"]["online"]
    from models.cli import _table

    console = Console(file=io.StringIO(), width=200)  # the summary train prints: the member table is no stop set
    console.print(_table("ens", {**record, "valid_score": 0.0, "seconds": 1.0, "data": {"valid": {"sequences": 2}}},
                         "R²"))
    assert "OOF, online rate" in console.file.getvalue()
    assert set(online) >= {"kept", "rate", "fitted_rate", "oof_static", "oof_online", "fold_rates"}
    assert len(online["fold_rates"]) == 2 and "0.1" in online["rate_scores_all_rows"]
    # random data: whatever was fitted there (often the stacker), ship half-and-half weights with a
    # positive rate, so the online path is what the zip replays
    coef = np.full((2, K), 0.5)
    save_npz(folder / BLEND_FILE, {"coef": coef, "intercept": np.zeros(K),
                                   **ExpWeights(coef, 0.3, np.full(K, 2.0)).arrays()})
    assert load_folder(folder).online is not None
    batch = load_offline_folder(folder).predict_sequences(valid.features, valid.scored)
    row = row_by_row(load_folder(folder), valid.features, valid.scored)
    np.testing.assert_allclose(row, batch, rtol=0, atol=1e-6)
    valid_path = tmp_path / "valid.parquet"
    pq.write_table(pq.read_table(path).slice(4000, 2000), valid_path)
    offline = evaluate(family("ensemble").load_offline(folder), valid)
    assert parity(offline, package_and_replay(folder, valid_path, sequences=2))["max_abs_diff"] <= 1e-6
