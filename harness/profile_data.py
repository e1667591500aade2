"""What a profiled run found, checked: ``profile.json`` from the child, as typed rows.

The child writes the file in a folder the candidate can write to, so it is untrusted like every
other byte from there (``harness.channel``): the sandbox reads at most ``MAX_PROFILE_BYTES`` of a
regular file, and ``checked_profile`` accepts only the object ``harness.profilers`` writes (known
keys, the right types, counts that are whole and not negative, finite times, short strings, a
bounded number of rows). Anything else is a ``ProtocolError``: the candidate's FAIL, never a
crash of the harness nor a table that lies in a way the harness's own child could not.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from harness import profilers
from harness.channel import ProtocolError


@dataclass(frozen=True)
class Place:
    """Where a function or line is: ``file`` relative to the candidate's folder when ``own``."""

    file: str
    line: int
    own: bool


@dataclass(frozen=True)
class FunctionStat:
    """cProfile's totals for one function over the whole run."""

    place: Place
    name: str
    calls: int
    own_s: float
    cumulative_s: float
    direct_s: float
    """Own time plus the library and built-in calls it makes itself (``harness.profilers``)."""


@dataclass(frozen=True)
class LineStat:
    """One line of a profiled function: its time (line_profiler) or memory (memory-profiler)."""

    place: Place
    function: str
    hits: int
    source: str
    time_s: float | None = None
    increment_mib: float | None = None
    peak_mib: float | None = None


@dataclass
class Profile:
    """One profiled run: which profiler, how many ``predict`` calls it saw, where ``predict`` is
    (file, first line, name; None when it is no Python function), and its rows."""

    kind: str
    predict_calls: int
    predict: tuple[str, int, str] | None
    functions: list[FunctionStat] = field(default_factory=list)
    lines: list[LineStat] = field(default_factory=list)


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) > profilers.MAX_TEXT:
        raise ProtocolError(f"profile.json has a malformed {what} ({str(value)[:40]!r})")
    return value


def _count(value: object, what: str) -> int:
    if type(value) is not int or value < 0:
        raise ProtocolError(f"profile.json has a malformed {what} ({str(value)[:40]!r})")
    return value


def _number(value: object, what: str, signed: bool = False) -> float:
    if type(value) is not float or not math.isfinite(value) or (value < 0 and not signed):
        raise ProtocolError(f"profile.json has a malformed {what} ({str(value)[:40]!r})")
    return value


def _object(value: object, keys: set[str], what: str) -> dict:
    if not isinstance(value, dict) or set(value) != keys:
        raise ProtocolError(f"profile.json has a {what} that is not the object the child writes")
    return value


def _place(row: dict) -> Place:
    if type(row["own"]) is not bool:
        raise ProtocolError("profile.json has a malformed 'own'")
    return Place(_text(row["file"], "file"), _count(row["line"], "line"), row["own"])


_FUNCTION_KEYS = {"file", "line", "name", "own", "calls", "own_s", "cumulative_s", "direct_s"}
_LINE_KEYS = {"file", "line", "function", "own", "hits", "source"}
_KIND_KEYS = {"functions": ("functions", profilers.MAX_FUNCTIONS), "lines": ("lines", profilers.MAX_LINES),
              "memory": ("lines", profilers.MAX_LINES)}


def _function(row: object) -> FunctionStat:
    row = _object(row, _FUNCTION_KEYS, "function row")
    return FunctionStat(_place(row), _text(row["name"], "name"), _count(row["calls"], "calls"),
                        _number(row["own_s"], "own_s"), _number(row["cumulative_s"], "cumulative_s"),
                        _number(row["direct_s"], "direct_s"))


def _line(row: object, kind: str) -> LineStat:
    extra = {"time_s"} if kind == "lines" else {"increment_mib", "peak_mib"}
    row = _object(row, _LINE_KEYS | extra, "line row")
    common = (_place(row), _text(row["function"], "function"), _count(row["hits"], "hits"),
              _text(row["source"], "source"))
    if kind == "lines":
        return LineStat(*common, time_s=_number(row["time_s"], "time_s"))
    return LineStat(*common, increment_mib=_number(row["increment_mib"], "increment_mib", signed=True),
                    peak_mib=_number(row["peak_mib"], "peak_mib"))


def checked_profile(data: bytes | None, kind: str, max_calls: int) -> Profile:
    """The profile the child wrote for a ``kind`` run of at most ``max_calls`` rows, checked."""
    if data is None:
        raise ProtocolError("the child wrote no profile.json")
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise ProtocolError(f"profile.json is not JSON ({exc})") from exc
    rows_key, cap = _KIND_KEYS[kind]
    raw = _object(raw, {"kind", "predict_calls", "predict", rows_key}, "profile")
    if raw["kind"] != kind:
        raise ProtocolError(f"profile.json is of kind {str(raw['kind'])[:20]!r}, not {kind!r}")
    calls = _count(raw["predict_calls"], "predict_calls")
    if calls > max_calls:
        raise ProtocolError(f"profile.json counts {calls} predict calls of {max_calls} rows sent")
    predict = raw["predict"]
    if predict is not None:
        if not isinstance(predict, list) or len(predict) != 3:
            raise ProtocolError("profile.json has a malformed 'predict'")
        predict = (_text(predict[0], "predict file"), _count(predict[1], "predict line"),
                   _text(predict[2], "predict name"))
    rows = raw[rows_key]
    if not isinstance(rows, list) or len(rows) > cap:
        raise ProtocolError(f"profile.json's {rows_key!r} is not a list of at most {cap} rows")
    profile = Profile(kind, calls, predict)
    if kind == "functions":
        profile.functions = [_function(row) for row in rows]
    else:
        profile.lines = [_line(row, kind) for row in rows]
    return profile
