"""The gate's sandboxed replays: one after another in the gate's own process, or side by side.

The gate's checks ask for four replays (``harness.gate``): the first (the check sample in file
order), the cut copy of it, the check sample shuffled, and the score sample. With one worker
(``OneByOne``, the default) each runs when its check asks for it, as always. With
``gate --workers N`` (``SideBySide``) they are independent enough to run together: the cut copy
and the shuffled order are computed from the file's first ``check_sequences`` ids before any
replay (the first replay, when it runs clean, replays exactly those), and the score sample's
size is known up front when ``--sequences`` fixes it or the file has no more sequences than the
check sample. So the cut, shuffled and (when its size is known) score replays run speculatively
beside the first, each a ``harness.execution`` task with its own core; when the first fails
their outcomes are dropped and the checks are SKIPped exactly as with one worker. A score
sample whose size depends on the first replay's speed runs in the first replay's worker, right
after it (``ScoreRule``): as soon as the size is known, without a second round of tasks.

The checks judge the replays in the same order and by the same code either way; the gate's
``outcomes`` (read by the memory and threads checks) receive the replays the checks asked for,
in that order.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from harness import competitions, lookahead
from harness.competitions import Limits
from harness.execution import Engine, Task, run_tasks, slot_core
from harness.sandbox import RunOutcome, SandboxOptions, run_in_sandbox
from harness.shards import TIMEOUT_MARGIN_S
from harness.simulate import load_oracle

if TYPE_CHECKING:
    from harness.gate import _Gate


def replay_options(limits: Limits, sequences: int | None, order: list[int] | None, cpu: int | None) -> SandboxOptions:
    """The sandbox's options for one of the gate's replays; predictions are kept, since the
    checks compare them row by row."""
    return SandboxOptions(memory_bytes=limits.memory_bytes, time_limit_s=limits.seconds, order=order,
                          max_sequences=sequences, keep_predictions=True, cpu=cpu)


def shuffled_order(seq_ids: list[int], seed: int) -> list[int]:
    """The state_reset replay's order: ``seq_ids`` shuffled by ``seed``, reversed if that left them in place."""
    order = list(seq_ids)
    random.Random(seed).shuffle(order)
    if order == list(seq_ids):
        order = order[::-1]
    return order


@dataclass(frozen=True)
class ScoreRule:
    """How many sequences the score sample replays (``size``), as plain data a worker can apply."""

    total: int
    """Sequences in the data file."""
    sequences: int | None
    """``--sequences``: a fixed size."""
    score_seconds: float

    def size(self, first_count: int, sequence_s: list[float] | None) -> int | None:
        """``--sequences`` if given (at most the file), else as many sequences as fit in
        ``score_seconds`` at the steady speed of the first replay of ``first_count`` sequences
        (its first sequence carries the one-time costs), never fewer than it replayed. None
        when that speed decides and ``sequence_s`` is not known yet (before the first replay)."""
        if self.sequences is not None:
            return min(self.sequences, self.total)
        if self.total <= first_count:  # the first replay is the whole file, whatever its speed
            return self.total
        if sequence_s is None:
            return None
        steady = float(np.mean(sequence_s[1:])) if len(sequence_s) > 1 else (sequence_s[0] if sequence_s else 0.0)
        if steady <= 0:
            return self.total
        return max(first_count, min(self.total, int(self.score_seconds / steady)))


class OneByOne:
    """One worker (the default): each replay in the gate's process when its check asks for it."""

    def __init__(self, gate: _Gate):
        self.gate = gate

    def first(self) -> RunOutcome:
        return self.gate.sandbox(sequences=self.gate.check_sequences)

    def cut(self, sequences: int) -> tuple[lookahead.CutSample, RunOutcome]:
        gate = self.gate
        with tempfile.TemporaryDirectory(prefix="wunderbench-cut-") as tmp:
            sample = lookahead.write_cut_copy(gate.source, sequences, Path(tmp) / gate.source.path.name, gate.opts.seed)
            return sample, gate.sandbox(sequences=sequences, data=sample.path)

    def shuffled(self, order: list[int]) -> RunOutcome:
        return self.gate.sandbox(order=order)

    def scored(self, sequences: int) -> RunOutcome:
        return self.gate.sandbox(sequences=sequences)


@dataclass(frozen=True)
class Replay:
    """One replay as plain data: the file's first ``sequences`` or the sequences of ``order``,
    of the gate's data file or of the cut copy (``cut_copy``, its bytes: the worker writes it
    as ``cut_name`` in a fresh folder of its own, without sidecar, as one worker does)."""

    label: str
    sequences: int | None = None
    order: tuple[int, ...] | None = None
    cut_copy: bytes | None = None
    cut_name: str = ""


@dataclass(frozen=True)
class ReplayJob:
    """Everything a worker needs for one task: a replay and, for the first replay when the score
    sample's size waits on its speed, the rule that sizes the score sample run after it."""

    candidate: str
    data: str
    competition: str
    limits: Limits
    oracle: bool
    replay: Replay
    then_score: ScoreRule | None = None


def replay_on_slot(job: ReplayJob) -> list[RunOutcome]:
    """A worker's task: the job's replay on this slot's core (then the score sample, if the job
    says so and the first ran clean); the outcomes, predictions included."""
    comp = competitions.get(job.competition)
    cpu = slot_core()
    replay = job.replay
    with tempfile.TemporaryDirectory(prefix="wunderbench-gate-replay-") as tmp:
        data, oracle = Path(job.data), None
        if replay.cut_copy is not None:
            data = Path(tmp) / replay.cut_name
            data.write_bytes(replay.cut_copy)
        else:
            oracle = load_oracle(data, comp, job.oracle)  # the page shows the oracle, as with one worker
        order = None if replay.order is None else list(replay.order)
        outcomes = [run_in_sandbox(job.candidate, data, comp, replay_options(job.limits, replay.sequences, order, cpu),
                                   oracle=oracle)]
        first = outcomes[0]
        if job.then_score is not None and first.ok:
            n = job.then_score.size(len(first.seq_ids), first.sequence_s)
            if n > len(first.seq_ids):
                outcomes.append(run_in_sandbox(job.candidate, data, comp, replay_options(job.limits, n, None, cpu),
                                               oracle=oracle))
    return outcomes


class SideBySide:
    """``gate --workers N``: every replay the wanted checks need, run together on ``engine`` at
    the first replay's request; the others handed out as their checks ask (see the module)."""

    def __init__(self, gate: _Gate, engine: Engine, on_replay: Callable[[str], None] | None = None):
        self.gate, self.engine, self.on_replay = gate, engine, on_replay
        self.sample: lookahead.CutSample | None = None
        self.order: list[int] | None = None
        self.outcomes: dict[str, RunOutcome] = {}
        self.score_size: int | None = None

    def first(self) -> RunOutcome:
        gate = self.gate
        name = gate.origin.name
        ids = gate.source.sequence_ids(gate.check_sequences).tolist()  # what a clean first replay replays
        rule = ScoreRule(gate.source.num_sequences, gate.opts.sequences, gate.opts.score_seconds)
        wants_score = any(gate.wanted(n) for n in ("threads", "time", "memory", "score"))
        self.score_size = rule.size(len(ids), None) if wants_score else None
        chained = wants_score and self.score_size is None
        replays: list[tuple[str, Replay, ScoreRule | None]] = [
            ("first", Replay(f"{name}: first replay ({len(ids)} sequences)"
                             + (", then the score sample" if chained else ""), sequences=gate.check_sequences),
             rule if chained else None)]
        if self.score_size is not None and self.score_size > len(ids):
            replays.append(("scored", Replay(f"{name}: score sample ({self.score_size} sequences)",
                                             sequences=self.score_size), None))
        with tempfile.TemporaryDirectory(prefix="wunderbench-cut-") as tmp:
            if gate.wanted("deterministic") or gate.wanted("causality"):
                self.sample = lookahead.write_cut_copy(gate.source, len(ids), Path(tmp) / gate.source.path.name,
                                                       gate.opts.seed)
                replays.append(("cut", Replay(f"{name}: cut copy ({len(ids)} sequences)", sequences=len(ids),
                                              cut_copy=self.sample.path.read_bytes(),
                                              cut_name=self.sample.path.name), None))
        if gate.wanted("state_reset"):
            self.order = shuffled_order(ids, gate.opts.seed)
            replays.append(("shuffled", Replay(f"{name}: shuffled order ({len(ids)} sequences)",
                                               order=tuple(self.order)), None))
        jobs = [ReplayJob(str(gate.origin), str(gate.source.path), gate.comp.key, gate.limits, gate.opts.oracle,
                          replay, then) for _, replay, then in replays]
        done = None if self.on_replay is None else (lambda i, task: self.on_replay(task.label))
        results = run_tasks([Task(job.replay.label, replay_on_slot, (job,), pin=False) for job in jobs], self.engine,
                            timeout_s=gate.limits.seconds * 2 + TIMEOUT_MARGIN_S, on_done=done)
        for (key, _, _), outcomes in zip(replays, results):
            self.outcomes[key] = outcomes[0]
            if len(outcomes) > 1:
                self.outcomes["scored"] = outcomes[1]
        first = self.outcomes["first"]
        if first.ok and first.seq_ids != ids:
            raise RuntimeError(f"internal: the first replay replayed seq_ix {first.seq_ids[:5]}..., not the "
                               f"file's first {ids[:5]}... that the other replays were planned from")
        return self._handed("first")

    def cut(self, sequences: int) -> tuple[lookahead.CutSample, RunOutcome]:
        outcome = self._handed("cut")
        if self.sample is None or outcome.ok and len(outcome.seq_ids) != sequences:
            raise RuntimeError(f"internal: the cut copy was planned for another sample than {sequences} sequences")
        return self.sample, outcome

    def shuffled(self, order: list[int]) -> RunOutcome:
        if order != self.order:
            raise RuntimeError("internal: the shuffled replay was planned in another order")
        return self._handed("shuffled")

    def scored(self, sequences: int) -> RunOutcome:
        outcome = self.outcomes.get("scored")
        if outcome is None or outcome.ok and len(outcome.seq_ids) != sequences:
            raise RuntimeError(f"internal: no score sample of {sequences} sequences was replayed")
        return self._handed("scored")

    def _handed(self, key: str) -> RunOutcome:
        """The replay ``key`` as its check receives it, counted among the gate's outcomes."""
        outcome = self.outcomes[key]
        self.gate.outcomes.append(outcome)
        return outcome
