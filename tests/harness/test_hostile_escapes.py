"""Hostile candidates against the sandbox's walls: each row names the attack, the verdict the
sandbox must give and the mechanism that catches it (README: "What the sandbox guarantees").

Every attack here succeeded before the sandbox had a supervisor and Landlock: the candidate read
the data through the job file or a descriptor, wrote outside its folder, left processes behind,
used two cores, crashed the harness through the progress pipe or imported the harness.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import textwrap
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from harness import competitions as C
from harness.isolation import landlock_abi
from harness.sandbox import MAX_CORES, RunOutcome, SandboxOptions, _judge_cores, run_in_sandbox

PROJECT_DIR = Path(__file__).resolve().parents[2]
needs_landlock = pytest.mark.skipif(landlock_abi() < 1, reason="this kernel has no Landlock; the report says so")


@dataclass(frozen=True)
class Hostile:
    name: str
    source: str
    status: str
    message: str | tuple[str, ...]
    """What the verdict's text contains; a tuple where timing decides which of several
    equally valid messages comes (any one of them must appear)."""
    caught_by: str


def _ctor(body: str) -> str:
    """A candidate whose constructor runs ``body`` and whose predict is honest."""
    return (
        "import os, sys, json, signal, subprocess, time, threading\n"
        "class PredictionModel:\n"
        "    def __init__(self):\n"
        + textwrap.indent(textwrap.dedent(body).strip("\n"), " " * 8)
        + "\n    def predict(self, dp):\n"
        "        return dp.state.copy() if dp.need_prediction else None\n"
    )


def _first_predict(body: str) -> str:
    """A candidate that runs ``body`` at its first predict call (the replay is under way)."""
    return (
        "import os, sys\n"
        "class PredictionModel:\n"
        "    done = False\n"
        "    def predict(self, dp):\n"
        "        if not self.done:\n"
        "            self.done = True\n"
        + textwrap.indent(textwrap.dedent(body).strip("\n"), " " * 12)
        + "\n        return dp.state.copy() if dp.need_prediction else None\n"
    )


FIND_DESCRIPTORS = """
pids, pid = ["self"], os.getpid()
while pid > 1:  # itself and every ancestor: the supervisor, the harness, the shell
    pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    pids.append(pid)
found = []
for pid in pids:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        continue
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.endswith(".parquet"):
                found.append(open(f"/proc/{pid}/fd/{fd}", "rb").read(4))
        except OSError:
            pass
if not found:
    raise LookupError("no readable descriptor to the data file")
"""

GARBAGE_TO_EVERY_PIPE = """
for fd in range(3, 64):
    try:
        if os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
            os.write(fd, PAYLOAD)
    except OSError:
        pass
"""

# The prediction pipe is the one write-only pipe the parent made 1 MiB large (F_GETPIPE_SZ).
TO_THE_PREDICTION_PIPE = """
import fcntl
import numpy as np
for fd in range(3, 64):
    try:
        writable = os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:") and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_WRONLY
        if writable and fcntl.fcntl(fd, 1032) == 1 << 20:
            os.write(fd, PAYLOAD)
    except OSError:
        pass
"""

SPIN_TWO_CORES = """
import hashlib
os.sched_setaffinity(0, set(range(os.cpu_count())))
block = bytes(1 << 22)
def spin():  # hashing a large buffer releases the GIL, as numpy and torch kernels do
    while time.thread_time() < 1.0:
        hashlib.sha256(block)
threads = [threading.Thread(target=spin) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""

# A launcher that starts a process in a new session and exits at once: an orphan, outside the
# candidate's process tree unless something adopts it.
ORPHAN = """
launcher = "import subprocess, sys; subprocess.Popen([sys.executable, '-c', sys.argv[1]], start_new_session=True)"
for _ in range({copies}):
    subprocess.run([sys.executable, "-c", launcher, {child!r}], check=True)
"""
HOG = "import time; block = b'x' * (300 * 1024**2); time.sleep(30)"
SLEEPER = "import os, time; open('{pidfile}', 'w').write(str(os.getpid())); time.sleep(60)"


def catalogue(data: Path, outside: Path) -> list[Hostile]:
    sidecar = data.with_name(data.stem + ".oracle.parquet")
    return [
        Hostile("job file names the data", _ctor("json.load(open('../job.json'))['data_path']"),
                "constructor_error", "FileNotFoundError",
                "the job travels down the data pipe; no job file exists in the run folder"),
        Hostile("descriptor to the data file", _first_predict(FIND_DESCRIPTORS),
                "predict_error", "no readable descriptor",
                "the parent reads the file and sends blocks, so the child never opens it; Landlock closes "
                "/proc/<pid>/fd of the processes outside the candidate's domain (the harness holds the file)"),
        Hostile("data file by its path", _ctor(f"open({str(data)!r}, 'rb').read(4)"),
                "constructor_error", "PermissionError", "Landlock: the data's folder is not readable"),
        Hostile("oracle sidecar by its path", _ctor(f"open({str(sidecar)!r}, 'rb').read(4)"),
                "constructor_error", "PermissionError", "Landlock: the data's folder is not readable"),
        Hostile("project through /proc/<ppid>/cwd and sys.executable", _ctor("""
            roots = [os.readlink(f"/proc/{os.getppid()}/cwd"), os.path.dirname(os.path.dirname(os.path.dirname(sys.executable)))]
            for root in roots:
                open(os.path.join(root, "README.md")).read(10)
            """), "constructor_error", "Error",
                "the supervisor's cwd is unreadable and sys.executable is the real interpreter, outside the project"),
        Hostile("project by its path", _ctor(f"open({str(PROJECT_DIR / 'README.md')!r}).read(10)"),
                "constructor_error", "PermissionError", "Landlock: the project is not readable"),
        Hostile("writes outside its folders", _ctor(f"open({str(outside / 'pwned.txt')!r}, 'w').write('x')"),
                "constructor_error", "PermissionError", "Landlock: only the run's own folders are writable"),
        Hostile("rewrites the harness's boot script", _ctor("open('../runtime/boot.py', 'a').write('# pwned')"),
                "constructor_error", "PermissionError", "Landlock: the runtime folder is read-only"),
        Hostile("imports the harness by a computed name",
                "import importlib\nimportlib.import_module('har' + 'ness.replay')\n" + _ctor("pass"),
                "import_error", "No module named 'harness'",
                "the child drops its own package from sys.path and sys.modules before the candidate runs"),
        Hostile("imports the harness", "import harness\n" + _ctor("pass"),
                "import_error", "No module named 'harness'", "as above"),
        Hostile("loads the harness from its files", _ctor("""
            import importlib.util
            places = ["../runtime/harness/replay.py", "../runtime/private/harness/replay.py"]
            found = [p for p in places if os.path.exists(p)]
            if not found:
                raise LookupError("no copy of the harness to load")
            spec = importlib.util.spec_from_file_location("stolen", found[0])
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
            """), "constructor_error", "no copy of the harness",
                "the parent deletes the child's private copy once it is loaded, before the candidate's import"),
        Hostile("signals the harness", _ctor("os.kill(os.getppid(), 0)"),
                "constructor_error", "PermissionError", "Landlock (ABI 6+): no signals outside the candidate's domain"),
        Hostile("garbage on the progress pipe", _ctor(GARBAGE_TO_EVERY_PIPE.replace("PAYLOAD", "b'garbage\\n'")),
                "protocol", "not JSON", "the parent checks every progress line; malformed is the candidate's FAIL"),
        Hostile("endless progress line", _ctor(GARBAGE_TO_EVERY_PIPE.replace("PAYLOAD", "b'{' * 100000")),
                # The same 100,000 bytes also reach the prediction pipe (390 whole rows of A): which
                # of the two the parent reads first decides the message, a FAIL for protocol either way.
                "protocol", ("longer than", "predictions came back for"), "progress lines are bounded"),
        Hostile("wrong types on the progress pipe",
                _ctor(GARBAGE_TO_EVERY_PIPE.replace("PAYLOAD", "b'{\"rows\": \"many\", \"seq\": [1]}\\n'")),
                "protocol", "not a count", "each progress field has a type"),
        Hostile("NaN on the prediction pipe",
                _ctor(TO_THE_PREDICTION_PIPE.replace("PAYLOAD", "np.full(32, np.nan).tobytes()")),
                "protocol", "non-finite", "the parent checks every prediction that comes back up the pipe"),
        Hostile("predictions for rows not sent",
                _ctor(TO_THE_PREDICTION_PIPE.replace("PAYLOAD", "np.zeros((3000, 32)).tobytes()")),
                "protocol", "predictions came back for",
                "the parent counts predictions against the scored rows it has sent"),
        Hostile("reads ahead on the data pipe", _first_predict(
            "for fd in range(3, 64):\n"
            "    try:\n"
            "        if os.readlink(f'/proc/self/fd/{fd}').startswith('pipe:'):\n"
            "            os.read(fd, 1 << 20)\n"
            "    except OSError:\n"
            "        pass"),
                # The read takes whatever the parent has written by then: part of a block (the
                # child's next header check fails) or, on a loaded machine, every block still to
                # come (the child meets the stream's end early and reports fewer rows than sent).
                "protocol", ("data pipe", "rows replayed of"), "the child checks every block header; a short or foreign stream is the "
                "candidate's FAIL (the rows it read are in its memory: the causality check's business)"),
        Hostile("orphans holding memory", _ctor(ORPHAN.format(child=HOG, copies=3) + "time.sleep(15)"),
                "out_of_memory", "and its children",
                "the supervisor is a child subreaper: orphans stay in the tree the parent measures"),
    ]


def _run(cand: Path, data: Path, **kw):
    opts = SandboxOptions(memory_bytes=int(kw.pop("memory_gb", 0.9) * 1024**3), time_limit_s=30, **kw)
    return run_in_sandbox(cand, data, C.A, opts)


CASES = [h.name for h in catalogue(Path("/d/a.parquet"), Path("/o"))]


@needs_landlock
@pytest.mark.parametrize("name", CASES)
def test_hostile_candidate_is_caught(name, candidate, a_file, tmp_path):
    outside, data_dir = tmp_path / "outside", tmp_path / "data"
    outside.mkdir()
    data_dir.mkdir()
    data = data_dir / "a.parquet"
    shutil.copy(a_file, data)
    shutil.copy(a_file, data_dir / "a.oracle.parquet")  # stands in for the simulator's sidecar
    hostile = {h.name: h for h in catalogue(data, outside)}[name]
    outcome = _run(candidate(hostile.source), data)
    text = "" if outcome.error is None else outcome.error.message + outcome.error.traceback
    assert outcome.status == hostile.status, (hostile.caught_by, outcome.status, text[-600:])
    messages = (hostile.message,) if isinstance(hostile.message, str) else hostile.message
    assert any(m in text for m in messages), (hostile.caught_by, text[-600:])
    assert not (outside / "pwned.txt").exists()


@pytest.mark.parametrize("how", ["new session", "double fork"])
def test_processes_the_candidate_leaves_behind_end_with_the_run(how, candidate, a_file):
    sleeper = SLEEPER.format(pidfile="pid.txt")
    body = {"new session": f"subprocess.Popen([sys.executable, '-c', {sleeper!r}], start_new_session=True)",
            "double fork": ORPHAN.format(child=sleeper, copies=1)}[how]
    outcome = _run(candidate(_ctor(body + "\ntime.sleep(0.5)")), a_file, keep_dir=True)
    run_dir = Path(outcome.run_dir)
    try:
        pid = int((run_dir / "candidate" / "pid.txt").read_text())
        assert outcome.status == "ok"
        try:
            alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            alive = False
        if alive:
            os.kill(pid, signal.SIGKILL)
        assert not alive, "a process the candidate started outlived the run"
        assert "ended 1 it left running" in outcome.isolation["processes"]
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to use two")
def test_two_cores_by_affinity_are_measured_and_judged(candidate, a_file):
    """Every thread's CPU time is counted (2 x 1 s at least); whether that was two cores at once
    depends on how busy this machine is, so the test checks that the verdict follows the measure
    (on an idle machine: "used 1.9x cores", FAIL)."""
    outcome = _run(candidate(_ctor(SPIN_TWO_CORES)), a_file)
    assert outcome.cpu_s >= 2.0
    assert outcome.status == ("cores" if outcome.cores_used > MAX_CORES else "ok"), (outcome.status, outcome.cpu)


def test_more_than_one_core_fails_naming_the_cores_used():
    outcome = RunOutcome(error=None, cores_used=1.96)
    _judge_cores(outcome, {"cpu_s": 3.92, "wall_s": 2.0})
    assert outcome.status == "cores" and "used 1.96 cores; the grader has one" in outcome.error.message
    within = RunOutcome(error=None, cores_used=1.05)
    _judge_cores(within, {"cpu_s": 2.1, "wall_s": 2.0})
    assert within.ok


def test_cpu_time_of_orphans_is_counted(candidate, a_file):
    spin = "import time\nwhile time.process_time() < 1.0: pass\nopen('spun', 'w').close()\ntime.sleep(60)"
    wait = "while not os.path.exists('spun'):\n    time.sleep(0.05)"
    outcome = _run(candidate(_ctor(ORPHAN.format(child=spin, copies=1) + wait)), a_file)
    assert outcome.status == "ok" and outcome.cpu_s >= 1.0


def test_an_honest_candidate_uses_about_one_core_and_the_report_says_so(candidate, a_file):
    outcome = _run(candidate(_ctor("pass")), a_file)
    assert outcome.status == "ok" and outcome.cores_used is not None and outcome.cores_used <= 1.1
    assert "cores" in outcome.cpu


@needs_landlock
def test_nothing_the_child_reads_about_itself_names_the_project(candidate, a_file):
    """The listed routes to the project's path are closed (the library folders on sys.path and
    in /proc/self/maps still name it; what matters is that nothing under it but them is readable)."""
    probe = _ctor("""
        seen = [sys.executable, open("/proc/self/cmdline").read(), open(f"/proc/{os.getppid()}/cmdline").read()]
        try:
            seen.append(os.readlink(f"/proc/{os.getppid()}/cwd"))
        except OSError:
            pass
        if any(PROJECT in s for s in seen):
            raise RuntimeError("the project's path leaks: " + repr(seen))
        """).replace("PROJECT", repr(str(PROJECT_DIR)))
    outcome = _run(candidate(probe), a_file)
    assert outcome.status == "ok", outcome.error


def test_the_report_names_each_protection_and_says_when_one_is_missing(candidate, a_file):
    from harness.sandbox import _protections
    from harness.simulate import SimulateOptions, simulate

    report = simulate(candidate(_ctor("pass")), a_file, options=SimulateOptions(bootstrap=0))
    held = "Landlock" if landlock_abi() >= 1 else "NOT PROTECTED"
    assert held in report.sandbox.filesystem and "subreaper" in report.sandbox.processes
    missing = _protections({"landlock": "unavailable: this kernel has no Landlock", "subreaper": False}, None)
    assert all(text.startswith("NOT PROTECTED") for text in missing.values())
    assert "no Landlock" in missing["filesystem"]


def _forge(out: Path, what: str) -> None:
    """Result files as a candidate could leave them in the results folder it can write to."""
    import json

    import numpy as np

    ok = {"status": "ok", "error": None, "rows": 1000, "seq_ids": [0]}
    if what == "a FIFO":
        os.mkfifo(out / "result.json")
    elif what == "a link":
        (out / "elsewhere.json").write_text(json.dumps(ok))
        (out / "result.json").symlink_to(out / "elsewhere.json")
    elif what == "too large":
        (out / "result.json").write_text(json.dumps({**ok, "network": "x" * (17 * 1024**2)}))
    else:
        result = {"thread count text": {**ok, "threads_after_replay": {"pools": [{"threads": "many"}]}},
                  "an unknown error kind": {**ok, "status": "pwned", "error": {"kind": "pwned", "message": ""}},
                  "a failure without its error": {**ok, "status": "predict_error"},
                  "an error beside ok": {**ok, "error": {"kind": "predict_error", "message": "x"}},
                  "a sequence left untimed": {**ok, "sequence_s": []}}.get(what, ok)
        (out / "result.json").write_text(json.dumps(result))
        rows = {"ok arrays": 1000, "too few rows": 5}.get(what, 1000)
        latency = np.zeros(rows, dtype=object if what == "pickled objects" else np.int64)
        np.save(out / "latency_ns.npy", latency, allow_pickle=True)


@pytest.mark.parametrize("what, message", [
    ("a FIFO", "not a regular file"), ("a link", "not a regular file"), ("too large", "more than the child writes"),
    ("thread count text", "threads_after_replay"), ("pickled objects", "not the array"),
    ("too few rows", "not the child's int64 (1000,)"),
    ("an unknown error kind", "unknown kind 'pwned'"), ("a failure without its error", "malformed 'error'"),
    ("an error beside ok", "status 'ok' beside an error"), ("a sequence left untimed", "times 0 sequences of 1"),
])
def test_forged_result_files_are_the_candidates_fail(what, message, tmp_path):
    from harness.channel import ProtocolError, checked_latency, checked_result

    _forge(tmp_path, what)
    with pytest.raises(ProtocolError, match=re.escape(message)):
        result = checked_result(tmp_path, rows_sent=1000)
        checked_latency(tmp_path, result)


def test_the_checked_result_files_of_an_honest_child_pass(tmp_path):
    from harness.channel import checked_latency, checked_result

    _forge(tmp_path, "ok arrays")
    assert checked_latency(tmp_path, checked_result(tmp_path, rows_sent=1000)).shape == (1000,)
