"""The training arrays line up with the grader: offline scores equal the harness's scoring."""

import numpy as np
import pytest

from harness import competitions as C, metrics
from harness.data import ParquetSource, targets_of
from harness.randomdata import write_random_file
from models.data import load_sequences


@pytest.mark.parametrize("comp", [C.A, C.B])
def test_scored_targets_equal_the_graders_targets(comp, tmp_path):
    path = write_random_file(comp, tmp_path / "x.parquet", 3, seed=7, sequences_per_group=2)
    seqs = load_sequences(path)
    np.testing.assert_array_equal(seqs.scored_targets(), targets_of(comp, ParquetSource(path).blocks()))
    assert seqs.features.shape == (3, 1000, comp.n_features) and seqs.features.dtype == np.float32
    preds = np.random.default_rng(0).standard_normal(seqs.targets.shape)
    flat = preds[:, seqs.scored].reshape(-1, comp.n_outputs)
    # Exact by construction: equal arrays (checked above) of equal shape through the same function.
    assert seqs.score(preds) == metrics.score(comp, targets_of(comp, ParquetSource(path).blocks()), flat)


def test_subset_and_limits(tmp_path):
    path = write_random_file(C.A, tmp_path / "a.parquet", 4, seed=1)
    seqs = load_sequences(path, max_sequences=2)
    assert len(seqs) == 2 and len(seqs.subset(np.array([1]))) == 1
    np.testing.assert_array_equal(seqs.targets[0, 998], seqs.features[0, 999])
    assert np.isnan(seqs.targets[0, 999]).all()
