"""B: a one-layer GRU of width 64 on a frozen ridge, predicting t0 and t1.

Each row goes through the streaming feature pipeline of ``features.npz`` (the order-book
features, log ratios and EMAs of ``b_ridge``, plus order-flow times the price gap); a linear map
of those features, solved as a ridge before training and frozen, carries the linear signal and
the GRU (see manifest.json "train") learns what it leaves. The step runs in plain numpy
(``model.npz``); ``BACKEND = "onnx"`` switches to onnxruntime (``model.onnx``, one thread).
"""

from pathlib import Path

from models.recurrent.serving import load_runtime
from models.runtime.solution import SequenceModel

BACKEND = "numpy"  # reads model.npz; "onnx" reads model.onnx


class PredictionModel(SequenceModel):
    def __init__(self):
        super().__init__(load_runtime(Path(__file__).resolve().parent, BACKEND))
