"""The gate: named checks a candidate must pass before it spends one of the day's uploads.

Each check says PASS, WARN, FAIL (or SKIP when an earlier failure makes it meaningless) with a
one-line reason and, on FAIL, the command that reproduces the failure. Static checks read the
files. Run-time checks replay sequences in the sandbox, each replay in a fresh process:

1. the check sample (8 sequences) in file order: runs clean, imports, outputs vary;
2. a copy of that sample whose rows after a cut step are another sequence's
   (``harness.lookahead``): predictions up to each cut must not change (causality), and on the
   sequences kept whole nothing may change (determinism);
3. the check sample in a shuffled order: state is reset when ``seq_ix`` changes;
4. the score sample, as many sequences as fit in ``score_seconds`` at the speed run 1 measured
   (run 1 itself when that is no more): time, memory, threads, and the score against the simple
   baseline by a paired bootstrap interval over the same sequences, so that a lucky sample
   neither passes a rule that loses nor fails one that wins.

With one worker each replay runs when its check asks for it; ``gate --workers N`` runs them side
by side (``harness.gate_replays``), judged by the same checks in the same order.
"""

from __future__ import annotations

import ast
import io
import shlex
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from harness import candidate as candidate_mod, grader_env, lookahead, metrics
from harness.baselines import baseline_predictions
from harness.competitions import GIB, SAFETY_FACTOR, SEQUENCE_LENGTH, Competition, Limits
from harness.data import ParquetSource, targets_of
from harness.errors import ErrorKind
from harness.execution import Engine
from harness.gate_replays import OneByOne, ScoreRule, SideBySide, replay_options, shuffled_order
from harness.sandbox import RunOutcome, run_in_sandbox
from harness.simulate import (SimulateOptions, impossible_score, load_oracle, projection, report_of_run,
                              thread_warnings)
from harness.simulation import SimulationReport

CHECKS = ("layout", "archive", "size", "dependencies", "runs_clean", "not_degenerate", "deterministic",
          "causality", "state_reset", "threads", "time", "memory", "score")
RUNTIME_CHECKS = CHECKS[3:]
"""Checks that need a replay (``dependencies`` has a static half and a run-time half)."""
DATA_SUFFIXES = {".npz", ".npy", ".pt", ".pth", ".onnx", ".bin", ".pkl", ".pickle", ".joblib", ".json", ".txt",
                 ".csv", ".parquet", ".h5", ".safetensors", ".model", ".yaml", ".yml", ".cbm", ".ubj"}
CHECK_SEQUENCES = 8
SCORE_SECONDS = 20.0
"""Replay time given to the score sample by default: a_gru replays all of A's 128 valid sequences
in about 5 s, and B's 1,444 in about 60 s, so the default covers A and a few hundred of B."""


@dataclass
class CheckResult:
    name: str
    status: str  # PASS, WARN, FAIL, SKIP
    reason: str
    reproduce: str | None = None


@dataclass
class GateOptions:
    data: Path
    sequences: int | None = None
    check_sequences: int = CHECK_SEQUENCES
    score_seconds: float = SCORE_SECONDS
    bootstrap: int = 1000
    archive_cap_mb: float | None = None
    memory_margin_gb: float = 12.0
    memory_gb: float | None = None
    minutes: float | None = None
    safety: float = SAFETY_FACTOR
    test_sequences: int | None = None
    min_score: float | None = None
    min_score_reason: str = ""
    only: tuple[str, ...] = field(default_factory=tuple)
    seed: int = 0
    oracle: bool = True  # False is --no-oracle: the data file's sidecar is not read
    report: str | Path | None = None  # --report: the HTML page (harness.html_report) is written here
    on_progress: Callable[[dict], None] | None = None  # the sandbox's progress messages, for a progress line
    cpu: int | None = None  # the core the replays are pinned to (None: the last this process may use)
    engine: Engine | None = None  # gate --workers N: the replays side by side there (None: one after another)
    on_replay: Callable[[str], None] | None = None  # with an engine: called with each replay's label as it ends


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


def _imports(source: str) -> tuple[set[str], set[str]]:
    """Top-level modules imported, and the names taken ``from utils import ...``."""
    modules: set[str] = set()
    from_utils: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
            if node.module == "utils":
                from_utils.update(alias.name for alias in node.names if alias.name != "*")
    return modules, from_utils


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


def check_static_dependencies(root: Path, comp: Competition) -> tuple[list[str], CheckResult | None]:
    """Imports the grader cannot satisfy: modules it lacks, and names its ``utils`` for this
    competition does not define (it is the grader's module even where the archive ships one)."""
    missing = set()
    for path in root.rglob("*.py"):
        try:
            modules, from_utils = _imports(path.read_text())
        except SyntaxError as exc:
            return [], CheckResult("dependencies", "FAIL", f"{path.relative_to(root)} does not parse: {exc}")
        missing.update(m for m in modules if not grader_env.static_import_ok(m, root))
        missing.update(f"utils.{n} (not in {comp.key}'s utils)" for n in from_utils if n not in comp.utils_names)
    return sorted(missing), None


# -------------------------------------------------------------------------------------------------
# run-time checks
# -------------------------------------------------------------------------------------------------


def _per_sequence(outcome: RunOutcome, per_seq: int) -> dict[int, np.ndarray]:
    return {sid: outcome.predictions[i * per_seq : (i + 1) * per_seq] for i, sid in enumerate(outcome.seq_ids)}


def check_not_degenerate(predictions: np.ndarray, comp: Competition) -> CheckResult:
    constant = [comp.prediction_names[k] for k in range(comp.n_outputs) if np.ptp(predictions[:, k]) == 0]
    if constant:
        return CheckResult("not_degenerate", "WARN",
                           f"constant output for {', '.join(constant[:4])}{'...' if len(constant) > 4 else ''}: "
                           "a constant scores 0 on B; did a model fail to load and fall back?")
    return CheckResult("not_degenerate", "PASS", "every output varies")


def check_threads(outcomes: list[RunOutcome]) -> CheckResult:
    warnings = sorted({w for o in outcomes for w in thread_warnings(o.threads)})
    if warnings:
        return CheckResult("threads", "WARN", "; ".join(warnings))
    return CheckResult("threads", "PASS", "no thread pool or variable above 1")


def check_memory(outcomes: list[RunOutcome], margin_gb: float, comp: Competition) -> CheckResult:
    peak_gb = max(o.peak_rss_bytes for o in outcomes) / GIB
    line = f"peak {peak_gb:.2f} GB, margin {margin_gb:g} GB of {comp.limits.memory_gb:g}"
    return CheckResult("memory", "PASS" if peak_gb <= margin_gb else "FAIL", line)


def check_determinism_and_causality(comp: Competition, first: RunOutcome, altered: RunOutcome,
                                    sample: lookahead.CutSample) -> tuple[CheckResult, CheckResult]:
    """Judge the replay of the cut copy against the first replay (see ``harness.lookahead``)."""
    if not altered.ok or altered.seq_ids != first.seq_ids:
        error = str(altered.error) if altered.error is not None else "a different set of sequences"
        return (CheckResult("deterministic", "SKIP", "the replay of the copy did not finish"),
                CheckResult("causality", "FAIL", f"the replay of a copy of the sample in a fresh folder ended with "
                            f"{error}: does the candidate read files beside the data (the original file, a sidecar)?"))
    per_seq = comp.scored_steps_per_sequence
    a_map, b_map = _per_sequence(first, per_seq), _per_sequence(altered, per_seq)
    whole = [s for s in first.seq_ids if s not in sample.cuts]
    for s in whole:
        step = lookahead.first_difference(a_map[s], b_map[s], comp)
        if step is not None:
            return (CheckResult("deterministic", "FAIL", f"two fresh runs differ, first at seq_ix {s}, step {step}, on "
                                "rows that were the same in both (unseeded randomness, state carried over from the "
                                "sequence before, or something read beside the data: the second run replays a copy "
                                "in a fresh folder)"),
                    CheckResult("causality", "SKIP", "predictions are not reproducible, so look-ahead cannot be judged"))
    deterministic = CheckResult("deterministic", "PASS", f"two fresh processes gave bit-identical predictions "
                                f"on the {len(whole)} sequence(s) replayed whole")
    if not sample.cuts:
        return deterministic, CheckResult("causality", "SKIP", "a one-sequence sample has no other sequence to take "
                                          "future rows from")
    for s, t in sample.cuts.items():
        step = lookahead.first_difference(a_map[s], b_map[s], comp, upto=t)
        if step is not None:
            return deterministic, CheckResult(
                "causality", "FAIL", f"seq_ix {s}: the prediction at step {step} changed when only the rows after "
                f"step {t} were replaced: predictions at step {step} depend on rows after {t} (look-ahead)")
    for s, t in sample.cuts.items():
        if lookahead.ignores_its_rows(a_map[s], b_map[s], comp, t):
            return deterministic, CheckResult(
                "causality", "FAIL", f"seq_ix {s}: the predictions after step {t} stayed bit-identical although "
                "every row after it was replaced: they do not come from the rows predict receives (does it read "
                "the data file?)")
    return deterministic, CheckResult("causality", "PASS", f"replacing the rows after a cut step in "
                                      f"{len(sample.cuts)} sequence(s) left every earlier prediction bit-identical")


class _Gate:
    def __init__(self, candidate: Path, options: GateOptions):
        self.origin = Path(candidate)
        self.opts = options
        self.source = ParquetSource(options.data)
        self.comp = self.source.competition
        self.results: dict[str, CheckResult] = {}
        self.outcomes: list[RunOutcome] = []
        self.shown: RunOutcome | None = None  # the replay the HTML report shows: the score sample's, or the first
        self.base_cmd = f"python -m harness gate {shlex.quote(str(self.origin))} --data {shlex.quote(str(options.data))}"
        self.check_sequences = min(options.check_sequences, options.sequences or options.check_sequences)
        self.limits: Limits = self.comp.limits.overridden(options.memory_gb, options.minutes)
        # Read before any replay: a stale sidecar of ours stops the gate here (SidecarMismatch),
        # not at the score check after minutes of replays; a foreign file there is no sidecar.
        self.sidecar = load_oracle(self.source.path, self.comp, options.oracle)
        engine = options.engine
        self.replays = (OneByOne(self) if engine is None or engine == Engine()
                        else SideBySide(self, engine, options.on_replay))

    def wanted(self, name: str) -> bool:
        return not self.opts.only or name in self.opts.only

    def add(self, result: CheckResult | None) -> None:
        if result is not None and self.wanted(result.name):
            if result.status == "FAIL" and result.reproduce is None:
                result.reproduce = f"{self.base_cmd} --only {result.name}"
            self.results[result.name] = result

    def skip_rest(self, reason: str) -> None:
        for name in CHECKS:
            if name not in self.results and self.wanted(name):
                self.results[name] = CheckResult(name, "SKIP", reason)

    def simulate_cmd(self, sequences: int) -> str:
        return (f"python -m harness simulate {shlex.quote(str(self.origin))} "
                f"--data {shlex.quote(str(self.opts.data))} --sequences {sequences}")

    def sandbox(self, sequences: int | None = None, order: list[int] | None = None,
                data: Path | None = None) -> RunOutcome:
        outcome = run_in_sandbox(self.origin, data or self.source.path, self.comp,
                                 replay_options(self.limits, sequences, order, self.opts.cpu),
                                 on_progress=self.opts.on_progress,
                                 oracle=self.sidecar if data is None else None)  # the page shows the oracle
        self.outcomes.append(outcome)
        return outcome

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
            missing, broken = check_static_dependencies(root, self.comp)
            if broken:
                self.add(broken)
            if layout.status == "FAIL":
                self.skip_rest("layout failed")
                return self.ordered()
            if any(self.wanted(n) for n in RUNTIME_CHECKS):
                self.runtime_checks(root, missing)
            elif missing:
                self.add(CheckResult("dependencies", "FAIL", f"imports the grader lacks: {', '.join(missing)}"))
        return self.ordered()

    def runtime_checks(self, root: Path, static_missing: list[str]) -> None:
        first = self.replays.first()
        self.shown = first
        self.add(self.check_dependencies(first, root, static_missing))
        self.add(self.check_runs_clean(first, self.check_sequences))
        if not first.ok:
            self.skip_rest("the candidate did not run clean")
            return
        self.add(check_not_degenerate(first.predictions, self.comp))
        if self.wanted("deterministic") or self.wanted("causality"):
            for result in self.check_cut_replay(first):
                self.add(result)
        if self.wanted("state_reset"):
            self.add(self.check_state_reset(first))
        if not any(self.wanted(n) for n in ("threads", "time", "memory", "score")):
            return
        n = self.score_sample_size(first)
        scored = first if n <= len(first.seq_ids) else self.replays.scored(n)
        self.shown = scored
        if not scored.ok:
            self.add(self.check_runs_clean(scored, n))
            self.skip_rest("the score sample did not run clean")
            return
        self.add(check_threads(self.outcomes))
        self.add(self.check_time(scored))
        self.add(check_memory(self.outcomes, self.opts.memory_margin_gb, self.comp))
        self.add(self.check_score(scored))

    def check_dependencies(self, first: RunOutcome, root: Path, static_missing: list[str]) -> CheckResult | None:
        runtime_missing = [m for m in first.modules if not grader_env.runtime_module_ok(m, root)]
        missing = sorted(set(static_missing) | set(runtime_missing))
        if missing:
            return CheckResult("dependencies", "FAIL",
                               f"imports the grader lacks (vendor them or drop them): {', '.join(missing)}")
        if first.ok or first.modules:
            return CheckResult("dependencies", "PASS", "every import is on the grader or in the archive")
        return None

    def check_runs_clean(self, outcome: RunOutcome, sequences: int) -> CheckResult:
        if outcome.ok:
            return CheckResult("runs_clean", "PASS", f"{len(outcome.seq_ids)} sequences, every output valid")
        err = outcome.error
        cmd = self.simulate_cmd(sequences)
        if err.kind == ErrorKind.OUT_OF_MEMORY:
            self.add(CheckResult("memory", "FAIL", err.message, cmd))
        if err.kind in (ErrorKind.TIME_LIMIT, ErrorKind.TIMINGS):
            self.add(CheckResult("time", "FAIL", err.message, cmd))
        return CheckResult("runs_clean", "FAIL", str(err), cmd)

    def check_cut_replay(self, first: RunOutcome) -> tuple[CheckResult, CheckResult]:
        sample, altered = self.replays.cut(len(first.seq_ids))
        return check_determinism_and_causality(self.comp, first, altered, sample)

    def check_state_reset(self, first: RunOutcome) -> CheckResult:
        shuffled = self.replays.shuffled(shuffled_order(first.seq_ids, self.opts.seed))
        if not shuffled.ok:
            return CheckResult("state_reset", "FAIL", f"the shuffled replay ended with {shuffled.status}")
        per_seq = self.comp.scored_steps_per_sequence
        a_map, b_map = _per_sequence(first, per_seq), _per_sequence(shuffled, per_seq)
        bad = [s for s in first.seq_ids if not np.allclose(a_map[s], b_map[s], rtol=0, atol=1e-9)]
        if bad:
            step = lookahead.first_difference(a_map[bad[0]], b_map[bad[0]], self.comp)
            return CheckResult("state_reset", "FAIL", f"seq_ix {bad[0]} predicts differently when replayed after "
                               f"other sequences (step {step}): state is not reset when seq_ix changes, or leaks "
                               "across sequences")
        return CheckResult("state_reset", "PASS", "shuffled sequence order gives the same predictions")

    def score_sample_size(self, first: RunOutcome) -> int:
        """The score sample's size after ``first`` (``ScoreRule.size``)."""
        rule = ScoreRule(self.source.num_sequences, self.opts.sequences, self.opts.score_seconds)
        return rule.size(len(first.seq_ids), first.sequence_s)

    def check_time(self, scored: RunOutcome) -> CheckResult:
        opts, comp = self.opts, self.comp
        test_sequences = opts.test_sequences or comp.test_sequences
        proj = projection(scored, test_sequences, opts.safety)
        limit_s = self.limits.seconds
        line = (f"projected {proj.projected_test_s / 60:.1f} min for {test_sequences} sequences "
                f"(x{opts.safety} safety) of {limit_s / 60:g} min")
        if proj.projected_test_s <= limit_s:
            return CheckResult("time", "PASS", line)
        return CheckResult("time", "FAIL", line, self.simulate_cmd(len(scored.seq_ids)))

    def check_score(self, scored: RunOutcome) -> CheckResult:
        """Candidate against the bar by a bootstrap interval over the score sample's sequences:
        paired with the simple baseline on the same sequences, or against a fixed ``min_score``."""
        comp, opts = self.comp, self.opts
        n = len(scored.seq_ids)
        cmd = self.simulate_cmd(n)
        y = targets_of(comp, self.source.blocks(max_sequences=n))
        preds = scored.predictions
        score = metrics.score(comp, y, preds)[comp.metric]
        sidecar = self.sidecar
        starts = np.arange(0, len(y), comp.scored_steps_per_sequence)
        stats = metrics.sequence_stats(comp, y, preds, starts)
        hidden = (metrics.sequence_stats(comp, y, sidecar.hidden[: len(y)], starts)
                  if sidecar is not None and sidecar.hidden is not None else None)
        impossible = impossible_score(comp, stats, hidden, opts.bootstrap)
        if impossible is not None and impossible.status == "FAIL":
            return CheckResult("score", "FAIL", impossible.reason, cmd)
        if opts.min_score is not None:
            bar, what = opts.min_score, f"threshold{' (' + opts.min_score_reason + ')' if opts.min_score_reason else ''}"
        else:
            base = baseline_predictions(comp, self.source, n)
            bar, what = metrics.score(comp, y, base)[comp.metric], f"simple baseline ({comp.simple_baseline})"
        line = f"{comp.metric} {score:.4f} vs {what} {bar:.4f} on {n} sequences"
        if n < 2:
            return CheckResult("score", "WARN", f"{line}: one sequence cannot decide; run with more (--sequences)")
        if opts.min_score is not None:
            lo, hi = (v - bar for v in metrics.bootstrap_interval(stats, opts.bootstrap, seed=opts.seed))
        else:
            lo, hi = metrics.paired_bootstrap_interval(stats, metrics.sequence_stats(comp, y, base, starts),
                                                       opts.bootstrap, seed=opts.seed)
        line += f", difference {score - bar:+.4f} (95% interval {lo:+.4f} to {hi:+.4f})"
        if hi < 0:
            return CheckResult("score", "FAIL", line, cmd)
        if lo <= 0:
            return CheckResult("score", "WARN", f"{line}: not distinguishable from the bar on {n} sequences; run "
                               "with more (--sequences, --score-seconds)")
        if impossible is not None:
            return CheckResult("score", "WARN", f"{line}; but {impossible.reason}")
        return CheckResult("score", "PASS", line)

    def ordered(self) -> list[CheckResult]:
        return [self.results[n] for n in CHECKS if n in self.results]

    def shown_report(self) -> SimulationReport | None:
        """The replay the HTML page shows (score sample, or the first replay), as ``simulate`` reports it."""
        if self.shown is None:
            return None
        opts = self.opts
        sim_opts = SimulateOptions(safety=opts.safety, test_sequences=opts.test_sequences, bootstrap=opts.bootstrap)
        return report_of_run(self.origin, self.source, self.shown, self.limits, sim_opts)


def gate(candidate: str | Path, options: GateOptions) -> GateReport:
    """Run the checks on ``candidate`` (a folder or a zip) with ``options.data`` as sample data;
    with ``options.report``, also write the HTML page (``harness.html_report``)."""
    g = _Gate(Path(candidate), options)
    checks = g.run()
    report = GateReport(str(candidate), str(options.data), g.comp.key, checks)
    if options.report:
        from harness.html_report import gate_html, write_html

        latency_ns = None if g.shown is None else g.shown.latency_ns
        write_html(gate_html(report, g.shown_report(), latency_ns), options.report)
    return report
