"""Each transform computes what its docstring says, checked against independent references.

Parity tests prove the two forms agree; these prove they agree with the definition
(pandas, numpy FFT and polyfit, scikit-learn KMeans, or plain loops), on moderate data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans

from features.autocorr import RollingAutocorrelation
from features.cross import CrossFeatures
from features.lags import Derivatives, Differences, Lags, RateOfChange
from features.orderbook import OrderBookFeatures
from features.regime import RegimeCluster, RelativeVolatility, TrendSlope
from features.rolling import RollingExtrema, RollingMoments
from features.smoothing import EMA
from features.spectral import SpectralPower

NAMES = ("a", "b")
CLOSE = {"rtol": 1e-9, "atol": 1e-9}


def _walk(steps: int = 90, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(steps, len(NAMES))).cumsum(axis=0) + 5.0


def _run(transform, sequence: np.ndarray, training: np.ndarray | None = None) -> np.ndarray:
    transform.setup(NAMES)
    if training is not None:
        transform.fit(training)
    return transform.transform(sequence)


def _back(sequence: np.ndarray, lag: int) -> np.ndarray:
    return sequence[np.maximum(np.arange(len(sequence)) - lag, 0)]


def test_lags_differences_rates_and_derivatives() -> None:
    x = _walk()
    np.testing.assert_array_equal(_run(Lags((1, 7)), x), np.hstack([_back(x, 1), _back(x, 7)]))
    np.testing.assert_array_equal(_run(Differences((2,)), x), x - _back(x, 2))
    np.testing.assert_allclose(_run(RateOfChange((3,)), x), (x - _back(x, 3)) / np.abs(_back(x, 3)), **CLOSE)
    first = x - _back(x, 1)
    np.testing.assert_allclose(_run(Derivatives(), x), np.hstack([first, first - _back(first, 1)]), **CLOSE)


def test_ema_matches_pandas() -> None:
    x = _walk()
    expected = np.hstack([pd.DataFrame(x).ewm(span=span, adjust=False).mean().to_numpy() for span in (3, 12)])
    np.testing.assert_allclose(_run(EMA((3, 12)), x), expected, **CLOSE)


def test_rolling_and_expanding_moments_match_pandas() -> None:
    x = _walk()
    frame = pd.DataFrame(x)
    result = _run(RollingMoments(windows=(4, None), stats=("mean", "std", "zscore")), x)
    blocks = {}
    for window in (4, None):
        roller = frame.expanding() if window is None else frame.rolling(window, min_periods=1)
        mean, std = roller.mean().to_numpy(), roller.std(ddof=0).fillna(0.0).to_numpy()
        zscore = np.where(std > 1e-12, (x - mean) / np.maximum(std, 1e-12), 0.0)
        blocks[window] = (mean, std, zscore)
    expected = np.hstack([blocks[w][i] for i in range(3) for w in (4, None)])
    np.testing.assert_allclose(result, expected, rtol=1e-8, atol=1e-8)
    extrema = _run(RollingExtrema(windows=(5,)), x)
    rolling = frame.rolling(5, min_periods=1)
    np.testing.assert_array_equal(extrema, np.hstack([rolling.min().to_numpy(), rolling.max().to_numpy()]))


def test_autocorrelation_matches_its_definition() -> None:
    x = _walk(60)
    lag, window = 2, 10
    result = _run(RollingAutocorrelation(lags=(lag,), window=window), x)
    y = x - x[0]
    padded = np.vstack([np.zeros((lag, 2)), y])
    for t in range(len(x)):
        rows = np.arange(max(0, t - window + 1), t + 1)
        now, back = y[rows], padded[rows]  # padded[s] is y[s - lag], 0 before the start
        variance = now.var(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            expected = np.clip(((now * back).mean(axis=0) - now.mean(axis=0) ** 2) / variance, -1, 1)
        keep = variance > 1e-9
        np.testing.assert_allclose(result[t, keep], expected[keep], rtol=1e-7, atol=1e-9)


def test_spectral_power_matches_numpy_fft() -> None:
    x = _walk(50)
    window = 8
    result = _run(SpectralPower(window=window, bands=((1, 1), (2, 4))), x)
    padded = np.vstack([np.repeat(x[:1], window - 1, axis=0), x])
    for t in range(len(x)):
        segment = padded[t : t + window] - x[t]
        power = np.abs(np.fft.rfft(segment, axis=0)) ** 2 / window**2
        expected = np.concatenate([power[1], power[2:5].sum(axis=0)])
        np.testing.assert_allclose(result[t], expected, rtol=1e-9, atol=1e-12)


def test_trend_slope_matches_polyfit() -> None:
    training = np.random.default_rng(1).normal(size=(4, 50, 2)).cumsum(axis=1)
    x = _walk(40)
    window = 7
    result = _run(TrendSlope(window=window), x, training)
    scale = training.reshape(-1, 2).std(axis=0)
    for t in range(1, len(x)):
        rows = np.arange(max(0, t - window + 1), t + 1)
        slope = np.polyfit(rows, x[rows], 1)[0]
        np.testing.assert_allclose(result[t], slope * window / scale, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(result[0], 0.0)


def test_relative_volatility_and_regime_cluster_match_their_definitions() -> None:
    rng = np.random.default_rng(2)
    training = rng.normal(size=(30, 40, 2)).cumsum(axis=1) * rng.uniform(0.5, 3, size=(30, 1, 1))
    x = training[3]
    volatility = _run(RelativeVolatility(), x, training)
    changes = np.diff(training, axis=1)
    training_rms = np.sqrt((changes**2).mean(axis=(0, 1)))
    squared_changes = np.concatenate([[[0, 0]], np.cumsum(np.diff(x, axis=0) ** 2, axis=0)])
    running_rms = np.sqrt(squared_changes / np.maximum(np.arange(len(x)), 1)[:, None])
    np.testing.assert_allclose(volatility[:, :2], running_rms / training_rms, **CLOSE)
    np.testing.assert_allclose(volatility[:, 2], (running_rms / training_rms).mean(axis=1), **CLOSE)

    warmup = 15
    cluster = _run(RegimeCluster(warmup=warmup, n_clusters=3), x, training)[:, 0]

    def summary(sequence: np.ndarray, t: int) -> np.ndarray:
        rms = np.sqrt((np.diff(sequence[: t + 1], axis=0) ** 2).sum(axis=0) / max(t, 1))
        return np.concatenate([sequence[: t + 1].mean(axis=0), rms])

    summaries = np.array([summary(sequence, warmup - 1) for sequence in training])
    center, scale = summaries.mean(axis=0), summaries.std(axis=0)
    model = KMeans(n_clusters=3, n_init=4, random_state=0).fit((summaries - center) / scale)
    running = np.array([(summary(x, t) - center) / scale for t in range(len(x))])
    # The transform and this test reach the summaries and distances by different arithmetic, so a
    # row almost equidistant from two centres may fall either way: compare the clear rows only.
    distances = np.sort(((running[:, None, :] - model.cluster_centers_[None]) ** 2).sum(axis=2), axis=1)
    clear = distances[:, 1] - distances[:, 0] > 1e-9 * distances[:, 1]
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(cluster[clear], model.predict(running)[clear])


def test_cross_features_pick_the_most_correlated_pairs() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(size=(5, 60, 1))
    training = np.concatenate([base, rng.normal(size=(5, 60, 1)), 2 * base + 0.1 * rng.normal(size=(5, 60, 1))], axis=2)
    transform = CrossFeatures(n_pairs=1)
    transform.setup(("a", "b", "c"))
    transform.fit(training)
    assert transform.pairs == [("a", "c")]
    result = transform.transform(training[0])
    a, c = training[0, :, 0], training[0, :, 2]
    np.testing.assert_allclose(result, np.column_stack([a * c, a / (c + np.copysign(1e-8, c))]), **CLOSE)


def test_order_book_features_on_a_hand_made_book() -> None:
    names = ("p0", "p1", "p2", "p3", "v0", "v1", "v2", "v3", "dp0", "dp1", "dv0", "dv1")
    #           bid0  bid1  ask0   ask1  vb0 vb1 va0 va1 trade prices  trade volumes
    row = np.array([99.0, 98.0, 101.0, 102.0, 3.0, 1.0, 1.0, 5.0, 101.0, 0.0, 2.0, 0.0])
    later = row.copy()
    later[[0, 2]] += 2.0  # mid moves up by 2
    transform = OrderBookFeatures(mid_change_periods=(1,))
    transform.setup(names)
    result = dict(zip(transform.output_names, transform.transform(np.stack([row, later]))[1]))
    first = dict(zip(transform.output_names, transform.transform(row[None])[0]))
    assert first["ob_spread0"] == 2.0 and first["ob_spread1"] == 4.0 and first["ob_mid"] == 100.0
    assert first["ob_microprice"] == pytest.approx((99 * 1 + 101 * 3) / 4)
    assert first["ob_imbalance0"] == pytest.approx(0.5) and first["ob_imbalance1"] == pytest.approx(-4 / 6)
    assert first["ob_cum_imbalance1"] == pytest.approx((4 - 6) / 10)
    assert first["ob_bid_pressure"] == pytest.approx(3 + 1 / 2) and first["ob_ask_pressure"] == pytest.approx(1 + 5 / 2)
    assert first["ob_pressure_imbalance"] == pytest.approx((3.5 - 3.5) / 7)
    assert first["ob_trade_volume"] == 2.0 and first["ob_trade_count"] == 1.0
    assert first["ob_trade_imbalance"] == pytest.approx(1.0)  # the one trade printed above mid
    assert first["ob_mid_change1"] == 0.0 and result["ob_mid_change1"] == pytest.approx(2.0)
