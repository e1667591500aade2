"""The result of one local grading, typed: what ``harness.simulate.simulate`` returns.

Readers (the terminal report, the plot, ``models``' parity check and training record, new model
families and searches) read these attributes, never dictionary keys; the JSON form is for files
and other programs, and reads back to an equal object.

API (every field is plain data; seconds, bytes and scores as floats or ints):

- ``SimulationReport``: ``candidate``, ``data``, ``competition`` (its key, "A"/"B"), ``metric``,
  ``error`` (a ``CandidateError`` or None) and ``status`` ("ok" or the error's kind),
  ``sequences`` and ``rows`` replayed, ``score`` (a ``Score`` or None when the run failed),
  ``timing``, ``memory``, ``sandbox``, ``threads`` (warnings), ``modules`` (imported by the
  candidate), ``stderr_tail`` (failed runs), ``verdict`` ("PASS", "WARN", "FAIL") with
  ``reasons``, ``plot`` (the PNG's path, if drawn), ``data_sha256`` (the data file's sha256:
  ``harness compare`` reuses a stored report only on the same bytes) and ``candidate_bytes``
  (the zip's size; None for a folder), ``shards`` (``ShardSummary`` per shard of a run made
  with ``--workers``; empty otherwise); ``to_json()`` / ``from_json()``.
- ``Score``: ``headline`` (the competition's metric), ``per_output`` {name: score},
  ``interval95`` (bootstrap over sequences) or None, ``oracle`` (``harness.market.oracle.
  score_oracle``'s dictionary, on generated data) or None, ``impossible`` (a ``Flag``) or None,
  ``by_sequence`` (a ``BySequence``: ``seq_ix`` and ``metrics.SequenceStats`` in replay order, the
  sums the headline and interval are computed from) or None.
- ``Timing``: the child's ``import_s``, ``construct_s``, ``startup_s``, ``replay_s``; the
  parent's ``wall_s``, ``measured_run_s`` (go-ahead to the child's end) and ``steady_floor_s``
  (``harness.clock``); ``limit_s``, ``safety``, ``test_sequences``; ``warmup`` and ``scored``
  (``Latency`` of the warm-up and the scored rows, the child's word) and ``projection`` (a
  ``Projection``, finished runs only); ``headroom_s``; ``projection_parts()`` (what adds up to it).
- ``Memory``: ``peak_bytes``, ``limit_bytes``, ``series_s`` and ``series_bytes`` (memory over
  the run, sampled by the parent, at most 2,000 points). ``SandboxFacts``: ``cpu``, ``cores_used``,
  ``network``, ``filesystem``, ``processes``, ``exit_code``.

JSON: the same nested object the report always had (``score``, ``timing``, ``memory``,
``sandbox``, ...), the projection's keys flat in ``timing`` and absent when there is none, the
error as ``CandidateError.to_dict`` gives it, ``impossible`` as ``[status, reason]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from harness.competitions import SEQUENCE_LENGTH
from harness.errors import CandidateError, Outcome
from harness.metrics import SequenceStats, sequence_scores


@dataclass(frozen=True)
class Flag:
    """A finding beside the score: ``status`` "FAIL" or "WARN", and why."""

    status: str
    reason: str


@dataclass
class BySequence:
    """The score's per-sequence sufficient statistics, in replay order, with each sequence's
    ``seq_ix``: the score is computed from them (``metrics.score_from_stats``), shards of a run
    concatenate to the whole run's, and two runs on the same file pair up by ``seq_ix``."""

    seq_ix: list[int]
    stats: SequenceStats

    def headlines(self) -> dict[int, float]:
        """Each sequence's headline scored alone, by ``seq_ix`` in replay order
        (``metrics.sequence_scores``): where a candidate is weak, not a share of the pooled score."""
        per_output = sequence_scores(self.stats)
        return {seq: float(v) for seq, v in zip(self.seq_ix, per_output.mean(axis=1), strict=True)}

    def to_json(self) -> dict:
        return {"seq_ix": list(self.seq_ix), "stats": self.stats.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> BySequence:
        stats = SequenceStats.from_json(data["stats"])
        seq_ix = [int(i) for i in data["seq_ix"]]
        if len(seq_ix) != len(stats):
            raise ValueError(f"{len(seq_ix)} seq_ix for {len(stats)} sequences of statistics")
        return cls(seq_ix, stats)


@dataclass
class Score:
    headline: float
    per_output: dict[str, float]
    interval95: tuple[float, float] | None = None
    oracle: dict | None = None
    impossible: Flag | None = None
    by_sequence: BySequence | None = None

    def to_json(self) -> dict:
        out: dict = {"headline": self.headline, "per_output": dict(self.per_output)}
        if self.interval95 is not None:
            out["interval95"] = list(self.interval95)
        if self.oracle is not None:
            out["oracle"] = self.oracle
        out["impossible"] = None if self.impossible is None else [self.impossible.status, self.impossible.reason]
        if self.by_sequence is not None:
            out["by_sequence"] = self.by_sequence.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict) -> Score:
        interval, impossible, by_sequence = data.get("interval95"), data.get("impossible"), data.get("by_sequence")
        return cls(data["headline"], dict(data["per_output"]), None if interval is None else tuple(interval),
                   data.get("oracle"), None if impossible is None else Flag(*impossible),
                   None if by_sequence is None else BySequence.from_json(by_sequence))


@dataclass(frozen=True)
class Latency:
    """Per-call ``predict`` time of a set of rows, in microseconds."""

    p50_us: float
    p90_us: float
    p99_us: float
    max_us: float
    mean_us: float
    rows: int


@dataclass(frozen=True)
class Projection:
    """The full test set's time from a partial run, with the safety factor applied."""

    rows_per_s: float
    per_row_us: float
    first_sequence_s: float
    projected_test_s: float


_PROJECTION_KEYS = tuple(f.name for f in fields(Projection))


@dataclass
class Timing:
    import_s: float | None
    construct_s: float | None
    startup_s: float | None
    wall_s: float
    replay_s: float | None
    limit_s: float
    safety: float
    test_sequences: int
    measured_run_s: float | None = None
    steady_floor_s: float | None = None
    warmup: Latency | None = None
    scored: Latency | None = None
    projection: Projection | None = None

    @property
    def headroom_s(self) -> float | None:
        return None if self.projection is None else self.limit_s - self.projection.projected_test_s

    def projection_parts(self) -> list[tuple[str, float]]:
        """The projected test-set time as (what, seconds) parts that add up to it, in the order
        ``harness.simulate.projection`` builds it: start-up, the first sequence, the other
        sequences at the steady time, what the parent's clock adds above the child's figures
        (``harness.clock``; 0 when they agree) and the safety margin. Empty without a projection."""
        p = self.projection
        if p is None:
            return []
        startup = self.startup_s or 0.0
        steady = p.per_row_us * SEQUENCE_LENGTH / 1e6
        rest = (self.test_sequences - 1) * steady
        measured = p.projected_test_s / self.safety
        return [("start-up (import + constructor)", startup), ("first sequence", p.first_sequence_s),
                (f"{self.test_sequences - 1} more sequences at {steady:.3g} s", rest),
                ("the grader's clock above the child's", max(0.0, measured - (startup + p.first_sequence_s + rest))),
                (f"safety margin (x{self.safety:g})", p.projected_test_s - measured)]

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("warmup", "scored", "projection")}
        for name in ("warmup", "scored"):
            if getattr(self, name) is not None:
                out[name] = asdict(getattr(self, name))
        if self.projection is not None:
            out.update(asdict(self.projection), headroom_s=self.headroom_s)
        return out

    @classmethod
    def from_json(cls, data: dict) -> Timing:
        plain = {f.name: data.get(f.name) for f in fields(cls) if f.name not in ("warmup", "scored", "projection")}
        latency = {name: None if data.get(name) is None else Latency(**data[name]) for name in ("warmup", "scored")}
        projection = (Projection(**{k: data[k] for k in _PROJECTION_KEYS})
                      if data.get("projected_test_s") is not None else None)
        return cls(**plain, **latency, projection=projection)


@dataclass(frozen=True)
class Memory:
    """The peak of the candidate's process tree against the cap, and the curve the parent sampled
    over the run (``series_s`` seconds since the start, ``series_bytes`` the largest resident
    memory in each interval; at most 2,000 points, ``harness.memory_series``)."""

    peak_bytes: int
    limit_bytes: int
    series_s: list[float] = field(default_factory=list)
    series_bytes: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class SandboxFacts:
    """What the sandbox held to, in words (the report prints them), and how the child ended."""

    cpu: str
    cores_used: float | None
    network: str
    filesystem: str = ""
    processes: str = ""
    exit_code: int | None = None


@dataclass
class ShardSummary:
    """One shard of a sharded run (``harness.shards``): sequences ``first`` .. ``stop - 1`` in
    file order, its status and core, its own wall time and peak memory, and its latencies, which
    are one core's (a sharded report has no pooled latencies)."""

    label: str
    first: int
    stop: int
    status: str
    cpu: str
    wall_s: float
    peak_bytes: int
    warmup: Latency | None = None
    scored: Latency | None = None

    def to_json(self) -> dict:
        out = asdict(self)
        out["warmup"] = None if self.warmup is None else asdict(self.warmup)
        out["scored"] = None if self.scored is None else asdict(self.scored)
        return out

    @classmethod
    def from_json(cls, data: dict) -> ShardSummary:
        latency = {k: None if data.get(k) is None else Latency(**data[k]) for k in ("warmup", "scored")}
        return cls(**{k: v for k, v in data.items() if k not in latency}, **latency)


@dataclass
class SimulationReport(Outcome):
    candidate: str
    data: str
    competition: str
    metric: str
    error: CandidateError | None
    sequences: int
    rows: int
    score: Score | None
    timing: Timing
    memory: Memory
    sandbox: SandboxFacts
    threads: list[str] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)
    stderr_tail: str = ""
    verdict: str = "FAIL"
    reasons: list[str] = field(default_factory=list)
    plot: str | None = None
    data_sha256: str | None = None
    candidate_bytes: int | None = None
    shards: list[ShardSummary] = field(default_factory=list)

    def to_json(self) -> dict:
        """The JSON report (``json.dumps``-able)."""
        out = {"candidate": self.candidate, "data": self.data, "competition": self.competition,
               "metric": self.metric, "status": str(self.status),
               "error": None if self.error is None else self.error.to_dict(),
               "sequences": self.sequences, "rows": self.rows,
               "score": None if self.score is None else self.score.to_json(),
               "timing": self.timing.to_json(), "memory": asdict(self.memory), "sandbox": asdict(self.sandbox),
               "threads": list(self.threads), "modules": list(self.modules), "stderr_tail": self.stderr_tail,
               "verdict": self.verdict, "reasons": list(self.reasons),
               "data_sha256": self.data_sha256, "candidate_bytes": self.candidate_bytes}
        if self.plot is not None:
            out["plot"] = self.plot
        if self.shards:
            out["shards"] = [shard.to_json() for shard in self.shards]
        return out

    @classmethod
    def from_json(cls, data: dict) -> SimulationReport:
        """The report ``to_json`` wrote."""
        return cls(
            data["candidate"], data["data"], data["competition"], data["metric"],
            None if data.get("error") is None else CandidateError.from_dict(data["error"]),
            data["sequences"], data["rows"], None if data.get("score") is None else Score.from_json(data["score"]),
            Timing.from_json(data["timing"]), Memory(**data["memory"]), SandboxFacts(**data["sandbox"]),
            list(data.get("threads", [])), list(data.get("modules", [])), data.get("stderr_tail", ""),
            data["verdict"], list(data.get("reasons", [])), data.get("plot"), data.get("data_sha256"),
            data.get("candidate_bytes"),
            [ShardSummary.from_json(shard) for shard in data.get("shards", [])])
