"""Oracle scoring, written once (``score_oracle``): the scores of the sidecar's rows and one rule for the fraction."""

from types import SimpleNamespace

import numpy as np
import pytest

from harness.competitions import A, B
from harness.market.oracle import score_oracle
from harness.metrics import score


def test_score_oracle_scores_the_first_rows_and_gives_one_fraction_rule():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((40, B.n_outputs))
    observable = np.vstack([y + 0.5 * rng.standard_normal(y.shape), np.zeros((5, B.n_outputs))])  # 5 extra rows
    hidden = np.vstack([y, np.zeros((5, B.n_outputs))])
    out = score_oracle(B, y, SimpleNamespace(observable=observable, hidden=hidden), candidate=0.1)
    assert out["observable"] == score(B, y, observable[:40])[B.metric]
    assert out["hidden"] == pytest.approx(1.0)
    assert out["fraction_of_observable"] == pytest.approx(0.1 / out["observable"])
    worse = score_oracle(B, y, SimpleNamespace(observable=-observable, hidden=None), candidate=0.1)
    assert worse["observable"] < 0 and worse["fraction_of_observable"] is None and "hidden" not in worse


def test_a_sidecar_shorter_than_the_scored_rows_is_refused():
    y = np.zeros((10, A.n_outputs))
    with pytest.raises(ValueError, match="regenerate"):
        score_oracle(A, y, SimpleNamespace(observable=np.zeros((9, A.n_outputs)), hidden=None))
