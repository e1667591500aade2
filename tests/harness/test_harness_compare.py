"""``harness compare``: the paired bootstrap against an independent one, pairing by seq_ix, and the
command's refusals of reports it cannot reuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness import competitions as C, metrics
from harness.cli import main
from harness.compare import CompareError, Run, aligned, compare_pair, labels
from harness.report import write_json
from harness.simulation import BySequence, Memory, SandboxFacts, Score, SimulationReport, Timing

ROWS = 40
"""Scored rows per synthetic sequence (the statistics take any length)."""


def _data(comp: C.Competition, sequences: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets and two candidates' predictions, ``sequences`` x ``ROWS`` rows, each sequence with
    its own scale (so which sequences are drawn matters)."""
    rng = np.random.default_rng(seed)
    k = comp.n_outputs
    scale = np.repeat(rng.uniform(0.5, 3.0, size=(sequences, 1)), ROWS, axis=0)
    y = rng.normal(size=(sequences * ROWS, k)) * scale
    a = 0.6 * y + rng.normal(size=y.shape) * scale
    b = 0.5 * y + rng.normal(size=y.shape) * scale
    return y, a, b


def _report(comp: C.Competition, by: BySequence, sha: str | None = "ab" * 32, score: bool = True) -> SimulationReport:
    """A finished report holding ``by`` (what compare reads), the rest plain placeholders."""
    result = Score(metrics.score_from_stats(comp, by.stats)[comp.metric], {}, by_sequence=by) if score else None
    return SimulationReport("cand", "d.parquet", comp.key, comp.metric, None, len(by.seq_ix), 0, result,
                            Timing(None, None, None, 0.0, None, 60.0, 1.5, 10), Memory(0, 1), SandboxFacts("", None, ""),
                            verdict="PASS", data_sha256=sha)


def _run(comp: C.Competition, label: str, y: np.ndarray, p: np.ndarray, seq_ix: list[int]) -> Run:
    starts = np.arange(0, len(y), ROWS)
    return Run(label, "test", _report(comp, BySequence(seq_ix, metrics.sequence_stats(comp, y, p, starts))))


def _independent_bootstrap(comp, y, a, b, n_resamples, seed):
    """Resample whole sequences' rows with numpy's multinomial draws (the same seed, the same
    draws) and score the rows directly with ``metrics.score``: no per-sequence sums involved."""
    n = len(y) // ROWS
    draws = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_resamples)
    names = [comp.metric, *comp.prediction_names]
    diffs = []
    for counts in draws:
        rows = np.concatenate([np.arange(i * ROWS, (i + 1) * ROWS) for i in np.repeat(np.arange(n), counts)])
        sa, sb = metrics.score(comp, y[rows], a[rows]), metrics.score(comp, y[rows], b[rows])
        diffs.append([sa[m] - sb[m] for m in names])
    return np.array(diffs)  # (resamples, 1 + outputs): headline first


@pytest.mark.parametrize("key", ["A", "B"])
def test_the_paired_interval_equals_an_independent_bootstrap_of_rows(key):
    comp = C.get(key)
    y, a, b = _data(comp)
    seq_ix = [11, 3, 40, 7, 25, 0, 19]
    pair = compare_pair(comp, _run(comp, "a", y, a, seq_ix), _run(comp, "b", y, b, seq_ix), n_resamples=200, seed=5)
    diffs = _independent_bootstrap(comp, y, a, b, 200, 5)
    lo, hi = np.quantile(diffs, [0.025, 0.975], axis=0)
    # the same draws and the same percentile rule; the scores differ only in summation order
    assert pair.boot.interval == pytest.approx((lo[0], hi[0]), abs=1e-12, rel=0)
    np.testing.assert_allclose(pair.boot.per_output_interval, np.stack([lo[1:], hi[1:]], axis=1), atol=1e-12, rtol=0)
    assert pair.boot.p_better == np.mean(diffs[:, 0] > 0) and pair.boot.p_worse == np.mean(diffs[:, 0] < 0)
    np.testing.assert_array_equal(pair.boot.per_output_p_better, np.mean(diffs[:, 1:] > 0, axis=0))
    whole_a, whole_b = metrics.score(comp, y, a), metrics.score(comp, y, b)
    assert pair.boot.difference == pytest.approx(whole_a[comp.metric] - whole_b[comp.metric], abs=1e-12, rel=0)
    shares = pair.boot.per_output_p_better
    assert ((0 < shares) & (shares < 1)).any()  # close outputs: neither wins every resample (not a trivial case)
    # metrics.paired_bootstrap_interval is the same bootstrap (one resampling, one way)
    assert metrics.paired_bootstrap_interval(pair_stats(comp, y, a), pair_stats(comp, y, b), 200,
                                             seed=5) == pair.boot.interval


def pair_stats(comp, y, p):
    return metrics.sequence_stats(comp, y, p, np.arange(0, len(y), ROWS))


def test_runs_pair_by_seq_ix_whatever_order_they_hold_them_in():
    comp = C.A
    y, a, b = _data(comp)
    seq_ix = [11, 3, 40, 7, 25, 0, 19]
    first = _run(comp, "a", y, a, seq_ix)
    straight = compare_pair(comp, first, _run(comp, "b", y, b, seq_ix), 100, 1)
    order = np.array([4, 2, 6, 0, 1, 5, 3])  # b's sequences in another order, with their seq_ix
    rows = np.concatenate([np.arange(i * ROWS, (i + 1) * ROWS) for i in order])
    shuffled = compare_pair(comp, first, _run(comp, "b", y[rows], b[rows], [seq_ix[i] for i in order]), 100, 1)
    # aligned() puts b's sums back in a's order: the very same numbers, so the very same result
    assert shuffled.boot.interval == straight.boot.interval
    assert shuffled.boot.difference == straight.boot.difference


def test_runs_of_other_sequences_are_an_error_naming_how_many_differ():
    comp = C.A
    y, a, b = _data(comp)
    first = _run(comp, "a", y, a, [0, 1, 2, 3, 4, 5, 6])
    second = _run(comp, "b", y, b, [0, 1, 2, 3, 4, 5, 9])
    with pytest.raises(CompareError, match="1 only in the first, 1 only in the second"):
        aligned(first, second)


def test_the_probability_is_one_when_a_candidate_gains_on_every_sequence():
    comp = C.A
    y, _, b = _data(comp)
    better = b + 0.3 * (y - b)  # closer to the target on every row: lower squared error on every sequence
    seq_ix = list(range(7))
    pair = compare_pair(comp, _run(comp, "better", y, better, seq_ix), _run(comp, "b", y, b, seq_ix), 300, 0)
    assert pair.boot.p_better == 1.0 and pair.boot.p_worse == 0.0
    assert (pair.boot.per_output_p_better == 1.0).all()
    assert pair.boot.interval[0] > 0


def test_labels_are_names_unless_two_share_one():
    assert labels(["solutions/a_gru", "x/a_gru.zip", "r.json"]) == ["a_gru", "a_gru.zip", "r.json"]
    assert labels(["one/r.json", "two/r.json", "solutions/a_gru/"]) == ["one/r.json", "two/r.json", "a_gru"]


# -- the command ------------------------------------------------------------------------------------------------

GOOD = """
class PredictionModel:
    def predict(self, dp):
        return dp.state.copy() if dp.need_prediction else None
"""


def _stored(tmp_path: Path, comp: C.Competition, sha: str | None, score: bool = True, name: str = "r.json") -> Path:
    y, a, _ = _data(comp, 3)
    by = BySequence([0, 1, 2], metrics.sequence_stats(comp, y, a, np.arange(0, len(y), ROWS)))
    return write_json(_report(comp, by, sha, score), tmp_path / name)


@pytest.mark.parametrize("sha, score, says", [
    ("0" * 64, True, "was made on other data (sha256 000000000000"),
    (None, True, "names no data_sha256"),
    ("same", False, "has no per-sequence statistics"),
])
def test_a_stored_report_that_cannot_be_reused_is_refused_in_one_line(sha, score, says, tmp_path, a_file, capsys):
    import hashlib

    if sha == "same":
        sha = hashlib.sha256(a_file.read_bytes()).hexdigest()
    report = _stored(tmp_path, C.A, sha, score)
    assert main(["compare", str(report), str(report), "--data", str(a_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert says in err and str(report) in err


def test_a_replay_and_its_own_stored_report_compare_equal(candidate, a_file, tmp_path, capsys):
    folder = candidate(GOOD)
    stored = tmp_path / "stored.json"
    assert main(["simulate", str(folder), "--data", str(a_file), "--json", str(stored)]) == 0
    out_json, out_html = tmp_path / "cmp.json", tmp_path / "cmp.html"
    assert main(["compare", str(stored), str(folder), "--data", str(a_file), "--bootstrap", "50",
                 "--json", str(out_json), "--report", str(out_html)]) == 0
    result = json.loads(out_json.read_text())
    pair = result["pairs"][0]
    # the same candidate on the same file: the very same per-sequence sums, so a difference of
    # exactly 0 on every resample (ties: neither is better)
    assert pair["difference"] == 0.0 and pair["interval95"] == [0.0, 0.0]
    assert pair["p_first_better"] == 0.0 and pair["p_second_better"] == 0.0
    assert [c["from"] for c in result["candidates"]] == ["stored report", "replayed"]
    page = out_html.read_text()
    assert "<table>" in page and f"{result['candidates'][0]['score']:.4f}" in page and "<script" not in page
    out = capsys.readouterr().out
    assert "(paired bootstrap: 3 sequences, 50 resamples)" in out and "stored.json" in out


def test_a_candidate_that_fails_is_named_and_nothing_is_compared(candidate, a_file, tmp_path, capsys):
    import hashlib

    stored = _stored(tmp_path, C.A, hashlib.sha256(a_file.read_bytes()).hexdigest())
    broken = candidate(GOOD.replace("return dp.state.copy()", "return {}['boom']"))
    # --sequences above the file's 3: the stored report is cut to what the file holds, not refused
    assert main(["compare", str(stored), str(broken), "--data", str(a_file), "--sequences", "50"]) == 1
    captured = capsys.readouterr()
    assert f"{broken}: FAIL: predict_error" in captured.err and "nothing compared" in captured.out
