"""A simulation split into shards of consecutive sequences, replayed side by side, merged exactly.

``simulate --workers N`` cuts the replayed sequences into N contiguous shards (``plan``) and runs
the one-worker simulation (``harness.simulate.simulate_run``) of each through
``harness.execution``: each shard in its own sandboxed child, pinned to its own core, under the
full per-candidate limits. Local processes read their shard's range of the user's file in place
(``ParquetSource.blocks(first_sequence=...)``), validate it and score it beside the oracle
sidecar as one worker does, so nothing runs before the shards start. Ray's workers may be on
other machines: the parent validates the file, and the candidate travels as the zip the grader
would receive and each shard's rows as a parquet of their own (``write_shard_files``), as bytes.
A shard sends back its report's JSON (per-sequence statistics and latency summaries) and the
oracle's per-sequence statistics, never its predictions.

Merging (``merge``): the score is computed once from the shards' per-sequence statistics
concatenated in file order (``harness.simulate.score_from_sequences``): the same sums in the
same order as one worker, so the same score bit for bit. Latencies stay per shard, each the
latency of one core; the projection stays a ONE-core projection (the grader has one core):
start-up and first sequence of the first shard, then every further test sequence at the
shards' steady per-row time, never divided by the number of shards. Memory is the largest
shard's (the cap applies to each), the verdict the worst.
"""

from __future__ import annotations

import tempfile
import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow.parquet as pq

from harness import candidate as candidate_mod
from harness.competitions import SEQUENCE_LENGTH, Competition
from harness.data import DataError, ParquetSource, TargetTap, file_sha256
from harness.errors import CandidateError
from harness.execution import Engine, Task, run_tasks, slot_core
from harness.sequence_scorer import OracleStats, oracle_stats
from harness.simulate import SimulateOptions, load_oracle, score_from_sequences, simulate_run, verdict
from harness.simulation import BySequence, Memory, Projection, ShardSummary, SimulationReport, Timing
from harness.metrics import SequenceStats
from harness.user_paths import to_user_paths

TIMEOUT_MARGIN_S = 600.0
"""A shard's try is stopped this long after its own time limit (the sandbox enforces that limit;
this only guards against a worker that hangs outside the sandbox)."""


@dataclass(frozen=True)
class Shard:
    """Sequences ``first`` .. ``stop - 1`` (positions in file order) of ``count`` shards."""

    index: int
    count: int
    first: int
    stop: int

    @property
    def label(self) -> str:
        return f"shard {self.index + 1} of {self.count}: sequences {self.first}-{self.stop - 1}"

    @property
    def sequences(self) -> int:
        return self.stop - self.first


def plan(sequences: int, shards: int) -> list[Shard]:
    """``shards`` contiguous runs of sequences whose sizes differ by at most one (fewer shards
    when there are fewer sequences)."""
    count = max(1, min(shards, sequences))
    size, extra = divmod(sequences, count)  # the first ``extra`` shards take one more
    bounds = [k * size + min(k, extra) for k in range(count + 1)]
    return [Shard(k, count, bounds[k], bounds[k + 1]) for k in range(count)]


def write_shard_files(source: ParquetSource, shards: list[Shard], folder: Path) -> list[Path]:
    """Each shard's rows, in file order, as a parquet file of its own with the file's schema;
    one streaming pass over the file (every sequence has ``SEQUENCE_LENGTH`` rows: the file was
    validated before)."""
    paths = [folder / f"shard-{s.index:03d}.parquet" for s in shards]
    bounds = [(s.first * SEQUENCE_LENGTH, s.stop * SEQUENCE_LENGTH) for s in shards]
    reader = pq.ParquetFile(source.path, pre_buffer=False)
    writers = [pq.ParquetWriter(p, reader.schema_arrow) for p in paths]
    try:
        row = 0
        for batch in reader.iter_batches(batch_size=64 * SEQUENCE_LENGTH):
            for writer, (lo, hi) in zip(writers, bounds):
                a, b = max(lo, row), min(hi, row + batch.num_rows)
                if a < b:
                    writer.write_batch(batch.slice(a - row, b - a))
            row += batch.num_rows
            if row >= bounds[-1][1]:
                break
    finally:
        for writer in writers:
            writer.close()
    return paths


def candidate_zip(candidate: Path, folder: Path) -> Path:
    """The candidate as the grader receives it: a zip as is; a folder as its package would be
    (``candidate.materialize``: the same files, project modules vendored), zipped."""
    if candidate.is_file():
        return candidate
    root = candidate_mod.materialize(candidate, folder / "candidate")
    path = folder / "candidate.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for item in sorted(root.rglob("*")):
            if item.is_file():
                zf.write(item, item.relative_to(root).as_posix())
    return path


@dataclass(frozen=True)
class ShardJob:
    """Plain data for one shard's worker: the candidate and the data, each as a path (local
    processes share this machine's files) or as bytes (Ray: no shared filesystem).

    Locally ``data`` is the user's file and ``first_sequence`` the shard's first sequence in it:
    the shard reads, validates and scores its own range there (the oracle sidecar beside it too).
    Through Ray ``data`` is a parquet of the shard's rows alone, cut and validated by the parent,
    and ``first_sequence`` is 0."""

    shard: Shard
    candidate: str | bytes
    data: str | bytes
    competition: str
    options: dict
    zip_path: str
    """The candidate's path in the command's own terms: the shard's report names it there."""
    first_sequence: int = 0
    oracle: bool = False


def run_shard(job: ShardJob) -> dict:
    """One shard: the one-worker simulation of the shard's rows on this slot's core. Returns
    ``{"report": its report's JSON, "oracle": its oracle statistics' JSON or None}``, or
    ``{"data_error": message}`` when its rows break the contract (so that the parent can report
    the first bad row in file order, not the first shard to find one)."""
    with tempfile.TemporaryDirectory(prefix="wunderbench-shard-") as tmp:
        candidate, data = job.candidate, job.data
        if isinstance(candidate, bytes):
            Path(tmp, "candidate.zip").write_bytes(candidate)
            candidate = str(Path(tmp, "candidate.zip"))
        if isinstance(data, bytes):
            Path(tmp, "data").mkdir()
            Path(tmp, "data", "shard.parquet").write_bytes(data)
            data = str(Path(tmp, "data", "shard.parquet"))
        options = SimulateOptions(**job.options, sequences=job.shard.sequences, first_sequence=job.first_sequence,
                                  bootstrap=0, oracle=job.oracle, plot=None, report=None, fingerprint=False,
                                  cpu=slot_core())
        try:
            report, outcome = simulate_run(candidate, data, job.competition, options)
        except DataError as exc:
            return {"data_error": str(exc)}
        if report.error is not None:  # this worker's copy of the zip, named as the command's
            report.error.message = report.error.message.replace(candidate, job.zip_path)
            report.error.traceback = report.error.traceback.replace(candidate, job.zip_path)
        report.stderr_tail = report.stderr_tail.replace(candidate, job.zip_path)
        oracle = outcome.oracle_stats if report.error is None else None
        return {"report": report.to_json(), "oracle": None if oracle is None else oracle.to_json()}


def _shard_options(opts: SimulateOptions) -> dict:
    return {"memory_gb": opts.memory_gb, "minutes": opts.minutes, "safety": opts.safety,
            "test_sequences": opts.test_sequences, "block_network": opts.block_network}


def simulate_sharded(candidate: str | Path, data: str | Path, competition: Competition | str | None,
                     options: SimulateOptions, engine: Engine, shards: int | None = None,
                     on_shard: Callable[[str], None] | None = None) -> SimulationReport:
    """Grade ``candidate`` on ``data`` in ``shards`` shards (default: ``engine.workers``) run on
    ``engine``; the merged report (see the module's docstring).

    Local processes read their shard's range of the file in place, each validating its own rows
    and scoring them beside the oracle, so the parent reads nothing of the file but its footer
    and everything runs side by side. Ray's workers may be on machines without this file, so
    the parent validates the file, cuts the shards' rows and ships them, and scores the oracle
    itself. A bad row is reported as one worker reports it: the first in file order
    (``DataError``), before any candidate failure of a later or earlier shard."""
    started = time.perf_counter()
    source = ParquetSource(data, competition)
    comp = source.competition
    total = source.num_sequences if options.sequences is None else min(source.num_sequences, options.sequences)
    parts = plan(total, shards or engine.workers)
    limit_s = comp.limits.overridden(options.memory_gb, options.minutes).seconds
    done = None if on_shard is None else (lambda i, task: on_shard(task.label))
    with tempfile.TemporaryDirectory(prefix="wunderbench-shards-") as tmp:
        if engine.backend == "ray":
            jobs, parent_oracle = _shipped_jobs(Path(candidate), source, parts, options, Path(tmp))
        else:
            jobs = [ShardJob(s, str(candidate), str(source.path), comp.key, _shard_options(options), str(candidate),
                             first_sequence=s.first, oracle=options.oracle) for s in parts]
            parent_oracle = None
        results = run_tasks([Task(s.label, run_shard, (job,), pin=False) for s, job in zip(parts, jobs)], engine,
                            timeout_s=limit_s + TIMEOUT_MARGIN_S, on_done=done)
    bad_data = next((r["data_error"] for r in results if "data_error" in r), None)
    if bad_data is not None:
        raise DataError(bad_data)
    reports = [SimulationReport.from_json(r["report"]) for r in results]
    if engine.backend == "ray":
        for report in reports:
            _to_user_paths(report, Path(jobs[0].zip_path), Path(candidate))
    oracle = None
    if all(r.error is None for r in reports):
        seq_ix = [i for r in reports for i in r.score.by_sequence.seq_ix]
        _check_unique(source, seq_ix)
        if parent_oracle is not None:
            oracle = parent_oracle(seq_ix)
        elif all(r.get("oracle") is not None for r in results):
            oracle = OracleStats.concat([OracleStats.from_json(r["oracle"]) for r in results])
    merged = merge(comp, str(candidate), str(source.path), parts, reports, oracle, options,
                   time.perf_counter() - started)
    merged.data_sha256 = file_sha256(source.path) if options.fingerprint else None
    merged.candidate_bytes = Path(candidate).stat().st_size if Path(candidate).is_file() else None
    return merged


def _shipped_jobs(candidate: Path, source: ParquetSource, parts: list[Shard], options: SimulateOptions,
                  folder: Path) -> tuple[list[ShardJob], Callable[[list[int]], OracleStats | None]]:
    """Ray's jobs: the file validated here (a bad row fails here, before any shard), the
    candidate as the zip the grader receives and each shard's rows as a parquet of their own,
    as bytes; and how the parent scores the oracle on the replayed sequences afterwards."""
    comp = source.competition
    tap = TargetTap(comp)
    for _ in tap(source.blocks(max_sequences=parts[-1].stop)):
        pass
    y_true = tap.targets()
    sidecar = load_oracle(source.path, comp, options.oracle)
    zip_path = candidate_zip(candidate, folder)
    payload = zip_path.read_bytes()
    files = write_shard_files(source, parts, folder)
    jobs = [ShardJob(s, payload, f.read_bytes(), comp.key, _shard_options(options), str(zip_path))
            for s, f in zip(parts, files)]
    return jobs, (lambda seq_ix: None if sidecar is None else oracle_stats(comp, y_true, sidecar, seq_ix))


def _check_unique(source: ParquetSource, seq_ix: list[int]) -> None:
    """Each shard checks that no seq_ix comes back within its rows; across shards it is checked here."""
    seen: set[int] = set()
    for position, s in enumerate(seq_ix):
        if s in seen:
            raise DataError(f"{source.path}: seq_ix {s}, row {position * SEQUENCE_LENGTH} (step_in_seq 0): this "
                            "seq_ix appeared earlier in the file; sequences must be contiguous")
        seen.add(s)


def _to_user_paths(report: SimulationReport, zip_path: Path, candidate: Path) -> None:
    """A folder candidate's files named in the user's folder, not in the zip made of it."""
    if zip_path == candidate:
        return

    def mapped(text: str) -> str:
        return to_user_paths(text.replace(f"{zip_path}:", f"{zip_path}/"), zip_path, candidate)

    if report.error is not None:
        report.error.message, report.error.traceback = mapped(report.error.message), mapped(report.error.traceback)
    report.stderr_tail = mapped(report.stderr_tail)


def _located(error: CandidateError, shard: Shard) -> CandidateError:
    """The shard's error with its row counted in the whole file and the shard named."""
    row = None if error.row is None else error.row + shard.first * SEQUENCE_LENGTH
    return replace(error, row=row, message=f"{shard.label}: {error.message}")


def merged_projection(reports: list[SimulationReport], test_sequences: int, safety: float) -> Projection | None:
    """The one-core projection of a sharded run: the first shard's start-up and first sequence,
    then every other test sequence at the shards' steady per-row time (each shard's weighted by
    its later sequences), times ``safety``; None when a shard has none."""
    projections = [r.timing.projection for r in reports]
    if any(p is None for p in projections):
        return None
    weights = np.array([max(r.sequences - 1, 0) for r in reports], dtype=float)
    per_row_us = np.array([p.per_row_us for p in projections])
    steady_row_us = float(per_row_us @ weights / weights.sum()) if weights.sum() else float(per_row_us.max())
    first = reports[0]
    steady = steady_row_us * SEQUENCE_LENGTH / 1e6
    projected = (first.timing.startup_s or 0.0) + projections[0].first_sequence_s + (test_sequences - 1) * steady
    return Projection(1e6 / steady_row_us, steady_row_us, projections[0].first_sequence_s, projected * safety)


def merge(comp: Competition, candidate: str, data: str, shards: list[Shard], reports: list[SimulationReport],
          oracle: OracleStats | None, options: SimulateOptions, wall_s: float) -> SimulationReport:
    """One report from the shards' reports (see the module's docstring); ``oracle`` is the
    oracle's statistics on the replayed sequences in the same order, or None."""
    first = reports[0]
    failed = next(((s, r) for s, r in zip(shards, reports) if r.error is not None), None)
    error = None if failed is None else _located(failed[1].error, failed[0])
    score = None
    if failed is None:
        seq_ix = [i for r in reports for i in r.score.by_sequence.seq_ix]
        stats = SequenceStats.concat([r.score.by_sequence.stats for r in reports])
        score = score_from_sequences(comp, BySequence(seq_ix, stats), options.bootstrap, oracle)
    test_sequences = first.timing.test_sequences
    timing = Timing(first.timing.import_s, first.timing.construct_s, first.timing.startup_s, wall_s,
                    max((r.timing.replay_s or 0.0) for r in reports), first.timing.limit_s, first.timing.safety,
                    test_sequences, max((r.timing.measured_run_s or 0.0) for r in reports), None)
    if failed is None:
        timing.projection = merged_projection(reports, test_sequences, first.timing.safety)
    cores = [r.sandbox.cores_used for r in reports if r.sandbox.cores_used is not None]
    pinned = ", ".join(r.sandbox.cpu.split(";")[0].removeprefix("pinned to core ").split(" of ")[0] for r in reports)
    cpus = f"{len(shards)} shards, each pinned to one core (cores {pinned})"
    if cores:
        cpus += f"; at most {max(cores):.2f} cores used by a shard"
    report = SimulationReport(
        candidate=candidate, data=data, competition=comp.key, metric=comp.metric, error=error,
        sequences=sum(r.sequences for r in reports), rows=sum(r.rows for r in reports), score=score, timing=timing,
        memory=Memory(max(r.memory.peak_bytes for r in reports), first.memory.limit_bytes),
        sandbox=replace(first.sandbox, cpu=cpus, cores_used=max(cores) if cores else None,
                        exit_code=(failed[1] if failed else first).sandbox.exit_code),
        threads=sorted({t for r in reports for t in r.threads}), modules=sorted({m for r in reports for m in r.modules}),
        stderr_tail=failed[1].stderr_tail if failed else "",
        shards=[ShardSummary(s.label, s.first, s.stop, str(r.status), r.sandbox.cpu, r.timing.wall_s,
                             r.memory.peak_bytes, r.timing.warmup, r.timing.scored) for s, r in zip(shards, reports)],
    )
    report.verdict, report.reasons = verdict(report)
    return report
