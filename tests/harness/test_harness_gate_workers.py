"""``gate --workers N``: the replays run side by side in workers, and the checks say what one worker says."""

import os
import pickle
import runpy
from pathlib import Path

import pytest

from harness import gate_replays
from harness.execution import Engine
from harness.gate import CHECKS, GateOptions, _Gate

HEALTHY = runpy.run_path(str(Path(__file__).with_name("test_harness_gate.py")))["HEALTHY"]
"""The gate tests' healthy candidate: it passes every check."""
LOOK_AHEAD = runpy.run_path(str(Path(__file__).with_name("test_hostile_verdicts.py")))["WHOLE_SEQUENCE_MEAN"]
"""The hostile catalogue's look-ahead candidate (the mean of the whole sequence): causality FAILs."""

RAISES = """
class PredictionModel:
    def predict(self, dp):
        raise ValueError("no model")
"""

TIMED = ("time", "memory")
"""Checks whose reason is a measurement (projected minutes, peak memory): only the status must agree."""


@pytest.fixture
def spy(monkeypatch):
    """The tasks each ``run_tasks`` call of the gate's replays was given (labels), the real call made."""
    calls: list[list[str]] = []
    real = gate_replays.run_tasks

    def recording(tasks, *args, **kwargs):
        calls.append([t.label for t in tasks])
        return real(tasks, *args, **kwargs)

    monkeypatch.setattr(gate_replays, "run_tasks", recording)
    return calls


def run_gate(folder: Path, data: Path, engine: Engine | None, **kw) -> _Gate:
    g = _Gate(folder, GateOptions(data=data, bootstrap=200, engine=engine, **kw))
    g.run()
    return g


def comparable(g: _Gate) -> list[tuple[str, str, str]]:
    return [(c.name, c.status, "" if c.name in TIMED else c.reason) for c in g.ordered()]


def cores(g: _Gate) -> set[str]:
    return {o.cpu.split(" of ")[0] for o in g.outcomes}


@pytest.mark.parametrize("source, sequences, expect", [
    (HEALTHY, 3, {n: "PASS" for n in CHECKS}),  # the score sample's size is known before any replay
    (HEALTHY, None, {n: "PASS" for n in CHECKS}),  # ... is the first's speed's: run after it, in its worker
    (LOOK_AHEAD, 3, {"causality": "FAIL"}),
    (RAISES, 3, {"runs_clean": "FAIL", "deterministic": "SKIP", "state_reset": "SKIP", "score": "SKIP"}),
], ids=["passing", "passing-score-sized-by-speed", "look-ahead", "raises"])
def test_two_workers_give_the_checks_of_one(source, sequences, expect, candidate, a_file, spy):
    folder = candidate(source)
    options = dict(sequences=sequences, check_sequences=2)
    one = run_gate(folder, a_file, None, **options)
    assert spy == []  # one worker: the replays in this process, as always
    two = run_gate(folder, a_file, Engine(workers=2), **options)
    assert comparable(two) == comparable(one)
    assert {n: c.status for n, c in two.results.items() if n in expect} == expect
    assert len(spy) == 1 and spy[0][0].startswith(f"{folder.name}: first replay (2 sequences)")
    if source is RAISES:
        assert len(two.outcomes) == len(one.outcomes) == 1  # the speculative replays are dropped
        assert len(spy[0]) == 4  # first, score sample (3), cut copy, shuffled
        return
    assert [o.seq_ids for o in two.outcomes] == [o.seq_ids for o in one.outcomes]
    if sequences is None:  # sized by the first replay's speed: replayed after it, in its worker
        assert spy[0][0].endswith("then the score sample") and len(spy[0]) == 3
    else:
        assert f"{folder.name}: score sample (3 sequences)" in spy[0]
    assert len(cores(two)) == min(2, len(os.sched_getaffinity(0)))  # first and cut copy ran at once, a core each
    assert len(cores(one)) == 1


def test_a_replays_outcome_travels_back_from_a_worker_whole(candidate, a_file):
    """Predictions (kept for the row-by-row checks) and a failure's error survive the pickling."""
    ok = run_gate(candidate(HEALTHY), a_file, None, sequences=2, only=("runs_clean",)).outcomes[0]
    failed = run_gate(candidate(RAISES), a_file, None, sequences=2, only=("runs_clean",)).outcomes[0]
    back = pickle.loads(pickle.dumps(ok))
    assert (back.predictions == ok.predictions).all() and back.seq_ids == ok.seq_ids and back.predictions.size
    assert pickle.loads(pickle.dumps(failed)).error == failed.error and failed.error is not None


def test_the_score_sample_rule_waits_on_the_first_replay_only_when_its_speed_decides():
    rule = gate_replays.ScoreRule(total=10, sequences=None, score_seconds=4.0)
    assert rule.size(8, None) is None
    assert rule.size(8, [5.0, 1.0, 1.0]) == 8  # never fewer than the first replayed
    assert rule.size(2, [5.0, 1.0, 1.0]) == 4
    assert rule.size(10, None) == 10  # the first replay is the whole file
    assert gate_replays.ScoreRule(10, 16, 4.0).size(8, None) == 10


def test_the_command_says_as_each_replay_ends(candidate, a_file, capsys):
    from harness.cli import main

    folder = candidate(HEALTHY)
    assert main(["gate", str(folder), "--data", str(a_file), "--sequences", "3", "--check-sequences", "2",
                 "--workers", "2"]) == 0
    out = capsys.readouterr().out
    for label in ("first replay (2 sequences)", "score sample (3 sequences)", "cut copy (2 sequences)",
                  "shuffled order (2 sequences)"):
        assert f"{folder.name}: {label}: done" in out
    assert "passed" in out
