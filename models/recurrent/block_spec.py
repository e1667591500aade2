"""The ``tcn`` and ``window_attn`` networks as plain arrays: what export writes and the numpy
runtimes (``runtime_blocks``) read.

Both share the frame of ``spec`` (normalization, causal per-sequence rescale, head, skip, target
scaling; see ``spec.Frame``); only the body between the cell inputs u and the head differs.

``tcn`` (``body``: ``in.w`` (C, n_in), ``in.b`` (C,); per layer l ``conv{l}.w`` (C, C, k) in
PyTorch's Conv1d layout and ``conv{l}.b`` (C,); ``dilations`` in the header):

    h_t = W_in u_t + b_in
    layer l (dilation d):  h_t <- h_t + relu(b + sum_j W[:, :, j] h_{t - (k - 1 - j) d})
                           (h before the sequence's first row is 0: causal zero padding)
    top features: h_t after the last layer

``window_attn`` (``body``: ``fwd.{w_ih,w_hh,b_ih,b_hh}`` and ``bwd.*`` in PyTorch's GRU layout,
``q.w`` (A, 2H), ``k.w`` (A, 2H); ``window`` W in the header):

    window at t: u_{t-W+1} .. u_t, rows before the sequence's first being 0
    o_i = [forward GRU over the window at i; backward GRU over the window at i]   (2H)
    q = Wq o_W (the current row), k_i = Wk o_i, a = softmax(q . k_i / sqrt(A))
    top features: [sum_i a_i o_i; o_W]   (4H)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from features.storage import save_npz
from models.recurrent.spec import Frame, SpecError, frame_arrays, frame_fields, frame_header, header_array, read_npz

FORMAT = "wunderbench.blocks/1"
KINDS = ("tcn", "window_attn")


@dataclass
class BlockSpec(Frame):
    kind: str
    body: dict[str, np.ndarray]
    dilations: tuple[int, ...] = ()
    window: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SpecError(f"unknown block kind {self.kind!r}; expected one of {KINDS}")
        if not self.head:
            raise SpecError("a spec needs at least one head layer")
        self.dilations = tuple(int(d) for d in self.dilations)
        if self.kind == "tcn":
            self._check_tcn()
        else:
            self._check_window()
        self.check_head(self.width)

    def _array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in self.body:
            raise SpecError(f"{self.kind} spec: missing array {name!r}")
        if self.body[name].shape != shape:
            raise SpecError(f"{self.kind} spec: {name} has shape {self.body[name].shape}, expected {shape}")
        return self.body[name]

    def _check_tcn(self) -> None:
        if not self.dilations or min(self.dilations) < 1:
            raise SpecError(f"tcn spec: dilations must be positive, got {self.dilations}")
        c = self.body.get("in.w", np.zeros((0, 0))).shape[0]
        self._array("in.w", (c, self.n_inputs))
        self._array("in.b", (c,))
        for i in range(len(self.dilations)):
            w = self.body.get(f"conv{i}.w")
            k = 0 if w is None or w.ndim != 3 else w.shape[2]
            self._array(f"conv{i}.w", (c, c, k))
            self._array(f"conv{i}.b", (c,))

    def _check_window(self) -> None:
        if self.window < 1:
            raise SpecError(f"window_attn spec: window must be positive, got {self.window}")
        h = self.hidden
        for d in ("fwd", "bwd"):
            self._array(f"{d}.w_ih", (3 * h, self.n_inputs))
            self._array(f"{d}.w_hh", (3 * h, h))
            self._array(f"{d}.b_ih", (3 * h,))
            self._array(f"{d}.b_hh", (3 * h,))
        a = self.body.get("q.w", np.zeros((0, 0))).shape[0]
        self._array("q.w", (a, 2 * h))
        self._array("k.w", (a, 2 * h))

    @property
    def hidden(self) -> int:
        """GRU width (window_attn)."""
        return self.body["fwd.w_hh"].shape[1] if "fwd.w_hh" in self.body else 0

    @property
    def channels(self) -> int:
        """Convolution channels (tcn)."""
        return self.body["in.w"].shape[0] if "in.w" in self.body else 0

    @property
    def kernel(self) -> int:
        return self.body["conv0.w"].shape[2] if "conv0.w" in self.body else 0

    @property
    def width(self) -> int:
        """Width of the top features the head reads."""
        return self.channels if self.kind == "tcn" else 4 * self.hidden

    def n_parameters(self) -> int:
        arrays = list(self.body.values()) + [a for pair in self.head for a in pair] + list(self.skip or ())
        return int(sum(a.size for a in arrays))

    def save(self, path: str | Path) -> Path:
        """Write the spec as one ``.npz``; returns the path."""
        arrays = {f"body.{k}": v for k, v in self.body.items()}
        arrays.update(frame_arrays(self))
        header = {"format": FORMAT, "kind": self.kind, "dilations": list(self.dilations), "window": self.window,
                  **frame_header(self)}
        arrays["header"] = header_array(header)
        return save_npz(Path(path), arrays)

    @staticmethod
    def load(path: str | Path) -> "BlockSpec":
        arrays, header = read_npz(path, FORMAT)
        body = {k[5:]: v.astype(np.float32) for k, v in arrays.items() if k.startswith("body.")}
        return BlockSpec(kind=header["kind"], body=body, dilations=tuple(header["dilations"]),
                         window=int(header["window"]), **frame_fields(arrays, header))
