"""The ``tcn`` and ``window_attn`` networks in plain numpy: one row at a time, and whole sequences.

The row's front (normalization, per-sequence scale) and back (head, skip, target scaling) are
``runtime_numpy``'s ``RowPrep`` and ``RowHead``; only the body is here (maths in ``block_spec``).

``TcnStep`` keeps, per layer, a ring buffer of that layer's last ``(k - 1) * d + 1`` inputs, so
a row costs one step of each layer (k taps gathered and one matrix product), not a window
recomputation. ``WindowStep`` keeps a ring of the last W rows' input projections (each row
projected once, when it arrives) and runs both GRU directions over the window on every row:
its cost grows with W. The whole-sequence forms (``run_sequences``) compute the same maths
batched over sequences, for offline scores without torch.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from models.recurrent.block_spec import BlockSpec
from models.recurrent.runtime_numpy import F32, RowHead, RowPrep, head_batch, prepare_batch


class TcnStep:
    """One-step inference of a ``tcn`` spec: ``reset()`` at a new sequence, ``step(row)``."""

    def __init__(self, spec: BlockSpec):
        self.spec = spec
        self.prep = RowPrep(spec)
        self.back = RowHead(spec)
        self.u = np.zeros(spec.n_inputs, dtype=F32)
        self.w_in = np.ascontiguousarray(spec.body["in.w"].T, dtype=F32)
        self.b_in = spec.body["in.b"].astype(F32)
        k, c = spec.kernel, spec.channels
        self.layers = []
        for i, d in enumerate(spec.dilations):
            span = (k - 1) * d + 1
            w = spec.body[f"conv{i}.w"]  # (C_out, C_in, k) -> rows j * C_in + c_in
            w_cat = np.ascontiguousarray(w.transpose(2, 1, 0).reshape(k * c, c), dtype=F32)
            # after writing the current input at ring position p, tap j reads row t - (k - 1 - j) d
            taps = [np.array([(p - (k - 1 - j) * d) % span for j in range(k)]) for p in range(span)]
            self.layers.append((np.zeros((span, c), dtype=F32), taps, w_cat, spec.body[f"conv{i}.b"].astype(F32)))
        self.reset()

    def reset(self) -> None:
        """Forget the sequence: empty every ring (rows before the first are zero)."""
        for ring, *_ in self.layers:
            ring.fill(0.0)
        self.prep.reset()
        self.t = 0

    def step(self, row: np.ndarray) -> np.ndarray:
        """Feed one row of features; return the prediction as a new float64 array (K,)."""
        s = self.prep(row, self.u)
        h = np.dot(self.u, self.w_in)
        h += self.b_in
        t = self.t
        for ring, taps, w_cat, b in self.layers:
            p = t % len(ring)
            ring[p] = h
            o = np.dot(ring.take(taps[p], axis=0).reshape(-1), w_cat)
            o += b
            np.maximum(o, 0.0, out=o)
            h += o
        self.t = t + 1
        return self.back(h, self.u, s)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * x) + 0.5


class _BiGru:
    """Both directions of the window GRU over precomputed input projections, batched over windows."""

    def __init__(self, spec: BlockSpec):
        body = spec.body
        self.h = spec.hidden
        self.w_ih = [body[f"{d}.w_ih"].astype(F32) for d in ("fwd", "bwd")]
        self.b_ih = [body[f"{d}.b_ih"].astype(F32) for d in ("fwd", "bwd")]
        self.w_hh = np.stack([body[f"{d}.w_hh"].T for d in ("fwd", "bwd")]).astype(F32)  # (2, H, 3H)
        self.b_hh = np.stack([body[f"{d}.b_hh"] for d in ("fwd", "bwd")])[:, None, :].astype(F32)  # (2, 1, 3H)
        self.q = np.ascontiguousarray(body["q.w"].T, dtype=F32)
        self.k = np.ascontiguousarray(body["k.w"].T, dtype=F32)
        self.inv_sqrt = F32(1.0 / math.sqrt(body["q.w"].shape[0]))

    def project(self, u: np.ndarray, direction: int) -> np.ndarray:
        """Input projections (..., 3H) of cell inputs u (..., n_in) for one direction."""
        return (u @ self.w_ih[direction].T + self.b_ih[direction]).astype(F32)

    def tops(self, gi_f: np.ndarray, gi_b: np.ndarray) -> np.ndarray:
        """Top features (N, 4H) of windows given as input projections (N, W, 3H), oldest row first."""
        n, w, _ = gi_f.shape
        h_dim = self.h
        h = np.zeros((2, n, h_dim), dtype=F32)
        o = np.empty((n, w, 2 * h_dim), dtype=F32)
        for i in range(w):
            gi = np.stack([gi_f[:, i], gi_b[:, w - 1 - i]])  # (2, N, 3H)
            gh = np.matmul(h, self.w_hh) + self.b_hh
            r = _sigmoid(gi[..., :h_dim] + gh[..., :h_dim])
            z = _sigmoid(gi[..., h_dim : 2 * h_dim] + gh[..., h_dim : 2 * h_dim])
            cand = np.tanh(gi[..., 2 * h_dim :] + r * gh[..., 2 * h_dim :])
            h = (cand + z * (h - cand)).astype(F32)
            o[:, i, :h_dim] = h[0]
            o[:, w - 1 - i, h_dim:] = h[1]
        last = o[:, -1]
        q = last @ self.q  # (N, A)
        scores = np.einsum("nwa,na->nw", o @ self.k, q) * self.inv_sqrt
        scores -= scores.max(axis=1, keepdims=True)
        a = np.exp(scores)
        a /= a.sum(axis=1, keepdims=True)
        return np.concatenate([np.einsum("nw,nwh->nh", a, o), last], axis=1)


class WindowStep:
    """One-step inference of a ``window_attn`` spec: ``reset()`` at a new sequence, ``step(row)``."""

    def __init__(self, spec: BlockSpec):
        self.spec = spec
        self.prep = RowPrep(spec)
        self.back = RowHead(spec)
        self.net = _BiGru(spec)
        self.u = np.zeros(spec.n_inputs, dtype=F32)
        w = spec.window
        self.rings = [np.zeros((w, 3 * spec.hidden), dtype=F32) for _ in range(2)]
        # after writing row t at position p, the window oldest-first starts at p + 1
        self.order = [(p + 1 + np.arange(w)) % w for p in range(w)]
        self.reset()

    def reset(self) -> None:
        """Forget the sequence: rows before the first are zero, so their projections are the biases."""
        for ring, b in zip(self.rings, self.net.b_ih):
            ring[:] = b
        self.prep.reset()
        self.t = 0

    def step(self, row: np.ndarray) -> np.ndarray:
        """Feed one row of features; return the prediction as a new float64 array (K,)."""
        s = self.prep(row, self.u)
        p = self.t % self.spec.window
        windows = []
        for direction, ring in enumerate(self.rings):
            ring[p] = self.net.project(self.u, direction)
            windows.append(ring.take(self.order[p], axis=0)[None])
        self.t += 1
        return self.back(self.net.tops(*windows)[0], self.u, s)


class WindowOnnxStep:
    """``WindowStep`` with the body in onnxruntime (``export_blocks``): the ring holds the last W
    cell inputs, and each row copies the window into a buffer bound once to the graph's input,
    runs it (one thread, as ``runtime_onnx`` sets it up) and applies the numpy head."""

    def __init__(self, spec: BlockSpec, path: str | Path):
        import onnxruntime as ort

        from models.recurrent.runtime_onnx import session_options

        self.spec = spec
        self.session = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
        self.prep = RowPrep(spec)
        self.back = RowHead(spec)
        w, n_in = spec.window, spec.n_inputs
        self.u = np.zeros(n_in, dtype=F32)
        self.ring = np.zeros((w, n_in), dtype=F32)
        self.window = np.zeros((w, 1, n_in), dtype=F32)
        self.window_rows = self.window.reshape(w, n_in)
        self.top = np.zeros((1, 4 * spec.hidden), dtype=F32)
        self.io = self.session.io_binding()
        self.io.bind_ortvalue_input("u", ort.OrtValue.ortvalue_from_numpy(self.window))
        self.io.bind_ortvalue_output("top", ort.OrtValue.ortvalue_from_numpy(self.top))
        self.order = [(p + 1 + np.arange(w)) % w for p in range(w)]
        self.reset()

    def reset(self) -> None:
        """Forget the sequence: rows before the first are zero."""
        self.ring.fill(0.0)
        self.prep.reset()
        self.t = 0

    def step(self, row: np.ndarray) -> np.ndarray:
        """Feed one row of features; return the prediction as a new float64 array (K,)."""
        s = self.prep(row, self.u)
        p = self.t % self.spec.window
        self.ring[p] = self.u
        np.take(self.ring, self.order[p], axis=0, out=self.window_rows)
        self.session.run_with_iobinding(self.io)
        self.t += 1
        return self.back(self.top[0], self.u, s)


def step_runtime(spec: BlockSpec, onnx_path: str | Path | None = None):
    """The one-step runtime of ``spec``'s kind: numpy, or for window_attn the ONNX body at
    ``onnx_path`` when given."""
    if spec.kind == "tcn":
        if onnx_path is not None:
            raise ValueError("the tcn family runs in numpy only")
        return TcnStep(spec)
    return WindowStep(spec) if onnx_path is None else WindowOnnxStep(spec, onnx_path)


def load(path: str | Path):
    """The one-step runtime of the block spec saved at ``path`` (``.npz``)."""
    return step_runtime(BlockSpec.load(path))


# -- whole sequences, batched over sequences ------------------------------------------------------


def _tcn_top(spec: BlockSpec, u: np.ndarray) -> np.ndarray:
    steps = u.shape[1]
    h = (u @ spec.body["in.w"].T + spec.body["in.b"]).astype(F32)
    for i, d in enumerate(spec.dilations):
        w, b = spec.body[f"conv{i}.w"], spec.body[f"conv{i}.b"]
        k = w.shape[2]
        pad = (k - 1) * d
        hp = np.concatenate([np.zeros((h.shape[0], pad, h.shape[2]), dtype=F32), h], axis=1)
        o = b + sum(hp[:, j * d : j * d + steps] @ w[:, :, j].T for j in range(k))
        h = (h + np.maximum(o, 0.0)).astype(F32)
    return h


def _window_top(spec: BlockSpec, u: np.ndarray, block: int = 4096) -> np.ndarray:
    net = _BiGru(spec)
    s_count, steps, _ = u.shape
    w = spec.window
    projected = []
    for direction in range(2):
        gi = net.project(u, direction)
        pad = np.broadcast_to(net.b_ih[direction], (s_count, w - 1, gi.shape[2]))
        projected.append(np.concatenate([pad, gi], axis=1))  # zero rows before the first project to the bias
    tops = np.empty((s_count, steps, 4 * spec.hidden), dtype=F32)
    per = max(1, block // s_count)
    for a in range(0, steps, per):
        chosen = np.arange(a, min(a + per, steps))
        idx = chosen[:, None] + np.arange(w)[None, :]
        windows = [g[:, idx].reshape(-1, w, g.shape[2]) for g in projected]
        tops[:, chosen] = net.tops(*windows).reshape(s_count, len(chosen), -1)
    return tops


def run_sequences(spec: BlockSpec, features: np.ndarray, batch: int = 64) -> np.ndarray:
    """Predictions (S, T, K) float64 of whole sequences (S, T, F), each from an empty history."""
    out = []
    for a in range(0, features.shape[0], batch):
        u, scale = prepare_batch(spec, features[a : a + batch])
        top = _tcn_top(spec, u) if spec.kind == "tcn" else _window_top(spec, u)
        out.append(head_batch(spec, top, u, scale))
    return np.concatenate(out) if out else np.zeros((0,) + features.shape[1:2] + (spec.n_outputs,))
