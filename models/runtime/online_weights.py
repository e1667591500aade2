"""Online per-output exponential weights: a blend that learns within a sequence which member is right.

The weights start at the static (out-of-fold NNLS) weights w0 and, after each target becomes
known, follow w_m <- w_m * exp(-rate * loss_m), renormalized per output. Unrolled, the weight
used for the prediction at row t is

    w_m,k(t) = w0_m,k * exp(-rate * L_m,k(t)) / sum over members of the same,

where L_m,k(t) is member m's cumulative loss on output k over the predictions whose targets were
revealed before row t. The loss is the squared error divided by the output's target variance
(``inv_scale`` = 1 / variance), so one rate serves outputs of any scale. A member with a zero
static weight stays at zero. Rate 0 is the static blend exactly.

Causal by construction: in A the state of row t + 1 is the target of the prediction at row t,
so when row t arrives the targets of the predictions at rows < t are known, and no other.

Two forms of the same arithmetic: ``ExpWeights`` one row at a time (what the packaged zip runs;
numpy only) and ``blend_sequences`` over whole sequences (training and offline evaluation).
"""

from __future__ import annotations

import numpy as np

RATE_KEY = "online/rate"
SCALE_KEY = "online/scale"


def _normalized(prior: np.ndarray, rate: float, loss: np.ndarray) -> np.ndarray:
    """Weights ``prior * exp(-rate * loss)`` normalized over members (axis 0).

    The loss is shifted by its minimum over the members with a positive prior (per output), so
    the largest exponent is 0: no overflow, and the best member's term never underflows.
    """
    active = prior > 0
    shift = np.where(active, loss, np.inf).min(axis=0)
    w = prior * np.exp(-rate * np.where(active, loss - shift, 0.0))
    return w / w.sum(axis=0)


class ExpWeights:
    """The one-row form: ``observe`` the revealed target of the last predictions, ``blend`` the next."""

    def __init__(self, prior: np.ndarray, rate: float, inv_scale: np.ndarray) -> None:
        self.prior = np.asarray(prior, dtype=np.float64)
        self.rate = float(rate)
        self.inv_scale = np.asarray(inv_scale, dtype=np.float64).reshape(-1)
        if self.prior.ndim != 2 or self.inv_scale.shape != (self.prior.shape[1],):
            raise ValueError(f"online weights: prior {self.prior.shape} needs one loss scale per output, "
                             f"got {self.inv_scale.shape}")
        if (self.prior < 0).any() or not (self.prior.sum(axis=0) > 0).all() or self.rate < 0:
            raise ValueError("online weights need non-negative prior weights with a positive sum per output "
                             "and a non-negative rate")
        self._loss = np.zeros(self.prior.shape)
        self._error = np.zeros(self.prior.shape)
        self._inactive = self.prior <= 0
        self._any_inactive = bool(self._inactive.any())
        self._masked_loss = np.where(self._inactive, np.inf, 0.0)  # + loss: inf for zero-prior members
        self._buffer = np.zeros(self.prior.shape)
        self._shift = np.zeros(self.prior.shape[1])
        self._total = np.zeros(self.prior.shape[1])

    def arrays(self) -> dict[str, np.ndarray]:
        """What ``blend.npz`` holds of it besides the prior (which is the blend's ``coef``)."""
        return {RATE_KEY: np.float64(self.rate), SCALE_KEY: self.inv_scale}

    @classmethod
    def from_arrays(cls, prior: np.ndarray, arrays: dict[str, np.ndarray]) -> "ExpWeights | None":
        """The online weights a ``blend.npz`` holds, or None for a static blend (written without them)."""
        if RATE_KEY not in arrays:
            return None
        return cls(prior, float(arrays[RATE_KEY]), arrays[SCALE_KEY])

    def reset(self) -> None:
        """A new sequence: nothing revealed yet, so the weights are the prior again."""
        self._loss[:] = 0.0

    def observe(self, predictions: np.ndarray, target: np.ndarray) -> None:
        """Add the losses of the members' ``predictions`` (M, K) against their revealed ``target`` (K,)."""
        error = np.subtract(predictions, target, out=self._error)
        np.multiply(error, error, out=error)
        np.multiply(error, self.inv_scale, out=error)
        self._loss += error

    def weights(self) -> np.ndarray:
        """The current (M, K) weights: ``_normalized``'s arithmetic in preallocated buffers, member
        rows combined one by one (a numpy reduction over a few rows costs more than a few calls).
        The returned array is reused by the next call."""
        w, shift, total = self._buffer, self._shift, self._total
        loss = self._loss
        if self._any_inactive:
            np.add(loss, self._masked_loss, out=w)
            loss = w
        shift[:] = loss[0]
        for m in range(1, len(w)):
            np.minimum(shift, loss[m], out=shift)
        np.subtract(self._loss, shift, out=w)
        np.multiply(w, -self.rate, out=w)
        if self._any_inactive:
            np.copyto(w, 0.0, where=self._inactive)  # their prior is 0; keep exp finite so 0 * exp stays 0
        np.exp(w, out=w)
        np.multiply(w, self.prior, out=w)
        total[:] = w[0]
        for m in range(1, len(w)):
            np.add(total, w[m], out=total)
        np.divide(w, total, out=w)
        return w

    def blend(self, predictions: np.ndarray) -> np.ndarray:
        """(K,) blend of the members' (M, K) predictions with the current weights (a new array)."""
        w = self.weights()
        np.multiply(w, predictions, out=w)
        out = w[0].copy()
        for m in range(1, len(w)):
            np.add(out, w[m], out=out)
        return out


def losses_before(predictions: np.ndarray, revealed: np.ndarray, inv_scale: np.ndarray) -> np.ndarray:
    """Each member's cumulative loss (M, S, T, K) known when row t arrives: over rows 0 .. t-1.

    ``predictions`` (M, S, T, K) are the members' (NaN where a row is not predicted);
    ``revealed`` (S, T, K) is the target of the prediction at row t, known from row t + 1 on
    (NaN where none is known within the sequence).
    """
    loss = (predictions - revealed[None]) ** 2 * np.asarray(inv_scale, dtype=np.float64)
    loss = np.where(np.isfinite(loss), loss, 0.0)
    before = np.zeros_like(loss)
    np.cumsum(loss[:, :, :-1], axis=2, out=before[:, :, 1:])
    return before


def sequence_weights(prior: np.ndarray, rate: float, before: np.ndarray) -> np.ndarray:
    """The weights (M, S, T, K) used at each row, from ``losses_before``."""
    prior = np.asarray(prior, dtype=np.float64)[:, None, None, :]
    return _normalized(np.broadcast_to(prior, before.shape), rate, before)


def blend_sequences(prior: np.ndarray, rate: float, inv_scale: np.ndarray, predictions: np.ndarray,
                    revealed: np.ndarray) -> np.ndarray:
    """(S, T, K) online blend of whole sequences (arguments as in ``losses_before``)."""
    before = losses_before(predictions, revealed, inv_scale)
    return (sequence_weights(prior, rate, before) * predictions).sum(axis=0)
