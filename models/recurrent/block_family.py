"""The ``tcn`` and ``window_attn`` families: trained like the GRU (``train.NetFamily``: same
data, features, losses, folds, fit loop and out-of-fold rule), shipped as a ``BlockSpec`` in
``model.npz`` and served one row at a time in numpy (``runtime_blocks``), checked against
PyTorch over whole sequences after every training."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.recurrent import runtime_blocks
from models.recurrent.block_spec import BlockSpec
from models.recurrent.config import TcnConfig, WindowAttnConfig
from models.recurrent.train import NetFamily


class BlockFamily(NetFamily):
    """A network family whose spec is a ``BlockSpec`` (numpy runtime only)."""

    def __init__(self, name: str, config: type):
        self.name = name
        self.config = config

    def run_sequences(self, spec: BlockSpec, features: np.ndarray) -> np.ndarray:
        return runtime_blocks.run_sequences(spec, features)

    def step_runtimes(self, spec: BlockSpec, folder: Path, artifacts: list[str], scratch: Path) -> dict[str, object]:
        return {"numpy": runtime_blocks.step_runtime(spec)}


TCN = BlockFamily("tcn", TcnConfig)
WINDOW_ATTN = BlockFamily("window_attn", WindowAttnConfig)
