"""The numpy re-application of fitted scikit-learn transforms equals scikit-learn's own."""

from __future__ import annotations

import numpy as np
import pytest
from feature_checks import assert_parity, stream

from features.distribution import QuantileNormalizer, YeoJohnson

NAMES = ("a", "b", "c", "d")


def _training(rng: np.random.Generator) -> np.ndarray:
    data = rng.normal(size=(20, 150, len(NAMES)))
    data[..., 1] = np.round(data[..., 1] * 2)  # few distinct values: repeated quantiles
    data[..., 2] = np.exp(data[..., 2])  # skewed
    data[..., 3] = 4.0  # constant
    return data


def _probe(rng: np.random.Generator, training: np.ndarray) -> np.ndarray:
    """Fresh values, exact training values (quantile hits), and values beyond the extremes."""
    fresh = rng.normal(scale=2.0, size=(300, len(NAMES)))
    seen = training.reshape(-1, len(NAMES))[rng.integers(0, training.shape[0] * training.shape[1], 300)]
    extremes = np.stack([training.reshape(-1, len(NAMES)).min(0) - 5, training.reshape(-1, len(NAMES)).max(0) + 5,
                         training.reshape(-1, len(NAMES)).min(0), training.reshape(-1, len(NAMES)).max(0)])
    return np.concatenate([fresh, seen, extremes])


@pytest.mark.parametrize("distribution", ["normal", "uniform"])
def test_quantile_normalizer_matches_scikit_learn(distribution: str) -> None:
    rng = np.random.default_rng(0)
    training = _training(rng)
    transform = QuantileNormalizer(n_quantiles=50, output_distribution=distribution)
    transform.setup(NAMES)
    transform.fit(training)
    reference = transform.fitted_sklearn(training)
    probe = _probe(rng, training)
    expected = reference.transform(probe)
    assert_parity(transform.transform(probe), expected, tolerance=1e-9)
    assert_parity(stream(transform, probe), expected, tolerance=1e-9)


def test_yeo_johnson_matches_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    training = _training(rng)
    transform = YeoJohnson()
    transform.setup(NAMES)
    transform.fit(training)
    reference = transform.fitted_sklearn(training)
    probe = _probe(rng, training)
    expected = reference.transform(probe)
    assert_parity(transform.transform(probe), expected, tolerance=1e-9)
    assert_parity(stream(transform, probe), expected, tolerance=1e-9)


def test_yeo_johnson_handles_the_logarithmic_lambdas() -> None:
    """lambda = 0 (for x >= 0) and lambda = 2 (for x < 0) switch to log1p, as scipy does."""
    from scipy import stats

    transform = YeoJohnson()
    transform.setup(("x", "y"))
    lambdas = np.array([0.0, 2.0])
    transform.load_fitted_state({"lambdas": lambdas, "mean": np.zeros(2), "scale": np.ones(2)})
    values = np.array([[-3.0, -3.0], [-0.5, -0.5], [0.0, 0.0], [0.7, 0.7], [9.0, 9.0]])
    expected = np.column_stack([stats.yeojohnson(values[:, column], lambdas[column]) for column in range(2)])
    assert_parity(transform.transform(values), expected, tolerance=1e-12)
    assert_parity(stream(transform, values), expected, tolerance=1e-12)


def test_fitted_state_is_plain_numbers() -> None:
    rng = np.random.default_rng(2)
    for transform in (QuantileNormalizer(n_quantiles=30), YeoJohnson()):
        transform.setup(NAMES)
        transform.fit(_training(rng))
        for key, value in transform.fitted_state().items():
            assert isinstance(value, np.ndarray) and value.dtype.kind == "f", key
