"""Why a candidate's run failed: one enum of kinds and one exception that carries them.

Every failure the harness reports about a candidate, whether the child saw it (an exception in
``predict``, a bad return) or the parent did (the time limit, the memory cap, a death, a forged
message), is a ``CandidateError`` with an ``ErrorKind``. It is a dictionary only on the pipe
between child and parent (``to_dict`` / ``from_dict``, which refuses what the child never
writes), and in the JSON report. ``str(error)`` is the one-line form every report prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorKind(StrEnum):
    """The kind of failure; its value is the word the reports and the JSON use."""

    # seen in the child, in the replay or around it
    IMPORT_ERROR = "import_error"
    CONSTRUCTOR_ERROR = "constructor_error"
    LAYOUT = "layout"
    PREDICT_ERROR = "predict_error"
    MISSING_PREDICTION = "missing_prediction"
    UNEXPECTED_PREDICTION = "unexpected_prediction"
    BAD_OUTPUT = "bad_output"
    NON_FINITE = "non_finite"
    SYS_EXIT = "sys_exit"
    NETWORK = "network"
    TIME_LIMIT = "time_limit"
    OUT_OF_MEMORY = "out_of_memory"
    HARNESS_ERROR = "harness_error"
    # seen by the parent
    PROTOCOL = "protocol"
    KILLED = "killed"
    CRASHED = "crashed"
    EXITED = "exited"
    CORES = "cores"
    TIMINGS = "timings"


_WHERE = ("seq_ix", "step", "row")
_KINDS = frozenset(kind.value for kind in ErrorKind)


@dataclass
class CandidateError(Exception):
    """The candidate broke the contract or failed; ``kind`` names the verdict, ``seq_ix``,
    ``step`` and ``row`` where in the data it happened (None outside the replay)."""

    kind: ErrorKind
    message: str
    seq_ix: int | None = None
    step: int | None = None
    row: int | None = None
    traceback: str = ""

    def __post_init__(self) -> None:
        self.kind = ErrorKind(self.kind)  # a word that is no kind is the harness's bug: ValueError

    def __str__(self) -> str:
        where = ""
        if self.seq_ix is not None:
            where = f" at seq_ix {self.seq_ix}, step_in_seq {self.step} (row {self.row})"
        return f"{self.kind}{where}: {self.message}"

    def to_dict(self) -> dict:
        """The pipe's and the JSON report's form."""
        return {"kind": str(self.kind), "message": self.message, "seq_ix": self.seq_ix,
                "step": self.step, "row": self.row, "traceback": self.traceback}

    @classmethod
    def from_dict(cls, data: object) -> CandidateError:
        """The error ``to_dict`` wrote; ValueError for anything else (the child is untrusted)."""
        if not isinstance(data, dict) or set(data) - {"kind", "message", "traceback", *_WHERE}:
            raise ValueError("an error that is not the object the harness writes")
        kind, message, trace = data.get("kind"), data.get("message", ""), data.get("traceback", "")
        if not isinstance(kind, str) or kind not in _KINDS or not isinstance(message, str) or not isinstance(trace, str):
            raise ValueError(f"an error of unknown kind {str(kind)[:40]!r} or without a text message")
        where = [data.get(k) for k in _WHERE]
        if any(v is not None and (type(v) is not int or v < 0) for v in where):
            raise ValueError("an error whose place in the data is not a count")
        return cls(ErrorKind(kind), message, *where, traceback=trace)


class Outcome:
    """What a run's results share: an ``error`` attribute (a ``CandidateError`` or None) read as
    ``status`` ("ok" or the error's kind, an ``ErrorKind`` that compares equal to its word) and
    ``ok``. Mixed into the sandbox's ``RunOutcome`` and the typed ``SimulationReport``."""

    error: CandidateError | None

    @property
    def status(self) -> str:
        return "ok" if self.error is None else self.error.kind

    @property
    def ok(self) -> bool:
        return self.error is None
