"""Sharded simulation: the plan, the shard files, the exact merge, failures named by shard."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from harness import competitions as C
from harness.cli import main
from harness.data import DataError, ParquetSource
from harness.execution import Engine, Task, WorkerLost, run_tasks
from harness.randomdata import write_random_file
from harness.shards import ShardJob, candidate_zip, merged_projection, plan, run_shard, simulate_sharded, \
    write_shard_files
from harness.simulate import SimulateOptions, simulate
from harness.simulation import SimulationReport

MEAN = """
import numpy as np
class PredictionModel:
    def __init__(self):
        self.seq, self.total, self.n = None, None, 0
    def predict(self, dp):
        if dp.seq_ix != self.seq:
            self.seq, self.total, self.n = dp.seq_ix, None, 0
        x = np.asarray(dp.state[:{width}], dtype=float)
        self.total = x.copy() if self.total is None else self.total + x
        self.n += 1
        return self.total / self.n if dp.need_prediction else None
"""


@pytest.fixture(scope="module")
def a_six(tmp_path_factory) -> Path:
    return write_random_file(C.A, tmp_path_factory.mktemp("data") / "a6.parquet", 6, seed=3, sequences_per_group=4)


@pytest.fixture(scope="module")
def b_five(tmp_path_factory) -> Path:
    return write_random_file(C.B, tmp_path_factory.mktemp("data") / "b5.parquet", 5, seed=4, sequences_per_group=2)


def test_the_plan_covers_every_sequence_once_in_contiguous_shards():
    for sequences, shards in [(10, 4), (3, 4), (1, 2), (517, 2), (128, 3)]:
        parts = plan(sequences, shards)
        assert len(parts) == min(sequences, shards)
        assert [p.first for p in parts][0] == 0 and parts[-1].stop == sequences
        assert all(a.stop == b.first for a, b in zip(parts, parts[1:]))
        sizes = [p.sequences for p in parts]
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    assert plan(10, 4)[1].label == "shard 2 of 4: sequences 3-5"


def test_shard_files_hold_the_files_rows_unchanged(a_six, tmp_path):
    parts = plan(6, 4)
    files = write_shard_files(ParquetSource(a_six), parts, tmp_path)
    whole = pq.read_table(a_six)
    pieces = [pq.read_table(f) for f in files]
    assert [p.num_rows for p in pieces] == [s.sequences * 1000 for s in parts]
    assert all(p.schema == whole.schema for p in pieces)
    import pyarrow as pa

    assert pa.concat_tables(pieces).equals(whole)


@pytest.mark.parametrize("fixture, width, bounds", [("a_six", 32, [(0, 2), (2, 4), (4, 5), (5, 6)]),
                                                    ("b_five", 2, [(0, 2), (2, 3), (3, 4), (4, 5)])])
def test_four_shards_on_two_workers_score_exactly_as_one_worker(fixture, width, bounds, request, candidate):
    data = request.getfixturevalue(fixture)
    folder = candidate(MEAN.format(width=width))
    one = simulate(folder, data, options=SimulateOptions(bootstrap=200))
    sharded = simulate_sharded(folder, data, None, SimulateOptions(bootstrap=200), Engine(workers=2), shards=4)
    assert one.ok and sharded.ok, (one.error, sharded.error)
    # Identical by construction: the same per-sequence sums in the same order (harness.shards).
    assert sharded.score.by_sequence.seq_ix == one.score.by_sequence.seq_ix
    assert sharded.score.by_sequence.stats == one.score.by_sequence.stats
    assert sharded.score.headline == one.score.headline
    assert sharded.score.per_output == one.score.per_output
    assert sharded.score.interval95 == one.score.interval95
    assert sharded.score.oracle == one.score.oracle and sharded.score.impossible == one.score.impossible
    assert (sharded.sequences, sharded.rows) == (one.sequences, one.rows)
    assert [(s.first, s.stop) for s in sharded.shards] == bounds
    assert all(s.scored is not None and s.scored.rows > 0 for s in sharded.shards)
    assert sum(s.scored.rows for s in sharded.shards) == one.timing.scored.rows
    assert sharded.timing.scored is None  # latencies are per core, never pooled across cores
    assert SimulationReport.from_json(json.loads(json.dumps(sharded.to_json()))).to_json() == sharded.to_json()


def test_the_projection_is_a_one_core_projection(a_six, candidate):
    folder = candidate(MEAN.format(width=32))
    sharded = simulate_sharded(folder, a_six, None, SimulateOptions(bootstrap=0), Engine(workers=2), shards=2)
    p = sharded.timing.projection
    startup = sharded.timing.startup_s
    # every test sequence but the first at the steady per-row time, on ONE core: never divided by the shards
    assert p.projected_test_s == pytest.approx(
        (startup + p.first_sequence_s + 516 * p.per_row_us * 1000 / 1e6) * 1.5, rel=1e-9)
    # two shards that ran alike project what one of them projects
    shard = simulate(folder, a_six, options=SimulateOptions(bootstrap=0, sequences=3))
    assert merged_projection([shard, shard], 517, 1.5).projected_test_s == pytest.approx(
        merged_projection([shard], 517, 1.5).projected_test_s, rel=1e-12)


FAILS_AT = """
import numpy as np
class PredictionModel:
    def predict(self, dp):
        if dp.seq_ix == {seq} and dp.step_in_seq == 300:
            raise RuntimeError("boom")
        return dp.state.copy() if dp.need_prediction else None
"""


def test_a_failing_shard_fails_the_run_and_is_named_with_the_files_row(a_six, candidate):
    seq = ParquetSource(a_six).sequence_ids()[4]
    folder = candidate(FAILS_AT.format(seq=seq))
    report = simulate_sharded(folder, a_six, None, SimulateOptions(bootstrap=0),
                              Engine(workers=2), shards=3)
    assert report.verdict == "FAIL" and report.score is None
    assert report.error.message.startswith("shard 3 of 3: sequences 4-5: ")
    assert (report.error.seq_ix, report.error.step, report.error.row) == (seq, 300, 4 * 1000 + 300)
    assert [s.status for s in report.shards] == ["ok", "ok", "predict_error"]
    assert f'{folder / "solution.py"}", line 6, in predict' in report.error.traceback  # the user's file


def kill_worker_first_time(marker: str, job: ShardJob) -> dict:
    """A shard whose worker is killed (as by the out-of-memory killer) on its first try."""
    if not Path(marker).exists():
        Path(marker).write_text("killed once")
        os.kill(os.getpid(), signal.SIGKILL)
    return run_shard(job)


def kill_worker_always(job: ShardJob) -> dict:
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_shard_worker_is_retried_once_then_named(a_six, candidate, tmp_path):
    parts = plan(6, 2)
    files = write_shard_files(ParquetSource(a_six), parts, tmp_path)
    zip_path = candidate_zip(candidate(MEAN.format(width=32)), tmp_path)
    jobs = [ShardJob(s, str(zip_path), str(f), "A", {}, str(zip_path)) for s, f in zip(parts, files)]
    marker = tmp_path / "marker"
    retried = run_tasks([Task(parts[0].label, run_shard, (jobs[0],), pin=False),
                         Task(parts[1].label, kill_worker_first_time, (str(marker), jobs[1]), pin=False)],
                        Engine(workers=2))
    assert marker.read_text() == "killed once"
    assert SimulationReport.from_json(retried[1]["report"]).ok
    with pytest.raises(WorkerLost, match="shard 2 of 2: sequences 3-5: its worker process was killed by SIGKILL"):
        run_tasks([Task(parts[1].label, kill_worker_always, (jobs[1],), pin=False)], Engine(workers=2))


def test_the_command_line_runs_shards_and_refuses_an_address_without_ray(a_six, candidate, tmp_path, capsys):
    out = tmp_path / "report.json"
    folder = candidate(MEAN.format(width=32))
    assert main(["simulate", str(folder), "--data", str(a_six), "--workers", "2", "--json", str(out)]) == 0
    shards = json.loads(out.read_text())["shards"]
    assert [s["label"] for s in shards] == ["shard 1 of 2: sequences 0-2", "shard 2 of 2: sequences 3-5"]
    assert "shard 2 of 2: sequences 3-5 done" in capsys.readouterr().err
    assert main(["simulate", str(folder), "--data", str(a_six), "--address", "10.0.0.1:6379"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "for --backend ray" in err
    assert main(["simulate", str(folder), "--data", str(a_six), "--shards", "2", "--plot", str(tmp_path / "p.png")]) == 2
    assert "run it with one worker" in capsys.readouterr().err


def test_gate_all_on_two_workers_gates_each_candidate_on_its_own_core(a_six, tmp_path, capsys):
    root = tmp_path / "solutions"
    seq = ParquetSource(a_six).sequence_ids()[1]
    for name, source in (("a_good", MEAN.format(width=32)), ("b_bad", FAILS_AT.format(seq=seq))):
        (root / name).mkdir(parents=True)
        (root / name / "solution.py").write_text(source)
        (root / name / "manifest.json").write_text('{"competition": "A"}')
    args = ["gate-all", "--root", str(root), "--data", str(a_six), "--check-sequences", "2", "--sequences", "2",
            "--only", "runs_clean,memory", "--workers", "2"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "gating 2 candidates on 2 local worker(s)" in out
    assert "gate a_good: done" in out and "gate b_bad: done" in out
    tables = out[max(out.index("gate a_good: done\n") + 18, out.index("gate b_bad: done\n") + 17):]
    assert "a_good" in tables and tables.index("a_good") < tables.index("b_bad")  # the folders' order
    assert "1 candidate(s) failed the gate: b_bad" in out


@pytest.fixture(scope="module")
def a_generated(tmp_path_factory) -> Path:
    """A generated A set with its oracle sidecar (hidden-state oracle included)."""
    from harness.market import get_generator, write_set

    return write_set(get_generator("A"), 4, 7, "valid", tmp_path_factory.mktemp("oracle") / "valid.parquet")


def test_local_shards_score_the_oracle_in_their_range_exactly_as_one_worker(a_generated, candidate, monkeypatch):
    folder = candidate(MEAN.format(width=32))
    one = simulate(folder, a_generated, options=SimulateOptions(bootstrap=100))
    reads = []
    raw = ParquetSource._raw_batches
    monkeypatch.setattr(ParquetSource, "_raw_batches", lambda self, groups=None: reads.append(self.path) or raw(self, groups))
    sharded = simulate_sharded(folder, a_generated, None, SimulateOptions(bootstrap=100), Engine(workers=2), shards=3)
    assert reads == []  # the parent reads no rows: each local shard reads, validates and scores its own range
    assert one.score.oracle is not None and one.score.oracle["hidden"] is not None
    # Identical by construction: each shard's oracle sums are those of its sequences, concatenated in order.
    assert sharded.score.oracle == one.score.oracle
    assert sharded.score.headline == one.score.headline and sharded.score.interval95 == one.score.interval95


def _with_nan(source: Path, path: Path, *rows: int) -> Path:
    table = pq.read_table(source)
    column = table.column("7").to_numpy().copy()
    column[list(rows)] = np.nan
    import pyarrow as pa

    table = table.set_column(table.schema.get_field_index("7"), table.schema.field("7"),
                             pa.array(column, type=table.schema.field("7").type))
    pq.write_table(table, path, row_group_size=2000)
    return path


def _one_worker_error(folder: Path, data: Path) -> str:
    with pytest.raises(DataError) as caught:
        simulate(folder, data, options=SimulateOptions(bootstrap=0))
    return str(caught.value)


def test_a_bad_row_is_named_as_one_worker_names_it_the_first_in_file_order(a_six, candidate, tmp_path):
    folder = candidate(MEAN.format(width=32))
    # the last shard's bad row is found first (its shard is short); the one to report is shard 2's
    data = _with_nan(a_six, tmp_path / "nan.parquet", 3 * 1000 + 900, 5 * 1000 + 10)
    expected = _one_worker_error(folder, data)
    assert "row 3900" in expected
    with pytest.raises(DataError) as caught:
        simulate_sharded(folder, data, None, SimulateOptions(bootstrap=0), Engine(workers=2), shards=3)
    assert str(caught.value) == expected


def test_a_seq_ix_used_in_two_shards_is_named_as_one_worker_names_it(a_six, candidate, tmp_path):
    table = pq.read_table(a_six)
    seq = table.column("seq_ix").to_numpy().copy()
    seq[4000:5000] = seq[0]  # the fifth sequence reuses the first one's id
    import pyarrow as pa

    table = table.set_column(0, table.schema.field("seq_ix"), pa.array(seq, type=table.schema.field("seq_ix").type))
    data = tmp_path / "dup.parquet"
    pq.write_table(table, data)
    folder = candidate(MEAN.format(width=32))
    expected = _one_worker_error(folder, data)
    with pytest.raises(DataError) as caught:
        simulate_sharded(folder, data, None, SimulateOptions(bootstrap=0), Engine(workers=2), shards=2)
    assert str(caught.value) == expected


def test_a_candidate_that_cannot_be_unpacked_fails_as_with_one_worker(a_six, tmp_path):
    from harness.candidate import CandidateLayoutError

    folder = tmp_path / "no_solution"
    folder.mkdir()
    (folder / "other.py").write_text("x = 1\n")
    with pytest.raises(CandidateLayoutError, match="no solution.py at the root") as caught:
        simulate_sharded(folder, a_six, None, SimulateOptions(bootstrap=0), Engine(workers=2), shards=2)
    assert caught.value.kind == "layout"  # it came back from the shard's worker as itself
