"""Hostile candidates for the verdict: look-ahead by every route, lucky samples, utils names.

Each row: the candidate, the command (gate with the checks that matter, or simulate), the
verdict expected, how it is caught, and whether the verdict was already right before issue #13
(``before``: False means this row failed on the main branch of 2026-12-01). The candidates are
written outside the harness's knowledge: none relies on how the check works, only on a route to
the future rows or on a name. Data: tiny generated files (3 sequences).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from harness.gate import GateOptions, gate
from harness.market import get_generator
from harness.market.base import write_set
from harness.simulate import SimulateOptions, simulate

STATE_BASE = """
import numpy as np

class PredictionModel:
    def predict(self, dp):
        if not dp.need_prediction:
            return None
        base = dp.state.base
        if base is not None and base.ndim == 2 and base.shape[1] >= 35:  # the replay's block of rows
            rows = np.flatnonzero((base[:, 0] == dp.seq_ix) & (base[:, 1] == dp.step_in_seq + 1))
            if rows.size:
                return base[rows[0], 3:35].copy()
        return dp.state.copy()
"""

FRAME_LOCALS = """
import sys

class PredictionModel:
    def predict(self, dp):
        if not dp.need_prediction:
            return None
        seen = sys._getframe(1).f_locals
        rows, i = seen.get("chunk"), seen.get("i")
        if rows is not None and i is not None and i + 1 < len(rows):
            return rows[i + 1, 3:35].copy()
        return dp.state.copy()
"""

WHOLE_SEQUENCE_MEAN = """
import sys

class PredictionModel:
    def predict(self, dp):
        if not dp.need_prediction:
            return None
        rows = sys._getframe(1).f_locals.get("chunk")
        if rows is not None:
            return rows[:, 3:35].mean(axis=0)  # the classic: a statistic of the whole sequence
        return dp.state.copy()
"""

GC_CACHED_BLOCKS = """
import gc
import numpy as np

class PredictionModel:
    def __init__(self):
        self.future = {}

    def predict(self, dp):
        if not dp.need_prediction:
            return None
        key = (float(dp.seq_ix), float(dp.step_in_seq) + 1)
        if key not in self.future:
            for obj in gc.get_objects():
                try:
                    values = obj.__dict__.get("values")
                except AttributeError:
                    continue
                if isinstance(values, np.ndarray) and values.ndim == 2 and values.shape[1] >= 35:
                    for row in values:
                        self.future[(row[0], row[1])] = row[3:35].copy()
        found = self.future.get(key)
        return found.copy() if found is not None else dp.state.copy()
"""

_FILE_LOOKUP = """
import json
import os
import re

import numpy as np
import pyarrow.parquet as pq


def read_rows(path):
    table = pq.read_table(path)
    values = np.column_stack([table.column(i).to_numpy() for i in range(35)]).astype(float)
    return {(row[0], row[1]): row[3:35] for row in values}


class PredictionModel:
    def __init__(self):
        self.rows = None

    def predict(self, dp):
        if not dp.need_prediction:
            return None
        if self.rows is None:
            try:
                self.rows = read_rows(find_data())
            except Exception:
                self.rows = {}
        found = self.rows.get((float(dp.seq_ix), float(dp.step_in_seq) + 1))
        return found.copy() if found is not None else dp.state.copy()
"""

JOB_FILE = _FILE_LOOKUP + """

def find_data():
    with open(os.path.join("..", "job.json")) as fh:
        return json.load(fh)["data_path"]
"""

PROC_FD = _FILE_LOOKUP + """

def find_data():
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.endswith(".parquet"):
            return target
    raise FileNotFoundError("no data file among the descriptors")
"""

PROC_CMDLINE = _FILE_LOOKUP + """

def find_data():
    with open("/proc/self/cmdline", "rb") as fh:
        args = fh.read().split(b"\\0")
    boot = next(a.decode() for a in args if a.endswith(b".py"))
    job = re.search(r"'([^']*job\\.json)'", open(boot).read()).group(1)
    with open(job) as fh:
        return json.load(fh)["data_path"]
"""

HARDCODED_PATH = _FILE_LOOKUP + """

def find_data():
    return DATA_PATH  # the project's data file, known to its author
"""

SIDECAR = """
import json
import os

import numpy as np
import pyarrow.parquet as pq


class PredictionModel:
    def __init__(self):
        self.best = {}
        try:
            with open(os.path.join("..", "job.json")) as fh:
                data = json.load(fh)["data_path"]
            table = pq.read_table(data.replace(".parquet", ".oracle.parquet"))
            hidden = np.column_stack([table.column(f"hidden_{k}").to_numpy() for k in range(32)])
            for s, t, row in zip(table.column("seq_ix").to_numpy(), table.column("step_in_seq").to_numpy(), hidden):
                self.best[(float(s), float(t))] = row
        except Exception:
            pass

    def predict(self, dp):
        if not dp.need_prediction:
            return None
        found = self.best.get((float(dp.seq_ix), float(dp.step_in_seq)))
        return found.copy() if found is not None else dp.state.copy()
"""

SIDECAR_STRICT = SIDECAR.replace("except Exception:\n            pass", "except Exception:\n            raise  # no sidecar, no model")

LUCKY_NOISE_B = """
import numpy as np

class PredictionModel:
    def predict(self, dp):
        if not dp.need_prediction:
            return None
        # deterministic noise: on these 3 sequences it happens to score weighted Pearson +0.019
        return np.random.default_rng(int(dp.seq_ix) * 1000 + int(dp.step_in_seq)).standard_normal(2)
"""

ECHO_A = """
class PredictionModel:
    def predict(self, dp):
        return dp.state.copy() if dp.need_prediction else None
"""

WPC_ON_A = "from utils import DataPoint, weighted_pearson_correlation  # noqa: F401 - B's utils only\n" + ECHO_A
R2_ON_A = "from utils import DataPoint, r2_score  # noqa: F401 - A's utils imports it\n" + ECHO_A
R2_ON_B = "from utils import r2_score  # noqa: F401 - only A's utils has it\n" + LUCKY_NOISE_B

SLOW_CLOCK = """
import time

# From here on every time the child measures runs at a hundredth of the real rate (continuous,
# so no reported time is negative): start-up, sequences and per-call latencies all shrink.
_real, _real_ns = time.perf_counter, time.perf_counter_ns
_t0, _t0_ns = _real(), _real_ns()
time.perf_counter = lambda: _t0 + (_real() - _t0) / 100
time.perf_counter_ns = lambda: _t0_ns + (_real_ns() - _t0_ns) // 100

class PredictionModel:
    def predict(self, dp):
        time.sleep(0.001)  # 1 s a sequence really, 10 ms by its own report
        return dp.state.copy() if dp.need_prediction else None
"""


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    data: str  # "a", "b" or "a_oracle" (a generated A set with its oracle sidecar)
    command: str  # "gate" or "simulate"
    only: tuple[str, ...]
    expected: dict[str, tuple[str, str]]  # check (or "verdict") -> (status, words of the reason)
    caught: str
    before: bool  # the verdict was already right on main before issue #13


LOOK_AHEAD = ("FAIL", "look-ahead")
ROUTE_CLOSED = ({"causality": ("PASS", "bit-identical"), "score": ("FAIL", "simple baseline")},
                {"runs_clean": ("FAIL", "")})
"""Where the sandbox closes a file route, the cheat finds nothing: it scores as the echo it falls
back to, or fails to run at all."""

CASES = [
    Case("state_base_next_row", STATE_BASE, "a", "gate", ("causality", "score"),
         {"causality": ("PASS", "bit-identical"), "score": ("FAIL", "simple baseline")},
         "state.base holds only its own row, so the cheat finds nothing and scores as the echo it falls "
         "back to", False),
    Case("replay_frame_locals", FRAME_LOCALS, "a", "gate", ("causality",), {"causality": LOOK_AHEAD},
         "causality: the cut copy's replay holds other rows after the cut", False),
    Case("whole_sequence_mean", WHOLE_SEQUENCE_MEAN, "a", "gate", ("causality",), {"causality": LOOK_AHEAD},
         "causality: the first scored prediction changes with the rows after the cut", False),
    Case("gc_cached_blocks", GC_CACHED_BLOCKS, "a", "gate", ("causality",), {"causality": LOOK_AHEAD},
         "causality: the blocks gc finds are those of the cut copy", False),
    Case("job_file_data_path", JOB_FILE, "a", "gate", ("causality", "score"), {"causality": LOOK_AHEAD},
         "causality: the job names the cut copy, a new file in a fresh folder", False),
    Case("proc_fd_data_file", PROC_FD, "a", "gate", ("causality", "score"), {"causality": LOOK_AHEAD},
         "causality: the open descriptor is the cut copy's", False),
    Case("proc_cmdline_to_job", PROC_CMDLINE, "a", "gate", ("causality", "score"), {"causality": LOOK_AHEAD},
         "causality: the command line leads to the job, which names the cut copy", False),
    Case("original_file_by_fixed_path", HARDCODED_PATH, "a", "gate", ("causality",),
         {"causality": ("FAIL", "do not come from the rows predict receives")},
         "causality: after each cut the predictions stay those of the original rows, not of the rows replayed",
         False),
    Case("oracle_sidecar_hidden", SIDECAR, "a_oracle", "gate", ("deterministic", "causality", "score"),
         {"deterministic": ("FAIL", "beside the data")},
         "the second replay's copy has no sidecar: its predictions change on rows that did not", False),
    Case("oracle_sidecar_required", SIDECAR_STRICT, "a_oracle", "gate", ("runs_clean", "causality"),
         {"runs_clean": ("PASS", ""), "causality": ("FAIL", "in a fresh folder ended with")},
         "causality: the replay of the cut copy, which has no sidecar, fails", False),
    Case("lucky_on_three_sequences", LUCKY_NOISE_B, "b", "gate", ("score",),
         {"score": ("WARN", "not distinguishable")},
         "score: the paired bootstrap interval of (candidate - constant) contains 0", False),
    Case("utils_name_of_B_on_A", WPC_ON_A, "a", "gate", ("dependencies", "runs_clean"),
         {"dependencies": ("FAIL", "weighted_pearson_correlation (not in A's utils)"), "runs_clean": ("FAIL", "import")},
         "dependencies (static, per-competition utils names) and the child's utils for A", False),
    Case("utils_r2_score_on_A", R2_ON_A, "a", "gate", ("dependencies", "runs_clean"),
         {"dependencies": ("PASS", ""), "runs_clean": ("PASS", "")},
         "A's utils offers r2_score, as the organizers' module imports it", False),
    Case("utils_r2_score_on_B", R2_ON_B, "b", "gate", ("dependencies", "runs_clean"),
         {"dependencies": ("FAIL", "r2_score (not in B's utils)"), "runs_clean": ("FAIL", "r2_score")},
         "dependencies (static) and the child's utils for B", True),
    Case("simulate_near_perfect_score", FRAME_LOCALS, "a", "simulate", (),
         {"verdict": ("WARN", "above 0.9")}, "simulate: R² above 0.9 on any data", False),
    Case("simulate_slowed_clock", SLOW_CLOCK, "a", "simulate", (),
         {"verdict": ("FAIL", "reported timings disagree with the grader's clock")},
         "the parent's clock over the run: 3 s measured, a few ms reported", False),
    Case("simulate_above_the_oracle", FRAME_LOCALS, "a_oracle", "simulate", (),
         {"verdict": ("FAIL", "above the best possible score")},
         "simulate: a paired interval above the sidecar's hidden-state oracle", False),
]


FILE_ROUTES = {"job_file_data_path", "proc_fd_data_file", "proc_cmdline_to_job", "original_file_by_fixed_path",
               "oracle_sidecar_hidden", "oracle_sidecar_required"}
"""Routes the sandbox may close (issue #13, item 2): then ROUTE_CLOSED is the verdict instead."""


@pytest.fixture(scope="module")
def a_oracle_file(tmp_path_factory):
    return write_set(get_generator("A"), 3, 5, "valid", tmp_path_factory.mktemp("oracle") / "valid.parquet")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_candidate_gets_its_verdict(case, candidate, a_file, b_file, a_oracle_file):
    data = {"a": a_file, "b": b_file}.get(case.data) or a_oracle_file
    folder = candidate(case.source.replace("DATA_PATH", repr(str(data))))
    if case.command == "simulate":
        report = simulate(folder, data, options=SimulateOptions(bootstrap=300))
        got = {"verdict": (report.verdict, " ".join(report.reasons))}
    else:
        checks = gate(folder, GateOptions(data=data, only=case.only, bootstrap=300)).checks
        got = {c.name: (c.status, c.reason) for c in checks}
    closed = [{name: v for name, v in alt.items() if case.command == "simulate" or name in case.only}
              for alt in (ROUTE_CLOSED if case.name in FILE_ROUTES else ())]
    alternatives = [case.expected, *(alt for alt in closed if alt)]  # only checks that ran can be asked for
    assert any(all(name in got and got[name][0] == status and words in got[name][1]
                   for name, (status, words) in expected.items()) for expected in alternatives), (case.name, got)


def test_the_oracle_itself_is_possible_and_the_targets_are_not(a_oracle_file):
    """The bound is judged by a paired interval: reaching it is not flagged, passing it is."""
    from harness import competitions as C
    from harness.data import ParquetSource, targets_of
    from harness.market.base import load_sidecar
    import numpy as np

    from harness.metrics import sequence_stats
    from harness.simulate import impossible_score

    y = targets_of(C.A, ParquetSource(a_oracle_file).blocks())
    starts = np.arange(0, len(y), C.A.scored_steps_per_sequence)
    hidden = sequence_stats(C.A, y, load_sidecar(a_oracle_file).hidden, starts)
    assert impossible_score(C.A, hidden, hidden, bootstrap=300) is None
    flag = impossible_score(C.A, sequence_stats(C.A, y, y, starts), hidden, bootstrap=300)
    assert flag.status == "FAIL" and "above the best possible score" in flag.reason
