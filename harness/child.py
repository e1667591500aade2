"""The sandboxed child: imports the candidate, constructs it and replays the data through it.

Runs in a fresh interpreter started by ``harness.isolation``'s supervisor from a copy of this
package. It reads its job and then the data from a pipe (it never opens the data file), imports
the grader's ``utils``, and then takes this package out of reach (off ``sys.path`` and out of
``sys.modules``), so that, as on the grader, the candidate can import only itself, ``utils`` and
the installed libraries. It reports progress on a pipe and leaves its results as files; the
parent checks both as untrusted and owns the verdict, the score and every limit.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import signal
import socket
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from harness import competitions, profilers
from harness.channel import ProtocolError, read_blocks, read_job, wait_go
from harness.errors import CandidateError, ErrorKind
from harness.replay import NetworkBlocked, TimeLimitExceeded, candidate_traceback, replay
from harness.utils import install as install_utils

THREAD_VARIABLES = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS", "NUMBA_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)

_network_attempts: list[str] = []


def _block_network() -> None:
    """Refuse internet sockets from here on: the grader has no network, so a candidate that
    reaches for one must fail here rather than hang there. Local (AF_UNIX) sockets stay allowed."""
    inet = {socket.AF_INET, socket.AF_INET6}

    def hook(event: str, args: tuple) -> None:
        if event == "socket.__new__" and len(args) > 1 and args[1] in inet:
            what = "opened an internet socket"
        elif event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname"):
            what = f"{event.split('.')[1]} {args[1] if event == 'socket.connect' else args[0]!r}"
        else:
            return
        _network_attempts.append(what)
        raise NetworkBlocked(f"the candidate {what}; the grader has no network access")

    sys.addaudithook(hook)


def _network_mode(blocked: bool) -> str:
    try:  # the interfaces of this process's own namespace (sysfs would show the host's)
        interfaces = sorted(name for _, name in socket.if_nameindex())
    except OSError:
        interfaces = []
    isolated = interfaces == ["lo"]
    if not blocked:
        return "not blocked (--allow-network)"
    base = "internet sockets refused by an audit hook"
    return base + (" inside an empty network namespace" if isolated else " (no network namespace: not permitted here)")


def _thread_report() -> dict:
    """Thread counts the candidate may have raised: BLAS/OpenMP pools, torch, env variables."""
    report: dict = {"env": {k: os.environ.get(k) for k in THREAD_VARIABLES}}
    try:
        from threadpoolctl import threadpool_info

        report["pools"] = [
            {"api": p.get("user_api"), "library": p.get("internal_api"), "threads": p.get("num_threads")}
            for p in threadpool_info()
        ]
    except Exception as exc:  # noqa: BLE001 - a report, not a requirement
        report["pools_error"] = repr(exc)
    torch = sys.modules.get("torch")
    if torch is not None:
        report["torch"] = {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}
    try:
        with open("/proc/self/status") as fh:
            report["os_threads"] = int(next(line for line in fh if line.startswith("Threads:")).split()[1])
    except (OSError, StopIteration):
        pass
    return report


def _top_level_modules() -> list[str]:
    return sorted({name.split(".")[0] for name in list(sys.modules) if not name.startswith("_")})


class _Progress:
    def __init__(self, fd: int | None):
        self.fd = fd

    def send(self, **fields) -> None:
        if self.fd is not None:
            os.write(self.fd, (json.dumps(fields) + "\n").encode())


class _Stop(Exception):
    """A step ended the run; ``result`` already says how."""


class _Run:
    """One job: import, construct, replay; each step records into ``result`` or raises _Stop."""

    def __init__(self, job: dict, data_fd: int):
        self.job = job
        self.data_fd = data_fd
        self.progress = _Progress(job.get("progress_fd"))
        self.out_dir = Path(job["out_dir"])
        self.phase = "start-up"
        self.result: dict = {"status": "ok", "error": None,
                             "network": _network_mode(job.get("block_network", True))}
        self.threads_before = _thread_report()
        self.modules_before = set(_top_level_modules())

    def record(self, error: CandidateError) -> None:
        """The run's failure, in the pipe's form (the parent reads it back with ``from_dict``)."""
        self.result.update(status=str(error.kind), error=error.to_dict())

    def fail(self, kind: ErrorKind, exc: BaseException, message: str) -> _Stop:
        if isinstance(exc, TimeLimitExceeded):
            kind, message = ErrorKind.TIME_LIMIT, f"{exc} during {self.phase}"
        elif isinstance(exc, MemoryError):
            kind, message = ErrorKind.OUT_OF_MEMORY, f"an allocation failed under the memory cap during {self.phase}"
        self.record(CandidateError(kind, message, traceback=candidate_traceback(exc)))
        return _Stop()

    def layout(self, message: str) -> _Stop:
        self.record(CandidateError(ErrorKind.LAYOUT, message))
        return _Stop()

    def import_solution(self) -> type:
        self.phase = "import"
        self.progress.send(phase="import")
        wait_go(self.data_fd)  # the parent has deleted this package's copy: nothing of it left to read
        t0 = time.perf_counter()
        try:
            spec = importlib.util.spec_from_file_location("solution", Path(self.job["candidate_dir"]) / "solution.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules["solution"] = module
            spec.loader.exec_module(module)
        except BaseException as exc:  # noqa: BLE001
            raise self.fail(ErrorKind.IMPORT_ERROR, exc, f"importing solution.py raised {type(exc).__name__}: {exc}") from None
        self.result["import_s"] = time.perf_counter() - t0
        cls = getattr(module, "PredictionModel", None)
        if not isinstance(cls, type):
            raise self.layout("solution.py defines no class PredictionModel")
        return cls

    def construct(self, cls: type):
        self.phase = "the constructor"
        self.progress.send(phase="construct")
        t0 = time.perf_counter()
        try:
            model = cls()
        except TypeError as exc:
            if "argument" in str(exc):
                raise self.fail(ErrorKind.CONSTRUCTOR_ERROR, exc, f"PredictionModel() must take no arguments: {exc}") from None
            raise self.fail(ErrorKind.CONSTRUCTOR_ERROR, exc, f"PredictionModel() raised TypeError: {exc}") from None
        except BaseException as exc:  # noqa: BLE001
            raise self.fail(ErrorKind.CONSTRUCTOR_ERROR, exc, f"PredictionModel() raised {type(exc).__name__}: {exc}") from None
        self.result["construct_s"] = time.perf_counter() - t0
        self.result["modules_after_constructor"] = sorted(set(_top_level_modules()) - self.modules_before)
        self.result["threads_before"] = self.threads_before
        self.result["threads_after_constructor"] = _thread_report()
        predict = getattr(model, "predict", None)
        if not callable(predict):
            raise self.layout("PredictionModel has no predict method")
        return predict

    def replay(self, predict) -> None:
        self.phase = "replay"
        self.progress.send(phase="replay")
        comp = competitions.get(self.job["competition"])
        seq_ends = [time.perf_counter()]

        def on_sequence(rows: int, seq: int) -> None:
            seq_ends.append(time.perf_counter())
            self.progress.send(rows=rows, seq=seq)

        collect = None
        if self.job.get("profile"):
            predict, collect = profilers.wrap(predict, self.job["profile"], self.job["candidate_dir"])
        try:
            outcome = replay(predict, comp, read_blocks(self.data_fd, len(comp.columns)), on_sequence=on_sequence)
        except (EOFError, ProtocolError) as exc:
            self.record(CandidateError(
                ErrorKind.PROTOCOL, f"{exc}: the candidate read from, closed or replaced the harness's data pipe"))
            return
        result = self.result
        result["replay_s"] = time.perf_counter() - seq_ends[0]
        result["sequence_s"] = np.diff(seq_ends).tolist()
        result["rows"] = outcome.rows
        result["seq_ids"] = outcome.seq_ids
        result["threads_after_replay"] = _thread_report()
        result["modules_after_replay"] = sorted(set(_top_level_modules()) - self.modules_before)
        _save_fresh(self.out_dir / "predictions.npy", outcome.predictions)
        _save_fresh(self.out_dir / "latency_ns.npy", outcome.latency_ns)
        if collect is not None:
            _write_json_fresh(self.out_dir / "profile.json", collect())
        if outcome.error is not None:
            self.record(outcome.error)
        elif _network_attempts:
            self.record(CandidateError(
                ErrorKind.NETWORK,
                f"the candidate tried the network ({_network_attempts[0]}) and carried on; the grader has none"))

    def __call__(self) -> dict:
        def on_time_limit(signum, frame):  # noqa: ARG001
            raise TimeLimitExceeded(f"the wall-clock limit of {self.job['time_limit_s']:.0f} s was reached")

        signal.signal(signal.SIGUSR1, on_time_limit)
        try:
            self.replay(self.construct(self.import_solution()))
        except _Stop:
            pass
        return self.result


def _hide_harness(private_dir: str) -> None:
    """Take this package out of the candidate's reach: on the grader ``import harness`` fails."""
    sys.path[:] = [p for p in sys.path if p != private_dir]
    for name in [n for n in sys.modules if n == "harness" or n.startswith("harness.")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def _fresh(path: Path) -> Path:
    """``path`` with nothing there: the candidate can write in this folder, and a link or FIFO it
    left in the way would send the results elsewhere or block."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    return path


def _save_fresh(path: Path, array) -> None:
    with open(_fresh(path), "xb") as fh:
        np.save(fh, array)


def _write_json_fresh(path: Path, data: dict) -> None:
    tmp = _fresh(path.with_name(path.name + ".tmp"))
    with open(tmp, "x") as fh:
        fh.write(json.dumps(data, default=str))
    tmp.replace(path)


def _write_result(out_dir: Path, result: dict) -> None:
    _write_json_fresh(out_dir / "result.json", result)


def main(data_fd: int) -> None:
    """Entry point of the boot script: read the job, hide the harness, run, report, exit."""
    os.set_inheritable(data_fd, False)  # the candidate's own subprocesses get no pipe to the data
    job = read_job(data_fd)
    os.set_inheritable(job["progress_fd"], False)
    if job.get("block_network", True):
        _block_network()
    if job.get("profile"):
        profilers.prepare(job["profile"])  # the profiler's library, before the candidate's imports
    install_utils(competitions.get(job["competition"]))  # the competition's own ``utils``, imported
    # before the candidate, as on the grader

    _hide_harness(job["private_dir"])
    try:
        result = _Run(job, data_fd)()
    except BaseException as exc:  # noqa: BLE001 - the harness itself failed: say so, never hang
        error = CandidateError(ErrorKind.HARNESS_ERROR, f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
        result = {"status": str(error.kind), "error": error.to_dict()}
    result["network_attempts"] = _network_attempts
    _write_result(Path(job["out_dir"]), result)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: a candidate's atexit or thread must not change the verdict
