"""The ``tcn`` and ``window_attn`` families: trained like the GRU (``train.NetFamily``: same
data, features, losses, folds, fit loop and out-of-fold rule), shipped as a ``BlockSpec`` in
``model.npz`` and served one row at a time in numpy (``runtime_blocks``; window_attn's body
also in onnxruntime, ``model.onnx``), checked against PyTorch over whole sequences after every
training."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.recurrent import runtime_blocks
from models.recurrent.block_spec import BlockSpec
from models.recurrent.config import TcnConfig, WindowAttnConfig
from models.recurrent.export_blocks import export_window_onnx
from models.recurrent.train import NetFamily


class BlockFamily(NetFamily):
    """A network family whose spec is a ``BlockSpec``: numpy, and for window_attn also the ONNX
    body (``model.onnx`` among the artifacts) that ``bench_blocks`` measured several times faster."""

    def __init__(self, name: str, config: type, onnx: bool):
        self.name = name
        self.config = config
        self.onnx = onnx
        self.artifact_suffixes = (".npz", ".onnx") if onnx else (".npz",)

    def write_artifact(self, spec: BlockSpec, path: Path) -> None:
        if path.suffix == ".onnx":
            export_window_onnx(spec, path)
        else:
            spec.save(path)

    def run_sequences(self, spec: BlockSpec, features: np.ndarray) -> np.ndarray:
        return runtime_blocks.run_sequences(spec, features)

    def step_runtimes(self, spec: BlockSpec, folder: Path, artifacts: list[str], scratch: Path) -> dict[str, object]:
        steps = {"numpy": runtime_blocks.step_runtime(spec)}
        if self.onnx:
            onnx_path = next((folder / n for n in artifacts if n.endswith(".onnx")), None)
            steps["onnx"] = runtime_blocks.step_runtime(spec, onnx_path or export_window_onnx(spec, scratch))
        return steps


TCN = BlockFamily("tcn", TcnConfig, onnx=False)
WINDOW_ATTN = BlockFamily("window_attn", WindowAttnConfig, onnx=True)
