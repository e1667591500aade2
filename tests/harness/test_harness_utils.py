"""Each competition's ``utils`` offers exactly the names the organizers' module for it offers."""

import sys

import pytest

from harness import competitions as C
from harness.utils import module_for


@pytest.mark.parametrize("key, lacks", [("A", "weighted_pearson_correlation"), ("B", "r2_score")])
def test_utils_offers_exactly_the_competitions_names(key, lacks, monkeypatch):
    comp = C.get(key)
    module = module_for(comp)
    monkeypatch.setitem(sys.modules, "utils", module)
    assert sorted(n for n in dir(module) if not n.startswith("_")) == sorted(comp.utils_names)
    for name in comp.utils_names:  # every name resolves (the heavy ones on first use)
        assert getattr(module, name) is not None
    assert not hasattr(module, lacks)
    exec("from utils import DataPoint, ScorerStepByStep", {})  # noqa: S102 - resolves through sys.modules
    with pytest.raises(ImportError, match=lacks):
        exec(f"from utils import {lacks}", {})  # noqa: S102


def test_utils_r2_score_is_scikit_learns_and_the_dummy_model_answers_the_contract():
    from sklearn.metrics import r2_score

    assert module_for(C.A).r2_score is r2_score
    model = module_for(C.B).PredictionModel()
    dp = module_for(C.B).DataPoint(0.0, 150.0, 1.0, __import__("numpy").zeros(32))
    assert model.predict(dp).shape == (2,)
