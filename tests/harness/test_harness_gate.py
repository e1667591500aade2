"""Each gate check fails on its planted bug; a healthy candidate passes them all; packaging is reproducible."""

import os
import zipfile

import pytest

from harness.gate import CHECKS, GateOptions, gate
from harness.package import PackageError, build_zip

HEALTHY = """
import numpy as np

class PredictionModel:
    def __init__(self):
        self.seq_ix, self.total, self.count = None, None, 0

    def predict(self, dp):
        if dp.seq_ix != self.seq_ix:
            self.seq_ix, self.total, self.count = dp.seq_ix, np.zeros_like(dp.state), 0
        self.total += dp.state
        self.count += 1
        noise = 0.0
        return 0.5 * self.total / self.count + noise if dp.need_prediction else None
"""

ECHO = """
class PredictionModel:
    def predict(self, dp):
        return dp.state.copy() if dp.need_prediction else None
"""


def statuses(candidate, data, **kw):
    kw.setdefault("sequences", 3)
    report = gate(candidate, GateOptions(data=data, **kw))
    return {c.name: c for c in report.checks}, report


def test_healthy_candidate_passes_every_check(candidate, a_file):
    checks, report = statuses(candidate(HEALTHY), a_file)
    assert set(checks) == set(CHECKS)
    assert {n: c.status for n, c in checks.items() if c.status != "PASS"} == {}
    assert not report.failed


def zip_of(tmp_path, name, entries, links=()):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        for arcname, text in entries.items():
            zf.writestr(arcname, text)
        for arcname in links:
            info = zipfile.ZipInfo(arcname)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, "/etc/passwd")
    return path


def test_solution_in_a_subfolder_fails_layout(tmp_path, a_file):
    checks, report = statuses(zip_of(tmp_path, "nested.zip", {"sub/solution.py": ECHO}), a_file)
    assert checks["layout"].status == "FAIL" and "inside 'sub'" in checks["layout"].reason
    assert checks["layout"].reproduce.startswith("python -m harness gate")
    assert checks["runs_clean"].status == "SKIP"


INHERITED = """
import numpy as np

class Base:
    def predict(self, dp):
        return np.zeros_like(dp.state) if dp.need_prediction else None

class PredictionModel(Base):
    pass
"""

NO_PREDICT = """
class PredictionModel:
    def __init__(self):
        self.ready = True
"""


def test_inherited_predict_passes_layout_and_a_missing_one_fails(candidate, a_file):
    checks, _ = statuses(candidate(INHERITED), a_file, only=("layout", "runs_clean"))
    assert checks["layout"].status == "PASS" and "inherited from Base" in checks["layout"].reason
    assert checks["runs_clean"].status == "PASS"
    checks, report = statuses(candidate(NO_PREDICT), a_file, only=("layout",))
    assert checks["layout"].status == "FAIL" and "no predict method" in checks["layout"].reason
    assert report.failed


def test_parent_path_and_link_fail_archive_safety(tmp_path, a_file):
    checks, _ = statuses(zip_of(tmp_path, "dots.zip", {"solution.py": ECHO, "../x.py": "x = 1"}), a_file)
    assert checks["archive"].status == "FAIL" and "'..'" in checks["archive"].reason
    checks, _ = statuses(zip_of(tmp_path, "link.zip", {"solution.py": ECHO}, links=["weights.bin"]), a_file)
    assert checks["archive"].status == "FAIL" and "symbolic link" in checks["archive"].reason


def test_oversize_archive_fails_size(candidate, a_file):
    folder = candidate(ECHO, **{"weights.txt": os.urandom(60_000).hex()})
    checks, _ = statuses(folder, a_file, archive_cap_mb=0.01, only=("size",))
    assert checks["size"].status == "FAIL" and "over the 0.01 MB cap" in checks["size"].reason


def test_import_the_grader_lacks_fails_dependencies_statically_and_at_run_time(candidate, a_file):
    static = candidate("import hypothesis\n" + ECHO)
    checks, _ = statuses(static, a_file, only=("dependencies",))
    assert checks["dependencies"].status == "FAIL" and "hypothesis" in checks["dependencies"].reason
    dynamic = candidate("import importlib\n" + ECHO.replace(
        "class PredictionModel:", "class PredictionModel:\n    def __init__(self):\n        importlib.import_module('hypothesis')\n"))
    checks, _ = statuses(dynamic, a_file, only=("dependencies",))
    assert checks["dependencies"].status == "FAIL" and "hypothesis" in checks["dependencies"].reason


def test_vendored_module_passes_dependencies(candidate, a_file):
    folder = candidate("from helper import shift\n" + ECHO, **{"helper.py": "def shift():\n    return 0\n"})
    checks, _ = statuses(folder, a_file, only=("dependencies",))
    assert checks["dependencies"].status == "PASS"


def test_unseeded_randomness_fails_determinism(candidate, a_file):
    src = HEALTHY.replace("noise = 0.0", "noise = 1e-3 * np.random.default_rng().standard_normal(32)")
    checks, _ = statuses(candidate(src), a_file, only=("deterministic",))
    assert checks["deterministic"].status == "FAIL" and "unseeded" in checks["deterministic"].reason


def test_state_not_reset_fails_state_reset(candidate, a_file):
    src = HEALTHY.replace("if dp.seq_ix != self.seq_ix:", "if self.total is None:")
    checks, _ = statuses(candidate(src), a_file, only=("state_reset",))
    assert checks["state_reset"].status == "FAIL" and "not reset" in checks["state_reset"].reason


def test_nan_at_one_row_fails_runs_clean(candidate, a_file):
    src = HEALTHY.replace("noise = 0.0", "noise = np.nan if dp.step_in_seq == 444 else 0.0")
    checks, _ = statuses(candidate(src), a_file)
    assert checks["runs_clean"].status == "FAIL" and "step_in_seq 444" in checks["runs_clean"].reason
    assert "--sequences 3" in checks["runs_clean"].reproduce


def test_constant_output_warns_not_degenerate(candidate, a_file):
    src = "import numpy as np\n" + ECHO.replace("dp.state.copy()", "np.zeros(32)")
    checks, _ = statuses(candidate(src), a_file, only=("not_degenerate",))
    assert checks["not_degenerate"].status == "WARN" and "constant" in checks["not_degenerate"].reason


def test_sleep_breaks_a_tiny_time_limit(candidate, a_file):
    src = "import time\n" + ECHO.replace("return dp.state", "time.sleep(0.0005)\n        return dp.state")
    checks, _ = statuses(candidate(src), a_file, minutes=0.5, only=("time",))
    assert checks["time"].status == "FAIL" and "of 0.5 min" in checks["time"].reason


def test_allocation_breaks_a_small_memory_margin(candidate, a_file):
    src = "import numpy as np\n" + ECHO.replace(
        "class PredictionModel:", "class PredictionModel:\n    def __init__(self):\n        self.big = np.ones(400 * 1024**2 // 8)\n")
    checks, _ = statuses(candidate(src), a_file, memory_margin_gb=0.3, only=("memory",))
    assert checks["memory"].status == "FAIL" and "margin 0.3 GB" in checks["memory"].reason


def test_thread_count_raised_to_four_warns(candidate, a_file):
    src = "import os\n" + ECHO.replace(
        "class PredictionModel:", "class PredictionModel:\n    def __init__(self):\n        os.environ['OMP_NUM_THREADS'] = '4'\n")
    checks, _ = statuses(candidate(src), a_file, only=("threads",))
    assert checks["threads"].status == "WARN" and "OMP_NUM_THREADS=4" in checks["threads"].reason


def test_score_below_the_simple_baseline_fails(candidate, a_file):
    checks, _ = statuses(candidate(ECHO), a_file, only=("score",))
    assert checks["score"].status == "FAIL" and "simple baseline" in checks["score"].reason


def test_packaged_zip_is_byte_identical_and_runs_from_a_clean_folder(tmp_path, candidate, a_file):
    folder = candidate(HEALTHY, **{"manifest.json": '{"competition": "A", "artifacts": ["w.txt"]}', "w.txt": "1"})
    first = build_zip(folder, tmp_path / "one.zip")
    os.utime(folder / "solution.py", (0, 0))  # a touched file must not change the bytes
    second = build_zip(folder, tmp_path / "two.zip")
    assert first.read_bytes() == second.read_bytes()
    assert sorted(zipfile.ZipFile(first).namelist()) == ["solution.py", "w.txt"]
    with pytest.raises(PackageError, match="--force"):
        build_zip(folder, first)
    checks, report = statuses(first, a_file)
    assert not report.failed, [(c.name, c.reason) for c in report.checks if c.status == "FAIL"]


def test_packager_vendors_project_modules(tmp_path, candidate):
    folder = candidate("from features.pairs import LogRatio  # noqa\n" + ECHO,
                       **{"manifest.json": '{"competition": "A", "artifacts": []}'})
    names = zipfile.ZipFile(build_zip(folder, tmp_path / "v.zip")).namelist()
    assert "features/__init__.py" in names


def test_packager_names_a_missing_artifact(tmp_path, candidate):
    folder = candidate(ECHO, **{"manifest.json": '{"competition": "A", "artifacts": ["model.npz"]}'})
    with pytest.raises(PackageError, match="model.npz.*make train"):
        build_zip(folder, tmp_path / "m.zip")


def test_every_solution_has_its_tox_gate_environment():
    import configparser
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    tox = configparser.ConfigParser()
    tox.read(root / "tox.ini")
    for manifest in (root / "solutions").glob("*/manifest.json"):
        assert f"testenv:gate-{manifest.parent.name}" in tox, f"tox.ini lacks gate-{manifest.parent.name}"


def test_score_sample_grows_to_the_time_budget_beyond_the_check_sample(candidate, a_file):
    folder = candidate(HEALTHY)
    checks, _ = statuses(folder, a_file, sequences=None, check_sequences=2, only=("runs_clean", "score"))
    assert "2 sequences" in checks["runs_clean"].reason and "on 3 sequences" in checks["score"].reason
    checks, _ = statuses(folder, a_file, sequences=None, check_sequences=2, score_seconds=0.0, only=("score",))
    assert "on 2 sequences" in checks["score"].reason


def test_a_fixed_bar_replaces_the_baseline_and_is_judged_by_its_interval(candidate, a_file):
    folder = candidate(ECHO)
    low, _ = statuses(folder, a_file, min_score=-50.0, min_score_reason="a reference floor", only=("score",))
    assert low["score"].status == "PASS" and "threshold (a reference floor) -50.0000" in low["score"].reason
    high, _ = statuses(folder, a_file, min_score=0.9, only=("score",))
    assert high["score"].status == "FAIL"


def test_state_carried_across_sequences_is_not_called_look_ahead(candidate, a_file):
    """Each cut sequence follows a whole one, so a leak from a cut sequence's altered rows shows in
    the whole sequence after it (determinism), never before a cut (causality)."""
    src = HEALTHY.replace("if dp.seq_ix != self.seq_ix:", "if self.total is None:")
    checks, _ = statuses(candidate(src), a_file, only=("deterministic", "causality"))
    assert checks["deterministic"].status == "FAIL" and "carried over" in checks["deterministic"].reason
    assert checks["causality"].status == "SKIP"
