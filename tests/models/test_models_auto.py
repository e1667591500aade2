"""``python -m models auto``: the folder it writes gates, choices never read the report part,
an infeasible time budget is pruned, user mistakes are one line and exit 2."""

from __future__ import annotations

import io
import json
import subprocess
import time
from pathlib import Path

import pytest
from rich.console import Console

from harness import competitions as C
from harness.execution import Engine, run_tasks
from models.auto import space, worker
from models.auto.progress import TrialProgress
from models.auto.search import cut_trials
from models.auto.split import split_valid
from models.auto.trial import CUT, FAILED, OK, RUNNING, TimeBudget, TrialResult, run_trial, save_result
from models.cli import main
from models.config import ConfigError
from models.data import load_sequences
from models.evaluate import evaluate
from models.registry import family


def _args(train: Path, valid: Path, out: Path, runs: Path, *extra: str) -> list[str]:
    return ["auto", "--competition", "B", "--train", str(train), "--valid", str(valid), "--out", str(out),
            "--runs", str(runs), "--latency-sequences", "2", *extra]


def _record(runs: Path) -> dict:
    [path] = runs.glob("auto-B-*.json")
    return json.loads(path.read_text())


def test_the_written_folder_gates_and_choices_never_read_the_report_part(b_files, tmp_path, capsys):
    """The folder replaces an old one whole and passes the gate; the chosen trial's selection
    score is the written model's score on the selection part, the reported score its score on
    the report part, and the two parts share no sequence."""
    from harness.gate import GateOptions, gate

    train, valid = b_files
    out, runs = tmp_path / "out" / "sol", tmp_path / "runs"
    out.mkdir(parents=True)
    (out / "stale.txt").write_text("from an earlier run")
    code = main(_args(train, valid, out, runs, "--families", "ridge_var", "--trials", "2", "--minutes", "2",
                      "--force", "--no-refit", "--no-ensemble"))  # the written folder is the chosen trial's own
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "trials (selection score" in printed
    # the gate's default data is the simulator's market: the hint names the user's valid file
    assert f"next: python -m harness gate {out} --data {valid}" in " ".join(printed.split())
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["sol"]  # no staging or trial folders left beside it
    record = _record(runs)
    assert json.loads((out / "auto_run.json").read_text()) == record
    assert record["refit"]["status"] == "off" and record["written"] == f"trial {record['chosen']['number']} as searched"
    assert record["chosen"]["family"] == "ridge_var"
    assert record["chosen"]["score"] == max(t["score"] for t in record["trials"] if t["status"] == OK)

    report, select = split_valid(load_sequences(valid))
    assert not set(report.seq_ix) & set(select.seq_ix)
    assert (record["data"]["valid"]["report_sequences"], record["data"]["valid"]["selection_sequences"]) == (
        len(report), len(select))
    model = family("ridge_var").load_offline(out)
    # the same offline evaluation of the same files on the same rows: equal by construction
    assert evaluate(model, select)["score"] == record["chosen"]["score"]
    assert evaluate(model, report)["score"] == record["report"]["score"]

    gated = gate(out, GateOptions(data=valid, sequences=2, check_sequences=2, bootstrap=200))
    assert not gated.failed, [(c.name, c.status, c.reason) for c in gated.checks]


def test_an_infeasible_time_budget_is_pruned_and_nothing_is_written(b_files, tmp_path, capsys):
    train, valid = b_files
    out, runs = tmp_path / "sol", tmp_path / "runs"
    code = main(_args(train, valid, out, runs, "--families", "ridge_var", "--trials", "1", "--minutes", "2",
                      "--grader-minutes", "0.001"))
    assert code == 1
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    record = _record(runs)
    [trial] = record["trials"]
    assert trial["status"] == "infeasible" and trial["projected_minutes"] > trial["limit_minutes"]
    assert record["chosen"] is None
    assert "no trial both finished and fit the grader's time limit (1 trial (1 infeasible))" in capsys.readouterr().out


def spy_on_the_engine(monkeypatch) -> list[tuple[list, object]]:
    """The (tasks, engine) of every ``run_tasks`` call of the search, which still runs them."""
    from models.auto import search

    calls = []

    def spy(tasks, engine, **kwargs):
        calls.append((list(tasks), engine))
        return run_tasks(tasks, engine, **kwargs)

    monkeypatch.setattr(search, "run_tasks", spy)
    return calls


def test_two_workers_run_trials_side_by_side_as_tasks_of_the_engine(b_files, tmp_path, monkeypatch):
    train, valid = b_files
    runs = tmp_path / "runs"
    calls = spy_on_the_engine(monkeypatch)
    code = main(_args(train, valid, tmp_path / "sol", runs, "--families", "ridge_var", "--trials", "2",
                      "--minutes", "2", "--workers", "2"))
    assert code == 0
    [(tasks, engine)] = calls
    assert engine == Engine("local", 2) and [t.label for t in tasks] == ["search worker 1 of 2", "search worker 2 of 2"]
    assert [t.fn for t in tasks] == [worker.run] * 2 and [t.args[0].index for t in tasks] == [0, 1]
    record = _record(runs)
    assert (record["search"]["workers"], record["search"]["backend"]) == (2, "local")
    numbers = [t["number"] for t in record["trials"]]
    assert len(numbers) >= 2 and len(set(numbers)) == len(numbers)


def hang_in_a_trial(spec: worker.WorkerSpec) -> None:
    """A search worker whose trial outlasts the deadline: its result says ``running``, it has
    started a process (as a trial's sandbox does), and each start is counted."""
    trials = Path(spec.trials_dir)
    save_result(TrialResult(spec.index, "ridge_var", {}, {}, RUNNING), trials / f"trial-{spec.index:04d}")
    child = subprocess.Popen(["sleep", "120"])
    with open(trials.parent / "starts", "a") as fh:
        fh.write(f"{spec.index} {child.pid}\n")
    time.sleep(120)


def test_a_search_cut_at_its_deadline_ends_its_workers_with_their_children_and_retries_none(tmp_path, monkeypatch):
    import psutil

    from models.auto import search

    monkeypatch.setattr(search, "run_worker", hang_in_a_trial)
    plan = search.SearchPlan("B", tmp_path / "t", tmp_path / "v", None, 6, ["ridge_var"], ("raw",), 0.05,
                             Engine(workers=2), 0, None, 2, None, 1.5, time.time(), refit=False, ensemble=False)
    work = tmp_path / "work"
    results = search.run_search(plan, work, Console(file=io.StringIO()))
    assert time.time() - plan.started < plan.search_seconds + 15
    assert [(r.number, r.status) for r in results] == [(0, CUT), (1, CUT)]
    starts = [line.split() for line in (work / "starts").read_text().splitlines()]
    assert sorted(index for index, _ in starts) == ["0", "1"]  # each worker started once: none retried
    for _, pid in starts:
        for _ in range(100):
            if not psutil.pid_exists(int(pid)) or psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"process {pid} of a worker outlived the deadline")


def test_a_worker_that_raises_outside_a_trial_is_a_crash_with_its_traceback(tmp_path):
    from models.auto import search

    plan = search.SearchPlan("B", tmp_path / "missing.parquet", tmp_path / "v", None, 6, ["ridge_var"], ("raw",), 1.0,
                             Engine(workers=2), 0, None, 2, None, 1.5, time.time(), refit=False, ensemble=False)
    started = time.time()
    with pytest.raises(worker.WorkerCrashed, match=r"(?s)search worker [12] failed \(\w*Error: .*missing.parquet.*\); "
                                                   r"its log ends:\nTraceback .*in _search"):
        search.run_search(plan, tmp_path / "work", Console(file=io.StringIO()))
    assert time.time() - started < 30  # the search stops at once, not at its deadline


def test_a_trial_that_repeats_an_earlier_ones_settings_is_pruned_unrun(b_files, tmp_path):
    import optuna

    train, valid = b_files
    journal, trials = tmp_path / "study.journal", tmp_path / "trials"
    trials.mkdir()
    study = optuna.create_study(study_name=worker.STUDY, storage=worker.storage(str(journal)), direction="maximize")
    for _ in range(2):  # the same point twice, as TPE proposes a cheap family's best again
        study.enqueue_trial({"family": "ridge_var", "ridge_var.lags": 2})
    worker.run(worker.WorkerSpec("B", str(train), str(valid), None, ["ridge_var"], ["raw"], 0, 0, str(journal),
                                 str(trials), time.time() + 120, 2, 1, None, 1.5, log=str(tmp_path / "log")))
    first, second = study.get_trials()
    assert first.state == optuna.trial.TrialState.COMPLETE and first.params == second.params
    assert second.state == optuna.trial.TrialState.PRUNED
    repeat = trials / "trial-0001"
    assert [p.name for p in repeat.iterdir()] == ["trial.json"]  # the repeat trained nothing, and is listed
    assert json.loads((repeat / "trial.json").read_text())["status"] == "repeat"


def test_a_search_on_a_local_ray_instance(b_files, tmp_path, monkeypatch, capsys):
    """Skipped, with the reason, only where Ray cannot start."""
    pytest.importorskip("ray", reason="Ray is not installed")
    train, valid = b_files
    runs = tmp_path / "runs"
    calls = spy_on_the_engine(monkeypatch)
    code = main(_args(train, valid, tmp_path / "sol", runs, "--families", "ridge_var", "--trials", "2",
                      "--minutes", "2", "--workers", "2", "--backend", "ray", "--no-refit", "--no-ensemble"))
    err = capsys.readouterr().err
    if code == 2 and "Ray" in err:
        pytest.skip(f"Ray cannot start here: {err.strip()}")
    assert code == 0, err
    assert [engine for _, engine in calls] == [Engine("ray", 2)]
    record = _record(runs)
    assert record["search"]["backend"] == "ray" and record["chosen"]["status"] == OK
    assert len({t["number"] for t in record["trials"]}) == len(record["trials"]) >= 2


@pytest.mark.parametrize("change, expected", [
    ("exists", "exists; pass --force"),
    ("one_valid_sequence", "auto needs at least 2"),
    ("missing_train", "no such file"),
    ("wrong_competition", "asked for"),
    ("unknown_family", "cannot be searched"),
    ("ray_address", "needs a storage every node shares"),
])
def test_user_mistakes_are_one_line_and_exit_2(change, expected, b_files, a_random, tmp_path, capsys):
    train, valid = b_files
    out = tmp_path / "sol"
    extra = ["--trials", "1", "--minutes", "1"]
    if change == "exists":
        out.mkdir()
    elif change == "one_valid_sequence":
        from harness.market import get_generator
        from harness.market.base import write_set

        valid = write_set(get_generator("B"), 1, 3, "valid", tmp_path / "one.parquet")
    elif change == "missing_train":
        train = tmp_path / "nothing.parquet"
    elif change == "wrong_competition":
        train = a_random
    elif change == "ray_address":
        extra += ["--backend", "ray", "--address", "10.0.0.5:6379"]
    else:
        extra += ["--families", "ridge_var,transformer"]
    code = main(_args(train, valid, out, tmp_path / "runs", *extra))
    err = capsys.readouterr().err
    assert code == 2 and expected in err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()
    assert out.exists() == (change == "exists")


def test_feature_choices_are_raw_and_every_preset_that_builds(monkeypatch):
    from features import pipelines

    a_choices = space.feature_choices(C.A)
    assert a_choices[0] == space.RAW and "b_book" not in a_choices and "a_lags_ema" in a_choices
    monkeypatch.setitem(pipelines.PRESETS, "z_new", lambda names: [{"kind": "identity"}])
    assert "z_new" in space.feature_choices(C.A) and "z_new" in space.feature_choices(C.B)


def test_every_family_with_a_space_is_in_the_registry_and_each_first_trial_is_its_own():
    from models.registry import FAMILIES

    assert set(space.SPACES) <= set(FAMILIES)
    assert space.searchable() == [name for name in FAMILIES if name in space.SPACES]
    with pytest.raises(ConfigError, match="baseline"):
        space.searchable(["baseline"])
    ctx = space.Context(C.B, 6, space.feature_choices(C.B))
    firsts = space.first_trials(space.searchable(), ctx)
    assert [p["family"] for p in firsts] == list(space.FIRST_TRIALS)
    for params in firsts:
        assert all(key == "family" or key.startswith(params["family"] + ".") for key in params)


def test_each_space_gives_a_config_its_family_accepts():
    """Every family's candidate parses with that family's config (no typo'd key) and lists the
    artifacts the family writes."""
    import optuna

    from models.config import from_dict

    for comp in (C.A, C.B):
        ctx = space.Context(comp, 6, space.feature_choices(comp))
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
        for name in space.SPACES:
            for _ in range(3):
                candidate = space.SPACES[name](study.ask(), ctx)
                from_dict(family(name).config, candidate.train)
                assert candidate.family == name and "manifest.json" not in candidate.artifacts


def test_a_failing_trial_is_recorded_and_raises_nothing(b_files, tmp_path):
    train, valid = b_files
    _, select = split_valid(load_sequences(valid))
    candidate = space.Candidate("ridge_var", {"lagz": 3}, list(space.PIPELINE_FILES), space.PIPELINE_SOLUTION)
    result = run_trial(0, {"ridge_var.lagz": 3}, candidate, tmp_path / "t", load_sequences(train), select,
                       TimeBudget(train, 2))
    assert result.status == FAILED and "unknown key(s) ['lagz']" in result.error and result.score is None


def test_trials_running_at_the_deadline_are_recorded_as_cut():
    results = [TrialResult(0, "ridge_var", {}, {}, OK, score=0.1), TrialResult(1, "gru", {}, {}, RUNNING)]
    assert [r.status for r in cut_trials(results)] == [OK, CUT]


def test_progress_prints_plain_lines_when_piped():
    stream = io.StringIO()
    shown = TrialProgress(Console(file=io.StringIO()), "auto B", 60.0, 4, stream=stream, period_s=5.0)
    results = [TrialResult(0, "ridge_var", {}, {}, OK, score=0.25), TrialResult(1, "gru", {}, {}, RUNNING)]
    with shown:
        for elapsed in (0.0, 1.0, 6.0):
            shown.update(results, elapsed)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # one at the start, the next after the period
    assert "2 of 4 trials (1 ok, 1 running), best 0.2500 (ridge_var, #0)" in lines[-1]
    # a plain bar: one of four trials finished is further than 6 s of 60
    assert lines[-1].startswith("auto B: [#####...............] 0.1 of 1.0 min, ")


def test_the_last_state_is_printed_when_piped_even_within_the_period():
    stream = io.StringIO()
    shown = TrialProgress(Console(file=io.StringIO()), "auto B", 60.0, stream=stream, period_s=5.0)
    with shown:
        shown.update([], 0.0)
        shown.update([TrialResult(0, "ridge_var", {}, {}, OK, score=0.25)], 2.0)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "1 trial (1 ok)" in lines[-1] and "[#" in lines[-1]


def test_the_plain_bar_fills_with_the_fraction():
    from harness.progress import text_bar

    assert text_bar(0.0, 4) == "[....]" and text_bar(0.5, 4) == "[##..]" and text_bar(2.0, 4) == "[####]"

