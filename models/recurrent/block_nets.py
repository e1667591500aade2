"""The PyTorch bodies of the ``tcn`` and ``window_attn`` families (maths in ``block_spec``).

Both sit in ``nets.SequenceNet``'s frame (normalization, heads, skip, target scaling), so they
train through the same loop as the GRU. Neither carries state between calls: ``forward`` is
always given whole sequences from their first row (training uses ``chunk`` = 0).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.recurrent.block_spec import BlockSpec
from models.recurrent.nets import SequenceNet, State, _arr

WINDOW_BLOCK = 4096
"""Windows evaluated per GRU call when a window net computes every step (bounds memory)."""


class TcnNet(SequenceNet):
    """Causal dilated 1-D convolutions with residual connections, after a linear input map."""

    def __init__(self, *, channels: int = 64, dilations: tuple[int, ...] = (1, 2, 4, 8, 16), kernel: int = 3,
                 **frame):
        self.channels, self.dilations, self.kernel = channels, tuple(dilations), kernel
        super().__init__(width=channels, **frame)

    def make_body(self) -> None:
        self.inp = nn.Linear(self.n_in, self.channels)
        self.convs = nn.ModuleList(nn.Conv1d(self.channels, self.channels, self.kernel, dilation=d)
                                   for d in self.dilations)

    def body(self, u: torch.Tensor, state: State, at: torch.Tensor | None) -> tuple[torch.Tensor, State]:
        h = self.inp(u).transpose(1, 2)  # (B, C, T)
        for conv, d in zip(self.convs, self.dilations):
            pad = (conv.kernel_size[0] - 1) * d
            h = h + torch.relu(conv(F.pad(h, (pad, 0))))
        h = h.transpose(1, 2)
        return (h if at is None else h[:, at]), None

    def to_spec(self, meta: dict | None = None) -> BlockSpec:
        body = {"in.w": _arr(self.inp.weight), "in.b": _arr(self.inp.bias)}
        for i, conv in enumerate(self.convs):
            body[f"conv{i}.w"], body[f"conv{i}.b"] = _arr(conv.weight), _arr(conv.bias)
        return BlockSpec(kind="tcn", body=body, dilations=self.dilations, meta=dict(meta or {}), **self.frame())


class WindowAttnNet(SequenceNet):
    """A bidirectional GRU over the trailing ``window`` rows, pooled by attention to the last row."""

    def __init__(self, *, hidden: int = 64, window: int = 100, attn_dim: int = 64, **frame):
        self.hidden, self.window, self.attn_dim = hidden, int(window), attn_dim
        super().__init__(width=4 * hidden, **frame)

    def make_body(self) -> None:
        self.rnn = nn.GRU(self.n_in, self.hidden, batch_first=True, bidirectional=True)
        self.q = nn.Linear(2 * self.hidden, self.attn_dim, bias=False)
        self.k = nn.Linear(2 * self.hidden, self.attn_dim, bias=False)

    def pool(self, windows: torch.Tensor) -> torch.Tensor:
        """Top features (N, 4H) of windows (N, W, n_in), the current row last."""
        o, _ = self.rnn(windows)
        last = o[:, -1]
        q = self.q(last)
        k = self.k(o)
        a = torch.softmax(torch.einsum("nwa,na->nw", k, q) / math.sqrt(q.shape[1]), dim=1)
        return torch.cat([torch.einsum("nw,nwh->nh", a, o), last], dim=1)

    def body(self, u: torch.Tensor, state: State, at: torch.Tensor | None) -> tuple[torch.Tensor, State]:
        b, t, n_in = u.shape
        w = self.window
        padded = F.pad(u, (0, 0, w - 1, 0))  # zero rows before the sequence's first
        steps = torch.arange(t) if at is None else at
        per_block = max(1, WINDOW_BLOCK // max(b, 1))
        tops = []
        for a in range(0, len(steps), per_block):
            chosen = steps[a : a + per_block]
            idx = chosen[:, None] + torch.arange(w)[None, :]  # window of step s: padded rows s .. s + W - 1
            windows = padded[:, idx]  # (B, n, W, n_in)
            tops.append(self.pool(windows.reshape(-1, w, n_in)).reshape(b, len(chosen), -1))
        return torch.cat(tops, dim=1), None

    def to_spec(self, meta: dict | None = None) -> BlockSpec:
        body = {}
        for d, suffix in (("fwd", ""), ("bwd", "_reverse")):
            for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
                torch_name = name.replace("w_", "weight_").replace("b_", "bias_") + "_l0" + suffix
                body[f"{d}.{name}"] = _arr(getattr(self.rnn, torch_name))
        body["q.w"], body["k.w"] = _arr(self.q.weight), _arr(self.k.weight)
        return BlockSpec(kind="window_attn", body=body, window=self.window, meta=dict(meta or {}), **self.frame())
