"""The PyTorch networks: causal, stateful GRU/LSTM stacks with one head per target group.

It computes exactly the maths written down in ``spec`` (normalization, causal per-sequence
rescale, cells, heads, target scaling), over whole sequences for training, and hands itself
over as a :class:`NetSpec` for export. Outputs come in two spaces: ``forward`` returns the
standardized target space the losses use (targets minus ``out_shift``, over ``out_scale``);
``predict`` returns the competition's units.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.recurrent.spec import Layer, NetSpec

State = tuple[torch.Tensor, ...] | torch.Tensor | None


class Head(nn.Module):
    """Dense layers (ReLU between) from the top hidden state to one target group."""

    def __init__(self, hidden: int, width: int, n_out: int):
        super().__init__()
        dims = [hidden] + ([width] if width else []) + [n_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i + 1 < len(self.layers):
                h = torch.relu(h)
        return h


class SequenceNet(nn.Module):
    """What every network of the recurrent package shares around its body: input normalization
    and the causal per-sequence rescale (``prepare``), one head per target group on the body's
    top features, the optional linear skip, target scaling, batched ``predict``.

    A subclass sets its sizes, then calls this constructor, which calls its ``make_body`` (the
    body's layers) before making the heads; it implements ``body(u, state, at)``: top features
    (B, T', width) of cell inputs ``u`` (B, T, n_in), at the steps ``at`` (all when None).
    """

    def __init__(self, *, n_features: int, output_names: tuple[str, ...], groups: list[list[int]], width: int,
                 head_hidden: int = 0, in_shift: np.ndarray | None = None, in_scale: np.ndarray | None = None,
                 in_clip: float = 0.0, out_shift: np.ndarray | None = None, out_scale: np.ndarray | None = None,
                 seqnorm_prior: float = 0.0, seqnorm_log_input: bool = False, seqnorm_rescale_output: bool = False,
                 mean_prior: float = 0.0, skip: bool = False):
        super().__init__()
        n_out = len(output_names)
        self.output_names = tuple(output_names)
        self.groups = [list(g) for g in groups]
        self.in_clip = float(in_clip)
        self.seqnorm_prior = float(seqnorm_prior)
        self.seqnorm_log_input = bool(seqnorm_log_input) and self.seqnorm_prior > 0
        self.seqnorm_rescale_output = bool(seqnorm_rescale_output) and self.seqnorm_prior > 0
        self.mean_prior = float(mean_prior)

        def buf(value: np.ndarray | None, size: int, fill: float) -> torch.Tensor:
            arr = np.full(size, fill, dtype=np.float32) if value is None else np.asarray(value, dtype=np.float32)
            return torch.from_numpy(arr.copy())

        self.register_buffer("in_shift", buf(in_shift, n_features, 0.0))
        self.register_buffer("in_scale", buf(in_scale, n_features, 1.0))
        self.register_buffer("out_shift", buf(out_shift, n_out, 0.0))
        self.register_buffer("out_scale", buf(out_scale, n_out, 1.0))
        self.n_in = n_features * (1 + int(self.mean_prior > 0)) + int(self.seqnorm_log_input)
        self.make_body()  # before the heads: the order parameters are drawn in, so a seed gives the same net
        self.heads = nn.ModuleList(Head(width, head_hidden, len(g)) for g in self.groups)
        self.skip = nn.Linear(self.n_in, n_out) if skip else None
        order = [i for g in self.groups for i in g]
        self.register_buffer("order", torch.as_tensor(np.argsort(order), dtype=torch.long))

    def prepare(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Normalized cell inputs (B, T, n_in) and the per-step scale (B, T, 1), causal."""
        z = (x - self.in_shift) * self.in_scale
        if self.in_clip:
            z = z.clamp(-self.in_clip, self.in_clip)
        if not self.seqnorm_prior and not self.mean_prior:
            return z, None
        zd = z.double()
        n = torch.arange(1, z.shape[1] + 1, dtype=torch.float64, device=z.device)
        if self.seqnorm_prior:
            m2 = torch.cumsum((zd**2).mean(dim=2), dim=1)
            scale = torch.sqrt((self.seqnorm_prior + m2) / (self.seqnorm_prior + n)).float().unsqueeze(2)
        else:
            scale = torch.ones_like(z[:, :, :1])
        parts = [z / scale]
        if self.seqnorm_log_input:
            parts.append(torch.log(scale))
        if self.mean_prior:
            mean = (torch.cumsum(zd, dim=1) / (self.mean_prior + n)[None, :, None]).float()
            parts.append(mean / scale)
        return torch.cat(parts, dim=2) if len(parts) > 1 else parts[0], scale

    def make_body(self) -> None:
        """Create the body's layers (``self.n_in`` is known; the subclass set its sizes before)."""
        raise NotImplementedError

    def body(self, u: torch.Tensor, state: State, at: torch.Tensor | None) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, state: State = None, prepared: tuple | None = None,
                at: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        """Standardized-space outputs (B, T, K) of rows ``x`` (B, T, F) and the final state.

        ``prepared`` lets truncated back-propagation pass a slice of ``prepare``'s output, so the
        per-sequence scale of a later chunk still counts every earlier row of the sequence.
        ``at`` (sorted step indices) asks for the outputs of those steps only, (B, len(at), K):
        a windowed body then computes only those windows (training on sampled steps).
        """
        u, scale = prepared if prepared is not None else self.prepare(x)
        h, state = self.body(u, state, at)
        if at is not None:
            u = u[:, at]
            scale = None if scale is None else scale[:, at]
        y = torch.cat([head(h) for head in self.heads], dim=2)[:, :, self.order]
        if self.skip is not None:
            y = y + self.skip(u)
        if self.seqnorm_rescale_output:
            y = y * scale
        return y, state

    def to_units(self, y_std: torch.Tensor) -> torch.Tensor:
        """Standardized outputs to the competition's units."""
        return y_std * self.out_scale + self.out_shift

    @torch.no_grad()
    def predict(self, x: np.ndarray, batch: int = 256) -> np.ndarray:
        """Whole-sequence predictions (S, T, K) float64 in the competition's units."""
        was = self.training
        self.eval()
        out = []
        for a in range(0, x.shape[0], batch):
            y, _ = self(torch.from_numpy(np.ascontiguousarray(x[a : a + batch], dtype=np.float32)))
            out.append(self.to_units(y).double().numpy())
        self.train(was)
        return np.concatenate(out) if out else np.zeros((0, x.shape[1], len(self.output_names)))

    def frame(self) -> dict:
        """The shared part of a spec (normalization, head, skip, target scaling) as plain arrays."""
        return dict(
            head=_merge_heads(self.heads, self.groups, len(self.output_names), _arr),
            in_shift=_arr(self.in_shift), in_scale=_arr(self.in_scale),
            out_shift=_arr(self.out_shift), out_scale=_arr(self.out_scale),
            in_clip=self.in_clip, seqnorm_prior=self.seqnorm_prior, seqnorm_log_input=self.seqnorm_log_input,
            seqnorm_rescale_output=self.seqnorm_rescale_output, mean_prior=self.mean_prior,
            skip=None if self.skip is None else (_arr(self.skip.weight), _arr(self.skip.bias)),
            output_names=self.output_names,
        )


def _arr(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32).copy()


class RecurrentNet(SequenceNet):
    """Stacked GRU/LSTM cells carrying their state from row to row."""

    def __init__(self, *, n_features: int, output_names: tuple[str, ...], groups: list[list[int]], cell: str = "gru",
                 hidden: int = 128, layers: int = 2, **frame):
        self.cell, self.hidden, self.layers = cell, hidden, layers
        super().__init__(n_features=n_features, output_names=output_names, groups=groups, width=hidden, **frame)

    def make_body(self) -> None:
        rnn = nn.GRU if self.cell == "gru" else nn.LSTM
        self.rnn = rnn(self.n_in, self.hidden, num_layers=self.layers, batch_first=True)

    def body(self, u: torch.Tensor, state: State, at: torch.Tensor | None) -> tuple[torch.Tensor, State]:
        h, state = self.rnn(u, state)
        return (h if at is None else h[:, at]), state

    def to_spec(self, meta: dict | None = None) -> NetSpec:
        """The network as plain float32 arrays (see ``spec`` for the maths)."""
        layers = [Layer(*(_arr(getattr(self.rnn, f"{n}_l{i}")) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
                  for i in range(self.rnn.num_layers)]
        return NetSpec(cell=self.cell, layers=layers, meta=dict(meta or {}), **self.frame())


def _merge_heads(heads: nn.ModuleList, groups: list[list[int]], n_out: int, arr) -> list[tuple[np.ndarray, np.ndarray]]:
    """Several heads as one dense stack: hidden layers side by side, the last block-diagonal,
    rows put back in output order. Same numbers, one matrix product per layer at inference."""
    depth = len(heads[0].layers)
    merged = []
    offsets = [0]
    for d in range(depth):
        last = d + 1 == depth
        ws = [arr(h.layers[d].weight) for h in heads]
        bs = [arr(h.layers[d].bias) for h in heads]
        rows = n_out if last else sum(w.shape[0] for w in ws)
        cols = ws[0].shape[1] if d == 0 else offsets[-1]
        w_all = np.zeros((rows, cols), dtype=np.float32)
        b_all = np.zeros(rows, dtype=np.float32)
        new_offsets = [0]
        for k, (w, b) in enumerate(zip(ws, bs)):
            c0, c1 = (0, cols) if d == 0 else (offsets[k], offsets[k + 1])
            if last:
                idx = groups[k]
                w_all[idx, c0:c1] = w
                b_all[idx] = b
            else:
                r0 = new_offsets[-1]
                w_all[r0 : r0 + w.shape[0], c0:c1] = w
                b_all[r0 : r0 + w.shape[0]] = b
                new_offsets.append(r0 + w.shape[0])
        merged.append((w_all, b_all))
        offsets = new_offsets
    return merged
