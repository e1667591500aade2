"""The grader's own clock bounds the times the child reports (issue #13: the child's word)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from harness import channel, clock
from harness.competitions import SEQUENCE_LENGTH
from harness.sandbox import RunOutcome
from harness.simulate import projection

SEQ_BYTES = 24 + SEQUENCE_LENGTH * 35 * 8  # one A sequence on the pipe, header included


def _clock(times: list[float], capacity: int = 3 * SEQ_BYTES, run_s: float | None = None) -> clock.ParentClock:
    """Marks as if one sequence went down the pipe at each time (the first writes fill the pipe)."""
    parent = clock.ParentClock(capacity)
    for k, t in enumerate(times, start=1):
        parent.marks.append((k * SEQ_BYTES, k * SEQUENCE_LENGTH, t))
    if run_s is not None:
        parent.go_at, parent.end_at = 100.0, 100.0 + run_s
    return parent


def test_the_stream_floor_counts_from_past_the_first_sequence_to_the_last_piece():
    # capacity of 3 sequences: the write of the 5th returns only once the child has read past
    # the first (5 - 3 > 1); the child starts the 10th only after the 9th write returned.
    times = [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    floor = _clock(times).steady_floor_s(sequences=10)
    assert floor == pytest.approx((5.0 - 1.0) / 9)


@pytest.mark.parametrize("times, sequences", [([0.0, 0.0, 0.0], 3), ([0.0] * 6 + [1.0], 1), ([], 4)])
def test_no_floor_when_the_stream_fits_in_the_pipe_or_has_one_sequence(times, sequences):
    assert _clock(times).steady_floor_s(sequences) is None


def test_the_pipe_capacity_is_read_from_the_pipe():
    r, w = os.pipe()
    try:
        assert clock.pipe_capacity(w) >= 4096
    finally:
        os.close(r)
        os.close(w)


def test_send_block_reports_the_bytes_the_clock_counts():
    from harness.data import Block

    r, w = os.pipe()
    try:
        assert channel.send_block(w, Block(np.zeros((10, 35)), 0)) == SEQ_BYTES - (SEQUENCE_LENGTH - 10) * 35 * 8
    finally:
        os.close(r)
        os.close(w)


def test_a_report_far_below_the_graders_clock_is_refused_and_a_close_one_is_not():
    parent = _clock([], run_s=10.0)
    assert "disagree with the grader's clock" in clock.check(parent, 2.0, None, 3)
    assert clock.check(parent, 9.5, None, 3) is None
    # the harness's own bookkeeping in the child is forgiven on short runs
    assert clock.check(_clock([], run_s=0.6), 0.1, None, 3) is None


def test_later_sequences_reported_faster_than_the_data_was_taken_are_refused():
    times = [0.0] * 4 + [10.0 * k for k in range(1, 17)]  # 20 sequences, 10 s each once the pipe is full
    parent = _clock(times, run_s=200.0)
    # the total agrees (the time moved into start-up and the first sequence), the rate does not
    assert "ms per sequence" in clock.check(parent, 200.0, 1.0, 20)
    assert clock.check(parent, 200.0, 9.9, 20) is None


def _outcome(**kw) -> RunOutcome:
    base = dict(rows=4 * SEQUENCE_LENGTH, import_s=0.5, construct_s=0.5, replay_s=4.0, sequence_s=[1.0] * 4)
    return RunOutcome(**{**base, **kw})


def test_the_projection_takes_the_larger_of_the_childs_and_the_graders_figures():
    honest = projection(_outcome(), test_sequences=100, safety=1.0).projected_test_s
    assert honest == pytest.approx(1.0 + 1.0 + 99 * 1.0)
    # the parent measured a longer run: the rest of the test set is added to what it measured
    slower = projection(_outcome(measured_run_s=12.0), 100, 1.0).projected_test_s
    assert slower == pytest.approx(12.0 + 96 * 1.0)
    # a floor under the later sequences above their reported mean replaces it
    floored = projection(_outcome(steady_floor_s=2.0), 100, 1.0)
    assert floored.projected_test_s == pytest.approx(1.0 + 1.0 + 99 * 2.0) and floored.per_row_us == 2000.0


ECHO = """
class PredictionModel:
    def predict(self, dp):
        return dp.state.copy() if dp.need_prediction else None
"""


def test_an_honest_run_sits_above_the_floor_the_stream_gives(candidate, tmp_path):
    """Eight sequences in one row group: the feeder cuts them, the pipe fills, and the floor it
    gives lies under what the child measured (same monotonic clock, so it holds by construction)."""
    from harness import competitions as C
    from harness.randomdata import write_random_file
    from harness.sandbox import SandboxOptions, run_in_sandbox

    data = write_random_file(C.A, tmp_path / "a8.parquet", 8, seed=3, sequences_per_group=8)
    outcome = run_in_sandbox(candidate(ECHO), data, C.A, SandboxOptions(memory_bytes=2 * 1024**3, time_limit_s=60))
    assert outcome.ok, outcome.error
    assert outcome.steady_floor_s is not None and 0 < outcome.steady_floor_s <= np.mean(outcome.sequence_s[1:])
    assert outcome.measured_run_s >= outcome.startup_s + outcome.replay_s
