"""The sandboxed child: imports the candidate, constructs it and replays the data through it.

Runs in a fresh interpreter started by ``harness.sandbox`` with only the candidate folder, a
copy of this package, the grader's ``utils`` and the standard and third-party library folders on
``sys.path``. It reports progress on a pipe and leaves its results as files; the parent owns the
verdict, the score and every limit.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import sys
import time
import traceback
from pathlib import Path

THREAD_VARIABLES = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS", "NUMBA_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)

_network_attempts: list[str] = []


def _block_network() -> None:
    """Refuse internet sockets from here on: the grader has no network, so a candidate that
    reaches for one must fail here rather than hang there. Local (AF_UNIX) sockets stay allowed."""
    from harness.replay import NetworkBlocked

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


def run(job: dict) -> dict:
    """Do the job the parent described; return the result dictionary (also written to disk)."""
    import numpy as np

    from harness import competitions
    from harness.utils import install as install_utils
    from harness.data import ParquetSource
    from harness.replay import CandidateError, TimeLimitExceeded, candidate_traceback, replay

    progress = _Progress(job.get("progress_fd"))
    out_dir = Path(job["out_dir"])
    result: dict = {"status": "ok", "error": None, "network": _network_mode(job.get("block_network", True))}

    def on_time_limit(signum, frame):  # noqa: ARG001
        raise TimeLimitExceeded(f"the wall-clock limit of {job['time_limit_s']:.0f} s was reached")

    signal.signal(signal.SIGUSR1, on_time_limit)
    comp = competitions.get(job["competition"])
    install_utils(comp)  # the competition's own ``utils``, imported before the candidate, as on the grader
    threads_before = _thread_report()
    modules_before = set(_top_level_modules())
    candidate_dir = Path(job["candidate_dir"])

    def fail(kind: str, exc: BaseException, message: str) -> dict:
        if isinstance(exc, TimeLimitExceeded):
            kind, message = "time_limit", f"{exc} during {job['phase']}"
        elif isinstance(exc, MemoryError):
            kind, message = "out_of_memory", f"an allocation failed under the memory cap during {job['phase']}"
        result.update(status=kind, error={"kind": kind, "message": message, "traceback": candidate_traceback(exc)})
        return result

    # 1. import solution.py
    job["phase"] = "import"
    progress.send(phase="import")
    t0 = time.perf_counter()
    try:
        import importlib.util

        spec = importlib.util.spec_from_file_location("solution", candidate_dir / "solution.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["solution"] = module
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001
        return fail("import_error", exc, f"importing solution.py raised {type(exc).__name__}: {exc}")
    result["import_s"] = time.perf_counter() - t0
    cls = getattr(module, "PredictionModel", None)
    if not isinstance(cls, type):
        result.update(status="layout", error={
            "kind": "layout", "message": "solution.py defines no class PredictionModel", "traceback": ""})
        return result

    # 2. construct it with no arguments
    job["phase"] = "the constructor"
    progress.send(phase="construct")
    t0 = time.perf_counter()
    try:
        model = cls()
    except TypeError as exc:
        if "argument" in str(exc):
            return fail("constructor_error", exc, f"PredictionModel() must take no arguments: {exc}")
        return fail("constructor_error", exc, f"PredictionModel() raised TypeError: {exc}")
    except BaseException as exc:  # noqa: BLE001
        return fail("constructor_error", exc, f"PredictionModel() raised {type(exc).__name__}: {exc}")
    result["construct_s"] = time.perf_counter() - t0
    result["modules_after_constructor"] = sorted(set(_top_level_modules()) - modules_before)
    result["threads_before"] = threads_before
    result["threads_after_constructor"] = _thread_report()
    predict = getattr(model, "predict", None)
    if not callable(predict):
        result.update(status="layout", error={
            "kind": "layout", "message": "PredictionModel has no predict method", "traceback": ""})
        return result

    # 3. replay
    job["phase"] = "replay"
    progress.send(phase="replay")
    source = ParquetSource(job["data_path"], comp)
    if job.get("order") is not None:
        blocks = source.sequences(job["order"])
    else:
        blocks = source.blocks(max_sequences=job.get("max_sequences"))
    seq_ends = [time.perf_counter()]

    def on_sequence(rows: int, seq: int) -> None:
        seq_ends.append(time.perf_counter())
        progress.send(rows=rows, seq=seq)

    cpu_start = time.process_time()  # every thread of the process: above the wall time means more than one core
    outcome = replay(predict, comp, blocks, on_sequence=on_sequence)
    result["replay_s"] = time.perf_counter() - seq_ends[0]
    result["threads_cores_used"] = (time.process_time() - cpu_start) / max(result["replay_s"], 1e-9)
    result["sequence_s"] = np.diff(seq_ends).tolist()
    result["rows"] = outcome.rows
    result["seq_ids"] = outcome.seq_ids
    result["threads_after_replay"] = _thread_report()
    result["modules_after_replay"] = sorted(set(_top_level_modules()) - modules_before)
    np.save(out_dir / "predictions.npy", outcome.predictions)
    np.save(out_dir / "latency_ns.npy", outcome.latency_ns)
    if outcome.error is not None:
        result.update(status=outcome.error.kind, error=outcome.error.to_dict())
    elif _network_attempts:
        result.update(status="network", error=CandidateError(
            "network", f"the candidate tried the network ({_network_attempts[0]}) and carried on; the grader has none"
        ).to_dict())
    return result


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    if job.get("block_network", True):
        _block_network()
    try:
        result = run(job)
    except BaseException as exc:  # noqa: BLE001 - the harness itself failed: say so, never hang
        result = {"status": "harness_error", "error": {
            "kind": "harness_error", "message": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["maxrss_bytes"] = max(usage.ru_maxrss, children.ru_maxrss) * 1024
    result["network_attempts"] = _network_attempts
    tmp = Path(job["out_dir"]) / "result.json.tmp"
    tmp.write_text(json.dumps(result, default=str))
    tmp.replace(Path(job["out_dir"]) / "result.json")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: a candidate's atexit or thread must not change the verdict
