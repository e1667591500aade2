"""The execution interface's local engine: order, pinning, exceptions, lost workers, timeouts."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness.execution import STOPPED, Engine, Task, TaskFailed, WorkerLost, run_tasks, slot_core


def square(x: int) -> int:
    return x * x


def cores_of_this_process(_: int) -> tuple[int | None, list[int]]:
    return slot_core(), sorted(os.sched_getaffinity(0))


def raise_value_error(text: str) -> None:
    raise ValueError(text)


def die_first_time(marker: str, value: int) -> int:
    """Killed (SIGKILL, as the out-of-memory killer does) on the first try, fine on the second."""
    if not Path(marker).exists():
        Path(marker).write_text("died once")
        os.kill(os.getpid(), signal.SIGKILL)
    return value


def always_die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def sleep_long(seconds: float) -> None:
    time.sleep(seconds)


def start_a_child_and_hang(pid_file: str) -> None:
    """Start a process (as a task's training or sandbox would) and wait for ever; each try is
    counted in the file."""
    child = subprocess.Popen(["sleep", "120"])
    with open(pid_file, "a") as fh:
        fh.write(f"{child.pid}\n")
    time.sleep(120)


def alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def unpicklable_result() -> object:
    return lambda: None


def test_results_come_back_in_the_tasks_order():
    tasks = [Task(f"square {i}", square, (i,)) for i in range(5)]
    done = []
    assert run_tasks(tasks, Engine(workers=2), on_done=lambda i, task: done.append(task.label)) == [0, 1, 4, 9, 16]
    assert sorted(done) == sorted(t.label for t in tasks)


def test_each_task_is_pinned_to_its_slots_core():
    allowed = sorted(os.sched_getaffinity(0))
    results = run_tasks([Task(f"probe {i}", cores_of_this_process, (i,)) for i in range(3)], Engine(workers=2))
    for core, affinity in results:
        assert affinity == [core] and core in allowed[:2]
    unpinned = run_tasks([Task("probe", cores_of_this_process, (0,), pin=False)], Engine(workers=1))
    assert unpinned[0][1] == allowed and unpinned[0][0] == allowed[0]


def test_an_exception_of_the_task_is_raised_unchanged_and_not_retried(tmp_path):
    with pytest.raises(ValueError, match="bad input"):
        run_tasks([Task("shard 1 of 1", raise_value_error, ("bad input",))])
    with pytest.raises(TaskFailed, match="cannot be sent back"):
        run_tasks([Task("lambda", unpicklable_result)])


def test_a_killed_worker_is_retried_once(tmp_path):
    marker = tmp_path / "marker"
    assert run_tasks([Task("shard 2 of 2: sequences 4-7", die_first_time, (str(marker), 7)),
                      Task("other", square, (3,))], Engine(workers=2)) == [7, 9]
    assert marker.read_text() == "died once"


def test_a_worker_killed_on_every_try_is_reported_with_its_label():
    with pytest.raises(WorkerLost, match=r"shard 2 of 4: sequences 64-95: its worker process was killed by SIGKILL"
                                         r".*tried 2 times") as info:
        run_tasks([Task("shard 1 of 4: sequences 0-63", square, (1,)),
                   Task("shard 2 of 4: sequences 64-95", always_die)], Engine(workers=2))
    assert info.value.label == "shard 2 of 4: sequences 64-95" and info.value.tries == 2


def test_a_hung_worker_is_stopped_at_the_timeout():
    started = time.monotonic()
    with pytest.raises(WorkerLost, match="hangs: no result after 1 s"):
        run_tasks([Task("hangs", sleep_long, (60,))], Engine(workers=1), timeout_s=1)
    assert time.monotonic() - started < 30


def test_stop_ends_the_running_tasks_with_what_they_started_and_retries_nothing(tmp_path, stop_when_written):
    pid_file = tmp_path / "pids"
    stop = stop_when_written(pid_file)
    started = time.monotonic()
    results = run_tasks([Task("quick", square, (3,)),
                         Task("hangs with a child", start_a_child_and_hang, (str(pid_file),)),
                         Task("hangs", sleep_long, (120,))], Engine(workers=2), stop=stop)
    assert time.monotonic() - started < 30
    assert results[1:] == [STOPPED, STOPPED] and results[0] in (9, STOPPED)
    [pid] = [int(line) for line in pid_file.read_text().split()]  # one try: a stopped task is not retried
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid), "the task's child outlived its stopped worker"


@pytest.mark.parametrize("kwargs, says", [({"backend": "spark"}, "unknown backend"),
                                          ({"workers": 0}, "at least 1"),
                                          ({"address": "10.0.0.1:6379"}, "for --backend ray")])
def test_an_engine_is_checked(kwargs, says):
    with pytest.raises(ValueError, match=says):
        Engine(**kwargs)


def test_a_missing_ray_is_a_clear_error(monkeypatch):
    import sys

    from harness.execution import EngineUnavailable

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(EngineUnavailable, match="--backend ray needs Ray, which is not installed here"):
        run_tasks([Task("square", square, (2,))], Engine("ray", workers=2))
