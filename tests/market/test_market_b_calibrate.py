"""The B calibration table end to end on tiny generated files."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from harness.competitions import SEQUENCE_LENGTH
from harness.market.b import BGenerator
from harness.market.base import sidecar_path, write_set
from harness.market.calibrate_b import calibration_b, load_b
from harness.market.calrow import CalRow

ACCEPTANCE = (
    "t0 autocorrelation, lag 1",
    "t1 autocorrelation, lag 50",
    "t0 excess kurtosis",
    "t1 excess kurtosis",
    "corr(t0, t1), train",
    "t0 weight share of the top 20% |t0|",
    "best single raw feature |corr| with t0",
    "best single raw feature |corr| with t1",
    "p0 autocorrelation, lag 1",
    "per-sequence level share, p0",
    "weighted Pearson, ridge on current features (valid)",
    "weighted Pearson, observable oracle (train)",
    "weighted Pearson, observable oracle (valid)",
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("b_cal")
    gen = BGenerator()
    train = write_set(gen, 24, 1, "train", folder / "train.parquet")
    valid = write_set(gen, 12, 2, "valid", folder / "valid.parquet", shift=1.0)
    return train, valid


def test_table_has_every_acceptance_row_with_a_verdict(files):
    rows = calibration_b(*files, with_gbm=False)  # LightGBM is covered in test_market_b_oracle
    assert all(isinstance(r, CalRow) for r in rows)
    by_name = {r.statistic: r for r in rows}
    for name in ACCEPTANCE:
        matches = [r for s, r in by_name.items() if s == name or s.startswith(name + " (")]
        assert matches, f"missing row {name!r}"
        assert all(isinstance(r.ok, bool) for r in matches), name
    # The constant predictor scores exactly 0; the oracle is reported above the best baseline.
    assert by_name["weighted Pearson, constant (valid)"].generated == 0.0
    assert by_name["weighted Pearson, observable oracle (valid)"].ok
    # valid was drawn with shift=1: the shift rows show it.
    ratio = by_name["valid / train std of t0"].generated
    assert isinstance(ratio, float) and ratio > 1.2


def test_missing_sidecar_drops_only_the_oracle_rows(files, tmp_path):
    train, valid = files
    bare = tmp_path / "valid.parquet"
    bare.write_bytes(valid.read_bytes())
    assert not sidecar_path(bare).exists()
    rows = calibration_b(train, bare, with_gbm=False)
    names = [r.statistic for r in rows]
    assert "weighted Pearson, observable oracle (train)" in names
    assert "weighted Pearson, observable oracle (valid)" not in names
    assert "weighted Pearson, ridge on current features (valid)" in names


def test_load_b_rejects_partial_sequences(files, tmp_path):
    table = pq.read_table(files[0])
    cut = tmp_path / "cut.parquet"
    pq.write_table(table.slice(0, SEQUENCE_LENGTH + 7), cut)
    with pytest.raises(ValueError, match="whole number"):
        load_b(cut)
    with pytest.raises(FileNotFoundError):
        load_b(tmp_path / "absent.parquet")
    data = load_b(files[0])
    assert data.features.dtype == np.float32 and data.n_sequences == 24
