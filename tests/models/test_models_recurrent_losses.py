"""The training losses agree with the competition metric they stand in for."""

import numpy as np
import pytest
import torch

from harness import metrics
from models.recurrent import losses


def _data(seed: int = 0, rows: int = 500, k: int = 2):
    rng = np.random.default_rng(seed)
    y = rng.standard_t(3, size=(1, rows, k))
    y[0, :20] = 0.0  # zero targets get the metric's floor weight
    p = 0.5 * y + rng.normal(size=y.shape) * 3  # some predictions beyond the clip bound
    mask = np.ones((1, rows), dtype=bool)
    mask[0, -50:] = False
    return y, p, mask


def test_pearson_loss_is_minus_the_metric():
    y, p, mask = _data()
    assert (np.abs(p[0, mask[0]]) > metrics.PEARSON_CLIP).any()
    expected = np.mean([metrics.weighted_pearson(y[0, mask[0], j], p[0, mask[0], j]) for j in range(2)])
    got = losses.pearson_loss(torch.from_numpy(p), torch.from_numpy(y), torch.from_numpy(mask))
    assert float(got) == pytest.approx(-expected, abs=1e-6)


def test_pearson_loss_in_float32_is_close_and_differentiable():
    y, p, mask = _data(1)
    pt = torch.from_numpy(p.astype(np.float32)).requires_grad_(True)
    loss = losses.pearson_loss(pt, torch.from_numpy(y.astype(np.float32)), torch.from_numpy(mask))
    loss.backward()
    expected = np.mean([metrics.weighted_pearson(y[0, mask[0], j], p[0, mask[0], j]) for j in range(2)])
    assert float(loss.detach()) == pytest.approx(-expected, abs=1e-5)
    assert torch.isfinite(pt.grad).all() and pt.grad.abs().sum() > 0
    clipped = torch.from_numpy(np.abs(p) > metrics.PEARSON_CLIP)
    assert (pt.grad[clipped] == 0).all()  # no gradient where the metric clips


def test_constant_prediction_scores_zero_like_the_metric():
    y, _, mask = _data(2)
    const = torch.full(y.shape, 0.3, dtype=torch.float64)
    per = losses.weighted_pearson(const, torch.from_numpy(y), torch.from_numpy(mask))
    assert per.abs().max() < 1e-9  # zero up to rounding of the weighted mean, as in the metric
    assert abs(metrics.weighted_pearson(y[0, :, 0], const[0, :, 0].numpy())) < 1e-9


def test_mse_losses_use_only_masked_rows():
    y, p, mask = _data(3)
    y_nan = y.copy()
    y_nan[0, ~mask[0]] = np.nan  # unmasked rows may hold no target at all (A's last step)
    args = (torch.from_numpy(p), torch.from_numpy(y_nan), torch.from_numpy(mask))
    assert float(losses.mse(*args)) == pytest.approx(((p - y)[0, mask[0]] ** 2).mean())
    w = np.abs(y[0, mask[0]]) / np.abs(y[0, mask[0]]).mean(axis=0)
    assert float(losses.abs_weighted_mse(*args)) == pytest.approx((w * (p - y)[0, mask[0]] ** 2).mean())
