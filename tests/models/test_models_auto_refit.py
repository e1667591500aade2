"""``models auto`` after the search: the refit of the choice on train and the selection part, and
the ensemble of the best trials (kept only when it wins on the same rows and fits the time)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
import pytest
from rich.console import Console

from harness import competitions as C
from harness.manifest import Manifest
from models.auto import blend, output, refit, space
from models.auto.split import split_valid
from models.auto.trial import NO_GAIN, OK, TimeBudget, TrialResult, run_trial, write_solution
from models.cli import main
from models.config import from_dict
from models.data import load_sequences
from models.evaluate import evaluate, offline_predictions
from models.registry import family, train_solution
from models.selection import Budget


@pytest.fixture(scope="module")
def sets(b_files):
    """(train, report part, selection part) of the tiny files."""
    train, valid = b_files
    report, select = split_valid(load_sequences(valid))
    return load_sequences(train), report, select


def _ctx(train) -> space.Context:
    return space.Context(C.B, len(train), space.feature_choices(C.B), minutes_left=0.05)


def _trial(number: int, searched: dict, sets, b_files, root: Path) -> TrialResult:
    train, _, select = sets
    candidate = space.suggest(optuna.trial.FixedTrial(searched), _ctx(train), [searched["family"]])
    result = run_trial(number, searched, candidate, root / f"trial-{number:04d}", train, select,
                       TimeBudget(b_files[0], 2))
    assert result.status == OK, result.error
    return result


@pytest.fixture(scope="module")
def ridge_trials(sets, b_files, tmp_path_factory) -> list[TrialResult]:
    root = tmp_path_factory.mktemp("trials")
    return [_trial(i, {"family": "ridge_var", "ridge_var.lags": lags}, sets, b_files, root)
            for i, lags in enumerate((2, 4))]


def _same_sequences(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether any sequence of ``a`` (S, T, F) is also in ``b``."""
    return any(np.array_equal(x, y) for x in a for y in b)


def test_the_refit_is_what_is_written_and_the_report_part_joins_nothing(b_files, sets, tmp_path, monkeypatch, capsys):
    train_path, valid_path = b_files
    train, report, select = sets
    calls = []

    def spy(folder, data, valid, console, workers=1):
        calls.append((data, valid))
        return train_solution(folder, data, valid, console, workers)

    monkeypatch.setattr(refit, "train_solution", spy)
    out, runs = tmp_path / "sol", tmp_path / "runs"
    code = main(["auto", "--competition", "B", "--train", str(train_path), "--valid", str(valid_path),
                 "--out", str(out), "--runs", str(runs), "--latency-sequences", "2", "--families", "ridge_var", "--trials", "1",
                 "--minutes", "2", "--no-ensemble"])
    assert code == 0, capsys.readouterr().err
    assert "refit: trial 0 (ridge_var) fitted again on 6 train + 2 selection sequences" in capsys.readouterr().out
    [path] = runs.glob("auto-B-*.json")
    record = json.loads(path.read_text())
    assert record["refit"]["status"] == "refit" and record["written"] == "the refit of trial 0"

    # which rows did what, as the record says and as the refit's training saw them
    rows = record["data"]["valid"]
    assert rows["report_seq_ix"] == report.seq_ix.tolist() and rows["selection_seq_ix"] == select.seq_ix.tolist()
    assert record["refit"]["fit_on"] == {"train_sequences": 6, "valid_selection_seq_ix": select.seq_ix.tolist()}
    assert "nothing fits or chooses on it" in record["use_of_rows"]["valid report part"]
    [(data, seen)] = calls
    assert len(data) == len(train) + len(select) and len(np.unique(data.seq_ix)) == len(data)
    assert not _same_sequences(report.features, data.features) and not _same_sequences(report.features, seen.features)
    assert _same_sequences(select.features, data.features)

    # the written folder is the refit: the recorded settings on train + selection give its predictions ...
    written = family("ridge_var").load_offline(out)
    again = tmp_path / "again"
    write_solution(again, space.Candidate("ridge_var", record["refit"]["train"], list(space.PIPELINE_FILES),
                                          space.PIPELINE_SOLUTION), C.B)
    train_solution(again, refit.refit_data(train, select), select, Console(file=io.StringIO()))
    mine = offline_predictions(written, report)
    # the same code on the same arrays in the same order (deterministic ridge and folds): equal
    # up to a BLAS's summation order, far below the gap to a model fitted on train alone
    np.testing.assert_allclose(offline_predictions(family("ridge_var").load_offline(again), report), mine,
                               rtol=1e-6, atol=1e-9)
    searched = tmp_path / "searched"
    write_solution(searched, space.Candidate("ridge_var", record["chosen"]["params"], list(space.PIPELINE_FILES),
                                             space.PIPELINE_SOLUTION), C.B)
    train_solution(searched, train, select, Console(file=io.StringIO()))
    scored = report.scored
    assert np.abs(offline_predictions(family("ridge_var").load_offline(searched), report)[:, scored]
                  - mine[:, scored]).max() > 1e-4
    # ... and the reported score is that folder's, on the report part
    assert evaluate(written, report)["score"] == record["report"]["score"]


def test_a_network_refit_repeats_its_best_epoch_count_and_rates_without_a_stopping_set():
    ctx = space.Context(C.B, 8, space.feature_choices(C.B), minutes_left=1.0)
    searched = {"family": "gru", **space.FIRST_TRIALS["gru"]}
    candidate = space.refit_candidate(searched, {"best_epoch": 3, "epoch_lrs": [2e-3, 2e-3, 1e-3]}, ctx, 2)
    train = candidate.train
    assert (train["stop_on"], train["epochs"], train["lr_schedule"]) == ("none", 3, [2e-3, 2e-3, 1e-3])
    assert "patience" not in train and "stop_sequences" not in train and train["converge"] is False
    assert train["train_limit"] == 3000 + 2 and train["train_sequences"] == 8  # sized by the refit's data
    from_dict(family("gru").config, train)
    ridge = space.refit_candidate({"family": "ridge_var", "ridge_var.lags": 4}, {}, ctx, 2)
    assert ridge.train == space.ridge_var(optuna.trial.FixedTrial({"ridge_var.lags": 4}), ctx).train
    with pytest.raises(ValueError, match="no best epoch"):
        space.refit_candidate(searched, {}, ctx, 2)


def test_a_network_trial_is_refitted_for_its_best_epoch_count(sets, b_files, tmp_path):
    train, _, select = sets
    params = {"family": "gru", **space.FIRST_TRIALS["gru"], "gru.hidden": 16}
    trial = _trial(0, params, sets, b_files, tmp_path)
    best = trial.training["best_epoch"]
    assert len(trial.training["epoch_lrs"]) == best >= 1
    done = refit.refit(trial, [trial], train, len(train), select, space.feature_choices(C.B), 0,
                       TimeBudget(b_files[0], 2), tmp_path / "refit", 600.0)
    assert done.status == refit.REFIT, done.reason
    assert done.facts["epochs"] == best and done.facts["train"]["stop_on"] == "none"
    assert Manifest.read(done.folder).train["epochs"] == best


def test_a_refit_that_cannot_finish_in_the_time_left_is_skipped(ridge_trials, sets, b_files, tmp_path):
    train, _, select = sets
    def load():
        raise AssertionError("train is loaded only for a refit that will run")

    done = refit.refit(ridge_trials[0], ridge_trials, load, len(train), select, space.feature_choices(C.B), 0,
                       TimeBudget(b_files[0], 2), tmp_path / "refit", 0.0)
    assert done.status == refit.SKIPPED and done.folder is None and "s left" in done.reason


def test_ensemble_candidates_are_the_best_distinct_ok_single_trials():
    def r(number, score, status=OK, fam="ridge_var", lags=None):
        searched = {"family": fam, "ridge_var.lags": number if lags is None else lags}
        return TrialResult(number, fam, searched, {"lags": searched["ridge_var.lags"], "max_minutes": number}, status,
                           score=score)

    results = [r(0, 0.1), r(1, 0.3), r(2, 0.3, lags=1), r(3, 0.5, status="infeasible"), r(4, 0.2),
               r(5, 0.9, fam=blend.ENSEMBLE), r(6, 0.25), r(7, 0.05)]
    assert [c.number for c in blend.candidates(results, 3)] == [1, 6, 4]  # #2 repeats #1's settings


def test_ensemble_candidates_take_each_familys_best_before_a_familys_next_best():
    def r(number, score, fam):
        return TrialResult(number, fam, {"family": fam, "n": number}, {}, OK, score=score)

    results = [r(0, 0.30, "ridge_poly"), r(1, 0.29, "ridge_poly"), r(2, 0.28, "ridge_poly"), r(3, 0.20, "gru"),
               r(4, 0.25, "lightgbm"), r(5, 0.27, "ridge_poly")]
    assert [c.number for c in blend.candidates(results, 4)] == [0, 4, 3, 1]


def _synthetic(noise_of_second):
    """Predictions for the candidates on the real rows: the first the target plus noise, the
    second as ``noise_of_second`` says (independent noise: a blend beats both). Scaled well
    inside the metric's clip, which would otherwise reward a blend for shrinking alone."""

    def predictions(members, rows):
        y = rows.scored_targets()
        rng = np.random.default_rng(5)
        scale = 0.1 / y.std(axis=0)
        first = (y + rng.normal(0, 1, y.shape) * y.std(axis=0)) * scale
        second = noise_of_second(y, rng) * scale
        p = np.stack([first, second][: len(members)])
        return p, y, np.repeat(rows.seq_ix, int(rows.scored.sum()))

    return predictions


def test_an_ensemble_that_beats_its_best_candidate_is_kept_timed_chosen_and_refitted(ridge_trials, sets, b_files,
                                                                                      tmp_path, monkeypatch):
    train, report, select = sets
    monkeypatch.setattr(blend, "member_predictions",
                        _synthetic(lambda y, rng: y + rng.normal(0, 1, y.shape) * y.std(axis=0)))
    proposed = blend.propose(ridge_trials, select, 2, tmp_path / "ensemble", TimeBudget(b_files[0], 2))
    assert proposed.status == OK, proposed.error
    assert proposed.score > proposed.training["best_candidate_score"]
    assert sorted(proposed.training["members"]) == [0, 1] and proposed.us_per_row > 0  # timed in the sandbox
    assert output.choose([*ridge_trials, proposed]) is proposed
    manifest = Manifest.read(proposed.folder)
    assert manifest.family == "ensemble"
    assert sorted(m["name"] for m in manifest.train["members"]) == ["trial_0000", "trial_0001"]
    evaluate(family("ensemble").load_offline(Path(proposed.folder)), report)  # the written files serve

    done = refit.refit(proposed, ridge_trials, train, len(train), select, space.feature_choices(C.B), 0,
                       TimeBudget(b_files[0], 2), tmp_path / "refit", 600.0)
    assert done.status == refit.REFIT, done.reason
    assert sorted(done.facts["members"]) == ["trial_0000", "trial_0001"]
    searched, refitted = blend.blend_arrays(Path(proposed.folder)), blend.blend_arrays(done.folder)
    assert searched.keys() == refitted.keys() and all(np.array_equal(searched[k], refitted[k]) for k in searched)
    member = Path("members") / "trial_0000"
    old = family("ridge_var").load_offline(Path(proposed.folder) / member)
    new = family("ridge_var").load_offline(done.folder / member)
    assert not np.allclose(offline_predictions(old, report)[:, report.scored],
                           offline_predictions(new, report)[:, report.scored])


def test_an_ensemble_that_does_not_beat_its_best_candidate_is_not_kept(ridge_trials, sets, b_files, tmp_path,
                                                                        monkeypatch):
    _, _, select = sets
    noise = _synthetic(lambda y, rng: rng.normal(0, 1, y.shape) * y.std(axis=0))  # no information at all
    monkeypatch.setattr(blend, "member_predictions", noise)
    proposed = blend.propose(ridge_trials, select, 2, tmp_path / "ensemble", TimeBudget(b_files[0], 2))
    assert proposed.status == NO_GAIN and not (tmp_path / "ensemble").exists()
    assert output.choose([*ridge_trials, proposed]).family == "ridge_var"


def test_an_ensemble_whose_members_together_are_too_slow_is_not_kept(ridge_trials, sets, b_files, tmp_path,
                                                                     monkeypatch):
    _, _, select = sets
    monkeypatch.setattr(blend, "member_predictions",
                        _synthetic(lambda y, rng: y + rng.normal(0, 1, y.shape) * y.std(axis=0)))
    limit = ridge_trials[0].limit_minutes
    budget = TimeBudget(b_files[0], 2)
    per_row_us = Budget(C.B.test_rows, limit, 1, budget.safety).projected_minutes(1.0)
    slow = [replace(t, us_per_row=0.6 * limit / per_row_us) for t in ridge_trials]  # each fits, the two do not
    proposed = blend.propose(slow, select, 2, tmp_path / "ensemble", budget)
    assert proposed.status == NO_GAIN and "over the time budget" in proposed.error


def test_an_ensemble_that_fails_is_recorded_and_raises_nothing(ridge_trials, sets, b_files, tmp_path, monkeypatch):
    _, _, select = sets

    def broken(members, rows):
        raise RuntimeError("a member's files are unreadable")

    monkeypatch.setattr(blend, "member_predictions", broken)
    proposed = blend.propose(ridge_trials, select, 2, tmp_path / "ensemble", TimeBudget(b_files[0], 2))
    assert proposed.status == "failed" and proposed.error == "RuntimeError: a member's files are unreadable"
    assert output.choose([*ridge_trials, proposed]).family == "ridge_var"


def test_the_search_keeps_time_for_the_refit_and_caps_a_network_trial_to_it():
    from harness.execution import Engine
    from models.auto.search import ENSEMBLE_SHARE, REFIT_SHARE, SearchPlan

    def plan(refit_on, ensemble_on):
        return SearchPlan("B", Path("t"), Path("v"), None, 6, ["gru"], ("raw",), 30.0, Engine(), 0, None, 2, None,
                          1.5, 0.0, refit_on, ensemble_on)

    bare = plan(False, False)
    assert bare.after_seconds == 0 and bare.trial_minutes is None and bare.search_seconds == 30 * 60 - 60
    assert plan(False, True).search_seconds == bare.search_seconds - ENSEMBLE_SHARE * 30 * 60
    with_refit = plan(True, False)
    assert with_refit.search_seconds == bare.search_seconds - REFIT_SHARE * 30 * 60
    assert with_refit.trial_minutes == REFIT_SHARE * 30
    searched = {"family": "gru", **space.FIRST_TRIALS["gru"]}
    ctx = space.Context(C.B, 6, space.feature_choices(C.B), minutes_left=20.0, trial_minutes=with_refit.trial_minutes)
    assert space.suggest(optuna.trial.FixedTrial(searched), ctx, ["gru"]).train["max_minutes"] == 6.0
    uncapped = replace(ctx, trial_minutes=None)
    assert space.suggest(optuna.trial.FixedTrial(searched), uncapped, ["gru"]).train["max_minutes"] == 16.0
