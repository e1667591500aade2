"""One local grading: run a candidate in the sandbox, score it, time it and judge it.

The result is a ``harness.simulation.SimulationReport`` (its JSON form is the ``--json`` file);
``harness.report`` renders it for people.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from harness import competitions, metrics
from harness.competitions import GIB, SAFETY_FACTOR, SEQUENCE_LENGTH, Competition, Limits
from harness.data import ParquetSource, file_sha256
from harness.market.base import Sidecar, read_oracle
from harness.market.oracle import oracle_from_stats
from harness.sandbox import RunOutcome, SandboxOptions, run_in_sandbox
from harness.sequence_scorer import OracleStats
from harness.simulation import BySequence, Flag, Latency, Memory, Projection, SandboxFacts, Score, SimulationReport, Timing

IMPLAUSIBLE_SCORE = 0.9
"""No honest model came near this on either competition (winners: R² 0.40, weighted Pearson 0.32)."""


@dataclass
class SimulateOptions:
    sequences: int | None = None
    memory_gb: float | None = None
    minutes: float | None = None
    safety: float = SAFETY_FACTOR
    test_sequences: int | None = None
    bootstrap: int = 1000
    block_network: bool = True
    plot: str | Path | None = None
    report: str | Path | None = None
    oracle: bool = True
    cpu: int | None = None
    """The core the sandbox pins the candidate to (None: the last core this process may use)."""
    first_sequence: int = 0
    """Replay from the file's ``first_sequence``-th sequence (a shard's range, ``harness.shards``)."""
    fingerprint: bool = False
    """Record the data file's sha256 in the report (``--json``: a stored report is reused by
    ``compare`` only on the same bytes); off otherwise, since hashing costs 0.3 s per 66 MB."""


def load_oracle(data_path: Path, competition: Competition | None = None, use: bool = True) -> Sidecar | None:
    """The simulator's oracle sidecar for this file, or None (real data has none; a user's own
    file at the sidecar's place is not one, and ``use=False`` is ``--no-oracle``); a stale
    sidecar of ours raises ``SidecarMismatch``."""
    return read_oracle(data_path, competition, use=use)


def latency_summary(latency_ns: np.ndarray, mask: np.ndarray) -> Latency | None:
    """Percentiles of per-call ``predict`` time in microseconds for the rows in ``mask``."""
    values = latency_ns[mask]
    if values.size == 0:
        return None
    p50, p90, p99 = np.percentile(values, [50, 90, 99]) / 1e3
    return Latency(float(p50), float(p90), float(p99), float(values.max() / 1e3), float(values.mean() / 1e3),
                   int(values.size))


def score_run(comp: Competition, outcome: RunOutcome, bootstrap: int) -> Score | None:
    """Scores of a finished run from the per-sequence sums the sandbox kept as it replayed,
    beside the oracle's on the same rows when the run had one."""
    if outcome.by_sequence is None or not outcome.ok:
        return None
    return score_from_sequences(comp, outcome.by_sequence, bootstrap, outcome.oracle_stats)


def score_from_sequences(comp: Competition, by_sequence: BySequence, bootstrap: int,
                         oracle: OracleStats | None = None) -> Score:
    """The score of a run from its per-sequence statistics, in replay order: one run or the
    concatenated shards of one give the same sums in the same order, so the same score bit for
    bit. ``oracle``, aligned with ``by_sequence`` (shards concatenate it the same way), gives the
    oracle's scores and the look-ahead check."""
    scores = metrics.score_from_stats(comp, by_sequence.stats)
    score = Score(scores[comp.metric], {n: scores[n] for n in comp.prediction_names}, by_sequence=by_sequence)
    if len(by_sequence.stats) >= 2 and bootstrap:
        score.interval95 = tuple(metrics.bootstrap_interval(by_sequence.stats, n_resamples=bootstrap))
    hidden = None
    if oracle is not None:
        score.oracle = oracle_from_stats(comp, oracle.observable, oracle.hidden, score.headline)
        hidden = oracle.hidden
    score.impossible = impossible_score(comp, by_sequence.stats, hidden, bootstrap)
    return score


def impossible_score(comp: Competition, stats: metrics.SequenceStats, hidden: metrics.SequenceStats | None,
                     bootstrap: int = 1000) -> Flag | None:
    """FAIL or WARN, with the reason, for a score no causal model can reach; None otherwise.

    ``stats`` are the candidate's per-sequence statistics, ``hidden`` the hidden-state oracle's
    on the same sequences (None without one). FAIL: above the hidden-state oracle, the best
    prediction possible for this data, by a paired bootstrap interval over the sequences that
    lies wholly above 0 (so that a model close to the bound is not failed for the luck of a
    sample). WARN: above ``IMPLAUSIBLE_SCORE`` on any data.
    """
    headline = metrics.score_from_stats(comp, stats)[comp.metric]
    if hidden is not None and len(stats) >= 2:
        lo, _ = metrics.paired_bootstrap_interval(stats, hidden, n_resamples=bootstrap or 1000)
        if lo > 0:
            bound = metrics.score_from_stats(comp, hidden)[comp.metric]
            return Flag("FAIL", f"{comp.metric} {headline:.4f} is above the best possible score for this data "
                                f"(the hidden-state oracle's {bound:.4f}): look-ahead?")
    if headline > IMPLAUSIBLE_SCORE:
        return Flag("WARN", f"{comp.metric} {headline:.4f} is above {IMPLAUSIBLE_SCORE}, far beyond any real model "
                            f"(the winners scored {comp.leaderboard_best}): look-ahead?")
    return None


def timing_report(comp: Competition, outcome: RunOutcome, limit_s: float, safety: float,
                  test_sequences: int) -> Timing:
    """The child's times beside the parent's, the latencies and, for a finished run, the projection."""
    timing = Timing(outcome.import_s, outcome.construct_s, outcome.startup_s, outcome.wall_s, outcome.replay_s,
                    limit_s, safety, test_sequences, outcome.measured_run_s, outcome.steady_floor_s)
    if outcome.latency_ns is not None and outcome.rows and outcome.replay_s:
        steps = np.arange(outcome.rows) % SEQUENCE_LENGTH
        scored = (steps >= comp.first_scored_step) & (steps <= comp.last_scored_step)
        timing.warmup = latency_summary(outcome.latency_ns, ~scored)
        timing.scored = latency_summary(outcome.latency_ns, scored)
        if outcome.ok:  # a failed run's times cover only the rows before the failure: no projection
            timing.projection = projection(outcome, test_sequences, safety)
    return timing


def projection(outcome: RunOutcome, test_sequences: int, safety: float) -> Projection:
    """Projected full test-set time from a partial run, times ``safety``.

    The first sequence carries one-time costs (lazy imports, the first read, caches warming), so
    it is counted once and the rest of the test set at the mean of the later sequences. The
    child's figures are bounded by the parent's (``harness.clock``): the later sequences' mean is
    at least the floor the data stream gives, and the projection at least the parent's measure
    of the whole run plus the sequences still to come at that mean.
    """
    seq_s = outcome.sequence_s
    first = seq_s[0] if seq_s else outcome.replay_s
    steady = float(np.mean(seq_s[1:])) if len(seq_s) > 1 else first
    steady = max(steady, outcome.steady_floor_s or 0.0)
    per_row = steady / SEQUENCE_LENGTH
    projected = outcome.startup_s + first + (test_sequences - 1) * steady
    if outcome.measured_run_s is not None:
        projected = max(projected, outcome.measured_run_s + (test_sequences - len(seq_s)) * steady)
    return Projection(1 / per_row, per_row * 1e6, first, projected * safety)


def thread_warnings(threads: dict) -> list[str]:
    """Threads the candidate itself raised above what the sandbox set before importing it (every
    thread variable and pool at 1). More than one core actually used is not a warning but a
    failure, judged by the sandbox from the CPU time of the whole process tree.

    torch's inter-op pool is not judged by its size: torch sizes it to the machine unless told
    otherwise, and the sandbox cannot tell it without importing torch for every candidate, so a
    candidate that merely imports torch has more than one; that pool runs only explicit
    ``torch.jit.fork`` work, and a candidate that does use more cores shows in the cores used.
    """
    before = threads.get("threads_before") or {}
    before_env = before.get("env") or {}
    before_pools = {pool.get("library"): pool.get("threads") or 1 for pool in before.get("pools") or []}
    sandbox_intra_op = int(before_env.get("OMP_NUM_THREADS") or 1)
    warnings = []
    for phase in ("threads_after_constructor", "threads_after_replay"):
        report = threads.get(phase) or {}
        for name, value in (report.get("env") or {}).items():
            if value not in (None, "1", before_env.get(name)):
                warnings.append(f"{name}={value} (set by the candidate)")
        for pool in report.get("pools") or []:
            if (pool.get("threads") or 1) > max(1, before_pools.get(pool.get("library"), 1)):
                warnings.append(f"{pool['library']} pool uses {pool['threads']} threads")
        torch = report.get("torch")
        if torch and torch["intra_op"] > sandbox_intra_op:
            warnings.append(f"torch uses {torch['intra_op']} intra-op threads (the sandbox set {sandbox_intra_op})")
    return sorted(set(warnings))


def simulate(candidate: str | Path, data: str | Path, competition: Competition | str | None = None,
             options: SimulateOptions | None = None,
             on_progress: Callable[[dict], None] | None = None) -> SimulationReport:
    """Grade ``candidate`` on ``data`` and return the report (``harness.simulation``).

    The file is read once: the sandbox validates each block as it streams it to the candidate
    (a bad row stops the run with ``DataError``, however late it comes) and scores each sequence
    as its predictions come back, keeping per-sequence sums only."""
    opts = options or SimulateOptions()
    report, outcome = simulate_run(candidate, data, competition, opts, on_progress)
    comp = competitions.get(report.competition)
    if opts.plot:
        from harness.plots import write_report_png

        report.plot = str(write_report_png(report, outcome.latency_ns, comp, opts.plot))
    if opts.report:
        from harness.html_report import write_simulation_html

        write_simulation_html(report, outcome.latency_ns, opts.report)
    return report


def simulate_run(candidate: str | Path, data: str | Path, competition: Competition | str | None,
                 opts: SimulateOptions, on_progress: Callable[[dict], None] | None = None
                 ) -> tuple[SimulationReport, RunOutcome]:
    """The report of one sandboxed replay and the run it came from (a shard's worker sends the
    run's oracle statistics back beside the report: ``harness.shards``)."""
    source = ParquetSource(data, competition)
    comp = source.competition
    sidecar = load_oracle(source.path, comp, opts.oracle)  # a stale sidecar stops here, before the candidate starts
    limits = comp.limits.overridden(opts.memory_gb, opts.minutes)
    sandbox_opts = SandboxOptions(memory_bytes=limits.memory_bytes, time_limit_s=limits.seconds,
                                  max_sequences=opts.sequences, first_sequence=opts.first_sequence,
                                  block_network=opts.block_network, cpu=opts.cpu)
    outcome = run_in_sandbox(candidate, source.path, comp, sandbox_opts, on_progress=on_progress, oracle=sidecar)
    return report_of_run(candidate, source, outcome, limits, opts), outcome


def report_of_run(candidate: str | Path, source: ParquetSource, outcome: RunOutcome, limits: Limits,
                  opts: SimulateOptions) -> SimulationReport:
    """The typed report of one sandboxed replay of ``source`` (its first sequences, in file
    order), judged: what ``simulate`` returns, and what the gate's HTML report shows of its score
    sample."""
    comp = source.competition
    test_sequences = opts.test_sequences or comp.test_sequences
    report = SimulationReport(
        candidate=str(candidate), data=str(source.path), competition=comp.key, metric=comp.metric,
        error=outcome.error, sequences=outcome.rows // SEQUENCE_LENGTH, rows=outcome.rows,
        score=score_run(comp, outcome, opts.bootstrap),
        timing=timing_report(comp, outcome, limits.seconds, opts.safety, test_sequences),
        memory=Memory(outcome.peak_rss_bytes, limits.memory_bytes, outcome.memory_s, outcome.memory_bytes),
        sandbox=SandboxFacts(outcome.cpu, outcome.cores_used, outcome.network, exit_code=outcome.exit_code,
                             **outcome.isolation),
        threads=thread_warnings(outcome.threads), modules=outcome.modules,
        stderr_tail=outcome.stderr_tail if not outcome.ok else "",
        data_sha256=file_sha256(source.path) if opts.fingerprint else None,
        candidate_bytes=Path(candidate).stat().st_size if Path(candidate).is_file() else None,
    )
    report.verdict, report.reasons = verdict(report)
    return report


def verdict(report: SimulationReport) -> tuple[str, list[str]]:
    """PASS, WARN or FAIL, with one line per reason."""
    if report.error is not None:
        return "FAIL", [str(report.error)]
    reasons = []
    timing = report.timing
    if timing.projection is not None and timing.projection.projected_test_s > timing.limit_s:
        reasons.append(
            f"projected test-set time {timing.projection.projected_test_s / 60:.1f} min (x{timing.safety} safety) "
            f"exceeds the {timing.limit_s / 60:.0f} min limit")
    mem = report.memory
    if mem.peak_bytes > mem.limit_bytes:
        reasons.append(f"peak memory {mem.peak_bytes / GIB:.2f} GiB exceeds {mem.limit_bytes / GIB:.0f} GiB")
    impossible = report.score.impossible if report.score is not None else None
    if impossible is not None and impossible.status == "FAIL":
        reasons.append(impossible.reason)
    if reasons:
        return "FAIL", reasons
    warnings = [impossible.reason] if impossible is not None else []
    if report.threads:
        warnings.append("threads raised above 1: " + "; ".join(report.threads))
    return ("WARN", warnings) if warnings else ("PASS", [])
