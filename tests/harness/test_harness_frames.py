"""Whole-table reads with polars give exactly pyarrow's arrays: both decode the same stored
values into the same dtype with no arithmetic, so equality is exact by construction."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from harness import competitions as C
from harness import frames


@pytest.mark.parametrize("fixture", ["a_file", "b_file"])
def test_matrix_and_column_equal_pyarrows_arrays(fixture, request):
    path = request.getfixturevalue(fixture)
    comp = C.A if fixture == "a_file" else C.B
    names = [*comp.feature_columns, *comp.target_columns]
    frame = frames.read(path, ["seq_ix", "step_in_seq", *names])
    arrow = pq.read_table(path)
    for dtype in (np.float32, np.float64):
        expected = np.column_stack([arrow.column(c).to_numpy() for c in names]).astype(dtype)
        got = frames.matrix(frame, names, dtype)
        assert got.dtype == expected.dtype and got.flags.c_contiguous and np.array_equal(got, expected)
    reversed_names = names[::-1]  # the columns come in the order asked for, not the file's
    assert np.array_equal(frames.matrix(frame, reversed_names, np.float64)[:, 0], arrow.column(names[-1]).to_numpy())
    seq = frames.column(frame, "seq_ix", np.int64)
    assert seq.dtype == np.int64 and np.array_equal(seq, arrow.column("seq_ix").to_numpy().astype(np.int64))
    assert frames.column(frame, "step_in_seq").dtype == arrow.column("step_in_seq").to_numpy().dtype
