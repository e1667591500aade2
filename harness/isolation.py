"""The wall between the candidate and the user's machine, and the supervisor that keeps it.

Why these mechanisms (Linux, no root needed, nothing to install):

- **Filesystem: Landlock** (kernel 5.13+, on by default in the major distributions). An
  unprivileged process restricts itself and every process it starts, irreversibly, through three
  system calls (444-446, made with ``ctypes``); no user namespace is needed, which matters
  because Ubuntu 24.04 and others forbid unprivileged user namespaces by default, and bubblewrap
  is usually not installed. The candidate may write only beneath its own folder, its private
  temporary folder, its ``HOME`` and the results folder, all inside the run folder; it may read
  the system's library folders, the interpreter and the installed libraries, and nothing else:
  not the project checkout, not the data file, its oracle sidecars or the user's home. Landlock
  also scopes ``ptrace``-style access, so ``/proc/<parent>/fd``, ``/proc/<parent>/cwd`` and
  ``/proc/<parent>/environ`` of the harness are closed, and (ABI 6+) signals to the harness and
  abstract unix sockets outside the run; with ABI 4+ it refuses TCP connect and bind, a second
  wall behind the network audit hook. A mount namespace could also hide paths, but it needs a
  user namespace; a read-only remount made inside one can be undone by the namespace's root.
- **Processes: a subreaper supervisor.** The candidate's interpreter is the child of a small
  supervisor process (this module run as a script) that marks itself
  ``PR_SET_CHILD_SUBREAPER`` (Linux 3.4+, no privilege). Every process the candidate starts,
  however detached (a new session, a double fork), stays a descendant of the supervisor, so the
  parent's memory sampling sees it and, when the candidate's interpreter ends, the supervisor
  kills and reaps every descendant before it reports. The candidate cannot undo the mark: it is
  held by another process, outside its Landlock domain. A PID namespace would do the same, but
  needs root or a user namespace.
- **Cores: measured.** The supervisor reaps every descendant, so its children's CPU time is the
  whole tree's; CPU time over wall time is the number of cores the candidate actually used,
  whatever it did to its affinity.

The supervisor reads its job (JSON) on stdin and writes two JSON lines on stdout: ``started``
(the candidate's pid and which protections are in force, measured in the candidate's own process
before it runs any of the candidate's code) and ``finished`` (exit status, CPU time, wall time,
the largest resident set of any descendant). It imports only the standard library, because it
runs from a copy in the run folder with nothing of this project importable.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path

# --- Landlock (include/uapi/linux/landlock.h) ---------------------------------------------------
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_CHILD_SUBREAPER = 36
_CLONE_NEWNET = 0x40000000

FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_ABI1 = (1 << 13) - 1  # execute .. make_sym
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FILE_ONLY = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1

READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR

SYSTEM_READ_ROOTS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev")
"""Where the interpreter and native libraries look for what they need; the project is carved out."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 where there is none (old kernel, disabled, not Linux)."""
    if not sys.platform.startswith("linux"):
        return 0
    abi = _libc().syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(abi), 0)


def _handled_fs(abi: int) -> int:
    handled = _FS_ABI1
    if abi >= 2:
        handled |= _FS_REFER
    if abi >= 3:
        handled |= _FS_TRUNCATE
    if abi >= 5:
        handled |= _FS_IOCTL_DEV
    return handled


def _outside(root: Path, forbidden: list[Path]) -> list[Path]:
    """``root`` itself, or, where it holds a forbidden path, its entries that hold none."""
    inside = [f for f in forbidden if f == root or root in f.parents]
    if not inside:
        return [root]
    if root in inside or not root.is_dir():
        return []
    kept: list[Path] = []
    for entry in sorted(root.iterdir()):
        kept += _outside(entry, inside)
    return kept


def read_roots(extra: list[str], forbidden: list[str]) -> list[str]:
    """Folders the candidate may read: the system's and ``extra`` (the interpreter, the installed
    libraries, the run's runtime), each narrowed so that no ``forbidden`` path lies beneath."""
    bad = [Path(os.path.realpath(f)) for f in forbidden]
    roots: list[str] = []
    for root in [*SYSTEM_READ_ROOTS, *extra]:
        path = Path(os.path.realpath(root))
        if path.exists():
            roots += [str(p) for p in _outside(path, bad)]
    return list(dict.fromkeys(roots))


def _restrict(libc: ctypes.CDLL, read: list[str], write: list[str], block_network: bool) -> str:
    """Apply Landlock to this process (and all it will start); return what is in force."""
    abi = landlock_abi()
    if abi < 1:
        return "unavailable: this kernel has no Landlock (Linux 5.13+ with Landlock enabled)"
    handled = _handled_fs(abi)
    attr = _RulesetAttr(handled, 0, 0)
    size = 8
    if abi >= 4 and block_network:
        attr.handled_access_net, size = _NET_BIND_TCP | _NET_CONNECT_TCP, 16
    if abi >= 6:
        attr.scoped, size = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL, 24
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return f"unavailable: landlock_create_ruleset failed ({os.strerror(ctypes.get_errno())})"
    try:
        rules = [(p, READ | (FS_WRITE_FILE | _FS_IOCTL_DEV if p == "/dev" else 0)) for p in read]
        rules += [(p, handled) for p in write]
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not os.path.isdir(path):
                    access &= _FILE_ONLY
                rule = _PathBeneathAttr(access & handled, fd)
                if libc.syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                                ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                    return f"unavailable: landlock_add_rule({path}) failed ({os.strerror(ctypes.get_errno())})"
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return f"unavailable: no_new_privs refused ({os.strerror(ctypes.get_errno())})"
        if libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            return f"unavailable: landlock_restrict_self failed ({os.strerror(ctypes.get_errno())})"
    finally:
        os.close(ruleset)
    return f"Landlock ABI {abi}"


def _prepare_child(job: dict) -> dict:
    """In the forked child, before exec: limits, namespaces and Landlock. Returns what held."""
    libc = _libc()
    os.setsid()
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.sched_setaffinity(0, {job["cpu"]})
    resource.setrlimit(resource.RLIMIT_AS, (job["memory_bytes"], job["memory_bytes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    facts = {"netns": False, "landlock": "off (not asked for)"}
    if job["block_network"]:
        facts["netns"] = libc.unshare(_CLONE_NEWNET) == 0
    if job["landlock"] is not None:
        facts["landlock"] = _restrict(libc, job["landlock"]["read"], job["landlock"]["write"], job["block_network"])
    os.chdir(job["cwd"])
    devnull = os.open(os.devnull, os.O_RDONLY)
    for target, source in enumerate((devnull, job["stdout_fd"], job["stderr_fd"])):
        os.dup2(source, target)  # dup2 makes the copy inheritable
    for fd in {devnull, job["stdout_fd"], job["stderr_fd"]} - {0, 1, 2}:
        os.close(fd)
    for fd in job["pass_fds"]:
        os.set_inheritable(fd, True)
    return facts


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _sweep() -> int:
    """Kill and reap every remaining descendant (orphans come to us, the subreaper)."""
    me, swept = os.getpid(), 0
    while True:
        kids = _children(me)
        for kid in kids:
            try:
                os.kill(kid, signal.SIGKILL)
                swept += 1
            except ProcessLookupError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return swept


def _wait_for(pid: int) -> int:
    """Reap orphans as they come until ``pid`` ends; return its status as Popen does."""
    while True:
        wpid, status = os.waitpid(-1, 0)
        if wpid == pid:
            return os.waitstatus_to_exitcode(status)


def supervise(job: dict, report) -> None:
    """Start the candidate's interpreter, outlive everything it starts, report on ``report``."""
    subreaper = _libc().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    status_r, status_w = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the candidate's process-to-be
        try:
            os.close(status_r)
            facts = _prepare_child(job)
            os.write(status_w, json.dumps(facts).encode())
            os.execve(job["argv"][0], job["argv"], job["env"])
        except BaseException as exc:  # noqa: BLE001 - say why, never run the candidate unprotected
            os.write(status_w, json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
        os._exit(127)
    os.close(status_w)
    for fd in {*job["pass_fds"], job["stdout_fd"], job["stderr_fd"]}:
        os.close(fd)  # only the candidate holds its pipes: its death ends them
    with os.fdopen(status_r, "rb") as fh:
        facts = json.loads(fh.read() or b"{}")
    facts["subreaper"] = subreaper
    report.write(json.dumps({"event": "started", "pid": pid, "facts": facts}) + "\n")
    report.flush()
    exit_code = _wait_for(pid)
    wall = time.perf_counter() - started
    swept = _sweep()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    report.write(json.dumps({"event": "finished", "exit_code": exit_code, "wall_s": wall, "swept": swept,
                             "cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_bytes": usage.ru_maxrss * 1024}) + "\n")
    report.flush()


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # the stop request is for the candidate, not for us
    _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    supervise(json.loads(sys.stdin.read()), sys.stdout)
