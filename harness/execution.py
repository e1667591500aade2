"""One way to run independent pieces of work side by side: local processes or a Ray cluster.

Everything parallel in the project goes through ``run_tasks``: the shards of a simulation, the
candidates of ``gate-all``, the solutions of ``train --all``, the members of a seed average. A
``Task`` is a top-level (picklable) function with plain-data arguments and a label that names
it for people ("shard 2 of 4: sequences 64-95"); results come back in the tasks' order.

Two engines, one behaviour:

- ``local`` (the default, no extra dependency): one fresh process per task (forkserver start,
  so nothing of the parent's threads or locks is inherited), at most ``workers`` at a time.
  One process per task, not a ``ProcessPoolExecutor``: when a pool's worker dies the pool
  breaks and fails every pending task at once, without saying whose worker it was; here a death
  is the task's own, so it is retried once and then reported with its label.
- ``ray``: Ray's own scheduling and retries (``ray.remote(max_retries=1)``, ``ray.wait`` with a
  timeout). Without an address a local Ray instance is started for the call and stopped after
  it; with one (``ray start --head`` prints it) the tasks go to that cluster, whose nodes need
  this project installed (the code is imported there, the data travels as arguments).

Each running task has a slot (0 .. workers - 1; a finished task's slot goes to the next) and
is pinned to the slot's core, the slot-th core of its machine (``slot_core``), so that tasks
running together do not share a core; a task that starts a sandboxed child asks not to be
pinned and gives the child that core instead (``Task.pin``).

Failures: an exception raised by the task is the task's result and is raised here unchanged
(it is deterministic: no retry), and the other local tasks are stopped; a worker that dies
(killed, out of memory, its node lost) or outlives ``timeout_s`` is retried once, then
``WorkerLost`` names the task. Nothing waits forever: every wait has a timeout.

Stopping: ``stop`` (an event another thread sets, e.g. at a search's deadline) ends the tasks
still running and starts no other; their results are ``STOPPED``, not failures, and are never
retried. A local worker leads a process group of its own, and ending it ends the group: what
the task started stays in it, except a sandbox's supervisor (a session of its own), which dies
with the worker (``PR_SET_PDEATHSIG``) and takes the candidate with it. A Ray task is
cancelled with its worker process (``ray.cancel(force=True)``).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_ready
from typing import Any, Callable, Sequence

BACKENDS = ("local", "ray")
RETRIES = 1
"""A task whose worker died runs once more before the run fails."""
POLL_S = 1.0


class _Stopped:
    def __repr__(self) -> str:
        return "STOPPED"


STOPPED = _Stopped()
"""The result of a task that ``run_tasks``' ``stop`` ended, or kept from starting."""


@dataclass(frozen=True)
class Task:
    """One unit of work: ``fn(*args)`` in a worker; ``label`` names it in progress and errors."""

    label: str
    fn: Callable[..., Any]
    args: tuple = ()
    pin: bool = True
    """Pin the worker to its slot's core. A task that starts a sandboxed child of its own passes
    False and gives the child ``slot_core()``, so that its own feeding and watching do not take
    the candidate's core."""


@dataclass(frozen=True)
class Engine:
    """Where tasks run: ``backend`` "local" or "ray", ``workers`` at a time, Ray's ``address``
    (None starts a local instance for the call)."""

    backend: str = "local"
    workers: int = 1
    address: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; the backends are {', '.join(BACKENDS)}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.address is not None and self.backend != "ray":
            raise ValueError("an address is for --backend ray (a Ray cluster's head, e.g. 10.0.0.5:6379)")


class ExecutionError(RuntimeError):
    """The work could not be done where it was sent (the command reports it in one line)."""


class EngineUnavailable(ExecutionError):
    """The engine cannot start: Ray is missing, or the cluster at the address cannot be reached."""


class WorkerLost(ExecutionError):
    """A task's worker died (or hung) on every try: ``label`` says which task, ``why`` how."""

    def __init__(self, label: str, why: str, tries: int):
        super().__init__(f"{label}: {why} (tried {tries} time{'s' if tries > 1 else ''}); "
                         "see the machine's memory (an out-of-memory kill) or the worker's log")
        self.label, self.why, self.tries = label, why, tries


class TaskFailed(RuntimeError):
    """A task raised an exception that could not travel back as itself; its traceback is kept."""


def run_tasks(tasks: Sequence[Task], engine: Engine = Engine(), timeout_s: float | None = None,
              on_done: Callable[[int, Task], None] | None = None,
              stop: threading.Event | None = None) -> list[Any]:
    """The results of ``tasks`` in their order, run on ``engine``; ``on_done(i, task)`` as each finishes.

    ``timeout_s`` bounds each try of a task (None: no bound beyond the task's own). Once ``stop``
    is set (within ``POLL_S``), the tasks not finished are ended and their results are ``STOPPED``."""
    tasks = list(tasks)
    if not tasks:
        return []
    if engine.backend == "ray":
        return _run_ray(tasks, engine, timeout_s, on_done, stop)
    return _Local(tasks, engine.workers, timeout_s, on_done, stop).run()


_SLOT: list[int] = []
"""The slot of the task this worker runs (set by ``_call``)."""
_CORES: list[int] = []
"""The cores this worker could use before its first task pinned it (a Ray worker runs many tasks)."""


def slot_core() -> int | None:
    """The core of this worker's slot (the ``slot``-th core the worker could use, wrapping
    around); None outside a task."""
    if not _SLOT:
        return None
    return _CORES[_SLOT[0] % len(_CORES)]


def _call(fn: Callable[..., Any], args: tuple, slot: int, pin: bool) -> Any:
    if not _CORES:
        _CORES[:] = sorted(os.sched_getaffinity(0))
    _SLOT[:] = [slot]
    os.sched_setaffinity(0, {slot_core()} if pin else set(_CORES))
    return fn(*args)


# -- local processes -------------------------------------------------------------------------------


def _local_entry(conn, fn: Callable[..., Any], args: tuple, slot: int, pin: bool) -> None:
    """A worker: lead a process group (ending it ends what the task started), run the task,
    send ("ok", result) or ("raised", exception) back, exit."""
    os.setpgid(0, 0)
    try:
        message = ("ok", _call(fn, args, slot, pin))
    except BaseException as exc:  # noqa: BLE001 - the parent decides what the exception means
        message = ("raised", exc, traceback.format_exc())
    try:
        data = pickle.dumps(message)
        pickle.loads(data)  # an exception whose class cannot be rebuilt from its pickle fails here, not there
    except Exception as exc:  # an unpicklable result or exception: say so with the traceback
        what = "exception" if message[0] == "raised" else "result"
        data = pickle.dumps(("raised", None, f"{message[2] if message[0] == 'raised' else ''}"
                                             f"the task's {what} cannot be sent back: {exc}"))
    conn.send_bytes(data)
    conn.close()


@dataclass
class _Running:
    index: int
    slot: int
    process: Any
    conn: Any
    started: float
    tries: int


@dataclass
class _Local:
    tasks: list[Task]
    workers: int
    timeout_s: float | None
    on_done: Callable[[int, Task], None] | None
    stop: threading.Event | None = None
    results: dict[int, Any] = field(default_factory=dict)
    tries: dict[int, int] = field(default_factory=dict)

    def run(self) -> list[Any]:
        ctx = multiprocessing.get_context("forkserver")
        # The fork server imports the tasks' modules once (when it starts, on first use), so each
        # worker forks with them loaded instead of importing numpy, pyarrow ... on its own.
        ctx.set_forkserver_preload(sorted({task.fn.__module__ for task in self.tasks}))
        pending = deque(range(len(self.tasks)))
        running: dict[int, _Running] = {}
        free = list(range(min(self.workers, len(self.tasks))))[::-1]
        try:
            while pending or running:
                if self.stop is not None and self.stop.is_set():
                    for i in [*pending, *running]:
                        self.results[i] = STOPPED
                    break  # the running ones are ended below
                while pending and free:
                    i = pending.popleft()
                    running[i] = self._start(ctx, i, free.pop())
                ready = wait_ready([r.conn for r in running.values()] + [r.process.sentinel for r in running.values()],
                                   timeout=POLL_S)
                for i, r in list(running.items()):
                    outcome = self._check(r, ready)
                    if outcome is None:
                        continue
                    del running[i]
                    free.append(r.slot)
                    if outcome == "retry":
                        pending.appendleft(i)
        finally:
            for r in running.values():
                _end(r.process)
                r.conn.close()
        return [self.results[i] for i in range(len(self.tasks))]

    def _start(self, ctx, i: int, slot: int) -> _Running:
        task = self.tasks[i]
        reader, writer = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_local_entry, args=(writer, task.fn, task.args, slot, task.pin),
                              name=f"wunderbench-task-{i}", daemon=False)
        process.start()
        writer.close()
        self.tries[i] = self.tries.get(i, 0) + 1
        return _Running(i, slot, process, reader, time.monotonic(), self.tries[i])

    def _check(self, r: _Running, ready: list) -> str | None:
        """None while the task runs; "done" or "retry" once its try is over (raises when it failed)."""
        task = self.tasks[r.index]
        if r.conn in ready or r.conn.poll():
            try:
                message = pickle.loads(r.conn.recv_bytes())
            except (EOFError, OSError):
                message = None
            if message is not None:
                r.process.join(30)
                if r.process.is_alive():  # sent its result but does not exit (a stray thread): end it
                    _end(r.process)
                r.conn.close()
                if message[0] == "ok":
                    self.results[r.index] = message[1]
                    if self.on_done is not None:
                        self.on_done(r.index, task)
                    return "done"
                if message[1] is not None:
                    raise message[1]
                raise TaskFailed(f"{task.label}: {message[2]}")
        if r.process.sentinel in ready or not r.process.is_alive():
            _end(r.process)  # not yet reaped: what it started dies with it
            r.conn.close()
            return self._lost(r, _death(r.process.exitcode))
        if self.timeout_s is not None and time.monotonic() - r.started > self.timeout_s:
            _end(r.process)
            r.conn.close()
            return self._lost(r, f"no result after {self.timeout_s:.0f} s; the worker was stopped")
        return None

    def _lost(self, r: _Running, why: str) -> str:
        if r.tries > RETRIES:
            raise WorkerLost(self.tasks[r.index].label, why, r.tries)
        return "retry"


def _end(process) -> None:
    """Kill a worker that has not been reaped yet and its process group (what its task started)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)  # its pid is its group's id (``_local_entry``)
    except (ProcessLookupError, PermissionError):  # it has not made its group yet, or it is gone
        pass
    process.kill()
    process.join(5)


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (the out-of-memory killer sends it)" if name == "SIGKILL" else ""
        return f"its worker process was killed by {name}{hint}"
    return f"its worker process ended with status {exitcode} before sending a result"


# -- Ray -------------------------------------------------------------------------------------------


def _ray_init(engine: Engine) -> bool:
    """Connect to the cluster at ``engine.address`` or start a local one; True when started here."""
    try:
        import ray
    except ImportError as exc:
        raise EngineUnavailable(f"--backend ray needs Ray, which is not installed here ({exc}); install the "
                                "version requirements.lock pins, or use --backend local") from None
    quiet = dict(include_dashboard=False, log_to_driver=False, configure_logging=True, logging_level="ERROR")
    if ray.is_initialized():
        return False
    try:
        if engine.address is None:
            ray.init(num_cpus=engine.workers, **quiet)
        else:
            ray.init(address=engine.address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {engine.address}" if engine.address else "a local Ray instance"
        raise EngineUnavailable(f"cannot start or reach {where}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
                                "; check `ray status` there, or use --backend local") from None
    return True


def _run_ray(tasks: list[Task], engine: Engine, timeout_s: float | None,
             on_done: Callable[[int, Task], None] | None, stop: threading.Event | None) -> list[Any]:
    started_here = _ray_init(engine)  # first: it says so when Ray is missing
    import ray

    try:
        remote = ray.remote(num_cpus=1, max_retries=RETRIES, retry_exceptions=False)(_call)
        refs = [remote.options(name=task.label[:100]).remote(task.fn, task.args, i % engine.workers, task.pin)
                for i, task in enumerate(tasks)]
        results: dict[int, Any] = {}
        # On a failure the other tasks are not cancelled: Ray 2.60 can abort the driver when a
        # cancelled task's reply races the cancel. A local instance ends with them (shutdown);
        # on a cluster they finish, unused. A stop does cancel (force: the worker process ends,
        # and what it started with it), and reads nothing of them after (test_harness_ray).
        _collect_ray(tasks, refs, timeout_s, on_done, results, stop)
        return [results[i] for i in range(len(tasks))]
    finally:
        if started_here:
            ray.shutdown()


def _collect_ray(tasks: list[Task], refs: list, timeout_s: float | None,
                 on_done: Callable[[int, Task], None] | None, results: dict[int, Any],
                 stop: threading.Event | None) -> None:
    """Wait for every task's result (into ``results``), raising at the first failure; once
    ``stop`` is set, cancel the others with their workers (their results ``STOPPED``)."""
    import ray
    from ray import exceptions as rex

    index = {ref: i for i, ref in enumerate(refs)}
    waiting = list(refs)
    # A try may wait for a free CPU before it starts: the bound covers the queue too.
    deadline = None if timeout_s is None else time.monotonic() + timeout_s * (RETRIES + 1) * len(tasks)
    while waiting:
        if stop is not None and stop.is_set():
            for ref in waiting:
                ray.cancel(ref, force=True, recursive=True)
                results[index[ref]] = STOPPED
            return
        done, waiting = ray.wait(waiting, num_returns=1, timeout=POLL_S)
        for ref in done:
            i = index[ref]
            try:
                results[i] = ray.get(ref, timeout=60)
            except rex.RayTaskError as exc:  # the task raised: its own exception, unchanged
                raise (exc.cause if isinstance(exc.cause, BaseException) else exc) from None
            except (rex.WorkerCrashedError, rex.NodeDiedError, rex.OutOfMemoryError, rex.ObjectLostError,
                    rex.OwnerDiedError, rex.LocalRayletDiedError) as exc:
                raise WorkerLost(tasks[i].label, f"its Ray worker was lost ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else ''})", RETRIES + 1) from None
            if on_done is not None:
                on_done(i, tasks[i])
        if deadline is not None and time.monotonic() > deadline and waiting:
            raise WorkerLost(tasks[index[waiting[0]]].label, f"no result within {timeout_s:.0f} s a try", 1)
