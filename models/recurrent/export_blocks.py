"""The ``window_attn`` body as an ONNX graph: window of cell inputs in, top features out.

Why only the body: the row's front (normalization, the ring of the last W rows) and back (head,
skip, target scaling) are a few numpy calls (``runtime_numpy.RowPrep``/``RowHead``), while the
body runs both GRU directions over W rows, W small steps each: onnxruntime's bidirectional
``GRU`` operator does them in one call, where numpy pays its per-call overhead on every step.
Built from the spec's arrays with ``onnx.helper`` (as ``export`` builds the GRU family's graph),
so the graph states the maths of ``block_spec`` once more and the export check compares it
with PyTorch after every training.

Graph input ``u`` float32 (W, 1, n_in), the window oldest row first (rows before the sequence's
first are 0); output ``top`` float32 (1, 4H): [attention-pooled outputs; outputs at the last row].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from models.recurrent.block_spec import BlockSpec
from models.recurrent.export import OPSET, _Builder, _gate_order


def build_window_model(spec: BlockSpec) -> onnx.ModelProto:
    """The window body graph of a ``window_attn`` spec (checked by ``onnx.checker``)."""
    if spec.kind != "window_attn":
        raise ValueError(f"only window_attn bodies export to ONNX, got {spec.kind!r}")
    b = _Builder()
    h, w = spec.hidden, spec.window
    order = _gate_order("gru", h)
    body = spec.body
    w_ih = np.stack([body[f"{d}.w_ih"][order] for d in ("fwd", "bwd")]).astype(np.float32)
    w_hh = np.stack([body[f"{d}.w_hh"][order] for d in ("fwd", "bwd")]).astype(np.float32)
    bias = np.stack([np.concatenate([body[f"{d}.b_ih"][order], body[f"{d}.b_hh"][order]])
                     for d in ("fwd", "bwd")]).astype(np.float32)
    y, _ = b.op("GRU", ["u", b.const("w_ih", w_ih), b.const("w_hh", w_hh), b.const("bias", bias)], n_out=2,
                hidden_size=h, direction="bidirectional", linear_before_reset=1)  # (W, 2, 1, H)
    o = b.op("Reshape", [b.op("Transpose", [y], perm=[2, 0, 1, 3])[0],
                         b.const("shape_o", np.array([w, 2 * h], np.int64))])[0]  # (W, 2H): [fwd; bwd] per row
    last = b.op("Slice", [o, b.const("last_lo", np.array([w - 1], np.int64)),
                          b.const("last_hi", np.array([w], np.int64)), b.const("axis0", np.array([0], np.int64))])[0]
    q = b.op("MatMul", [last, b.const("q_t", np.ascontiguousarray(body["q.w"].T, dtype=np.float32))])[0]  # (1, A)
    k = b.op("MatMul", [o, b.const("k_t", np.ascontiguousarray(body["k.w"].T, dtype=np.float32))])[0]  # (W, A)
    scale = np.float32(1.0 / np.sqrt(body["q.w"].shape[0]))
    scores = b.op("Mul", [b.op("Gemm", [q, k], transB=1)[0], b.const("inv_sqrt", np.array(scale))])[0]  # (1, W)
    a = b.op("Softmax", [scores], axis=1)[0]
    pooled = b.op("MatMul", [a, o])[0]  # (1, 2H)
    b.op("Concat", [pooled, last], name="top", axis=1)
    graph = helper.make_graph(b.nodes, "window_attn_body",
                              [helper.make_tensor_value_info("u", TensorProto.FLOAT, [w, 1, spec.n_inputs])],
                              [helper.make_tensor_value_info("top", TensorProto.FLOAT, [1, 4 * h])],
                              initializer=b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="wunderbench.models.recurrent")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def export_window_onnx(spec: BlockSpec, path: str | Path) -> Path:
    """Write the window body graph of ``spec`` to ``path``; returns the path."""
    path = Path(path)
    path.write_bytes(build_window_model(spec).SerializeToString())
    return path
