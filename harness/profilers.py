"""Profilers around ``predict``, inside the sandboxed child (``python -m harness profile``).

The child wraps the candidate's ``predict`` with one profiler per run, replays as usual, and
writes what the profiler saw as ``profile.json`` beside its other results. One profiler a run,
because line_profiler and memory-profiler both trace with ``sys.settrace`` and would measure
each other:

- ``functions``: cProfile around every ``predict`` call, aggregated by function (pstats); each
  function's ``direct_s`` is its own time plus the library and built-in calls it makes itself:
  what its own lines cost, apart from the calls into the candidate's other functions.
- ``lines``: line_profiler's ``LineProfiler`` on ``predict`` and the targets the parent names
  (the candidate's own functions whose own lines cost most, found by a ``functions`` run).
- ``memory``: memory-profiler's ``LineProfiler`` on ``predict``: resident memory per line.

The parent reads the file as untrusted data (``harness.profile_data``); what is written here is
bounded (``MAX_*``) so that an honest profile always passes those checks. Files inside the
candidate's folder are written as paths relative to it (``own``), so the parent can name the
user's files, not this run's temporary copy.
"""

from __future__ import annotations

import gc
import linecache
import os
import types
from typing import Callable

KINDS = ("functions", "lines", "memory")
MAX_FUNCTIONS = 200
"""Functions kept of a cProfile run: the top ones by cumulative and by own time."""
MAX_LINES = 4000
MAX_TEXT = 200
"""Characters kept of a file name, function name or source line."""
MAX_TARGETS = 8


def prepare(spec: dict) -> None:
    """Import the profiler's library before the candidate is imported (so that it counts among
    the modules the child had, not those the candidate imported)."""
    kind = spec.get("kind")
    if kind == "functions":
        import cProfile  # noqa: F401
        import pstats  # noqa: F401
    elif kind == "lines":
        import line_profiler  # noqa: F401
    elif kind == "memory":
        import memory_profiler  # noqa: F401
    else:
        raise ValueError(f"internal: unknown profile kind {kind!r}")


def _code_of(predict: Callable) -> types.CodeType | None:
    """The code object of the Python function behind ``predict`` (a bound method's function)."""
    func = getattr(predict, "__func__", predict)
    return getattr(func, "__code__", None)


class _Places:
    """Names files as the parent wants them: relative to the candidate's folder when inside it."""

    def __init__(self, candidate_dir: str):
        self.root = os.path.realpath(candidate_dir) + os.sep

    def place(self, filename: str) -> tuple[str, bool]:
        full = os.path.realpath(filename) if filename and not filename.startswith(("<", "~")) else filename
        if full.startswith(self.root):
            return full[len(self.root):][:MAX_TEXT], True
        return filename[-MAX_TEXT:], False

    def absolute(self, relative: str) -> str:
        return os.path.join(self.root, relative)


def _functions_at(places: _Places, targets: list) -> list[types.FunctionType]:
    """The live functions whose code starts at each (file relative to the candidate, line, name)."""
    wanted = {(places.absolute(f), int(line), str(name)) for f, line, name in targets[:MAX_TARGETS]}
    found: dict[tuple, types.FunctionType] = {}
    for obj in gc.get_objects():
        if isinstance(obj, types.FunctionType):
            code = obj.__code__
            key = (os.path.realpath(code.co_filename), code.co_firstlineno, code.co_name)
            if key in wanted:
                found.setdefault(key, obj)
    return list(found.values())


def _source(filename: str, lineno: int) -> str:
    return linecache.getline(filename, lineno).strip()[:MAX_TEXT]


class _Counted:
    """``predict`` behind a profiler's enable/disable, counting the calls."""

    def __init__(self, predict: Callable, enable: Callable[[], None], disable: Callable[[], None]):
        self.predict, self.enable, self.disable = predict, enable, disable
        self.calls = 0

    def __call__(self, dp):
        self.calls += 1
        self.enable()
        try:
            return self.predict(dp)
        finally:
            self.disable()


def _predict_entry(places: _Places, code: types.CodeType | None) -> list | None:
    if code is None:
        return None
    file, _ = places.place(code.co_filename)
    return [file, code.co_firstlineno, code.co_name[:MAX_TEXT]]


def wrap(predict: Callable, spec: dict, candidate_dir: str) -> tuple[Callable, Callable[[], dict]]:
    """``predict`` wrapped by the profiler ``spec`` names, and a function that returns what it saw."""
    places = _Places(candidate_dir)
    code = _code_of(predict)
    kind = spec["kind"]
    if kind == "functions":
        return _functions(predict, places, code)
    functions = [getattr(predict, "__func__", predict)] if code is not None else []
    if kind == "lines":
        functions += [f for f in _functions_at(places, spec.get("targets") or []) if f.__code__ is not code]
        return _lines(predict, places, code, functions)
    return _memory(predict, places, code, functions)


def _functions(predict: Callable, places: _Places, code) -> tuple[Callable, Callable[[], dict]]:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    counted = _Counted(predict, profiler.enable, profiler.disable)

    def collect() -> dict:
        stats = pstats.Stats(profiler).stats  # (file, line, name) -> (primitive calls, calls, own, cumulative, callers)
        entries = [(key, value) for key, value in stats.items() if "_lsprof.Profiler" not in key[2]]
        keep = {key for key, _ in sorted(entries, key=lambda kv: -kv[1][3])[:MAX_FUNCTIONS // 2]}
        keep |= {key for key, _ in sorted(entries, key=lambda kv: -kv[1][2])[:MAX_FUNCTIONS // 2]}
        own_files = {key: places.place(key[0]) for key, _ in entries}
        libraries: dict[tuple, float] = {}  # caller -> time in the library (and built-in) calls it makes itself
        for key, (_, _, _, _, callers) in entries:
            if not own_files[key][1]:
                for caller, (_, _, _, cum_from_caller) in callers.items():
                    libraries[caller] = libraries.get(caller, 0.0) + cum_from_caller
        rows = []
        for key, (_, calls, own_s, cum_s, _) in entries:
            if key in keep:
                file, own = own_files[key]
                rows.append({"file": file, "line": int(key[1]), "name": str(key[2])[:MAX_TEXT], "own": own,
                             "calls": int(calls), "own_s": float(own_s), "cumulative_s": float(cum_s),
                             "direct_s": float(own_s + libraries.get(key, 0.0))})
        return {"kind": "functions", "predict_calls": counted.calls, "predict": _predict_entry(places, code),
                "functions": rows}

    return counted, collect


def _line_rows(places: _Places, timings: dict, unit: float) -> list[dict]:
    rows = []
    for (filename, _, name), lines in timings.items():
        file, own = places.place(filename)
        for lineno, hits, total in lines:
            rows.append({"file": file, "line": int(lineno), "function": str(name)[:MAX_TEXT], "own": own,
                         "hits": int(hits), "time_s": float(total) * unit, "source": _source(filename, lineno)})
    return rows[:MAX_LINES]


def _lines(predict: Callable, places: _Places, code, functions: list) -> tuple[Callable, Callable[[], dict]]:
    from line_profiler import LineProfiler

    profiler = LineProfiler()
    for func in functions:
        profiler.add_function(func)
    counted = _Counted(predict, profiler.enable_by_count, profiler.disable_by_count)

    def collect() -> dict:
        stats = profiler.get_stats()
        return {"kind": "lines", "predict_calls": counted.calls, "predict": _predict_entry(places, code),
                "lines": _line_rows(places, stats.timings, stats.unit)}

    return counted, collect


def _memory(predict: Callable, places: _Places, code, functions: list) -> tuple[Callable, Callable[[], dict]]:
    from memory_profiler import LineProfiler

    profiler = LineProfiler(backend="psutil")
    for func in functions:
        profiler.add_function(func)
    counted = _Counted(predict, profiler.enable_by_count, profiler.disable_by_count)

    def collect() -> dict:
        rows = []
        for func in functions:
            fcode = func.__code__
            file, own = places.place(fcode.co_filename)
            for lineno, (increment, peak, hits) in sorted(profiler.code_map.get(fcode, {}).items()):
                # memory-profiler charges its baseline (the whole process at the first call) and what
                # changed between two calls (the harness's doing) to the ``def`` line: not the body's
                if lineno == fcode.co_firstlineno:
                    continue
                rows.append({"file": file, "line": int(lineno), "function": fcode.co_name[:MAX_TEXT], "own": own,
                             "hits": int(hits), "increment_mib": float(increment), "peak_mib": float(peak),
                             "source": _source(fcode.co_filename, lineno)})
        return {"kind": "memory", "predict_calls": counted.calls, "predict": _predict_entry(places, code),
                "lines": rows[:MAX_LINES]}

    return counted, collect

