"""The gate: named checks a candidate must pass before it spends one of the day's uploads.

Each check says PASS, WARN, FAIL (or SKIP when an earlier failure makes it meaningless) with a
one-line reason and, on FAIL, the command that reproduces the failure. Static checks read the
files; run-time checks replay a sample of sequences in the sandbox: once for the score, time,
memory and threads; once more in a fresh process for determinism; once with the sequences
shuffled, which catches a model that does not reset when ``seq_ix`` changes.
"""

from __future__ import annotations

import ast
import io
import random
import shlex
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from harness import candidate as candidate_mod, grader_env, metrics
from harness.baselines import baseline_score
from harness.competitions import SEQUENCE_LENGTH, Competition
from harness.data import ParquetSource, targets_of
from harness.sandbox import RunOutcome, SandboxOptions, run_in_sandbox
from harness.simulate import DEFAULT_SAFETY, describe_error, projection, thread_warnings

CHECKS = ("layout", "archive", "size", "dependencies", "runs_clean", "not_degenerate", "deterministic",
          "state_reset", "threads", "time", "memory", "score")
DATA_SUFFIXES = {".npz", ".npy", ".pt", ".pth", ".onnx", ".bin", ".pkl", ".pickle", ".joblib", ".json", ".txt",
                 ".csv", ".parquet", ".h5", ".safetensors", ".model", ".yaml", ".yml", ".cbm", ".ubj"}


@dataclass
class CheckResult:
    name: str
    status: str  # PASS, WARN, FAIL, SKIP
    reason: str
    reproduce: str | None = None


@dataclass
class GateOptions:
    data: Path
    sequences: int = 8
    archive_cap_mb: float | None = None
    memory_margin_gb: float = 12.0
    memory_gb: float | None = None
    minutes: float | None = None
    safety: float = DEFAULT_SAFETY
    test_sequences: int | None = None
    min_score: float | None = None
    min_score_reason: str = ""
    only: tuple[str, ...] = field(default_factory=tuple)
    shuffle_seed: int = 0
    on_progress: Callable[[dict], None] | None = None  # the sandbox's progress messages, for a progress line


@dataclass
class GateReport:
    candidate: str
    data: str
    competition: str
    checks: list[CheckResult]

    @property
    def failed(self) -> bool:
        return any(c.status == "FAIL" for c in self.checks)

    def to_dict(self) -> dict:
        return {"candidate": self.candidate, "data": self.data, "competition": self.competition,
                "passed": not self.failed, "checks": [asdict(c) for c in self.checks]}


# -------------------------------------------------------------------------------------------------
# static checks
# -------------------------------------------------------------------------------------------------


def _imports(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def check_layout(root: Path) -> CheckResult:
    try:
        tree = ast.parse((root / "solution.py").read_text())
    except SyntaxError as exc:
        return CheckResult("layout", "FAIL", f"solution.py does not parse: {exc}")
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "PredictionModel"), None)
    if cls is None:
        return CheckResult("layout", "FAIL", "solution.py defines no top-level class PredictionModel")
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is not None:
        required = len(init.args.args) - 1 - len(init.args.defaults)
        required += sum(1 for d in init.args.kw_defaults if d is None)
        if required > 0:
            return CheckResult("layout", "FAIL", "PredictionModel.__init__ takes required arguments; the grader calls PredictionModel()")
    if not any(isinstance(n, ast.FunctionDef) and n.name == "predict" for n in cls.body):
        if not cls.bases:
            return CheckResult("layout", "FAIL", "PredictionModel defines no predict method and has no base class to "
                               "inherit one from; the grader calls predict(data_point) once per row")
        bases = ", ".join(ast.unparse(b) for b in cls.bases)
        return CheckResult("layout", "PASS", f"solution.py at the root with PredictionModel(); predict inherited "
                           f"from {bases} (the run checks that it exists)")
    return CheckResult("layout", "PASS", "solution.py at the root with PredictionModel()")


def check_archive(origin: Path, root: Path) -> CheckResult:
    warnings = []
    names = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != "manifest.json"]
    if origin.is_file():
        with zipfile.ZipFile(origin) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
    caches = [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    dotfiles = [n for n in names if any(part.startswith(".") for part in n.split("/"))]
    if caches:
        warnings.append(f"{len(caches)} compiled cache file(s) (__pycache__)")
    if dotfiles:
        warnings.append(f"dotfiles: {', '.join(dotfiles[:3])}")
    sources = "\n".join(p.read_text(errors="replace") for p in root.rglob("*.py"))
    unused = [n for n in names if Path(n).suffix.lower() in DATA_SUFFIXES and Path(n).name not in sources
              and Path(n).stem not in sources]
    if unused:
        warnings.append(f"data files no source mentions: {', '.join(unused[:3])}")
    if warnings:
        return CheckResult("archive", "WARN", "; ".join(warnings))
    return CheckResult("archive", "PASS", f"{len(names)} files, no unsafe entries")


def _zip_size(origin: Path, root: Path) -> int:
    if origin.is_file():
        return origin.stat().st_size
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
    return buffer.tell()


def check_size(origin: Path, root: Path, comp: Competition, cap_mb: float | None) -> CheckResult:
    cap = cap_mb if cap_mb is not None else comp.limits.archive_mb
    size = _zip_size(origin, root) / 1024**2
    note = "" if comp.limits.archive_cap_official else " (cap reported by participants, not official)"
    what = "archive" if origin.is_file() else "folder zipped"
    if size > cap:
        return CheckResult("size", "FAIL", f"{what} is {size:.2f} MB, over the {cap:g} MB cap{note}")
    return CheckResult("size", "PASS", f"{what} is {size:.2f} MB of {cap:g} MB{note}")


def check_static_dependencies(root: Path) -> tuple[list[str], CheckResult | None]:
    missing = set()
    for path in root.rglob("*.py"):
        try:
            modules = _imports(path.read_text())
        except SyntaxError as exc:
            return [], CheckResult("dependencies", "FAIL", f"{path.relative_to(root)} does not parse: {exc}")
        missing.update(m for m in modules if not grader_env.static_import_ok(m, root))
    return sorted(missing), None


# -------------------------------------------------------------------------------------------------
# run-time checks
# -------------------------------------------------------------------------------------------------


def _per_sequence(outcome: RunOutcome, per_seq: int) -> dict[int, np.ndarray]:
    return {sid: outcome.predictions[i * per_seq : (i + 1) * per_seq] for i, sid in enumerate(outcome.seq_ids)}


def _first_difference(a: np.ndarray, b: np.ndarray, comp: Competition) -> str:
    row = int(np.argmax(np.any(a != b, axis=1)))
    return f"step {comp.first_scored_step + row % comp.scored_steps_per_sequence}"


class _Gate:
    def __init__(self, candidate: Path, options: GateOptions):
        self.origin = Path(candidate)
        self.opts = options
        self.source = ParquetSource(options.data)
        self.comp = self.source.competition
        self.results: dict[str, CheckResult] = {}
        self.base_cmd = f"python -m harness gate {shlex.quote(str(self.origin))} --data {shlex.quote(str(options.data))}"

    def wanted(self, name: str) -> bool:
        return not self.opts.only or name in self.opts.only

    def add(self, result: CheckResult) -> None:
        if self.wanted(result.name):
            if result.status == "FAIL" and result.reproduce is None:
                result.reproduce = f"{self.base_cmd} --only {result.name}"
            self.results[result.name] = result

    def skip_rest(self, reason: str) -> None:
        for name in CHECKS:
            if name not in self.results and self.wanted(name):
                self.results[name] = CheckResult(name, "SKIP", reason)

    def sandbox(self, order: list[int] | None = None) -> RunOutcome:
        comp = self.comp
        memory = int((self.opts.memory_gb or comp.limits.memory_gb) * 1024**3)
        limit = (self.opts.minutes or comp.limits.minutes) * 60
        opts = SandboxOptions(memory_bytes=memory, time_limit_s=limit, order=order,
                              max_sequences=None if order else self.opts.sequences)
        return run_in_sandbox(self.origin, self.source.path, comp, opts, on_progress=self.opts.on_progress)

    def run(self) -> list[CheckResult]:
        with tempfile.TemporaryDirectory(prefix="wunderbench-gate-") as tmp:
            root = Path(tmp) / "candidate"
            try:
                candidate_mod.materialize(self.origin, root)
            except candidate_mod.CandidateLayoutError as exc:
                self.add(CheckResult(exc.kind, "FAIL", str(exc)))
                self.skip_rest(f"the candidate cannot be unpacked ({exc.kind} failed)")
                return self.ordered()
            self.add(check_archive(self.origin, root))
            layout = check_layout(root)
            self.add(layout)
            self.add(check_size(self.origin, root, self.comp, self.opts.archive_cap_mb))
            missing, broken = check_static_dependencies(root)
            if broken:
                self.add(broken)
            if layout.status == "FAIL":
                self.skip_rest("layout failed")
                return self.ordered()
            runtime = any(self.wanted(n) for n in CHECKS[4:]) or self.wanted("dependencies")
            if runtime:
                self.runtime_checks(root, missing)
            elif missing:
                self.add(CheckResult("dependencies", "FAIL", f"imports the grader lacks: {', '.join(missing)}"))
        return self.ordered()

    def runtime_checks(self, root: Path, static_missing: list[str]) -> None:
        comp, opts = self.comp, self.opts
        first = self.sandbox()
        simulate_cmd = (f"python -m harness simulate {shlex.quote(str(self.origin))} "
                        f"--data {shlex.quote(str(opts.data))} --sequences {opts.sequences}")
        runtime_missing = sorted(m for m in first.modules if not grader_env.runtime_module_ok(m, root))
        missing = sorted(set(static_missing) | set(runtime_missing))
        if missing:
            self.add(CheckResult("dependencies", "FAIL",
                                 f"imports the grader lacks (vendor them or drop them): {', '.join(missing)}"))
        elif first.ok or first.modules:
            self.add(CheckResult("dependencies", "PASS", "every import is on the grader or in the archive"))
        if not first.ok:
            err = first.error or {"kind": first.status}
            self.add(CheckResult("runs_clean", "FAIL", describe_error(err), simulate_cmd))
            if first.status == "out_of_memory":
                self.add(CheckResult("memory", "FAIL", err.get("message", "out of memory"), simulate_cmd))
            if first.status == "time_limit":
                self.add(CheckResult("time", "FAIL", err.get("message", "time limit"), simulate_cmd))
            self.skip_rest("the candidate did not run clean")
            return
        self.add(CheckResult("runs_clean", "PASS", f"{len(first.seq_ids)} sequences, every output valid"))
        per_seq = comp.scored_steps_per_sequence
        preds = first.predictions
        constant = [comp.prediction_names[k] for k in range(comp.n_outputs) if np.ptp(preds[:, k]) == 0]
        if constant:
            self.add(CheckResult("not_degenerate", "WARN",
                                 f"constant output for {', '.join(constant[:4])}{'...' if len(constant) > 4 else ''}: "
                                 "a constant scores 0 on B; did a model fail to load and fall back?"))
        else:
            self.add(CheckResult("not_degenerate", "PASS", "every output varies"))
        if self.wanted("deterministic"):
            second = self.sandbox()
            if not second.ok or second.predictions.shape != preds.shape:
                self.add(CheckResult("deterministic", "FAIL", f"a second run ended with {second.status}"))
            elif not np.array_equal(second.predictions, preds):
                seqs = [sid for sid, a, b in zip(first.seq_ids, _per_sequence(first, per_seq).values(),
                                                 _per_sequence(second, per_seq).values()) if not np.array_equal(a, b)]
                a, b = _per_sequence(first, per_seq)[seqs[0]], _per_sequence(second, per_seq)[seqs[0]]
                self.add(CheckResult("deterministic", "FAIL",
                                     f"two fresh runs differ, first at seq_ix {seqs[0]}, {_first_difference(a, b, comp)} "
                                     "(unseeded randomness?)"))
            else:
                self.add(CheckResult("deterministic", "PASS", "two fresh processes gave bit-identical predictions"))
        if self.wanted("state_reset"):
            order = list(first.seq_ids)
            random.Random(opts.shuffle_seed).shuffle(order)
            if order == list(first.seq_ids):
                order = order[::-1]
            shuffled = self.sandbox(order=order)
            if not shuffled.ok:
                self.add(CheckResult("state_reset", "FAIL", f"the shuffled replay ended with {shuffled.status}"))
            else:
                a_map, b_map = _per_sequence(first, per_seq), _per_sequence(shuffled, per_seq)
                bad = [s for s in first.seq_ids if not np.allclose(a_map[s], b_map[s], rtol=0, atol=1e-9)]
                if bad:
                    self.add(CheckResult("state_reset", "FAIL",
                                         f"seq_ix {bad[0]} predicts differently when replayed after other sequences "
                                         f"({_first_difference(a_map[bad[0]], b_map[bad[0]], comp)}): state is not reset "
                                         "when seq_ix changes, or leaks across sequences"))
                else:
                    self.add(CheckResult("state_reset", "PASS", "shuffled sequence order gives the same predictions"))
        warnings = thread_warnings(first.threads)
        self.add(CheckResult("threads", "WARN", "; ".join(warnings)) if warnings
                 else CheckResult("threads", "PASS", "no thread pool or variable above 1"))
        test_sequences = opts.test_sequences or comp.test_sequences
        proj = projection(first, test_sequences, opts.safety)
        limit_s = (opts.minutes or comp.limits.minutes) * 60
        line = (f"projected {proj['projected_test_s'] / 60:.1f} min for {test_sequences} sequences "
                f"(x{opts.safety} safety) of {limit_s / 60:g} min")
        self.add(CheckResult("time", "PASS" if proj["projected_test_s"] <= limit_s else "FAIL", line,
                             None if proj["projected_test_s"] <= limit_s else simulate_cmd))
        peak_gb = first.peak_rss_bytes / 1024**3
        mem_line = f"peak {peak_gb:.2f} GB, margin {opts.memory_margin_gb:g} GB of {comp.limits.memory_gb:g}"
        self.add(CheckResult("memory", "PASS" if peak_gb <= opts.memory_margin_gb else "FAIL", mem_line,
                             None if peak_gb <= opts.memory_margin_gb else simulate_cmd))
        y = targets_of(comp, self.source.blocks(max_sequences=opts.sequences))
        score = metrics.score(comp, y, preds)[comp.metric]
        threshold = opts.min_score if opts.min_score is not None else baseline_score(comp, self.source, opts.sequences)
        label = (f"threshold{' (' + opts.min_score_reason + ')' if opts.min_score_reason else ''}"
                 if opts.min_score is not None else f"simple baseline ({comp.simple_baseline})")
        self.add(CheckResult("score", "PASS" if score > threshold else "FAIL",
                             f"{comp.metric} {score:.4f} vs {label} {threshold:.4f} on {opts.sequences} sequences",
                             None if score > threshold else simulate_cmd))

    def ordered(self) -> list[CheckResult]:
        return [self.results[n] for n in CHECKS if n in self.results]


def gate(candidate: str | Path, options: GateOptions) -> GateReport:
    """Run the checks on ``candidate`` (a folder or a zip) with ``options.data`` as sample data."""
    g = _Gate(Path(candidate), options)
    checks = g.run()
    return GateReport(str(candidate), str(options.data), g.comp.key, checks)
