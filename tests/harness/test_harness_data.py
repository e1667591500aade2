"""Each way a data file can break the contract gets an error naming file, sequence and row."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness import competitions as C
from harness.data import DataError, ParquetSource, TargetTap, targets_of
from harness.randomdata import random_table


def write(table: pa.Table, path) -> str:
    pq.write_table(table, path, row_group_size=1500)  # row groups that split sequences
    return str(path)


def with_column(table: pa.Table, name: str, values) -> pa.Table:
    idx = table.schema.get_field_index(name)
    return table.set_column(idx, name, pa.array(values, type=table.schema.field(name).type))


def fail_message(path) -> str:
    with pytest.raises(DataError) as info:
        ParquetSource(path).validate()
    return str(info.value)


@pytest.fixture
def table():
    return random_table(C.A, 3, seed=0)


def test_valid_file_detects_competition_and_streams_float64_blocks(tmp_path, table):
    src = ParquetSource(write(table, tmp_path / "ok.parquet"))
    assert src.competition is C.A
    blocks = list(src.blocks())
    assert sum(len(b.values) for b in blocks) == 3000
    assert all(b.values.dtype == np.float64 and b.values.flags.c_contiguous for b in blocks)
    b_src = ParquetSource(write(random_table(C.B, 2), tmp_path / "b.parquet"))
    assert b_src.competition is C.B


def test_missing_and_extra_columns(tmp_path, table):
    msg = fail_message(write(table.drop(["7"]), tmp_path / "m.parquet"))
    assert "missing ['7']" in msg and "m.parquet" in msg
    msg = fail_message(write(table.append_column("extra", pa.array(np.zeros(3000))), tmp_path / "e.parquet"))
    assert "unexpected ['extra']" in msg


def test_wrong_competition_requested(tmp_path, table):
    with pytest.raises(DataError, match="those of A"):
        ParquetSource(write(table, tmp_path / "a.parquet"), "B")


def test_short_sequence_is_named(tmp_path, table):
    short = pa.concat_tables([table.slice(0, 999), table.slice(1000)])
    msg = fail_message(write(short, tmp_path / "s.parquet"))
    first = table.column("seq_ix")[0].as_py()
    assert f"previous sequence ({first}) ended at step 998" in msg and "row 999" in msg


def test_truncated_last_sequence(tmp_path, table):
    msg = fail_message(write(table.slice(0, 2500), tmp_path / "t.parquet"))
    assert "ends at step 499" in msg and "truncated" in msg


def test_steps_out_of_order(tmp_path, table):
    steps = table.column("step_in_seq").to_numpy().copy()
    steps[1500], steps[1501] = steps[1501], steps[1500]
    msg = fail_message(write(with_column(table, "step_in_seq", steps), tmp_path / "o.parquet"))
    seq = table.column("seq_ix")[1500].as_py()
    assert f"seq_ix {seq}, row 1500" in msg and "goes from 499 to 501" in msg


def test_need_prediction_pattern(tmp_path, table):
    need = table.column("need_prediction").to_numpy().copy()
    need[2150] = 0
    msg = fail_message(write(with_column(table, "need_prediction", need), tmp_path / "n.parquet"))
    assert "row 2150" in msg and "steps 100..998" in msg


def test_non_finite_feature(tmp_path, table):
    col = table.column("5").to_numpy().copy()
    col[1234] = np.nan
    msg = fail_message(write(with_column(table, "5", col), tmp_path / "f.parquet"))
    assert "row 1234" in msg and "column '5' is nan" in msg


def test_sequence_appearing_twice(tmp_path, table):
    seq = table.column("seq_ix").to_numpy().copy()
    seq[2000:3000] = seq[0]
    msg = fail_message(write(with_column(table, "seq_ix", seq), tmp_path / "d.parquet"))
    assert "row 2000" in msg and "appeared earlier" in msg


def test_corrupt_and_truncated_bytes(tmp_path, table):
    good = tmp_path / "good.parquet"
    write(table, good)
    data = good.read_bytes()
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(data[: len(data) // 2])
    assert "corrupt or truncated" in fail_message(cut)
    garbled = tmp_path / "garbled.parquet"
    garbled.write_bytes(data[:200] + bytes(2000) + data[2200:])
    assert "corrupt or truncated" in fail_message(garbled)
    assert "no such file" in fail_message(tmp_path / "absent.parquet")


def test_targets_are_next_row_for_A_and_same_row_for_B(tmp_path):
    a = random_table(C.A, 2, seed=3)
    src = ParquetSource(write(a, tmp_path / "a.parquet"))
    y = targets_of(C.A, src.blocks())
    feats = np.column_stack([a.column(c).to_numpy() for c in C.A.feature_columns]).astype(np.float64)
    steps = a.column("step_in_seq").to_numpy()
    # the prediction made at step 998 of the first sequence is scored against its step 999
    assert y.shape == (2 * 899, 32)
    np.testing.assert_array_equal(y[898], feats[999])
    np.testing.assert_array_equal(y[0], feats[101])
    np.testing.assert_array_equal(y[899], feats[1101])  # second sequence: nothing crosses the boundary
    assert steps[999] == 999
    b = random_table(C.B, 2, seed=4)
    src = ParquetSource(write(b, tmp_path / "b.parquet"))
    yb = targets_of(C.B, src.blocks())
    t = np.column_stack([b.column("t0").to_numpy(), b.column("t1").to_numpy()]).astype(np.float64)
    assert yb.shape == (2 * 901, 2)
    np.testing.assert_array_equal(yb[0], t[99])
    np.testing.assert_array_equal(yb[900], t[999])


def test_target_tap_passes_blocks_unchanged_and_keeps_their_targets(tmp_path, monkeypatch):
    monkeypatch.setattr("harness.data.BATCH_ROWS", 1300)  # blocks that split sequences
    a = random_table(C.A, 3, seed=5)
    path = write(a, tmp_path / "a.parquet")
    tap = TargetTap(C.A)
    passed = [b.values.copy() for b in tap(ParquetSource(path).blocks())]
    direct = [b.values for b in ParquetSource(path).blocks()]
    assert len(passed) == len(direct) > 1  # several blocks, so the tap joins across block edges
    for x, y in zip(passed, direct):
        np.testing.assert_array_equal(x, y)
    feats = np.column_stack([a.column(c).to_numpy() for c in C.A.feature_columns]).astype(np.float64)
    expected = np.concatenate([feats[s * 1000 + 101 : s * 1000 + 1000] for s in range(3)])
    np.testing.assert_array_equal(tap.targets(), expected)


def test_streaming_keeps_arrow_memory_bounded_by_a_block(tmp_path, monkeypatch):
    monkeypatch.setattr("harness.data.BATCH_ROWS", 1000)
    path = write(random_table(C.B, 12, seed=6), tmp_path / "b.parquet")
    source = ParquetSource(path)
    before = pa.total_allocated_bytes()  # the pool is shared with whatever else is alive
    peak = 0
    for _ in source.blocks():
        peak = max(peak, pa.total_allocated_bytes() - before)
    one_sequence = 1000 * len(C.B.columns) * 8
    # the file holds 12 sequences; a reader that keeps what it read would hold all of them
    assert peak < 4 * one_sequence
    assert pa.total_allocated_bytes() - before < 4 * one_sequence


def test_blocks_hold_the_files_values_whatever_the_column_types_and_batch_cuts(tmp_path, monkeypatch):
    """Columns are read from their buffers (pyarrow's ``to_numpy`` would import pandas): the
    values are pyarrow's own conversion's, in batches cut mid-sequence and mid-row-group, for
    every integer and float width; a null still reaches validation as NaN."""
    monkeypatch.setattr("harness.data.BATCH_ROWS", 700)
    table = random_table(C.A, 3, seed=8)
    types = [pa.int32(), pa.uint16(), pa.int8(), pa.float64(), pa.float16()]
    for name, kind in zip(["seq_ix", "step_in_seq", "need_prediction", "0", "1"], types):
        column = table.column(name).cast(kind) if kind != pa.float16() else pa.array(
            table.column(name).to_numpy().astype(np.float16))
        table = table.set_column(table.schema.get_field_index(name), name, column)
    path = write(table, tmp_path / "types.parquet")
    values = np.concatenate([b.values for b in ParquetSource(path).blocks()])
    expected = np.column_stack([table.column(c).to_numpy().astype(np.float64) for c in C.A.columns])
    np.testing.assert_array_equal(values, expected)
    from harness.data import column_values

    for kind in types:  # a slice of a column starts at an offset into its buffer
        np.testing.assert_array_equal(column_values(pa.array(np.arange(10)).cast(kind).slice(3, 4)), [3, 4, 5, 6])
    col = table.column("5").to_pylist()
    col[2345] = None
    msg = fail_message(write(table.set_column(table.schema.get_field_index("5"), "5", pa.array(col, pa.float32())),
                             tmp_path / "null.parquet"))
    assert "row 2345" in msg and "column '5' is nan" in msg


def test_a_range_of_sequences_is_the_files_rows_there_with_the_files_row_numbers(tmp_path):
    path = write(random_table(C.A, 5, seed=2), tmp_path / "five.parquet")  # row groups of 1,500 rows
    src = ParquetSource(path)
    whole = np.concatenate([b.values for b in src.blocks()])
    for first, count in [(0, None), (1, 2), (2, None), (4, 1), (3, 9)]:
        blocks = list(src.blocks(max_sequences=count, first_sequence=first))
        stop = 5 if count is None else min(5, first + count)
        assert np.array_equal(np.concatenate([b.values for b in blocks]), whole[first * 1000:stop * 1000])
        assert blocks[0].first_row == first * 1000
        assert all(a.first_row + len(a.values) == b.first_row for a, b in zip(blocks, blocks[1:]))
    with pytest.raises(ValueError, match="no sequence at position 5"):
        next(src.blocks(first_sequence=5))


def test_a_range_that_does_not_start_a_sequence_is_named_at_the_files_row(tmp_path, table):
    short = pa.concat_tables([table.slice(0, 999), table.slice(1000)])  # the first sequence lacks a row
    src = ParquetSource(write(short, tmp_path / "s.parquet"))
    with pytest.raises(DataError, match="row 1000 \\(step_in_seq 1\\): a new sequence starts at step 1"):
        list(src.blocks(first_sequence=1))
