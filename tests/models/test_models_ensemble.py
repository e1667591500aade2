"""Seed averages and ensembles: what they compute, what they refuse, and that what ships replays the same."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness import competitions as C
from harness.execution import Engine
from models.config import ConfigError
from models.data import load_sequences
from models.ensemble import fit_blend, nnls_weights, EnsembleConfig
from models.evaluate import evaluate, package_and_replay, parity
from models.members import load_offline_folder
from models.registry import family, train_solution
from models.runtime.members import load_folder
from models.selection import Budget, greedy_select

RIDGE_FILES = ["model.json", "pipeline.npz", "weights.npz"]
RIDGE = {"lags": 3, "folds": 2, "alphas": [1e-4, 1e-2]}
GRU = {"hidden": 8, "layers": 1, "epochs": 2, "batch_size": 2, "chunk": 250, "eval_batch": 4, "check_sequences": 1}


def seeds_files(n: int, files: list[str]) -> list[str]:
    return ["members.json"] + [f"seed_{i}/{name}" for i in range(n) for name in files]


def write_manifest(folder, family_name: str, train: dict, artifacts: list[str], key: str = "A"):
    folder.mkdir(exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({"competition": key, "trained": True, "family": family_name,
                                                      "train": train, "artifacts": artifacts}))
    return folder


@pytest.fixture(scope="module")
def a_data(tmp_path_factory):
    from harness.randomdata import write_random_file

    path = write_random_file(C.A, tmp_path_factory.mktemp("ens") / "a.parquet", 6, seed=3, sequences_per_group=2)
    data = load_sequences(path)
    return path, data.subset(np.arange(4)), data.subset(np.arange(4, 6))


@pytest.mark.parametrize("workers", [1, 2])
def test_seed_average_is_the_mean_of_its_members(a_data, tmp_path, quiet, workers, row_by_row):
    _, train, valid = a_data
    folder = write_manifest(tmp_path / "avg", "ridge_var", {**RIDGE, "sample_stride": 2, "seeds": 3},
                            seeds_files(3, RIDGE_FILES))
    trained = train_solution(folder, train, valid, quiet, Engine(workers=workers))
    assert trained.record["seeds"] == [0, 1, 2]
    ridge = family("ridge_var")
    members = [ridge.load_offline(folder / f"seed_{i}").predict_sequences(valid.features, valid.scored)
               for i in range(3)]
    assert not np.allclose(members[0], members[1]), "seeds that change nothing would prove nothing"
    offline = load_offline_folder(folder).predict_sequences(valid.features, valid.scored)
    np.testing.assert_allclose(offline, np.mean(members, axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(row_by_row(load_folder(folder), valid.features, valid.scored), offline, rtol=0, atol=1e-9)
    # seeded row sampling (stride 2) gives the seeds no common OOF row: the average has none, and says why
    assert trained.oof is None and "share no" in trained.record["oof"]


def test_seed_average_oof_is_the_mean_of_the_members_oof(a_data, tmp_path, quiet):
    _, train, valid = a_data
    folder = write_manifest(tmp_path / "avg", "ridge_var", {**RIDGE, "seeds": 2}, seeds_files(2, RIDGE_FILES))
    from models.config import from_dict
    from models.linear import RIDGE_VAR, RidgeVarConfig

    trained = train_solution(folder, train, valid, quiet)
    members = [RIDGE_VAR.train(from_dict(RidgeVarConfig, {**RIDGE, "seed": s}), train, valid, quiet) for s in (0, 1)]
    np.testing.assert_array_equal(trained.oof["seq_ix"], members[0].oof["seq_ix"])  # stride 1: every row, same order
    np.testing.assert_allclose(trained.oof["prediction"],
                               (members[0].oof["prediction"].astype(np.float64) + members[1].oof["prediction"]) / 2,
                               rtol=0, atol=1e-6)


def test_seed_average_reports_on_the_part_of_valid_its_members_did_not_choose_on(a_data, quiet):
    """A member stopped on valid names the rest of valid (``report_index``); the average keeps it,
    so the registry scores the average where no seed chose its epoch."""
    from dataclasses import dataclass

    from models.family import Trained
    from models.members import SeedAverage

    _, train, valid = a_data

    @dataclass
    class Config:
        seed: int = 0

    class ChoosesOnValid:
        name, config = "stub", Config

        def train(self, config, train, valid, console):
            return Trained(model=config.seed, record={}, report_index=np.array([1]))

    trained = SeedAverage(ChoosesOnValid(), seeds=2).train(Config(), train, valid, quiet)
    np.testing.assert_array_equal(trained.report_index, [1])


def test_seeds_refuse_a_manifest_that_does_not_name_every_seed(a_data, tmp_path, quiet):
    _, train, valid = a_data
    folder = write_manifest(tmp_path / "avg", "ridge_var", {**RIDGE, "seeds": 2}, seeds_files(3, RIDGE_FILES))
    with pytest.raises(ConfigError, match="seed_<i>"):
        train_solution(folder, train, valid, quiet)
    folder = write_manifest(tmp_path / "bad", "ridge_var", {**RIDGE, "seeds": 0}, RIDGE_FILES)
    with pytest.raises(ConfigError, match="seeds must be a positive integer"):
        train_solution(folder, train, valid, quiet)


def test_nnls_weights_are_non_negative_sum_to_one_and_find_a_convex_mix():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(4000, 3))
    noise = rng.normal(scale=0.5, size=y.shape)
    good = y + noise
    other = y + rng.normal(scale=0.5, size=y.shape)
    anti = y + 3 * noise  # least squares would give it -0.5 to cancel good's noise; non-negative weights give 0
    w = nnls_weights(np.stack([good, other, anti]), y)
    assert (w >= 0).all()
    np.testing.assert_allclose(w.sum(axis=0), 1.0, atol=1e-9)
    np.testing.assert_allclose(w[2], 0.0, atol=1e-6)
    np.testing.assert_allclose(w[0], 0.5, atol=0.05)  # two equally noisy, independent members: half each


def blend_case(bias: float, alpha: float):
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(20), 200)
    y = rng.normal(size=(len(groups), C.A.n_outputs))
    p = np.stack([0.5 * y + bias + rng.normal(scale=0.3, size=y.shape),
                  0.5 * y + bias + rng.normal(scale=0.3, size=y.shape)])
    cfg = EnsembleConfig(members=["x"], stacker_alpha=alpha, blend_folds=4)
    return fit_blend(C.A, p, y, groups, cfg)


def test_stacker_is_kept_only_when_it_beats_the_weights_out_of_fold():
    kept = blend_case(bias=2.0, alpha=1.0)  # biased, shrunk members: only a stacker can rescale them
    assert kept["combiner"] == "stacker" and kept["oof_stacker"] > kept["oof_weights"]
    dropped = blend_case(bias=0.0, alpha=1e9)  # a stacker shrunk to its intercept predicts nothing
    assert dropped["combiner"] == "weights" and dropped["oof_stacker"] < dropped["oof_weights"]
    np.testing.assert_allclose(dropped["intercept"], 0.0)
    np.testing.assert_allclose(dropped["coef"].sum(axis=0), 1.0, atol=1e-9)


def test_selection_respects_the_time_and_size_budget():
    names = ["fast", "slow", "big", "useless"]
    gains = {0: 0.30, 1: 0.10, 2: 0.05, 3: 0.0}
    score = lambda idx: sum(gains[i] for i in idx)  # noqa: E731
    budget = Budget(test_rows=1_000_000, minutes=60.0, archive_bytes=20 * 1024**2, safety=1.5)
    limit_us = 60 * 60 / (1_000_000 * 1.5) * 1e6  # 2400 us per row
    us = [100.0, limit_us, 10.0, 1.0]  # "slow" alone fits, but not beside "fast"
    sizes = [1000, 1000, 30 * 1024**2, 1000]
    chosen, table = greedy_select(names, score, us, sizes, budget)
    assert chosen == [0]
    why = {row["member"]: row["why"] for row in table}
    assert why == {"fast": "selected", "slow": "over the time budget", "big": "over the size cap",
                   "useless": "no gain"}
    assert table[0]["projected_minutes"] == pytest.approx(budget.projected_minutes(100.0))
    # with a generous budget: the best alone first, then by gain per us/row (big 0.05/10 before slow 0.1/200)
    chosen, _ = greedy_select(names, score, [100.0, 200.0, 10.0, 1.0], [1000] * 4, budget)
    assert chosen == [0, 2, 1]


def test_ensemble_offline_equals_the_online_replay_of_its_zip(a_data, tmp_path, quiet, row_by_row):
    path, train, valid = a_data
    members = [{"name": "ridge", "family": "ridge_var", "train": RIDGE, "artifacts": RIDGE_FILES},
               {"name": "ridge2", "family": "ridge_var", "train": {"lags": 2, "folds": 2, "alphas": [1e-2], "seeds": 2},
                "artifacts": seeds_files(2, RIDGE_FILES)},
               {"name": "gru", "family": "gru", "train": GRU, "artifacts": ["model.npz"]}]
    folder = write_manifest(tmp_path / "ens", "ensemble", {"members": members, "oof_folds": 2, "blend_folds": 2,
                                                           "latency_sequences": 2, "select": False}, [])
    import shutil
    from pathlib import Path

    shutil.copy(Path(__file__).resolve().parents[2] / "solutions" / "a_ensemble" / "solution.py", folder)
    trained = train_solution(folder, train, valid, quiet)
    record = trained.record
    assert record["selected"] == ["ridge", "ridge2", "gru"]
    assert record["members"]["gru"]["oof_source"] == "2-fold retraining"
    assert all(row["us_per_row"] > 0 for row in record["selection"])  # measured in the sandbox
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "members/ridge2/seed_1/weights.npz" in manifest["artifacts"]  # set to what was written
    offline = evaluate(family("ensemble").load_offline(folder), valid)
    np.testing.assert_allclose(row_by_row(load_folder(folder), valid.features, valid.scored),
                               load_offline_folder(folder).predict_sequences(valid.features, valid.scored),
                               rtol=0, atol=1e-6)
    valid_path = tmp_path / "valid.parquet"
    import pyarrow.parquet as pq

    pq.write_table(pq.read_table(path).slice(4000, 2000), valid_path)
    result = parity(offline, package_and_replay(folder, valid_path, sequences=2))
    assert result["max_abs_diff"] <= 1e-6


def test_ensemble_config_errors_name_the_member(a_data, tmp_path, quiet):
    _, train, valid = a_data
    for members, message in (([], "at least one member"), (["no/such/folder"], r"members\[0\]"),
                             ([{"name": "x", "family": "ensemble", "artifacts": []}], "cannot be a member"),
                             ([{"name": "x", "family": "ridge_var"}], "inline member has keys"),
                             ([{"name": "x", "family": "ridge_var", "train": RIDGE, "artifacts": RIDGE_FILES}] * 2,
                              "distinct")):
        folder = write_manifest(tmp_path / "e", "ensemble", {"members": members}, [])
        with pytest.raises(ConfigError, match=message):
            train_solution(folder, train, valid, quiet)


def test_gru_stopped_on_a_fold_gives_oof_on_that_fold_only(a_data, quiet):
    _, train, valid = a_data
    from models.config import from_dict
    from models.recurrent.config import RecurrentConfig

    fam = family("gru")
    seqs = []
    for seed in (0, 1):
        cfg = from_dict(RecurrentConfig, {**GRU, "stop_on": "fold", "folds": 2, "split_seed": 7, "seed": seed})
        trained = fam.train(cfg, train, valid, quiet)
        seqs.append(set(np.unique(trained.oof["seq_ix"]).tolist()))
        assert len(seqs[-1]) == 2 and not seqs[-1] & set(valid.seq_ix.tolist())
        assert trained.record["train_sequences"] == 2
    assert seqs[0] == seqs[1]  # split_seed fixes the fold across seeds


def test_compare_reports_the_difference_and_its_paired_interval(a_data, tmp_path, quiet):
    from models.evaluate import compare

    _, train, valid = a_data
    models = []
    for lags in (2, 3):
        folder = write_manifest(tmp_path / f"r{lags}", "ridge_var", {**RIDGE, "lags": lags}, RIDGE_FILES)
        train_solution(folder, train, valid, quiet)
        models.append(family("ridge_var").load_offline(folder))
    same = compare(models[0], models[0], valid, n_resamples=50)
    assert same["difference"] == 0.0 and same["interval"] == (0.0, 0.0) and same["p_better"] == 0.0  # ties: never better
    other = compare(models[1], models[0], valid, n_resamples=50)
    scores = [evaluate(m, valid)["score"] for m in models]
    assert other["difference"] == pytest.approx(scores[1] - scores[0], abs=1e-9)
    assert other["difference"] != 0.0
