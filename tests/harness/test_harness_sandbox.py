"""Each bad candidate gets its precise verdict from the sandbox; a good one scores exactly."""

import zipfile

import numpy as np
import pytest
from sklearn.metrics import r2_score

from harness import competitions as C
from harness.candidate import CandidateLayoutError
from harness.sandbox import SandboxOptions, run_in_sandbox
from harness.simulate import SimulateOptions, simulate

GOOD = """
import numpy as np

class PredictionModel:
    def predict(self, dp):
        return dp.state.copy() if dp.need_prediction else None
"""


def run(cand, data, memory_gb=4.0, limit_s=60.0, **kw):
    opts = SandboxOptions(memory_bytes=int(memory_gb * 1024**3), time_limit_s=limit_s, **kw)
    return run_in_sandbox(cand, data, C.A, opts)


def test_good_candidate_scores_as_an_independent_computation(candidate, a_file):
    import pyarrow.parquet as pq

    report = simulate(candidate(GOOD), a_file, options=SimulateOptions(bootstrap=0))
    t = pq.read_table(a_file)
    feats = np.column_stack([t.column(c).to_numpy() for c in C.A.feature_columns]).astype(np.float64)
    step = np.arange(len(feats)) % 1000
    now = (step >= 100) & (step <= 998)
    expected = r2_score(feats[np.roll(now, 1)], feats[now])
    assert report.status == "ok" and report.verdict == "PASS"
    assert report.score.headline == pytest.approx(expected, abs=1e-12)
    assert report.timing.projection.projected_test_s > 0 and report.memory.peak_bytes > 0
    assert report.timing.scored.rows == 3 * 899


@pytest.mark.parametrize(
    "source, kind, message",
    [
        ("class PredictionModel:\n    def __init__(self):\n        raise ValueError('no weights')\n",
         "constructor_error", "no weights"),
        ("class PredictionModel:\n    def __init__(self, path):\n        pass\n", "constructor_error", "no arguments"),
        ("import not_a_module_anywhere\n", "import_error", "not_a_module_anywhere"),
        ("class Model:\n    pass\n", "layout", "no class PredictionModel"),
    ],
)
def test_start_up_failures(source, kind, message, candidate, a_file):
    outcome = run(candidate(source), a_file)
    assert outcome.status == kind and message in outcome.error.message + outcome.error.traceback


def test_raise_at_a_given_row_reports_row_and_traceback(candidate, a_file):
    src = """
    class PredictionModel:
        def predict(self, dp):
            if dp.step_in_seq == 555:
                raise KeyError('feature missing')
            return None if not dp.need_prediction else dp.state.copy()
    """
    outcome = run(candidate(src), a_file)
    assert outcome.status == "predict_error"
    assert outcome.error.step == 555 and outcome.error.row == 555
    assert "solution.py" in outcome.error.traceback and "feature missing" in outcome.error.traceback


def test_nan_names_sequence_and_step(candidate, a_file):
    src = """
    import numpy as np
    class PredictionModel:
        def predict(self, dp):
            if not dp.need_prediction:
                return None
            out = dp.state.copy()
            if dp.step_in_seq == 400:
                out[3] = np.nan
            return out
    """
    outcome = run(candidate(src), a_file)
    assert outcome.status == "non_finite" and outcome.error.step == 400 and "'3'" in outcome.error.message


def test_sleeping_past_the_limit_is_stopped_and_located(candidate, a_file):
    src = """
    import time
    class PredictionModel:
        def predict(self, dp):
            if dp.step_in_seq == 20:
                time.sleep(30)
            return None if not dp.need_prediction else dp.state.copy()
    """
    outcome = run(candidate(src), a_file, limit_s=1.5)
    assert outcome.status == "time_limit"
    assert outcome.error.step == 20 and "limit of 2 s" in outcome.error.message
    assert outcome.wall_s < 10


def test_a_candidate_that_ignores_the_stop_request_is_killed(candidate, a_file):
    src = """
    import signal, time
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    class PredictionModel:
        def predict(self, dp):
            time.sleep(30)
    """
    outcome = run(candidate(src), a_file, limit_s=1.0)
    assert outcome.status == "time_limit" and "did not stop" in outcome.error.message
    assert "during the first sequence" in outcome.error.message


def test_allocating_past_the_memory_cap(candidate, a_file):
    src = """
    import numpy as np
    class PredictionModel:
        def predict(self, dp):
            if dp.step_in_seq == 200:
                self.big = np.ones(3 * 1024**3 // 8)
            return None if not dp.need_prediction else dp.state.copy()
    """
    outcome = run(candidate(src), a_file, memory_gb=1.5)
    assert outcome.status == "out_of_memory" and outcome.error.step == 200


def test_os_exit_is_reported_as_an_early_exit(candidate, a_file):
    src = """
    import os
    class PredictionModel:
        def predict(self, dp):
            if dp.step_in_seq == 300:
                os._exit(3)
            return None if not dp.need_prediction else dp.state.copy()
    """
    outcome = run(candidate(src), a_file)
    assert outcome.status == "exited" and "status 3" in outcome.error.message
    assert "os._exit" in outcome.error.message


def test_opening_a_socket_is_refused_and_named(candidate, a_file):
    src = """
    import socket
    class PredictionModel:
        def predict(self, dp):
            if dp.step_in_seq == 10:
                socket.create_connection(("example.com", 80), timeout=1)
            return None if not dp.need_prediction else dp.state.copy()
    """
    outcome = run(candidate(src), a_file)
    assert outcome.status == "network" and outcome.error.step == 10
    assert "network" in outcome.error.message


def test_thread_variables_are_one_and_core_is_pinned(candidate, a_file):
    src = """
    import os
    class PredictionModel:
        def __init__(self):
            assert os.environ["OMP_NUM_THREADS"] == "1"
            assert len(os.sched_getaffinity(0)) == 1
        def predict(self, dp):
            return None if not dp.need_prediction else dp.state.copy()
    """
    assert run(candidate(src), a_file).status == "ok"


def test_repo_modules_are_not_importable(candidate, a_file):
    src = """
    import features
    class PredictionModel:
        def predict(self, dp):
            return None
    """
    outcome = run(candidate(src), a_file)
    assert outcome.status == "import_error" and "features" in outcome.error.message


def test_zip_with_solution_in_a_subfolder_is_refused(tmp_path, a_file):
    archive = tmp_path / "nested.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("my_solution/solution.py", GOOD)
    with pytest.raises(CandidateLayoutError, match="inside 'my_solution'"):
        run(archive, a_file)


def test_zip_with_parent_path_is_refused(tmp_path, a_file):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("solution.py", GOOD)
        zf.writestr("../escape.py", "x = 1")
    with pytest.raises(CandidateLayoutError, match=r"'\.\.'"):
        run(archive, a_file)


PUBLIC_STYLE = """
import os
import sys

import numpy as np

CURRENT_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.append(f"{CURRENT_DIR}/../..")

from utils import DataPoint, ScorerStepByStep  # noqa: E402
from helpers import decay  # noqa: E402


class PredictionModel:
    def __init__(self):
        self.current_seq_ix = None
        self.ema = None

    def predict(self, data_point: DataPoint) -> np.ndarray | None:
        if self.current_seq_ix != data_point.seq_ix:
            self.current_seq_ix = data_point.seq_ix
            self.ema = data_point.state.copy()
        self.ema = decay() * self.ema + (1 - decay()) * data_point.state
        if not data_point.need_prediction:
            return None
        return self.ema.copy()


if __name__ == "__main__":
    scorer = ScorerStepByStep(f"{CURRENT_DIR}/../datasets/train.parquet")
    print(scorer.score(PredictionModel()))
"""


def test_public_style_solution_runs_unchanged_from_folder_and_zip(candidate, tmp_path, a_file):
    folder = candidate(PUBLIC_STYLE, **{"helpers.py": "def decay():\n    return 0.9\n"})
    from_folder = run(folder, a_file)
    archive = tmp_path / "public.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f.name)
    from_zip = run(archive, a_file)
    assert from_folder.status == "ok" and from_zip.status == "ok"
    assert from_folder.by_sequence == from_zip.by_sequence and len(from_folder.by_sequence.seq_ix) == 3
    assert from_folder.predictions is None  # per-sequence sums only, unless asked
    kept = run(folder, a_file, keep_predictions=True)
    assert kept.predictions.shape == (3 * 899, 32) and kept.by_sequence == from_folder.by_sequence


def test_a_killed_child_is_reported_as_killed(candidate, a_file):
    src = """
    import os, signal
    class PredictionModel:
        def predict(self, dp):
            if dp.step_in_seq == 5:
                os.kill(os.getpid(), signal.SIGKILL)
    """
    outcome = run(candidate(src), a_file)
    assert outcome.status == "killed" and "SIGKILL" in outcome.error.message
    assert "out-of-memory killer" in outcome.error.message


def test_a_native_crash_is_reported_as_a_crash(candidate, a_file):
    src = """
    import ctypes
    class PredictionModel:
        def predict(self, dp):
            ctypes.string_at(0)
    """
    outcome = run(candidate(src), a_file)
    assert outcome.status == "crashed" and "SIGSEGV" in outcome.error.message


def test_memory_of_child_processes_counts_against_the_cap(candidate, a_file):
    src = """
    import subprocess, sys, time
    import numpy as np
    HOG = "import numpy, time; a = numpy.ones(700 * 1024**2 // 8); time.sleep(20)"
    class PredictionModel:
        def __init__(self):
            self.hog = subprocess.Popen([sys.executable, "-c", HOG])
            self.mine = np.ones(700 * 1024**2 // 8)
            time.sleep(20)
        def predict(self, dp):
            return None
    """
    outcome = run(candidate(src), a_file, memory_gb=1.2)
    assert outcome.status == "out_of_memory" and "and its children" in outcome.error.message
    assert "in the constructor" in outcome.error.message


def test_a_solution_folder_runs_as_its_zip_with_project_modules_vendored(candidate, a_file):
    src = """
    import features
    class PredictionModel:
        def predict(self, dp):
            return dp.state.copy() if dp.need_prediction else None
    """
    folder = candidate(src, **{"manifest.json": '{"competition": "A", "artifacts": []}'})
    outcome = run(folder, a_file)
    assert outcome.status == "ok" and "features" in outcome.modules
