"""A simulation split into shards of consecutive sequences, replayed side by side, merged exactly.

``simulate --workers N`` cuts the replayed sequences into N contiguous shards (``plan``), writes
each shard's rows to a parquet file of its own (the same columns and values; ``write_shard_files``)
and runs the one-worker ``harness.simulate.simulate`` on each through ``harness.execution``: each
shard in its own sandboxed child, pinned to its own core, under the full per-candidate limits.
The candidate travels as the zip the grader would receive and the shard as its parquet file:
paths for local processes, bytes for Ray (no shared filesystem assumed). A shard sends back its
report's JSON (per-sequence statistics and latency summaries), never its predictions.

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
from harness.data import ParquetSource, TargetTap, file_sha256
from harness.errors import CandidateError
from harness.execution import Engine, Task, run_tasks, slot_core
from harness.sequence_scorer import oracle_stats
from harness.simulate import SimulateOptions, load_oracle, score_from_sequences, simulate, verdict
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
    """Plain data for one shard's worker: the candidate's zip and the shard's parquet, each as
    a path (local processes share this machine's files) or as bytes (Ray: no shared filesystem)."""

    shard: Shard
    candidate: str | bytes
    data: str | bytes
    competition: str
    options: dict
    zip_path: str
    """The candidate zip's path in the command's own folder: the shard's report names it there."""


def run_shard(job: ShardJob) -> dict:
    """One shard: the one-worker simulation of the shard's file on this slot's core; its report's JSON."""
    with tempfile.TemporaryDirectory(prefix="wunderbench-shard-") as tmp:
        candidate, data = job.candidate, job.data
        if isinstance(candidate, bytes):
            Path(tmp, "candidate.zip").write_bytes(candidate)
            candidate = str(Path(tmp, "candidate.zip"))
        if isinstance(data, bytes):
            Path(tmp, "data").mkdir()
            Path(tmp, "data", "shard.parquet").write_bytes(data)
            data = str(Path(tmp, "data", "shard.parquet"))
        options = SimulateOptions(**job.options, bootstrap=0, oracle=False, plot=None, report=None, fingerprint=False,
                                  cpu=slot_core())
        report = simulate(candidate, data, job.competition, options)
        if report.error is not None:  # this worker's copy of the zip, named as the command's
            report.error.message = report.error.message.replace(candidate, job.zip_path)
            report.error.traceback = report.error.traceback.replace(candidate, job.zip_path)
        report.stderr_tail = report.stderr_tail.replace(candidate, job.zip_path)
        return report.to_json()


def _shard_options(opts: SimulateOptions) -> dict:
    return {"memory_gb": opts.memory_gb, "minutes": opts.minutes, "safety": opts.safety,
            "test_sequences": opts.test_sequences, "block_network": opts.block_network}


def simulate_sharded(candidate: str | Path, data: str | Path, competition: Competition | str | None,
                     options: SimulateOptions, engine: Engine, shards: int | None = None,
                     on_shard: Callable[[str], None] | None = None) -> SimulationReport:
    """Grade ``candidate`` on ``data`` in ``shards`` shards (default: ``engine.workers``) run on
    ``engine``; the merged report (see the module's docstring)."""
    started = time.perf_counter()
    source = ParquetSource(data, competition)
    comp = source.competition
    tap = TargetTap(comp)
    for _ in tap(source.blocks(max_sequences=options.sequences)):  # a bad file fails here, before any shard
        pass
    y_true = tap.targets()
    sidecar = load_oracle(source.path, comp, options.oracle)
    sequences = len(y_true) // comp.scored_steps_per_sequence
    parts = plan(sequences, shards or engine.workers)
    with tempfile.TemporaryDirectory(prefix="wunderbench-shards-") as tmp:
        folder = Path(tmp)
        zip_path = candidate_zip(Path(candidate), folder)
        files = write_shard_files(source, parts, folder)
        remote = engine.backend == "ray"
        payload = zip_path.read_bytes() if remote else str(zip_path)
        jobs = [ShardJob(s, payload, f.read_bytes() if remote else str(f), comp.key, _shard_options(options),
                         str(zip_path)) for s, f in zip(parts, files)]
        limit_s = comp.limits.overridden(options.memory_gb, options.minutes).seconds
        done = None if on_shard is None else (lambda i, task: on_shard(task.label))
        results = run_tasks([Task(s.label, run_shard, (job,), pin=False) for s, job in zip(parts, jobs)], engine,
                            timeout_s=limit_s + TIMEOUT_MARGIN_S, on_done=done)
    reports = [SimulationReport.from_json(r) for r in results]
    for report in reports:
        _to_user_paths(report, zip_path, Path(candidate))
    merged = merge(comp, str(candidate), str(source.path), parts, reports, y_true, sidecar, options,
                   time.perf_counter() - started)
    merged.data_sha256 = file_sha256(source.path) if options.fingerprint else None
    merged.candidate_bytes = Path(candidate).stat().st_size if Path(candidate).is_file() else None
    if merged.score is not None:
        expected = source.sequence_ids(options.sequences).tolist()
        if merged.score.by_sequence.seq_ix != expected:  # the shards must be the file's sequences, in order
            raise RuntimeError(f"internal: the shards replayed seq_ix {merged.score.by_sequence.seq_ix[:5]}..., "
                               f"not the file's {expected[:5]}...")
    return merged


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
          y_true: np.ndarray, sidecar, options: SimulateOptions, wall_s: float) -> SimulationReport:
    """One report from the shards' reports (see the module's docstring)."""
    first = reports[0]
    failed = next(((s, r) for s, r in zip(shards, reports) if r.error is not None), None)
    error = None if failed is None else _located(failed[1].error, failed[0])
    score = None
    if failed is None:
        seq_ix = [i for r in reports for i in r.score.by_sequence.seq_ix]
        stats = SequenceStats.concat([r.score.by_sequence.stats for r in reports])
        oracle = None if sidecar is None else oracle_stats(comp, y_true, sidecar, seq_ix)
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
