"""Scale and noise augmentation of whole sequences, in standardized units.

Why: on A the per-sequence volatility varies and the 5th-place team's biggest gain was
making the model see more of that variation (scale augmentation) and less of each sequence's
exact values (noise). A sequence's raw rows are scaled about the global mean by one
log-normal factor; when the targets are the next rows (A) they are scaled by the same factor,
so the pair stays consistent. Noise is added to the inputs only.
"""

from __future__ import annotations

import torch


def augment(x: torch.Tensor, y: torch.Tensor, in_shift: torch.Tensor, out_shift: torch.Tensor,
            scale_sigma: float, noise_std: float, prob: float, targets_follow: bool,
            in_std: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented copies of raw inputs ``x`` (B, T, F) and targets ``y`` (B, T, K).

    ``in_std`` is the per-feature standard deviation, so the noise is ``noise_std`` in
    standardized units; ``targets_follow`` scales the targets with the inputs (next-state data).
    """
    if scale_sigma <= 0 and noise_std <= 0:
        return x, y
    b = x.shape[0]
    apply = (torch.rand(b, 1, 1, generator=generator) < prob).float()
    if scale_sigma > 0:
        factor = torch.exp(torch.randn(b, 1, 1, generator=generator) * scale_sigma)
        factor = 1 + apply * (factor - 1)
        x = in_shift + (x - in_shift) * factor
        if targets_follow:
            y = out_shift + (y - out_shift) * factor
    if noise_std > 0:
        x = x + apply * torch.randn(x.shape, generator=generator) * noise_std * in_std
    return x, y
