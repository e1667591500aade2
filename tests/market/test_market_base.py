"""The shared writer and sidecar: schema, dtypes, scored rows, alignment checks.

Uses a tiny stub generator so these tests pin the writer alone, independent of any market.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow.parquet as pq
import pytest

from harness.competitions import A, B, SEQUENCE_LENGTH, Competition
from harness.market.base import (
    Chunk,
    SidecarMismatch,
    chunk_bounds,
    load_sidecar,
    shuffled_ids,
    sidecar_path,
    split_seed,
    write_set,
)


class StubGenerator:
    """Noise with an oracle equal to a known function of the row, for either competition."""

    def __init__(self, competition: Competition, with_hidden: bool = True) -> None:
        self.competition = competition
        self.with_hidden = with_hidden

    def chunks(self, n_sequences: int, seed: int, split: str, chunk_size: int = 3) -> Iterator[Chunk]:
        comp = self.competition
        ids = shuffled_ids(n_sequences, seed, split)
        for i, (a, b) in enumerate(chunk_bounds(n_sequences, chunk_size)):
            rng = np.random.default_rng(split_seed(seed, split, i))
            s = b - a
            feats = rng.standard_normal((s, SEQUENCE_LENGTH, comp.n_features)).astype(comp.feature_dtype)
            k = comp.n_outputs
            tg = rng.standard_normal((s, SEQUENCE_LENGTH, k)).astype(np.float32) if comp.target_columns else None
            obs = np.broadcast_to(ids[a:b, None, None] * 1000.0 + np.arange(SEQUENCE_LENGTH)[None, :, None], (s, SEQUENCE_LENGTH, k)).copy()
            yield Chunk(ids[a:b], feats, tg, obs, obs + 0.5 if self.with_hidden else None)


@pytest.mark.parametrize("comp", [A, B], ids=["A", "B"])
def test_schema_dtypes_and_need_prediction_follow_the_contract(tmp_path, comp):
    out = write_set(StubGenerator(comp), 7, 3, "train", tmp_path / "set.parquet")
    pf = pq.ParquetFile(out)
    schema = pf.schema_arrow
    assert tuple(schema.names) == comp.columns
    assert schema.field("seq_ix").type.to_pandas_dtype() == np.dtype(comp.index_dtype)
    assert schema.field("step_in_seq").type.to_pandas_dtype() == np.dtype(comp.index_dtype)
    assert schema.field("need_prediction").type.to_pandas_dtype() == np.dtype(comp.need_prediction_dtype)
    for col in comp.feature_columns + comp.target_columns:
        assert schema.field(col).type.to_pandas_dtype() == np.dtype(comp.feature_dtype)
    assert pf.metadata.num_row_groups == 3  # chunks of 3, 3, 1 sequences
    table = pf.read()
    steps = table.column("step_in_seq").to_numpy().reshape(7, SEQUENCE_LENGTH)
    need = table.column("need_prediction").to_numpy().reshape(7, SEQUENCE_LENGTH)
    assert (steps == np.arange(SEQUENCE_LENGTH)).all()
    expected = np.array([comp.need_prediction_at(t) for t in range(SEQUENCE_LENGTH)])
    assert (need == expected).all()
    seq = table.column("seq_ix").to_numpy().reshape(7, SEQUENCE_LENGTH)
    assert (seq == seq[:, :1]).all()
    assert sorted(seq[:, 0]) == list(range(7))


def test_sidecar_lines_up_with_the_scored_rows(tmp_path):
    out = write_set(StubGenerator(A), 5, 1, "valid", tmp_path / "valid.parquet")
    assert sidecar_path(out) == tmp_path / "valid.oracle.parquet"
    side = load_sidecar(out, A)
    assert side is not None and side.hidden is not None
    table = pq.read_table(out, columns=["seq_ix", "step_in_seq", "need_prediction"])
    need = table.column("need_prediction").to_numpy().astype(bool)
    seq = table.column("seq_ix").to_numpy()[need]
    step = table.column("step_in_seq").to_numpy()[need]
    assert side.observable.shape == (5 * A.scored_steps_per_sequence, A.n_outputs)
    np.testing.assert_array_equal(side.observable[:, 0], seq * 1000.0 + step)
    np.testing.assert_array_equal(side.hidden, side.observable + 0.5)
    columns = pq.read_schema(sidecar_path(out)).names
    assert columns[:2] == ["seq_ix", "step_in_seq"]
    assert columns[2:] == [f"oracle_{n}" for n in A.prediction_names] + [f"hidden_{n}" for n in A.prediction_names]


def test_sidecar_without_hidden_state(tmp_path):
    out = write_set(StubGenerator(B, with_hidden=False), 2, 1, "test", tmp_path / "t.parquet")
    side = load_sidecar(out, B)
    assert side is not None and side.hidden is None
    assert side.observable.shape == (2 * B.scored_steps_per_sequence, 2)


def test_missing_sidecar_is_none_and_stale_sidecar_is_refused(tmp_path):
    gen = StubGenerator(A)
    a = write_set(gen, 4, 1, "train", tmp_path / "a.parquet")
    b = write_set(gen, 4, 2, "train", tmp_path / "b.parquet")
    sidecar_path(b).unlink()
    assert load_sidecar(b) is None
    # a's sidecar beside b's data: same size, different sequences
    sidecar_path(a).rename(sidecar_path(b))
    with pytest.raises(SidecarMismatch, match="seq_ix"):
        load_sidecar(b)
    c = write_set(gen, 3, 1, "train", tmp_path / "c.parquet")
    sidecar_path(c).replace(sidecar_path(b))
    with pytest.raises(SidecarMismatch, match="rows"):
        load_sidecar(b)


def test_a_failing_generator_leaves_no_files(tmp_path):
    class Broken(StubGenerator):
        def chunks(self, n_sequences, seed, split, chunk_size=3):
            yield from super().chunks(n_sequences, seed, split, chunk_size)
            raise RuntimeError("boom")

    out = tmp_path / "x.parquet"
    with pytest.raises(RuntimeError, match="boom"):
        write_set(Broken(A), 4, 1, "train", out)
    assert list(tmp_path.iterdir()) == []


def test_seeds_and_splits_give_independent_streams():
    assert not np.array_equal(shuffled_ids(50, 1, "train"), shuffled_ids(50, 2, "train"))
    assert not np.array_equal(shuffled_ids(50, 1, "train"), shuffled_ids(50, 1, "valid"))
    np.testing.assert_array_equal(shuffled_ids(50, 1, "train"), shuffled_ids(50, 1, "train"))
    with pytest.raises(ValueError, match="split"):
        split_seed(1, "dev")


def test_oracle_scores_pair_predictions_with_the_right_rows(tmp_path):
    """The stub's oracle is the next row's state exactly (A) / the targets (B): R² and Pearson of 1."""
    from harness.market.oracle import fraction_of_oracle, oracle_scores, scored_targets

    class Perfect(StubGenerator):
        def chunks(self, n_sequences, seed, split, chunk_size=3):
            for ch in super().chunks(n_sequences, seed, split, chunk_size):
                comp = self.competition
                if comp.target_columns:
                    ch.observable = ch.targets.astype(np.float64)
                else:
                    ch.observable[:, :-1] = ch.features[:, 1:].astype(np.float64)
                ch.hidden = None
                yield ch

    for comp in (A, B):
        out = write_set(Perfect(comp), 4, 2, "valid", tmp_path / f"{comp.key}.parquet")
        scores = oracle_scores(out)
        assert scores is not None and "hidden" not in scores and scores["fraction_of_observable"] is None
        assert scores["observable"] == pytest.approx(1.0)
        assert scored_targets(out).shape == (4 * comp.scored_steps_per_sequence, comp.n_outputs)
    sidecar_path(out).unlink()
    assert oracle_scores(out) is None
    assert fraction_of_oracle(0.2, 0.4) == pytest.approx(0.5)
    assert fraction_of_oracle(0.2, 0.0) is None
