"""A trained recurrent network as plain arrays: the one format export and both runtimes read.

Why a format of our own: the grader has no reason to need torch, and the network's maths is
small (normalize, optional per-sequence rescale, stacked GRU/LSTM cells, a dense head, undo the
target scaling). Writing that down once as arrays lets the ONNX builder and the numpy step
agree with the PyTorch net by construction, and lets tests compare all three.

The maths, per row ``x`` (float32, features in file order):

    z  = clip((x - in_shift) * in_scale, -in_clip, in_clip)          (no clip when in_clip == 0)
    running statistics, float64 state starting at zero: n += 1;  ss += mean(z**2);  msum += z
    seqnorm (when seqnorm_prior > 0): s = sqrt((prior + ss) / (prior + n)), else s = 1
    u  = [z / s,  log(s) (when seqnorm_log_input),  msum / (mean_prior + n) / s (when mean_prior > 0)]
    cells: for each layer, PyTorch's GRU (gates r, z, n; reset applied after the hidden
           matmul) or LSTM (gates i, f, g, o) with PyTorch's weight layout
    head:  dense layers with ReLU between them, on the top layer's h, plus (when ``skip`` is
           set) a linear map of the cell input u: head + W_skip u + b_skip
    y  = head * s (when seqnorm_rescale_output) * out_scale + out_shift

Weights may be stored as int8 with one float32 scale per output row (``quantize``); a loaded
spec always holds float32 weights, with the int8 form kept for saving and ONNX export.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from features.storage import save_npz

FORMAT = "wunderbench.recurrent/1"
GATES = {"gru": 3, "lstm": 4}
QUANT_LEVELS = 127


class SpecError(ValueError):
    """A spec file or object is malformed; the message says what is wrong."""


@dataclass
class Layer:
    """One recurrent layer in PyTorch's layout: w_ih (G*H, in), w_hh (G*H, H), biases (G*H,)."""

    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray


@dataclass(kw_only=True)
class Frame:
    """What every spec of this package shares: the normalization around the body, the head, the
    skip map and their widths and checks, so the GRU spec and the block specs (``block_spec``)
    state their common part once (keyword-only, so each spec's own fields come first)."""

    head: list[tuple[np.ndarray, np.ndarray]]
    in_shift: np.ndarray
    in_scale: np.ndarray
    out_shift: np.ndarray
    out_scale: np.ndarray
    in_clip: float = 0.0
    seqnorm_prior: float = 0.0
    seqnorm_log_input: bool = False
    seqnorm_rescale_output: bool = False
    mean_prior: float = 0.0
    skip: tuple[np.ndarray, np.ndarray] | None = None
    output_names: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return self.in_shift.shape[0]

    @property
    def n_inputs(self) -> int:
        """Width of the first cell's input: the features, log(scale) and the running means when fed."""
        return self.n_features * (1 + int(self.mean_input)) + int(self.seqnorm and self.seqnorm_log_input)

    @property
    def n_outputs(self) -> int:
        return self.out_shift.shape[0]

    @property
    def seqnorm(self) -> bool:
        return self.seqnorm_prior > 0

    @property
    def mean_input(self) -> bool:
        return self.mean_prior > 0

    @property
    def running_stats(self) -> bool:
        """Whether the row count and sums are carried (per-sequence scale or running means)."""
        return self.seqnorm or self.mean_input

    def check_head(self, width: int) -> None:
        """SpecError unless the head maps ``width`` top features to the outputs (and the skip fits)."""
        for i, (w, b) in enumerate(self.head):
            if w.ndim != 2 or w.shape[1] != width or b.shape != (w.shape[0],):
                raise SpecError(f"head layer {i}: weight {w.shape} and bias {b.shape} do not follow width {width}")
            width = w.shape[0]
        if width != self.n_outputs:
            raise SpecError(f"the head ends with {width} outputs but out_shift has {self.n_outputs}")
        if self.skip is not None and (self.skip[0].shape != (self.n_outputs, self.n_inputs)
                                      or self.skip[1].shape != (self.n_outputs,)):
            raise SpecError(f"skip weight {self.skip[0].shape} and bias {self.skip[1].shape}; expected "
                            f"({self.n_outputs}, {self.n_inputs}) and ({self.n_outputs},)")


@dataclass
class NetSpec(Frame):
    cell: str
    layers: list[Layer]
    quant: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    def __post_init__(self) -> None:
        if self.cell not in GATES:
            raise SpecError(f"unknown cell {self.cell!r}; expected one of {sorted(GATES)}")
        if not self.layers or not self.head:
            raise SpecError("a spec needs at least one recurrent layer and one head layer")
        g, h = self.gates, self.hidden
        width = self.n_inputs
        for i, layer in enumerate(self.layers):
            if layer.w_ih.shape != (g * h, width) or layer.w_hh.shape != (g * h, h):
                raise SpecError(f"layer {i}: w_ih {layer.w_ih.shape}, w_hh {layer.w_hh.shape}; expected "
                                f"({g * h}, {width}) and ({g * h}, {h})")
            width = h
        self.check_head(width)

    @property
    def gates(self) -> int:
        return GATES[self.cell]

    @property
    def hidden(self) -> int:
        return self.layers[0].w_hh.shape[1]

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """The recurrent state a one-step runtime carries between rows, by name."""
        shapes = {"h": (len(self.layers), 1, self.hidden)}
        if self.cell == "lstm":
            shapes["c"] = (len(self.layers), 1, self.hidden)
        if self.running_stats:
            shapes["stats"] = (2,)
        if self.mean_input:
            shapes["msum"] = (1, self.n_features)
        return shapes

    def n_parameters(self) -> int:
        arrays = [a for layer in self.layers for a in (layer.w_ih, layer.w_hh, layer.b_ih, layer.b_hh)]
        arrays += [a for pair in self.head for a in pair]
        arrays += list(self.skip or ())
        return int(sum(a.size for a in arrays))

    def weight_items(self) -> list[tuple[str, np.ndarray]]:
        """The matrices quantization applies to, by name (biases and scalings stay float32)."""
        items = []
        for i, layer in enumerate(self.layers):
            items += [(f"l{i}.w_ih", layer.w_ih), (f"l{i}.w_hh", layer.w_hh)]
        items += [(f"head{i}.w", w) for i, (w, _) in enumerate(self.head)]
        return items

    # -- persistence -----------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the spec as one ``.npz`` (int8 weights when quantized); returns the path."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {}
        for i, layer in enumerate(self.layers):
            for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
                arrays[f"l{i}.{name}"] = getattr(layer, name)
        arrays.update(frame_arrays(self))
        if self.quant is not None:
            for name, (q, s) in self.quant.items():
                del arrays[name]
                arrays[name + ".q"], arrays[name + ".s"] = q, s
        header = {"format": FORMAT, "cell": self.cell, "layers": len(self.layers), **frame_header(self),
                  "quantized": self.quant is not None}
        arrays["header"] = header_array(header)
        return save_npz(path, arrays)

    @staticmethod
    def load(path: str | Path) -> "NetSpec":
        arrays, header = read_npz(path, FORMAT)
        quant = None
        if header["quantized"]:
            quant = {}
            for name in [k[:-2] for k in arrays if k.endswith(".q")]:
                q, s = arrays.pop(name + ".q"), arrays.pop(name + ".s")
                quant[name] = (q, s)
                arrays[name] = dequantize(q, s)
        layers = [Layer(*(arrays[f"l{i}.{n}"].astype(np.float32) for n in ("w_ih", "w_hh", "b_ih", "b_hh")))
                  for i in range(header["layers"])]
        return NetSpec(cell=header["cell"], layers=layers, quant=quant, **frame_fields(arrays, header))


def frame_arrays(spec: Frame) -> dict[str, np.ndarray]:
    """The shared arrays of a spec by their ``.npz`` names (head, scalings, skip)."""
    arrays: dict[str, np.ndarray] = {}
    for i, (w, b) in enumerate(spec.head):
        arrays[f"head{i}.w"], arrays[f"head{i}.b"] = w, b
    for name in ("in_shift", "in_scale", "out_shift", "out_scale"):
        arrays[name] = getattr(spec, name)
    if spec.skip is not None:
        arrays["skip.w"], arrays["skip.b"] = spec.skip
    return arrays


def frame_header(spec: Frame) -> dict:
    """The shared settings of a spec, as its ``.npz`` header records them."""
    return {"head_layers": len(spec.head), "in_clip": spec.in_clip, "seqnorm_prior": spec.seqnorm_prior,
            "seqnorm_log_input": spec.seqnorm_log_input, "seqnorm_rescale_output": spec.seqnorm_rescale_output,
            "mean_prior": spec.mean_prior, "skip": spec.skip is not None, "output_names": list(spec.output_names),
            "meta": spec.meta}


def frame_fields(arrays: dict[str, np.ndarray], header: dict) -> dict:
    """The shared dataclass fields of a spec read back from its arrays and header."""
    return dict(
        head=[(arrays[f"head{i}.w"].astype(np.float32), arrays[f"head{i}.b"].astype(np.float32))
              for i in range(header["head_layers"])],
        in_shift=arrays["in_shift"], in_scale=arrays["in_scale"],
        out_shift=arrays["out_shift"], out_scale=arrays["out_scale"],
        in_clip=float(header["in_clip"]), seqnorm_prior=float(header["seqnorm_prior"]),
        seqnorm_log_input=bool(header["seqnorm_log_input"]),
        seqnorm_rescale_output=bool(header["seqnorm_rescale_output"]),
        mean_prior=float(header.get("mean_prior", 0.0)),
        skip=(arrays["skip.w"].astype(np.float32), arrays["skip.b"].astype(np.float32)) if header.get("skip") else None,
        output_names=tuple(header["output_names"]), meta=header.get("meta", {}),
    )


def read_npz(path: str | Path, expected_format: str) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, header) of a spec file, SpecError when it is unreadable or of another format."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise SpecError(f"{path}: not a readable .npz spec ({exc})") from exc
    if "header" not in arrays:
        raise SpecError(f"{path}: no header; not a recurrent spec")
    header = json.loads(arrays.pop("header").tobytes().decode())
    if header.get("format") != expected_format:
        raise SpecError(f"{path}: format {header.get('format')!r}, expected {expected_format!r}")
    return arrays, header


def header_array(header: dict) -> np.ndarray:
    """A header as the uint8 array stored beside the weights (``allow_pickle=False`` reads it)."""
    return np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8)


def peek_format(path: str | Path) -> str | None:
    """The ``format`` recorded in a spec file's header (None when there is none), read cheaply."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            if "header" not in data.files:
                return None
            return json.loads(data["header"].tobytes().decode()).get("format")
    except (OSError, ValueError) as exc:
        raise SpecError(f"{path}: not a readable .npz spec ({exc})") from exc


# -- 8-bit weights -----------------------------------------------------------------------------


def quantize_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output row: w ~ q * s[:, None], |q| <= 127."""
    peak = np.abs(w).max(axis=1)
    s = np.where(peak > 0, peak / QUANT_LEVELS, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / s[:, None]), -QUANT_LEVELS, QUANT_LEVELS).astype(np.int8)
    return q, s


def dequantize(q: np.ndarray, s: np.ndarray) -> np.ndarray:
    return (q.astype(np.float32) * s[:, None]).astype(np.float32)


def quantize(spec: NetSpec) -> NetSpec:
    """The spec with every weight matrix rounded to int8 per row (biases stay float32)."""
    quant = {name: quantize_rows(w) for name, w in spec.weight_items()}
    deq = {name: dequantize(*qs) for name, qs in quant.items()}
    layers = [replace(layer, w_ih=deq[f"l{i}.w_ih"], w_hh=deq[f"l{i}.w_hh"]) for i, layer in enumerate(spec.layers)]
    head = [(deq[f"head{i}.w"], b) for i, (_, b) in enumerate(spec.head)]
    return replace(spec, layers=layers, head=head, quant=quant, meta={**spec.meta, "quantized": "int8 per row"})
