"""``python -m harness profile``: the slow function, the slow line and the allocating line are
named; the profile from the child is checked like every other byte from there; user mistakes
are one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.channel import ProtocolError
from harness.cli import main
from harness.profile_cli import short_name
from harness.profile_data import FunctionStat, Place, checked_profile
from harness.profiling import ProfileOptions, library_label, line_targets, profile

# predict spends most of its time in slow_helper (a pure-Python loop), a little in quick_helper,
# and keeps ten arrays of about 1.9 MiB each from its first ten calls.
SLOW = """
import numpy as np


def slow_helper(state):
    total = 0.0
    for i in range(1000):
        total += i * 0.5
    return total


def quick_helper(state):
    return state.sum()


class PredictionModel:
    def __init__(self):
        self.keep = []

    def predict(self, dp):
        slow_helper(dp.state)
        quick_helper(dp.state)
        if len(self.keep) < 10:
            self.keep.append(np.ones(250_000))
        return dp.state.copy() if dp.need_prediction else None
"""


@pytest.fixture(scope="module")
def slow_candidate(tmp_path_factory):
    folder = tmp_path_factory.mktemp("profile") / "slow"
    folder.mkdir()
    (folder / "solution.py").write_text(SLOW)
    return folder


@pytest.fixture(scope="module")
def report(slow_candidate, a_file):
    return profile(slow_candidate, a_file, options=ProfileOptions(sequences=1))


def test_the_slow_helper_is_at_the_top_by_time(report):
    found = report.profiles["functions"]
    assert found.predict_calls == 1000
    by_own = max(found.functions, key=lambda f: f.own_s)
    assert by_own.name == "slow_helper" and by_own.place.own and by_own.calls == 1000
    assert [t[2] for t in line_targets(found.functions, found.predict)][0] == "slow_helper"


def test_direct_time_counts_library_calls_but_not_the_candidates_own(report):
    by_name = {f.name: f for f in report.profiles["functions"].functions if f.place.own}
    quick, predict = by_name["quick_helper"], by_name["predict"]
    # quick_helper calls only a library method: all its cumulative time is its own lines' doing
    assert quick.direct_s == pytest.approx(quick.cumulative_s, rel=1e-6) and quick.direct_s > quick.own_s
    # predict hands most of its time to slow_helper, one of the candidate's own functions
    assert predict.direct_s < predict.cumulative_s - by_name["slow_helper"].cumulative_s * 0.99


def test_line_targets_follow_the_work_not_the_chain_of_calls():
    def stat(name, own, direct, cumulative):
        return FunctionStat(Place("solution.py", len(name), True), name, 10, own, cumulative, direct)

    chain = [stat("predict", 0.1, 0.1, 10.0), stat("wrapper", 0.1, 0.1, 9.9), stat("runner", 0.1, 0.2, 9.8),
             stat("worker", 1.0, 9.0, 9.5), stat("<listcomp>", 5.0, 5.0, 5.0),
             FunctionStat(Place("numpy/x.py", 1, False), "dot", 10, 8.0, 8.0, 8.0)]
    targets = line_targets(chain, ("solution.py", len("predict"), "predict"), count=2)
    assert [t[2] for t in targets] == ["worker", "runner"]


def test_own_files_are_named_by_the_users_path(report, slow_candidate):
    helper = next(f for f in report.profiles["functions"].functions if f.name == "slow_helper")
    file, line = report.where(helper.place).rsplit(":", 1)
    assert Path(file).resolve() == (slow_candidate / "solution.py").resolve() and line == "5"
    assert all("wunderbench-run" not in report.where(f.place) for f in report.profiles["functions"].functions)


def test_the_line_table_names_the_slow_line(report):
    lines = report.profiles["lines"].lines
    in_helper = [line for line in lines if line.function == "slow_helper"]
    in_predict = [line for line in lines if line.function.endswith("predict")]
    assert max(in_helper, key=lambda line: line.time_s).source in ("total += i * 0.5", "for i in range(1000):")
    assert max(in_predict, key=lambda line: line.time_s).source == "slow_helper(dp.state)"
    assert not any(line.function == "quick_helper" and line.time_s > max(x.time_s for x in in_helper)
                   for line in lines)


def test_the_memory_table_shows_the_allocating_line(report):
    lines = report.profiles["memory"].lines
    top = max(lines, key=lambda line: line.increment_mib)
    assert top.source == "self.keep.append(np.ones(250_000))" and top.hits == 10
    assert top.increment_mib > 10  # ten arrays of 1.9 MiB stay resident


def test_each_profiler_keeps_its_time_per_row_beside_the_unprofiled_one(report):
    assert set(report.per_row_us) == {"functions", "lines", "memory"}
    assert report.plain.timing.projection.per_row_us > 0
    assert report.error is None and report.plain.ok


def test_the_command_prints_projection_then_the_tables(slow_candidate, a_file, capsys):
    code = main(["profile", str(slow_candidate), "--data", str(a_file), "--sequences", "1", "--top", "3"])
    out = capsys.readouterr().out
    assert code == 0
    words = " ".join(out.split())
    assert words.index("projected full test set") < words.index("by function") < words.index("by line") \
        < words.index("memory by line")
    assert "Profilers slow predict down" in words and "under line_profiler" in words
    assert "slow_helper(dp.state)" in out and "np.ones(250_000)" in out


@pytest.mark.parametrize("args", [["no/such/folder"], ["{cand}", "--sequences", "0"], ["{cand}", "--sequences", "x"],
                                  ["{cand}", "--top", "0"], ["{cand}", "--data", "no/such.parquet"]])
def test_bad_input_is_one_line_and_exit_two(args, slow_candidate, a_file, capsys):
    argv = ["profile", *(a.format(cand=slow_candidate) for a in args)]
    if "--data" not in argv:
        argv += ["--data", str(a_file)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err + captured.out


def test_a_failing_candidate_is_not_profiled_and_exits_one(candidate, a_file, capsys):
    broken = candidate(SLOW.replace("return dp.state.copy() if", "raise ValueError('nope') if"))
    assert main(["profile", str(broken), "--data", str(a_file), "--sequences", "1"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "failed unprofiled" in out and "by function" not in out


GOOD_FUNCTIONS = {"kind": "functions", "predict_calls": 10, "predict": ["solution.py", 3, "predict"],
                  "functions": [{"file": "solution.py", "line": 3, "name": "predict", "own": True, "calls": 10,
                                 "own_s": 0.5, "cumulative_s": 1.0, "direct_s": 0.7}]}


def _with(path: tuple, value) -> bytes:
    data = json.loads(json.dumps(GOOD_FUNCTIONS))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(data).encode()


def test_a_well_formed_profile_reads_back():
    found = checked_profile(json.dumps(GOOD_FUNCTIONS).encode(), "functions", 10)
    assert found.functions[0].name == "predict" and found.predict == ("solution.py", 3, "predict")


@pytest.mark.parametrize("data", [
    None, b"not json", b"[]", _with(("kind",), "lines"), _with(("predict_calls",), -1),
    _with(("predict_calls",), 11), _with(("predict_calls",), True), _with(("predict",), "solution.py"),
    _with(("functions", 0, "own_s"), float("nan")), _with(("functions", 0, "cumulative_s"), -1.0),
    _with(("functions", 0, "direct_s"), float("inf")), _with(("functions", 0, "direct_s"), None),
    _with(("functions", 0, "calls"), 1.5), _with(("functions", 0, "name"), "x" * 201),
    _with(("functions", 0, "own"), "yes"), _with(("functions", 0, "extra"), 1),
    _with(("functions",), [GOOD_FUNCTIONS["functions"][0]] * 201), _with(("extra",), 1),
], ids=lambda d: "none" if d is None else d[:60].decode(errors="replace"))
def test_a_malformed_profile_is_a_protocol_error(data):
    with pytest.raises(ProtocolError):
        checked_profile(data, "functions", 10)


def test_memory_rows_may_shrink_but_times_may_not():
    row = {"file": "solution.py", "line": 4, "function": "predict", "own": True, "hits": 3, "source": "x = 1"}
    memory = {"kind": "memory", "predict_calls": 3, "predict": None,
              "lines": [{**row, "increment_mib": -2.0, "peak_mib": 80.0}]}
    assert checked_profile(json.dumps(memory).encode(), "memory", 3).lines[0].increment_mib == -2.0
    lines = {"kind": "lines", "predict_calls": 3, "predict": None, "lines": [{**row, "time_s": -2.0}]}
    with pytest.raises(ProtocolError):
        checked_profile(json.dumps(lines).encode(), "lines", 3)


def test_names_of_c_functions_and_library_files_are_short():
    assert short_name("<method 'sum' of 'numpy.ndarray' objects>") == "ndarray.sum"
    assert short_name("<built-in method builtins.len>") == "len"
    assert short_name("<built-in method numpy.empty>") == "numpy.empty"
    assert short_name("slow_helper") == "slow_helper"
    assert library_label("/x/lib/python3.11/site-packages/numpy/_core/numeric.py") == "numpy/_core/numeric.py"
    assert library_label("~") == "built-in"


def test_a_candidate_that_forges_its_profile_gets_no_tables_and_exits_one(candidate, a_file, capsys):
    forger = candidate("""
import json

_dumps = json.dumps


def _forged(obj, *args, **kwargs):  # the child writes profile.json with json.dumps, in this process
    if isinstance(obj, dict) and "predict_calls" in obj:
        obj = dict(obj, predict_calls=10**9)
    return _dumps(obj, *args, **kwargs)


json.dumps = _forged


class PredictionModel:
    def predict(self, dp):
        return dp.state.copy() if dp.need_prediction else None
""")
    assert main(["profile", str(forger), "--data", str(a_file), "--sequences", "1"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "under cProfile: the profile that came back is not the harness's" in out
    assert "1000000000 predict calls" in out and "by function" not in out


def test_over_the_limit_the_reason_comes_first_and_the_tables_follow(slow_candidate, a_file, capsys):
    code = main(["profile", str(slow_candidate), "--data", str(a_file), "--sequences", "1",
                 "--test-sequences", "100000000", "--top", "2"])
    words = " ".join(capsys.readouterr().out.split())
    assert code == 1
    assert words.index("exceeds the 60 min limit") < words.index("by function") < words.index("slow_helper")
