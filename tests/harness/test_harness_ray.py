"""The Ray engine on a local Ray cluster bound to 127.0.0.1, started once for this module.

A 4-shard simulation and a 2-member seed average run through Ray and must equal the one-worker
results exactly: the same code on the same data on this machine (the shards' statistics are
concatenated in file order, so the score is the same sums in the same order; a member trains
under the caller's BLAS thread count). Skipped, with the reason, only where Ray cannot start.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from harness import competitions as C
from harness.execution import STOPPED, Engine, Task, WorkerLost, run_tasks
from harness.randomdata import write_random_file
from harness.shards import simulate_sharded
from harness.simulate import SimulateOptions, simulate
from harness.randomdata import MEAN_SO_FAR_SOURCE as MEAN

RAY = Engine("ray", workers=2)


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    try:
        import ray
        import cloudpickle

        ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    except Exception as exc:  # noqa: BLE001 - any reason Ray cannot start here is a reason to skip
        pytest.skip(f"Ray cannot start here: {type(exc).__name__}: {exc}")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    yield
    ray.shutdown()


def square(x: int) -> int:
    return x * x


def raise_value_error() -> None:
    raise ValueError("the task's own mistake")


def die_first_time(marker: str) -> str:
    if not Path(marker).exists():
        Path(marker).write_text("died once")
        os.kill(os.getpid(), signal.SIGKILL)
    return "second try"


def always_die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def start_a_child_and_hang(pid_file: str) -> None:
    child = subprocess.Popen(["sleep", "120"])
    with open(pid_file, "a") as fh:
        fh.write(f"{child.pid}\n")
    time.sleep(120)


def test_stop_cancels_the_running_tasks_with_their_workers_and_retries_nothing(tmp_path, stop_when_written):
    import psutil

    pid_file = tmp_path / "pids"
    stop = stop_when_written(pid_file)
    started = time.monotonic()
    results = run_tasks([Task("hangs with a child", start_a_child_and_hang, (str(pid_file),)),
                         Task("square", square, (3,))], RAY, stop=stop)
    assert time.monotonic() - started < 60 and results[0] is STOPPED and results[1] in (9, STOPPED)
    [pid] = [int(line) for line in pid_file.read_text().split()]  # one try: a stopped task is not retried
    for _ in range(100):
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the task's child outlived its cancelled worker")
    assert run_tasks([Task("square", square, (4,))], RAY) == [16]  # the cluster is still fine


def test_tasks_run_in_order_and_a_task_exception_comes_back_unchanged():
    assert run_tasks([Task(f"square {i}", square, (i,)) for i in range(4)], RAY) == [0, 1, 4, 9]
    with pytest.raises(ValueError, match="the task's own mistake"):
        run_tasks([Task("raises", raise_value_error)], RAY)


def test_a_lost_worker_is_retried_once_then_named(tmp_path):
    assert run_tasks([Task("dies once", die_first_time, (str(tmp_path / "marker"),))], RAY) == ["second try"]
    with pytest.raises(WorkerLost, match="shard 3 of 4: sequences 6-7: its Ray worker was lost"):
        run_tasks([Task("shard 3 of 4: sequences 6-7", always_die)], RAY)


def test_four_shards_on_ray_score_exactly_as_one_local_worker(tmp_path):
    data = write_random_file(C.A, tmp_path / "a.parquet", 5, seed=7, sequences_per_group=2)
    folder = tmp_path / "cand"
    folder.mkdir()
    (folder / "solution.py").write_text(MEAN)
    one = simulate(folder, data, options=SimulateOptions(bootstrap=100))
    sharded = simulate_sharded(folder, data, None, SimulateOptions(bootstrap=100), RAY, shards=4)
    assert one.ok and sharded.ok, (one.error, sharded.error)
    assert sharded.score.by_sequence.stats == one.score.by_sequence.stats
    assert sharded.score.by_sequence.seq_ix == one.score.by_sequence.seq_ix
    assert sharded.score.headline == one.score.headline and sharded.score.per_output == one.score.per_output
    assert sharded.score.interval95 == one.score.interval95
    assert [s.label for s in sharded.shards][-1] == "shard 4 of 4: sequences 4-4"
    assert all(s.scored is not None for s in sharded.shards)


def test_a_two_member_seed_average_trained_on_ray_is_the_one_trained_here(tmp_path):
    from models.data import load_sequences
    from models.registry import train_solution

    data = write_random_file(C.A, tmp_path / "train.parquet", 4, seed=8, sequences_per_group=2)
    root = Path(__file__).resolve().parents[2]
    ridge = {"lags": 2, "folds": 2, "alphas": [1e-3], "seeds": 2}
    artifacts = ["members.json"] + [f"seed_{i}/{f}" for i in range(2)
                                    for f in ("model.json", "pipeline.npz", "weights.npz")]
    folders = []
    for name in ("here", "on_ray"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "solution.py").write_text((root / "solutions" / "a_ridge_var" / "solution.py").read_text())
        (folder / "manifest.json").write_text(json.dumps({"competition": "A", "trained": True, "family": "ridge_var",
                                                          "train": ridge, "artifacts": artifacts}))
        folders.append(folder)
    train = load_sequences(data)
    quiet = Console(file=io.StringIO())
    here = train_solution(folders[0], train, train, quiet, Engine())
    on_ray = train_solution(folders[1], train, train, quiet, RAY)
    assert here.record["seeds"] == on_ray.record["seeds"] == [0, 1]
    for artifact in artifacts:
        assert (folders[1] / artifact).read_bytes() == (folders[0] / artifact).read_bytes(), artifact
    assert on_ray.record["valid_score"] == here.record["valid_score"]
