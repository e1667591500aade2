"""Running a candidate the way the grader's machine would: one core, a memory cap, a time limit.

The candidate runs in a child interpreter (``harness.child``) started by a supervisor
(``harness.isolation``) from a fresh temporary run folder holding a safe copy of the candidate,
a private copy of this package (deleted once the child has loaded it) and the grader's
``utils``. The supervisor pins the child to one core, caps its address space, puts it in an
empty network namespace where the platform allows, confines its filesystem with Landlock and, as
a child subreaper, keeps every process the candidate starts in its tree and ends them all with
the run. The parent (this module) reads the data file and sends it to the child over a pipe,
validating each block as it goes (one read of the file: a bad row stops the run with the
user's one-line ``DataError``), scores each sequence as its predictions come back up their own
pipe (``harness.sequence_scorer``: per-sequence sums, the rows dropped, so the parent's memory
does not grow with the file), watches the memory of the whole tree and the child's progress,
and enforces the wall-clock limit: at the limit it asks the child to stop (so the child can say
exactly where it was), then kills it. Every byte that comes back (progress, predictions, result
files) is checked before it is believed; a malformed one is the candidate's FAIL.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import psutil

from harness import candidate as candidate_mod
from harness import channel, clock, isolation
from harness.child import THREAD_VARIABLES
from harness.competitions import Competition
from harness.data import Block, DataError, ParquetSource
from harness.errors import CandidateError, ErrorKind, Outcome
from harness.memory_series import MemorySeries
from harness.sequence_scorer import OracleStats, SequenceScorer
from harness.simulation import BySequence
from harness.user_paths import to_user_paths

HARNESS_DIR = Path(__file__).resolve().parent
PROJECT_DIR = HARNESS_DIR.parent
STOP_GRACE_S = 3.0
SAMPLE_INTERVAL_S = 0.05
START_TIMEOUT_S = 60.0
MAX_CORES = 1.1
"""Above this many cores (CPU time over wall time) the run's timings are not the grader's."""
_F_SETPIPE_SZ = 1031

_BOOT = """\
import sys
sys.path[:0] = {front!r}
sys.path.extend({site!r})
import harness.child
harness.child.main({data_fd})
"""


@dataclass
class SandboxOptions:
    """Limits and selection for one run; defaults come from the competition."""

    memory_bytes: int
    time_limit_s: float
    max_sequences: int | None = None
    first_sequence: int = 0
    """Replay from the file's ``first_sequence``-th sequence (a shard's range; ``ParquetSource.blocks``)."""
    order: list[int] | None = None
    block_network: bool = True
    cpu: int | None = None
    keep_dir: bool = False
    profile: dict | None = None
    """A profiler for ``predict`` (``harness.profilers``' spec); its findings come back as
    ``RunOutcome.profile_bytes``, unchecked (``harness.profile_data`` checks them)."""
    keep_predictions: bool = False
    """Also return the whole prediction matrix (``RunOutcome.predictions``): the gate's checks
    compare predictions row by row; a plain run keeps only per-sequence sums."""


@dataclass
class RunOutcome(Outcome):
    """What the sandbox saw: ``error`` is None for a run that finished, else why it did not.

    ``import_s`` .. ``sequence_s`` and ``latency_ns`` are the child's word; ``measured_run_s``
    and ``steady_floor_s`` the parent's own clock (``harness.clock``), which bounds them.
    ``memory_s`` / ``memory_bytes`` are the parent's samples of the process tree's resident
    memory over the run (``harness.memory_series``: at most 2,000 points, seconds since start).
    ``by_sequence`` (and ``oracle_stats`` when an oracle was given) are the parent's per-sequence
    sums of a finished run, in replay order; ``predictions`` only with ``keep_predictions``."""

    error: CandidateError | None = None
    rows: int = 0
    seq_ids: list[int] = field(default_factory=list)
    by_sequence: BySequence | None = None
    oracle_stats: OracleStats | None = None
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
    cpu_s: float | None = None
    cores_used: float | None = None
    isolation: dict[str, str] = field(default_factory=dict)
    threads: dict = field(default_factory=dict)
    modules: list[str] = field(default_factory=list)
    stderr_tail: str = ""
    run_dir: str | None = None
    measured_run_s: float | None = None
    steady_floor_s: float | None = None
    memory_s: list[float] = field(default_factory=list)
    memory_bytes: list[int] = field(default_factory=list)
    profile_bytes: bytes | None = None

    @property
    def startup_s(self) -> float | None:
        if self.import_s is None or self.construct_s is None:
            return None
        return self.import_s + self.construct_s


def _site_paths() -> list[str]:
    """Third-party library folders, without anything an editable install of this repo adds."""
    paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    return list(dict.fromkeys(p for p in paths if os.path.isdir(p)))


def _interpreter() -> str:
    """The real interpreter, not the venv's link to it: its path does not lead to the project."""
    return os.path.realpath(sys.executable)


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
        "PYTHONPATH": os.pathsep.join(_site_paths()),  # the candidate's own `sys.executable` subprocesses
        "MPLBACKEND": "Agg",
    }
    env.update({name: "1" for name in THREAD_VARIABLES})
    return env


@dataclass
class _Layout:
    """The run folder. The candidate may write only in ``writable``; the rest is unreadable to it
    except ``runtime`` (the interpreter needs it at start-up)."""

    run_dir: Path

    def __post_init__(self) -> None:
        self.candidate = self.run_dir / "candidate"
        self.runtime = self.run_dir / "runtime"
        self.private = self.runtime / "private"  # this package, deleted once the child has loaded it
        self.out = self.run_dir / "out"
        self.home = self.run_dir / "home"
        self.tmp = self.run_dir / "tmp"
        self.supervisor = self.run_dir / "supervisor" / "isolation.py"

    @property
    def writable(self) -> list[Path]:
        return [self.candidate, self.out, self.home, self.tmp]

    def prepare(self, candidate: Path) -> None:
        candidate_mod.materialize(candidate, self.candidate)
        shutil.copytree(HARNESS_DIR, self.private / "harness",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "market"))
        self.supervisor.parent.mkdir()
        shutil.copy2(HARNESS_DIR / "isolation.py", self.supervisor)
        for sub in (self.out, self.home, self.tmp):
            sub.mkdir()


def _landlock_paths(layout: _Layout, data_path: Path) -> dict:
    """What the candidate may read and write; the project, the data's folder and home carved out."""
    forbidden = [str(PROJECT_DIR), str(data_path.parent), str(Path.home()), str(layout.run_dir)]
    extra = [sys.base_prefix, os.path.dirname(_interpreter()), *_site_paths(), str(layout.runtime)]
    return {"read": isolation.read_roots(extra, forbidden), "write": [str(p) for p in layout.writable]}


class _Feeder(threading.Thread):
    """Sends the job and then every block down the data pipe, one sequence per piece, noting
    when each piece went (``clock``); hands each block's targets to the scorer before sending
    it; stops quietly when the child goes, and keeps the ``DataError`` of a bad block."""

    def __init__(self, fd: int, job: dict, blocks: Iterator[Block], scorer: SequenceScorer):
        super().__init__(daemon=True, name="wunderbench-feeder")
        self.fd, self.job, self.blocks, self.scorer = fd, job, blocks, scorer
        self.rows_sent = 0
        self.error: DataError | None = None
        self.harness_gone = threading.Event()
        self.clock = clock.ParentClock(clock.pipe_capacity(fd))

    def run(self) -> None:
        try:
            channel.send_job(self.fd, self.job)
            self.harness_gone.wait()
            self.clock.go()
            channel.send_go(self.fd)
            for block in self.blocks:  # each block validated as it is read (``ParquetSource.blocks``)
                self.scorer.add_block(block)
                for piece in block.sequence_pieces():  # the clock counts on one sequence a piece
                    self.clock.wrote(channel.send_block(self.fd, piece), piece.values.shape[0])
                    self.rows_sent += piece.values.shape[0]
            channel.send_end(self.fd)
        except OSError:  # the child is gone (or stopped reading): its verdict says why
            pass
        except DataError as exc:
            self.error = exc
        finally:
            os.close(self.fd)


@dataclass
class _Child:
    """A started run: the supervisor, its pipes, the data feeder, what the supervisor said."""

    supervisor: subprocess.Popen
    progress_fd: int
    predictions_fd: int
    feeder: _Feeder
    started_at: float
    pid: int
    cpu: int
    facts: dict
    report_start: bytes
    pidfd: int | None = None

    def __post_init__(self) -> None:
        try:  # a handle that a recycled pid cannot fool, once the candidate's process is gone
            self.pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # before Linux 5.3, or already gone
            self.pidfd = None

    def send(self, sig: int) -> None:
        """Signal the candidate's interpreter (the supervisor ends the rest when it dies)."""
        try:
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass


PIPE_BYTES = 1024 * 1024
PREDICTION_READ_BYTES = 256 * 1024
"""What the parent takes from the prediction pipe at a time (about one sequence of A): a read
allocates what it asks for, so a larger one only raises the parent's peak when it falls behind."""


def _pipes() -> tuple[int, int, int, int, int, int]:
    """(data read, data write, progress read, progress write, predictions read, predictions
    write); the data and prediction pipes made large."""
    data_r, data_w = os.pipe()
    progress_r, progress_w = os.pipe()
    predictions_r, predictions_w = os.pipe()
    for fd in (data_w, predictions_w):
        try:
            fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:  # a smaller pipe only costs a few more system calls
            pass
    return data_r, data_w, progress_r, progress_w, predictions_r, predictions_w


def _start_supervisor(layout: _Layout, job: dict, stderr) -> tuple[subprocess.Popen, int, dict, bytes]:
    """Start the supervisor; return it, the candidate's pid, the protections in force and any
    bytes of its report past the first line."""
    supervisor = subprocess.Popen(
        [_interpreter(), "-I", "-S", "-B", str(layout.supervisor)], cwd=layout.supervisor.parent,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env={"PATH": os.environ.get("PATH", "")},
        pass_fds=(*job["pass_fds"], job["stdout_fd"], job["stderr_fd"]), start_new_session=True,
    )
    line = b""
    try:
        supervisor.stdin.write(json.dumps(job).encode())
        supervisor.stdin.close()
        line, rest = _first_line(supervisor.stdout.fileno())  # written before any code of the candidate runs
        started = json.loads(line)
        pid, facts = int(started["pid"]), dict(started["facts"])
        if "error" in facts:
            raise ValueError(facts["error"])
    except BaseException as exc:  # the candidate's process dies with the supervisor (PDEATHSIG)
        supervisor.kill()
        supervisor.wait()
        if isinstance(exc, (ValueError, KeyError, TypeError, OSError)):
            log = (layout.run_dir / "stderr.log").read_bytes()[-800:].decode(errors="replace")
            raise RuntimeError(f"internal: the sandbox could not start the candidate's process ({exc}; "
                               f"{line[:200]!r}); its log ends:\n{log}") from exc
        raise
    return supervisor, pid, facts, rest


def _spawn(layout: _Layout, data_path: Path, comp: Competition, options: SandboxOptions,
           blocks: Iterator[Block], scorer: SequenceScorer, logs: tuple) -> _Child:
    data_r, data_w, progress_r, progress_w, predictions_r, predictions_w = _pipes()
    boot = layout.runtime / "boot.py"
    boot.write_text(_BOOT.format(front=[str(layout.private), str(layout.candidate)],
                                 site=_site_paths(), data_fd=data_r))
    cpu = _pick_cpu(options.cpu)
    job = {
        "argv": [_interpreter(), "-I", "-S", "-B", str(boot)], "cwd": str(layout.candidate),
        "env": _child_env(layout.home, layout.tmp), "cpu": cpu,
        "memory_bytes": options.memory_bytes, "block_network": options.block_network,
        "landlock": _landlock_paths(layout, data_path), "pass_fds": [data_r, progress_w, predictions_w],
        "stdout_fd": logs[0].fileno(), "stderr_fd": logs[1].fileno(),
    }
    started_at = time.perf_counter()
    try:
        supervisor, pid, facts, rest = _start_supervisor(layout, job, logs[1])
    except BaseException:
        os.close(data_w)
        os.close(progress_r)
        os.close(predictions_r)
        raise
    finally:
        os.close(data_r)
        os.close(progress_w)
        os.close(predictions_w)
    child_job = {
        "candidate_dir": str(layout.candidate), "out_dir": str(layout.out), "private_dir": str(layout.private),
        "competition": comp.key, "time_limit_s": options.time_limit_s, "block_network": options.block_network,
        "progress_fd": progress_w, "predictions_fd": predictions_w,
    }
    if options.profile is not None:
        child_job["profile"] = options.profile
    feeder = _Feeder(data_w, child_job, blocks, scorer)
    feeder.start()
    return _Child(supervisor, progress_r, predictions_r, feeder, started_at, pid, cpu, facts, rest)


def _first_line(fd: int) -> tuple[bytes, bytes]:
    """The first line on ``fd`` and whatever came after it, read unbuffered (select follows)."""
    data = b""
    while b"\n" not in data and len(data) < channel.MAX_LINE_BYTES:
        ready, _, _ = select.select([fd], [], [], START_TIMEOUT_S)
        chunk = os.read(fd, 65536) if ready else b""
        if not chunk:
            break
        data += chunk
    line, _, rest = data.partition(b"\n")
    return line, rest


TREE_SCAN_INTERVAL_S = 0.5
"""How often the process table is scanned for the run's descendants. psutil finds a process's
children by reading every process's /proc entry (4.4 ms with 93 processes on the machine), so a
scan at every 50 ms sample took 9% of a core beside the candidate's, and more on a busy desktop;
the known descendants' memory is still read at every sample. A process the candidate starts
counts from the next scan: holding memory that briefly means touching it that briefly, and
touching pages runs at a few GB a second."""


class _Tree:
    """The resident memory of every descendant of ``root`` (the supervisor itself excluded)."""

    def __init__(self, root: psutil.Process):
        self.root = root
        self.known: list[psutil.Process] = []
        self.next_scan = 0.0

    def rss(self, now: float) -> int:
        if now >= self.next_scan:
            try:
                self.known = self.root.children(recursive=True)
            except psutil.Error:
                self.known = []
            self.next_scan = now + TREE_SCAN_INTERVAL_S
        total = 0
        for p in self.known:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total


@dataclass
class _Watch:
    """What the parent saw while the child ran."""

    progress: dict = field(default_factory=lambda: {"phase": "start-up"})
    peak: int = 0
    memory: MemorySeries = field(default_factory=MemorySeries)
    killed_for: str | None = None
    protocol_error: str | None = None
    finished: dict | None = None


def _monitor(child: _Child, private_dir: Path, options: SandboxOptions, scorer: SequenceScorer,
             on_progress: Callable[[dict], None] | None) -> _Watch:
    """Follow progress, predictions, memory and time until the supervisor reports the end of
    the run and the prediction pipe is drained (for at most ``STOP_GRACE_S`` after that report:
    a process the candidate forked may hold its end open)."""
    watch = _Watch()
    reader = channel.ProgressReader()
    tree = _Tree(psutil.Process(child.supervisor.pid))
    report_fd = child.supervisor.stdout.fileno()
    report = child.report_start
    open_fds = {child.progress_fd, report_fd, child.predictions_fd}
    deadline = child.started_at + options.time_limit_s
    stop_sent_at: float | None = None
    report_closed_at: float | None = None
    next_sample = 0.0

    def stop_for(reason: str) -> None:
        if watch.killed_for is None:
            watch.killed_for = reason
            child.send(signal.SIGKILL)  # the supervisor then ends every other descendant

    while report_fd in open_fds or (child.predictions_fd in open_fds
                                    and time.perf_counter() < report_closed_at + STOP_GRACE_S):
        ready, _, _ = select.select(sorted(open_fds), [], [], SAMPLE_INTERVAL_S)
        if child.predictions_fd in ready and not _read_predictions(child, scorer, watch):
            open_fds.discard(child.predictions_fd)
            if watch.protocol_error is not None:
                stop_for("protocol")
        if child.progress_fd in ready and not _read_progress(child, reader, watch, on_progress):
            open_fds.discard(child.progress_fd)
            if watch.protocol_error is not None:
                stop_for("protocol")
        if watch.progress["phase"] != "start-up" and not child.feeder.harness_gone.is_set():
            shutil.rmtree(private_dir)  # loaded by now; the candidate runs once it is gone
            child.feeder.harness_gone.set()
        if report_fd in ready:
            chunk = os.read(report_fd, 65536)
            report += chunk
            if not chunk or len(report) > channel.MAX_LINE_BYTES * 4:
                open_fds.discard(report_fd)
                report_closed_at = time.perf_counter()
        now = time.perf_counter()
        if now >= next_sample:  # predictions wake this loop once a sequence: sample at the interval
            rss = tree.rss(now)
            watch.peak = max(watch.peak, rss)
            if rss:  # nothing measured once the tree is gone (or before it is there): no point at 0 bytes
                watch.memory.add(now - child.started_at, rss)
            next_sample = now + SAMPLE_INTERVAL_S
        if watch.peak > options.memory_bytes:
            stop_for("out_of_memory")
        if now > deadline and stop_sent_at is None and watch.killed_for is None:
            stop_sent_at = now
            child.send(signal.SIGUSR1)
        if stop_sent_at is not None and now > stop_sent_at + STOP_GRACE_S:
            stop_for("time_limit")
    child.feeder.clock.end()
    watch.finished = _finished_report(report)
    return watch


def _read_predictions(child: _Child, scorer: SequenceScorer, watch: _Watch) -> bool:
    """Score what is on the prediction pipe; False at its end or at bytes the child never writes."""
    chunk = os.read(child.predictions_fd, PREDICTION_READ_BYTES)
    if not chunk:
        return False
    try:
        scorer.add_predictions(chunk)
    except channel.ProtocolError as exc:
        watch.protocol_error = str(exc)
        return False
    return True


def _read_progress(child: _Child, reader: channel.ProgressReader, watch: _Watch,
                   on_progress: Callable[[dict], None] | None) -> bool:
    """Take what is on the progress pipe; False at its end or at a malformed message."""
    chunk = os.read(child.progress_fd, 65536)
    try:
        messages = reader.feed(chunk)
        if not chunk:
            reader.finish()
    except channel.ProtocolError as exc:
        watch.protocol_error = str(exc)
        return False
    for message in messages:
        watch.progress.update(message)
    if messages and on_progress is not None:
        on_progress(dict(watch.progress))
    return bool(chunk)


def _finished_report(report: bytes) -> dict | None:
    """The supervisor's last line, if it is the one it writes (a candidate may try to forge it)."""
    lines = report.strip().split(b"\n")
    try:
        last = json.loads(lines[-1])
        fields = {"exit_code": int, "wall_s": float, "cpu_s": float, "maxrss_bytes": int, "swept": int}
        if last.get("event") != "finished" or any(type(last.get(k)) is not t for k, t in fields.items()):
            return None
        return last
    except ValueError:
        return None


def run_in_sandbox(
    candidate: str | Path,
    data_path: str | Path,
    competition: Competition,
    options: SandboxOptions,
    on_progress: Callable[[dict], None] | None = None,
    oracle=None,
) -> RunOutcome:
    """Run ``candidate`` on ``data_path`` in a sandboxed child; never raises for candidate faults.

    The file is read once, validated as it streams; each sequence is scored as it completes.
    ``oracle`` (a ``harness.market.base.Sidecar`` of this file, or None) adds the oracle's
    per-sequence statistics on the same rows (``RunOutcome.oracle_stats``).

    Raises ``candidate.CandidateLayoutError`` when the candidate cannot even be unpacked, and
    ``data.DataError`` when the data file breaks the contract (at its first bad row, whenever
    the replay reaches it).
    """
    run_dir = Path(tempfile.mkdtemp(prefix="wunderbench-run-"))
    try:
        layout = _Layout(run_dir)
        layout.prepare(Path(candidate))
        source = ParquetSource(data_path, competition)
        blocks = (source.sequences(options.order) if options.order is not None
                  else _from_row_zero(source.blocks(max_sequences=options.max_sequences,
                                                    first_sequence=options.first_sequence)))
        scorer = SequenceScorer(competition, oracle, keep_predictions=options.keep_predictions,
                                first_position=options.first_sequence if options.order is None else 0)
        with open(run_dir / "stdout.log", "wb") as stdout, open(run_dir / "stderr.log", "wb") as stderr:
            child = _spawn(layout, Path(data_path).resolve(), competition, options, blocks, scorer, (stdout, stderr))
            try:
                watch = _monitor(child, layout.private, options, scorer, on_progress)
            finally:
                _end(child)
        if child.feeder.error is not None:
            raise child.feeder.error
        outcome = _collect(layout, child, watch, competition, options, scorer)
        if outcome.error is not None:  # name the user's files, not the temporary copy
            error = outcome.error
            error.message = to_user_paths(error.message, layout.candidate, Path(candidate))
            error.traceback = to_user_paths(error.traceback, layout.candidate, Path(candidate))
        outcome.stderr_tail = to_user_paths(outcome.stderr_tail, layout.candidate, Path(candidate))
        return outcome
    finally:
        if not options.keep_dir:
            shutil.rmtree(run_dir, ignore_errors=True)


def _from_row_zero(blocks: Iterator[Block]) -> Iterator[Block]:
    """The blocks of a range (validated, and any ``DataError`` raised, with the file's row
    numbers) renumbered from row 0: the child counts the rows it is sent, and the run's rows are
    its own (``harness.shards`` places them back in the file)."""
    offset = None
    for block in blocks:
        offset = block.first_row if offset is None else offset
        yield Block(block.values, block.first_row - offset)


def _end(child: _Child) -> None:
    """Whatever happened, nothing of the run outlives it."""
    os.close(child.progress_fd)
    os.close(child.predictions_fd)
    if child.supervisor.poll() is None:
        child.send(signal.SIGKILL)
        try:
            child.supervisor.wait(timeout=10)
        except subprocess.TimeoutExpired:  # the supervisor itself is stuck: end the tree from here
            for p in psutil.Process(child.supervisor.pid).children(recursive=True):
                try:
                    p.kill()
                except psutil.Error:
                    pass
            child.supervisor.kill()
            child.supervisor.wait()
    child.supervisor.stdout.close()
    child.feeder.harness_gone.set()  # a feeder still waiting to send the go-ahead finds the pipe closed
    if child.pidfd is not None:
        os.close(child.pidfd)
    child.feeder.join(timeout=10)
def _describe_death(code: int, progress: dict) -> CandidateError:
    where = _where(progress)
    if code < 0:
        sig = signal.Signals(-code)
        if sig == signal.SIGKILL:
            return CandidateError(ErrorKind.KILLED, f"the process was killed (SIGKILL) {where}; usually the kernel's "
                                  "out-of-memory killer: check the peak memory")
        if sig in (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGFPE, signal.SIGILL):
            return CandidateError(ErrorKind.CRASHED,
                                  f"the process crashed with {sig.name} {where}, in native code (a C extension)")
        return CandidateError(ErrorKind.KILLED, f"the process was stopped by {sig.name} {where}")
    return CandidateError(ErrorKind.EXITED, f"the process exited with status {code} {where} without finishing: the "
                          "candidate called os._exit() or a native library ended the process")


_PHASES = {"start-up": "during start-up", "import": "while importing solution.py", "construct": "in the constructor"}


def _where(progress: dict) -> str:
    if progress.get("phase") != "replay":
        return _PHASES.get(progress.get("phase", "start-up"), "during start-up")
    if "rows" not in progress:
        return "during the first sequence"
    return f"after {progress['rows']} rows ({progress['rows'] // 1000} complete sequences; last seq_ix {progress['seq']})"




def _protections(facts: dict, finished: dict | None) -> dict[str, str]:
    """Which of the sandbox's guarantees held in this run, in words (the report prints them)."""
    landlock = str(facts.get("landlock", "unavailable"))
    if landlock.startswith("Landlock"):
        files = (f"read-only except the run folder; the project, the data and home unreadable ({landlock})")
    else:
        files = f"NOT PROTECTED: the candidate can write anywhere the user can and read the data file ({landlock})"
    if facts.get("subreaper"):
        procs = "every process the candidate starts is counted and ended with the run (child subreaper)"
        if finished and finished["swept"]:
            procs += f"; ended {finished['swept']} it left running"
    else:
        procs = "NOT PROTECTED: detached processes escape the memory count and outlive the run (no subreaper)"
    return {"filesystem": files, "processes": procs}


def _apply_result(outcome: RunOutcome, result: dict, latency: np.ndarray | None, progress: dict) -> None:
    outcome.error = result.get("error")  # a CandidateError or None (``channel.checked_result``)
    outcome.rows = result.get("rows", 0)
    outcome.seq_ids = result.get("seq_ids", [])
    outcome.import_s, outcome.construct_s = result.get("import_s"), result.get("construct_s")
    outcome.replay_s = result.get("replay_s")
    outcome.sequence_s = result.get("sequence_s", [])
    outcome.network = result.get("network", "")
    outcome.threads = {k: result[k] for k in channel.THREAD_REPORTS if k in result}
    outcome.modules = sorted(set(result.get("modules_after_constructor", []))
                             | set(result.get("modules_after_replay", [])))
    outcome.latency_ns = latency
    if outcome.status == ErrorKind.TIME_LIMIT:
        outcome.error.message += f"; stopped {_where(progress)}"


def _apply_scores(outcome: RunOutcome, scored, result: dict) -> None:
    """The parent's per-sequence sums of a finished run (``SequenceScorer.finish``); the
    sequences it scored must be the ones the child says it replayed."""
    if result["status"] != "ok":
        return
    if scored.seq_ix != result.get("seq_ids"):
        raise channel.ProtocolError(f"the child reports {len(result.get('seq_ids', []))} sequences replayed; "
                                    f"the parent scored {len(scored.seq_ix)} others or in another order")
    if scored.stats is not None:
        outcome.by_sequence = BySequence(scored.seq_ix, scored.stats)
    outcome.oracle_stats = scored.oracle
    outcome.predictions = scored.predictions


def _collect(layout: _Layout, child: _Child, watch: _Watch, comp: Competition, options: SandboxOptions,
             scorer: SequenceScorer) -> RunOutcome:
    """Turn what the run left behind into a verdict, believing nothing from the child unchecked."""
    finished = watch.finished
    wall = time.perf_counter() - child.started_at
    outcome = RunOutcome(error=None, wall_s=wall,
                         exit_code=finished["exit_code"] if finished else child.supervisor.returncode,
                         isolation=_protections(child.facts, finished),
                         run_dir=str(layout.run_dir) if options.keep_dir else None)
    outcome.stderr_tail = (layout.run_dir / "stderr.log").read_bytes()[-4000:].decode(errors="replace")
    outcome.cpu = f"pinned to core {child.cpu} of {os.cpu_count()}"
    if finished is not None and finished["wall_s"] > 0:
        outcome.cpu_s = finished["cpu_s"]
        outcome.cores_used = finished["cpu_s"] / finished["wall_s"]
        outcome.cpu += f"; used {outcome.cores_used:.2f} cores (CPU time of all its processes / wall time)"
    outcome.peak_rss_bytes = max(watch.peak, finished["maxrss_bytes"] if finished else 0)
    outcome.memory_s, outcome.memory_bytes = watch.memory.times_s(), watch.memory.values_bytes()
    result = latency = None
    protocol = watch.protocol_error
    if protocol is None:
        try:
            result = channel.checked_result(layout.out, child.feeder.rows_sent)
            if result is not None and result["status"] != "harness_error":
                latency = channel.checked_latency(layout.out, result)
                _apply_scores(outcome, scorer.finish(result["status"] == "ok"), result)
            if options.profile is not None:
                outcome.profile_bytes = channel.read_regular(layout.out / "profile.json", channel.MAX_PROFILE_BYTES)
        except channel.ProtocolError as exc:
            protocol, result = str(exc), None
    if protocol is not None:
        outcome.error = CandidateError(ErrorKind.PROTOCOL, f"the harness's channel from the child was tampered with: "
                                       f"{protocol}; the candidate wrote into the harness's pipe or files")
    elif result is not None:
        _apply_result(outcome, result, latency, watch.progress)
    elif watch.killed_for == "time_limit":
        outcome.error = CandidateError(ErrorKind.TIME_LIMIT, (
            f"the wall-clock limit of {options.time_limit_s:.0f} s was reached and the candidate did not stop "
            f"when asked; killed {_where(watch.progress)}"))
    elif watch.killed_for == "out_of_memory":
        outcome.error = CandidateError(ErrorKind.OUT_OF_MEMORY, (
            f"resident memory of the candidate and its children passed the cap of "
            f"{options.memory_bytes / 1024**3:.2f} GiB {_where(watch.progress)}; killed"))
    else:
        outcome.error = _describe_death(outcome.exit_code, watch.progress)
    _judge_cores(outcome, finished)
    _judge_timings(outcome, child.feeder.clock)
    return outcome


def _judge_cores(outcome: RunOutcome, finished: dict | None) -> None:
    """More than one core's worth of CPU time: the timings are not the grader's, whatever else held.
    (A tenth of a second of slack keeps clock-tick rounding in very short runs from counting.)"""
    if not outcome.ok or finished is None or outcome.cores_used is None:
        return
    if outcome.cores_used > MAX_CORES and finished["cpu_s"] - finished["wall_s"] > 0.1:
        outcome.error = CandidateError(ErrorKind.CORES, (
            f"used {outcome.cores_used:.2f} cores; the grader has one, so these timings are not the grader's "
            "(the candidate changed its CPU affinity or ran work outside the pinned core)"))


def _judge_timings(outcome: RunOutcome, parent: clock.ParentClock) -> None:
    """Keep the parent's measures beside the child's, and FAIL a finished run whose reported
    times are far below them (``harness.clock``)."""
    outcome.measured_run_s = parent.run_s
    if not outcome.ok or outcome.startup_s is None or outcome.replay_s is None:
        return  # a failed run's times cover only the rows before the failure
    outcome.steady_floor_s = parent.steady_floor_s(len(outcome.sequence_s))
    steady = float(np.mean(outcome.sequence_s[1:])) if len(outcome.sequence_s) > 1 else None
    reason = clock.check(parent, outcome.startup_s + outcome.replay_s, steady, len(outcome.sequence_s))
    if reason is not None:
        outcome.error = CandidateError(ErrorKind.TIMINGS, reason)
