"""The network one row at a time in plain numpy: the low-overhead alternative to onnxruntime.

At one row per call the work is a few small matrix-vector products, so the cost is the number
of numpy calls, not the arithmetic. Each GRU layer therefore does a single matrix product on
the stacked vector [input; h] with the gates' rows arranged so that every gate needs one
ufunc: rows of r and z (scaled by 1/2, so sigmoid(x) = 0.5 * tanh(x/2) + 0.5 is one tanh
plus two in-place ops), the input part of n, and the hidden part of n. All buffers are made
once; only the returned prediction is new, because the organizers' scorer keeps the arrays it
is given. ``run_sequences`` evaluates whole sequences at once, batched over sequences, for
offline scores of a spec without torch (the quantized variant's score, for instance).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from models.recurrent.spec import NetSpec

F32 = np.float32


def _stacked_gru(layer, n_in: int, h: int) -> np.ndarray:
    """(in + H + 1, 4H) weights, transposed, with the biases as the last row (the input vector
    ends with a constant 1). Columns: [r, z] (halved), n's input part, n's hidden part."""
    w = np.zeros((4 * h, n_in + h + 1), dtype=F32)
    w[: 2 * h, :n_in] = 0.5 * layer.w_ih[: 2 * h]
    w[: 2 * h, n_in : n_in + h] = 0.5 * layer.w_hh[: 2 * h]
    w[: 2 * h, -1] = 0.5 * (layer.b_ih[: 2 * h] + layer.b_hh[: 2 * h])
    w[2 * h : 3 * h, :n_in] = layer.w_ih[2 * h :]
    w[2 * h : 3 * h, -1] = layer.b_ih[2 * h :]
    w[3 * h :, n_in : n_in + h] = layer.w_hh[2 * h :]
    w[3 * h :, -1] = layer.b_hh[2 * h :]
    return np.ascontiguousarray(w.T)


def _stacked_lstm(layer, n_in: int, h: int) -> np.ndarray:
    """(in + H + 1, 4H) weights, transposed, biases last, gates reordered to [i, f, o] (halved), g."""
    order = np.r_[0:h, h : 2 * h, 3 * h : 4 * h, 2 * h : 3 * h]
    w = np.concatenate([layer.w_ih, layer.w_hh, (layer.b_ih + layer.b_hh)[:, None]], axis=1)[order].astype(F32)
    w[: 3 * h] *= 0.5
    return np.ascontiguousarray(w.T)


class RowPrep:
    """The per-row front of every one-step runtime (``spec``'s normalization maths): writes the
    cell input u of a raw row into a given float32 buffer and returns the per-sequence scale s.
    Works on any spec with the shared fields (``spec.Frame``)."""

    def __init__(self, spec):
        self.n_feat = spec.n_features
        self.n_inputs = spec.n_inputs
        self.shift = spec.in_shift.astype(F32)
        self.scale = spec.in_scale.astype(F32)
        self.clip = float(spec.in_clip)
        self.lo = np.full(self.n_feat, -self.clip, dtype=F32)
        self.hi = np.full(self.n_feat, self.clip, dtype=F32)
        self.prior = float(spec.seqnorm_prior)
        self.stats = spec.running_stats
        self.mean_prior = float(spec.mean_prior)
        self.msum = np.zeros(self.n_feat, dtype=np.float64)
        mean_at = spec.n_features + int(spec.seqnorm and spec.seqnorm_log_input)
        self.mean_slot = slice(mean_at, mean_at + self.n_feat)
        self.log_input = spec.seqnorm and spec.seqnorm_log_input
        self.z = np.zeros(self.n_feat, dtype=F32)
        self.reset()

    def reset(self) -> None:
        self.msum.fill(0.0)
        self.n = 0.0
        self.ss = 0.0

    def __call__(self, row: np.ndarray, u: np.ndarray) -> float:
        """Write the cell input of ``row`` into ``u`` (n_inputs,); return the scale s."""
        z = self.z
        np.subtract(row, self.shift, out=z, casting="same_kind")
        z *= self.scale
        if self.clip:
            np.minimum(z, self.hi, out=z)
            np.maximum(z, self.lo, out=z)
        s = 1.0
        if self.stats:
            self.n += 1.0
            if self.prior:
                self.ss += float(np.dot(z, z)) / self.n_feat
                s = math.sqrt((self.prior + self.ss) / (self.prior + self.n))
                np.divide(z, F32(s), out=u[: self.n_feat])
                if self.log_input:
                    u[self.n_feat] = math.log(s)
            else:
                u[: self.n_feat] = z
            if self.mean_prior:
                self.msum += z
                np.multiply(self.msum, 1.0 / ((self.mean_prior + self.n) * s), out=u[self.mean_slot],
                            casting="same_kind")
        else:
            u[: self.n_feat] = z
        return s


class RowHead:
    """The per-row back of every one-step runtime: head layers (ReLU between) on the top
    features, the skip map of u, the rescale by s and the target scaling (folded into the last
    layer), as a new float64 prediction."""

    def __init__(self, spec):
        head = [(np.ascontiguousarray(w.T, dtype=F32), b.astype(F32)) for w, b in spec.head]
        w_last, b_last = head[-1]  # fold the target scaling into the last head layer
        head[-1] = (w_last * spec.out_scale[None, :].astype(F32), b_last * spec.out_scale.astype(F32))
        self.head = head
        self.skip = None
        if spec.skip is not None:  # transposed, target scaling folded in like the head's
            w_skip, b_skip = spec.skip
            self.skip = (np.ascontiguousarray((w_skip * spec.out_scale[:, None]).T, dtype=F32),
                         (b_skip * spec.out_scale).astype(F32))
        self.rescale = spec.seqnorm and spec.seqnorm_rescale_output
        self.out_shift = spec.out_shift.astype(np.float64)

    def __call__(self, top: np.ndarray, u: np.ndarray, s: float) -> np.ndarray:
        out = top
        for j, (w, b) in enumerate(self.head):
            out = np.dot(out, w)
            out += b
            if j + 1 < len(self.head):
                np.maximum(out, 0.0, out=out)
        if self.skip is not None:
            out += np.dot(u, self.skip[0])
            out += self.skip[1]
        y = out.astype(np.float64)
        if self.rescale:
            y *= s
        y += self.out_shift
        return y


class NumpyStep:
    """One-step inference of a :class:`NetSpec`: ``reset()`` at a new sequence, ``step(row)``.

    Per layer the state lives in ``v[l] = [input; h; 1]``, so one product gives every gate with
    its bias, and the new h is written in place for the next row and copied once into the next
    layer's input. Constants are arrays, not Python scalars: a scalar operand costs numpy a
    conversion on every call.
    """

    def __init__(self, spec: NetSpec):
        self.spec = spec
        h = spec.hidden
        self.h = h
        self.lstm = spec.cell == "lstm"
        self.prep = RowPrep(spec)
        self.back = RowHead(spec)
        widths = [spec.n_inputs] + [h] * (len(spec.layers) - 1)
        stack = _stacked_lstm if self.lstm else _stacked_gru
        self.weights = [stack(layer, n_in, h) for layer, n_in in zip(spec.layers, widths)]
        self.v = [np.zeros(n_in + h + 1, dtype=F32) for n_in in widths]
        self.h_views = [v[n_in : n_in + h] for v, n_in in zip(self.v, widths)]
        self.u = self.v[0][: spec.n_inputs]
        self.a = np.zeros(4 * h, dtype=F32)
        self.tmp = np.zeros(h, dtype=F32)
        self.half = np.full(4 * h, 0.5, dtype=F32)
        n_sig = 3 * h if self.lstm else 2 * h
        self.sig, self.half_sig = self.a[:n_sig], self.half[:n_sig]
        self.c = [np.zeros(h, dtype=F32) for _ in widths] if self.lstm else []
        self.reset()

    def reset(self) -> None:
        """Forget the sequence: zero every state (call when ``seq_ix`` changes)."""
        for v in self.v:
            v.fill(0.0)
            v[-1] = 1.0
        for c in self.c:
            c.fill(0.0)
        self.prep.reset()

    def step(self, row: np.ndarray) -> np.ndarray:
        """Feed one row of features; return the prediction as a new float64 array (K,)."""
        s = self.prep(row, self.u)
        h = self.h
        a, tmp, sig, half_sig = self.a, self.tmp, self.sig, self.half_sig
        last = len(self.v) - 1
        for i, (w, v, hprev) in enumerate(zip(self.weights, self.v, self.h_views)):
            np.dot(v, w, out=a)
            if self.lstm:
                np.tanh(a, out=a)
                sig *= half_sig
                sig += half_sig
                c = self.c[i]
                c *= a[h : 2 * h]
                np.multiply(a[:h], a[3 * h :], out=tmp)
                c += tmp
                np.tanh(c, out=tmp)
                np.multiply(tmp, a[2 * h : 3 * h], out=hprev)
            else:
                np.tanh(sig, out=sig)
                sig *= half_sig
                sig += half_sig
                n = a[2 * h : 3 * h]
                hn = a[3 * h :]
                hn *= a[:h]
                n += hn
                np.tanh(n, out=n)
                np.subtract(hprev, n, out=tmp)
                tmp *= a[h : 2 * h]
                np.add(n, tmp, out=hprev)
            if i < last:
                self.v[i + 1][:h] = hprev
        return self.back(self.h_views[-1], self.u, s)


def load(path: str | Path) -> NumpyStep:
    """The numpy one-step runtime of the spec saved at ``path`` (``.npz``)."""
    return NumpyStep(NetSpec.load(path))


# -- whole sequences, batched over sequences ------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * x) + 0.5


def run_sequences(spec: NetSpec, features: np.ndarray, batch: int = 512) -> np.ndarray:
    """Predictions (S, T, K) float64 of whole sequences (S, T, F), each from a zero state."""
    out = []
    for a in range(0, features.shape[0], batch):
        out.append(_run_batch(spec, features[a : a + batch]))
    return np.concatenate(out) if out else np.zeros((0,) + features.shape[1:2] + (spec.n_outputs,))


def prepare_batch(spec, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell inputs u (S, T, n_inputs) float32 and scales (S, T, 1) of whole sequences ``x`` (the
    batched form of ``RowPrep``), for any spec with the shared fields."""
    s_count, steps, _ = x.shape
    z = ((x.astype(F32) - spec.in_shift) * spec.in_scale).astype(F32)
    if spec.in_clip:
        z = np.clip(z, -spec.in_clip, spec.in_clip)
    scale = np.ones((s_count, steps, 1), dtype=F32)
    n = np.arange(1, steps + 1, dtype=np.float64)
    parts = []
    if spec.seqnorm:
        m2 = np.cumsum((z.astype(np.float64) ** 2).mean(axis=2), axis=1)
        scale = np.sqrt((spec.seqnorm_prior + m2) / (spec.seqnorm_prior + n))[:, :, None].astype(F32)
        if spec.seqnorm_log_input:
            parts.append(np.log(scale))
    if spec.mean_input:
        mean = (np.cumsum(z.astype(np.float64), axis=1) / (spec.mean_prior + n)[None, :, None]).astype(F32)
        parts.append(mean / scale)
    u = np.concatenate([z / scale] + parts, axis=2) if parts else z / scale
    return u, scale


def head_batch(spec, top: np.ndarray, u: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Predictions (S, T, K) float64 from top features (S, T, width) (the batched ``RowHead``)."""
    out = top
    for j, (w, b) in enumerate(spec.head):
        out = out @ w.T + b
        if j + 1 < len(spec.head):
            out = np.maximum(out, 0.0)
    if spec.skip is not None:
        out = out + u @ spec.skip[0].T + spec.skip[1]
    y = out.astype(np.float64)
    if spec.seqnorm and spec.seqnorm_rescale_output:
        y = y * scale.astype(np.float64)
    return y * spec.out_scale.astype(np.float64) + spec.out_shift.astype(np.float64)


def _run_batch(spec: NetSpec, x: np.ndarray) -> np.ndarray:
    s_count, steps, _ = x.shape
    z, scale = prepare_batch(spec, x)
    h_dim = spec.hidden
    hs = [np.zeros((s_count, h_dim), dtype=F32) for _ in spec.layers]
    cs = [np.zeros((s_count, h_dim), dtype=F32) for _ in spec.layers]
    tops = np.empty((s_count, steps, h_dim), dtype=F32)
    for t in range(steps):
        inp = z[:, t]
        for i, layer in enumerate(spec.layers):
            gi = inp @ layer.w_ih.T + layer.b_ih
            gh = hs[i] @ layer.w_hh.T + layer.b_hh
            if spec.cell == "gru":
                r = _sigmoid(gi[:, :h_dim] + gh[:, :h_dim])
                u = _sigmoid(gi[:, h_dim : 2 * h_dim] + gh[:, h_dim : 2 * h_dim])
                n = np.tanh(gi[:, 2 * h_dim :] + r * gh[:, 2 * h_dim :])
                hs[i] = (n + u * (hs[i] - n)).astype(F32)
            else:
                g = gi + gh
                i_g, f_g = _sigmoid(g[:, :h_dim]), _sigmoid(g[:, h_dim : 2 * h_dim])
                c_g, o_g = np.tanh(g[:, 2 * h_dim : 3 * h_dim]), _sigmoid(g[:, 3 * h_dim :])
                cs[i] = (f_g * cs[i] + i_g * c_g).astype(F32)
                hs[i] = (o_g * np.tanh(cs[i])).astype(F32)
            inp = hs[i]
        tops[:, t] = inp
    return head_batch(spec, tops, z, scale)
