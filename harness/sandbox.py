"""Running a candidate the way the grader's machine would: one core, a memory cap, a time limit.

The candidate runs in a child interpreter (``harness.child``) started from a fresh temporary
folder holding a safe copy of the candidate, a copy of this package and the grader's ``utils``;
nothing else of this repository is importable there. ``utils`` resolves to the grader's module
even if the candidate ships its own, as on the grader, which has imported it before the candidate. The parent pins the child to one core,
sets every thread-count variable to 1, caps its address space, watches its memory (child and
descendants) and its progress, and enforces the wall-clock limit itself: at the limit it asks the
child to stop (so the child can say exactly where it was), then kills the whole process group.
A child that dies any other way gets a verdict that says how.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import psutil

from harness import candidate as candidate_mod
from harness.child import THREAD_VARIABLES
from harness.competitions import Competition
from harness.user_paths import to_user_paths

HARNESS_DIR = Path(__file__).resolve().parent
STOP_GRACE_S = 3.0
SAMPLE_INTERVAL_S = 0.05
_CLONE_NEWNET = 0x40000000

_BOOT = """\
import sys
sys.path[:0] = {front!r}
sys.path.extend({site!r})
import harness.child
harness.child.main({job!r})
"""


@dataclass
class SandboxOptions:
    """Limits and selection for one run; defaults come from the competition."""

    memory_bytes: int
    time_limit_s: float
    max_sequences: int | None = None
    order: list[int] | None = None
    block_network: bool = True
    cpu: int | None = None
    keep_dir: bool = False


@dataclass
class RunOutcome:
    """What the sandbox saw. ``status`` is "ok" or the kind of failure."""

    status: str
    error: dict | None
    rows: int = 0
    seq_ids: list[int] = field(default_factory=list)
    predictions: np.ndarray | None = None
    latency_ns: np.ndarray | None = None
    import_s: float | None = None
    construct_s: float | None = None
    replay_s: float | None = None
    sequence_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    peak_rss_bytes: int = 0
    exit_code: int | None = None
    network: str = ""
    cpu: str = ""
    threads: dict = field(default_factory=dict)
    modules: list[str] = field(default_factory=list)
    stderr_tail: str = ""
    run_dir: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def startup_s(self) -> float | None:
        if self.import_s is None or self.construct_s is None:
            return None
        return self.import_s + self.construct_s


def _site_paths() -> list[str]:
    """Third-party library folders, without anything an editable install of this repo adds."""
    paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    return list(dict.fromkeys(p for p in paths if os.path.isdir(p)))


def _copy_runtime(runtime: Path) -> None:
    """The child imports a copy of this package (not the repo) and the grader's ``utils``."""
    shutil.copytree(
        HARNESS_DIR, runtime / "harness",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "market"),
    )
    shutil.copy2(HARNESS_DIR / "utils.py", runtime / "utils.py")


def _pick_cpu(requested: int | None) -> int:
    allowed = sorted(os.sched_getaffinity(0))
    if requested is not None:
        if requested not in allowed:
            raise ValueError(f"core {requested} is not available to this process (available: {allowed})")
        return requested
    return allowed[-1]


def _child_env(home: Path, tmp: Path) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "MPLBACKEND": "Agg",
    }
    env.update({name: "1" for name in THREAD_VARIABLES})
    return env


def _preexec(cpu: int, memory_bytes: int, block_network: bool) -> Callable[[], None]:
    def setup() -> None:
        os.sched_setaffinity(0, {cpu})
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if block_network:
            # An empty network namespace where the platform allows it (root, or user namespaces);
            # the child reports which protection it got. Failure here is not fatal.
            libc = ctypes.CDLL(None, use_errno=True)
            libc.unshare(_CLONE_NEWNET)

    return setup


def _tree_rss(proc: psutil.Process) -> int:
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _describe_death(code: int, progress: dict) -> tuple[str, str]:
    where = _where(progress)
    if code < 0:
        sig = signal.Signals(-code)
        if sig == signal.SIGKILL:
            return "killed", (f"the process was killed (SIGKILL) {where}; usually the kernel's out-of-memory "
                              "killer: check the peak memory")
        if sig in (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGFPE, signal.SIGILL):
            return "crashed", f"the process crashed with {sig.name} {where}, in native code (a C extension)"
        return "killed", f"the process was stopped by {sig.name} {where}"
    return "exited", (f"the process exited with status {code} {where} without finishing: the candidate called "
                      "os._exit() or a native library ended the process")


_PHASES = {"start-up": "during start-up", "import": "while importing solution.py", "construct": "in the constructor"}


def _where(progress: dict) -> str:
    if progress.get("phase") != "replay":
        return _PHASES.get(progress.get("phase", "start-up"), "during start-up")
    if "rows" not in progress:
        return "during the first sequence"
    return f"after {progress['rows']} rows ({progress['rows'] // 1000} complete sequences; last seq_ix {progress['seq']})"


def run_in_sandbox(
    candidate: str | Path,
    data_path: str | Path,
    competition: Competition,
    options: SandboxOptions,
    on_progress: Callable[[dict], None] | None = None,
) -> RunOutcome:
    """Run ``candidate`` on ``data_path`` in a sandboxed child; never raises for candidate faults.

    Raises ``candidate.CandidateLayoutError`` when the candidate cannot even be unpacked.
    """
    run_dir = Path(tempfile.mkdtemp(prefix="wunderbench-run-"))
    try:
        return _run(Path(candidate), Path(data_path).resolve(), competition, options, on_progress, run_dir)
    finally:
        if not options.keep_dir:
            shutil.rmtree(run_dir, ignore_errors=True)


def _run(candidate, data_path, comp, options, on_progress, run_dir) -> RunOutcome:
    cand_dir = candidate_mod.materialize(candidate, run_dir / "candidate")
    runtime = run_dir / "runtime"
    _copy_runtime(runtime)
    out_dir = run_dir / "out"
    for sub in (out_dir, run_dir / "home", run_dir / "tmp"):
        sub.mkdir()
    cpu = _pick_cpu(options.cpu)
    read_fd, write_fd = os.pipe()
    job = {
        "candidate_dir": str(cand_dir), "data_path": str(data_path), "competition": comp.key,
        "max_sequences": options.max_sequences, "order": options.order, "out_dir": str(out_dir),
        "time_limit_s": options.time_limit_s, "block_network": options.block_network, "progress_fd": write_fd,
    }
    job_path = run_dir / "job.json"
    job_path.write_text(json.dumps(job))
    boot = runtime / "boot.py"
    boot.write_text(_BOOT.format(front=[str(runtime), str(cand_dir)], site=_site_paths(), job=str(job_path)))
    stdout = open(run_dir / "stdout.log", "wb")
    stderr = open(run_dir / "stderr.log", "wb")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", "-B", str(boot)],
        cwd=cand_dir, env=_child_env(run_dir / "home", run_dir / "tmp"),
        stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, pass_fds=(write_fd,),
        preexec_fn=_preexec(cpu, options.memory_bytes, options.block_network), start_new_session=True,
    )
    os.close(write_fd)
    ps = psutil.Process(proc.pid)
    progress: dict = {"phase": "start-up"}
    peak = 0
    stop_sent_at: float | None = None
    killed_for: str | None = None
    buffer = b""
    deadline = started + options.time_limit_s
    try:
        while True:
            ready, _, _ = select.select([read_fd], [], [], SAMPLE_INTERVAL_S)
            if ready:
                chunk = os.read(read_fd, 65536)
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    progress.update(json.loads(line))
                if lines and on_progress is not None:
                    on_progress(dict(progress))
                if not chunk and proc.poll() is not None:
                    break
            elif proc.poll() is not None:
                break
            rss = _tree_rss(ps)
            peak = max(peak, rss)
            now = time.perf_counter()
            if rss > options.memory_bytes and killed_for is None:
                killed_for = "out_of_memory"
                os.killpg(proc.pid, signal.SIGKILL)
            if now > deadline and stop_sent_at is None and killed_for is None:
                stop_sent_at = now
                os.killpg(proc.pid, signal.SIGUSR1)
            if stop_sent_at is not None and now > stop_sent_at + STOP_GRACE_S and killed_for is None:
                killed_for = "time_limit"
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        os.close(read_fd)
        stdout.close()
        stderr.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        try:  # descendants the candidate left behind
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wall = time.perf_counter() - started
    outcome = RunOutcome(status="ok", error=None, wall_s=wall, exit_code=proc.returncode,
                         cpu=f"pinned to core {cpu} of {os.cpu_count()}",
                         run_dir=str(run_dir) if options.keep_dir else None)
    outcome.stderr_tail = (run_dir / "stderr.log").read_bytes()[-4000:].decode(errors="replace")
    result_path = out_dir / "result.json"
    result = json.loads(result_path.read_text()) if result_path.exists() else None
    if result is not None:
        outcome.status, outcome.error = result["status"], result["error"]
        outcome.rows = result.get("rows", 0)
        outcome.seq_ids = result.get("seq_ids", [])
        outcome.import_s, outcome.construct_s = result.get("import_s"), result.get("construct_s")
        outcome.replay_s = result.get("replay_s")
        outcome.sequence_s = result.get("sequence_s", [])
        outcome.network = result.get("network", "")
        outcome.threads = {k: result[k] for k in result if k.startswith("threads_")}
        outcome.modules = sorted(set(result.get("modules_after_constructor", []))
                                 | set(result.get("modules_after_replay", [])))
        peak = max(peak, int(result.get("maxrss_bytes", 0)))
        if (out_dir / "predictions.npy").exists():
            outcome.predictions = np.load(out_dir / "predictions.npy")
            outcome.latency_ns = np.load(out_dir / "latency_ns.npy")
        if outcome.status == "time_limit" and outcome.error is not None:
            outcome.error["message"] += f"; stopped {_where(progress)}"
    elif killed_for == "time_limit":
        outcome.status = "time_limit"
        outcome.error = {"kind": "time_limit", "message": (
            f"the wall-clock limit of {options.time_limit_s:.0f} s was reached and the candidate did not stop "
            f"when asked; killed {_where(progress)}"), "traceback": ""}
    elif killed_for == "out_of_memory":
        outcome.status = "out_of_memory"
        outcome.error = {"kind": "out_of_memory", "message": (
            f"resident memory of the candidate and its children passed the cap of "
            f"{options.memory_bytes / 1024**3:.2f} GiB {_where(progress)}; killed"), "traceback": ""}
    else:
        kind, message = _describe_death(proc.returncode, progress)
        outcome.status = kind
        outcome.error = {"kind": kind, "message": message, "traceback": ""}
    outcome.peak_rss_bytes = peak
    if outcome.error is not None:  # name the user's files, not the temporary copy
        for key in ("message", "traceback"):
            outcome.error[key] = to_user_paths(outcome.error.get(key, ""), cand_dir, candidate)
    outcome.stderr_tail = to_user_paths(outcome.stderr_tail, cand_dir, candidate)
    return outcome
