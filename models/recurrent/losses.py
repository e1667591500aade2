"""Training losses over masked rows: MSE, |target|-weighted MSE, and a weighted Pearson loss.

All take predictions and targets (B, T, K) and a mask (B, T) of the rows that count, and
pool the rows of the batch, as the metrics pool the rows of a file. The Pearson loss
follows ``harness.metrics.weighted_pearson`` step for step (predictions clipped to the
metric's bound, weights max(|y|, floor), moments divided by the weight sum), so its value is
exactly minus the metric's mean over targets; a test pins that.
"""

from __future__ import annotations

import torch

from harness.metrics import PEARSON_CLIP, PEARSON_MIN_WEIGHT


def _rows(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    m = mask.reshape(-1)
    k = pred.shape[-1]
    return pred.reshape(-1, k)[m], target.reshape(-1, k)[m]


def mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the masked rows and every output."""
    p, y = _rows(pred, target, mask)
    return ((p - y) ** 2).mean()


def abs_weighted_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                     weight_target: torch.Tensor | None = None) -> torch.Tensor:
    """MSE with each row weighted by |target| normalized to mean 1 per output, which leans the
    fit toward the large moves that weighted Pearson rewards. ``weight_target`` gives the
    weights' source when the loss runs in a rescaled space (default: ``target``)."""
    p, y = _rows(pred, target, mask)
    w = (weight_target if weight_target is not None else target).reshape(-1, p.shape[-1])[mask.reshape(-1)].abs()
    w = w / w.mean(dim=0, keepdim=True).clamp_min(1e-12)
    return (w * (p - y) ** 2).mean()


def weighted_pearson(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                     clip: float = PEARSON_CLIP, min_weight: float = PEARSON_MIN_WEIGHT) -> torch.Tensor:
    """Per-output weighted Pearson (K,) of the masked rows, as the B metric computes it.

    Predictions are clipped to [-clip, clip] (no gradient beyond it, as in the metric);
    weights are max(|y|, min_weight). Where a variance is not positive the value is 0 (a constant
    prediction scores 0), again as in the metric.
    """
    p, y = _rows(pred, target, mask)
    p = p.clamp(-clip, clip)
    w = y.abs().clamp_min(min_weight)
    sw = w.sum(dim=0)
    my = (w * y).sum(dim=0) / sw
    mp = (w * p).sum(dim=0) / sw
    dy, dp = y - my, p - mp
    cov = (w * dy * dp).sum(dim=0) / sw
    var_y = (w * dy * dy).sum(dim=0) / sw
    var_p = (w * dp * dp).sum(dim=0) / sw
    ok = (var_y > 0) & (var_p > 0)
    denom = torch.sqrt(var_y.clamp_min(1e-30)) * torch.sqrt(var_p.clamp_min(1e-30))
    return torch.where(ok, cov / denom, torch.zeros_like(cov))


def pearson_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Minus the mean weighted Pearson over outputs: minimizing it maximizes the B metric."""
    return -weighted_pearson(pred, target, mask).mean()
