"""A :class:`NetSpec` as a stateful one-step ONNX graph: (x_t, state_{t-1}) -> (y_t, state_t).

Why build the graph from arrays with ``onnx.helper`` rather than trace the PyTorch module: the
one-step graph differs from the training graph (one row, explicit state in and out, the
per-sequence scale as state), tracing an ``nn.GRU`` ties the result to the exporter of the
day, and the spec is already the single statement of the maths. The graph uses ONNX's own
GRU/LSTM operators (one kernel per layer, PyTorch's reset placement via
``linear_before_reset``). With int8 weights each matrix enters through ``DequantizeLinear``,
so the file is about a quarter of the size.

Graph inputs: ``x`` float32 (1, F) and the state named by ``NetSpec.state_shapes`` (``h``, and
``c`` for an LSTM, float32 (layers, 1, hidden); ``stats`` float64 (2,): the row count and the
mean-square sum, when the per-sequence scale or the running means are on; ``msum`` float64
(1, F), the running sums, when the running means are on). Outputs: ``y`` float32 (1, K) and each state as ``<name>_out``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models.recurrent.spec import NetSpec

OPSET = 17
"""ONNX opset of the exported graph: old enough for every onnxruntime the grader may have (>= 1.18)."""

STATE_DTYPES = {"h": TensorProto.FLOAT, "c": TensorProto.FLOAT, "stats": TensorProto.DOUBLE, "msum": TensorProto.DOUBLE}


def _gate_order(cell: str, h: int) -> np.ndarray:
    """Rows of PyTorch's gate layout in ONNX's order (GRU: r,z,n -> z,r,h; LSTM: i,f,g,o -> i,o,f,c)."""
    blocks = [1, 0, 2] if cell == "gru" else [0, 3, 1, 2]
    return np.concatenate([np.arange(b * h, (b + 1) * h) for b in blocks])


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, name: str | None = None, **attrs) -> list[str]:
        self.count += 1
        outs = [name] if name and n_out == 1 else [f"{op_type.lower()}{self.count}_{k}" for k in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=f"n{self.count}_{op_type}", **attrs))
        return outs

    def weight(self, spec: NetSpec, key: str, w: np.ndarray, rows: np.ndarray | None = None) -> str:
        """A weight matrix (rows permuted), dequantized in the graph when the spec is int8."""
        rows = np.arange(w.shape[0]) if rows is None else rows
        if spec.quant is not None and key in spec.quant:
            q, s = spec.quant[key]
            qn = self.const(f"{key}.q", q[rows])
            sn = self.const(f"{key}.s", s[rows].astype(np.float32))
            zn = self.const(f"{key}.zp", np.zeros(len(rows), dtype=np.int8))
            return self.op("DequantizeLinear", [qn, sn, zn], axis=0)[0]
        return self.const(key, w[rows].astype(np.float32))


def build_model(spec: NetSpec) -> onnx.ModelProto:
    """The one-step graph of ``spec`` (checked by ``onnx.checker``)."""
    b = _Builder()
    n_layers, hid, n_feat, n_out = len(spec.layers), spec.hidden, spec.n_features, spec.n_outputs
    shapes = spec.state_shapes()
    z = b.op("Sub", ["x", b.const("in_shift", spec.in_shift.astype(np.float32))])[0]
    z = b.op("Mul", [z, b.const("in_scale", spec.in_scale.astype(np.float32))])[0]
    if spec.in_clip:
        z = b.op("Clip", [z, b.const("clip_lo", np.array(-spec.in_clip, np.float32)),
                          b.const("clip_hi", np.array(spec.in_clip, np.float32))])[0]
    scale = None
    u = z
    if spec.running_stats:
        zd = b.op("Cast", [z], to=TensorProto.DOUBLE)[0]
        if spec.seqnorm:
            sq = b.op("Mul", [zd, zd])[0]
            m = b.op("ReduceMean", [sq], axes=[1], keepdims=0)[0]
        else:
            m = b.const("zero", np.zeros(1, np.float64))
        inc = b.op("Concat", [b.const("one", np.ones(1, np.float64)), m], axis=0)[0]
        b.op("Add", ["stats", inc], name="stats_out")
        n_ = b.op("Gather", ["stats_out", b.const("i0", np.array(0, np.int64))], axis=0)[0]
        parts = []
        if spec.seqnorm:
            sp = b.op("Add", ["stats_out", b.const("prior", np.full(2, spec.seqnorm_prior, np.float64))])[0]
            n_p = b.op("Gather", [sp, "i0"], axis=0)[0]
            ss = b.op("Gather", [sp, b.const("i1", np.array(1, np.int64))], axis=0)[0]
            var = b.op("Div", [ss, n_p])[0]
            scale = b.op("Cast", [b.op("Sqrt", [var])[0]], to=TensorProto.FLOAT)[0]
            u = b.op("Div", [z, scale])[0]
            if spec.seqnorm_log_input:
                parts.append(b.op("Reshape", [b.op("Log", [scale])[0],
                                              b.const("shape11", np.array([1, 1], np.int64))])[0])
        if spec.mean_input:
            b.op("Add", ["msum", zd], name="msum_out")
            denom = b.op("Add", [n_, b.const("mean_prior", np.array(spec.mean_prior, np.float64))])[0]
            mean = b.op("Cast", [b.op("Div", ["msum_out", denom])[0]], to=TensorProto.FLOAT)[0]
            parts.append(b.op("Div", [mean, scale])[0] if scale is not None else mean)
        if parts:
            u = b.op("Concat", [u] + parts, axis=1)[0]
    seq = b.op("Unsqueeze", [u, b.const("axis0", np.array([0], np.int64))])[0]  # (1 step, 1 batch, in)
    order = _gate_order(spec.cell, hid)
    op_type = "GRU" if spec.cell == "gru" else "LSTM"
    h_outs, c_outs = [], []
    for i, layer in enumerate(spec.layers):
        lo, hi = b.const(f"l{i}.lo", np.array([i], np.int64)), b.const(f"l{i}.hi", np.array([i + 1], np.int64))
        h0 = b.op("Slice", ["h", lo, hi, b.const(f"l{i}.ax", np.array([0], np.int64))])[0]
        w = b.op("Unsqueeze", [b.weight(spec, f"l{i}.w_ih", layer.w_ih, order), "axis0"])[0]
        r = b.op("Unsqueeze", [b.weight(spec, f"l{i}.w_hh", layer.w_hh, order), "axis0"])[0]
        bias = b.const(f"l{i}.b", np.concatenate([layer.b_ih[order], layer.b_hh[order]])[None].astype(np.float32))
        if spec.cell == "gru":
            _, h_last = b.op("GRU", [seq, w, r, bias, "", h0], n_out=2, hidden_size=hid, linear_before_reset=1)
        else:
            c0 = b.op("Slice", ["c", lo, hi, f"l{i}.ax"])[0]
            _, h_last, c_last = b.op("LSTM", [seq, w, r, bias, "", h0, c0], n_out=3, hidden_size=hid)
            c_outs.append(c_last)
        h_outs.append(h_last)
        seq = h_last  # (1 direction, 1 batch, H) doubles as (1 step, 1 batch, H)
    if n_layers == 1:
        b.op("Identity", [h_outs[0]], name="h_out")
        if c_outs:
            b.op("Identity", [c_outs[0]], name="c_out")
    else:
        b.op("Concat", h_outs, name="h_out", axis=0)
        if c_outs:
            b.op("Concat", c_outs, name="c_out", axis=0)
    out = b.op("Reshape", [seq, b.const("shape1h", np.array([1, hid], np.int64))])[0]
    fold = spec.quant is None  # int8 weights keep their own scales; scale the outputs instead
    for j, (w, bias) in enumerate(spec.head):
        last = j + 1 == len(spec.head)
        if last and fold:
            w, bias = w * spec.out_scale[:, None], bias * spec.out_scale
        out = b.op("Gemm", [out, b.weight(spec, f"head{j}.w", w), b.const(f"head{j}.b", bias.astype(np.float32))],
                   transB=1)[0]
        if not last:
            out = b.op("Relu", [out])[0]
    if spec.skip is not None:
        w_skip, b_skip = spec.skip
        if fold:
            w_skip, b_skip = w_skip * spec.out_scale[:, None], b_skip * spec.out_scale
        lin = b.op("Gemm", [u, b.const("skip.w", w_skip.astype(np.float32)), b.const("skip.b", b_skip.astype(np.float32))],
                   transB=1)[0]
        out = b.op("Add", [out, lin])[0]
    if scale is not None and spec.seqnorm_rescale_output:
        out = b.op("Mul", [out, scale])[0]
    if not fold:
        out = b.op("Mul", [out, b.const("out_scale", spec.out_scale.astype(np.float32))])[0]
    b.op("Add", [out, b.const("out_shift", spec.out_shift.astype(np.float32))], name="y")
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_feat])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n_out])]
    for name, shape in shapes.items():
        inputs.append(helper.make_tensor_value_info(name, STATE_DTYPES[name], list(shape)))
        outputs.append(helper.make_tensor_value_info(f"{name}_out", STATE_DTYPES[name], list(shape)))
    graph = helper.make_graph(b.nodes, f"{spec.cell}_step", inputs, outputs, initializer=b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="wunderbench.models.recurrent")
    model.ir_version = 8  # readable by onnxruntime >= 1.14
    onnx.checker.check_model(model)
    return model


def export_onnx(spec: NetSpec, path: str | Path) -> Path:
    """Write the one-step graph of ``spec`` to ``path``; returns the path."""
    path = Path(path)
    path.write_bytes(build_model(spec).SerializeToString())
    return path
