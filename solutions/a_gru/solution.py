"""A: a stateful GRU on the raw 32 features, one step per row.

The network (see manifest.json "train") reads each row once and carries its hidden state, so
a row costs one small step, not a window. Inputs are standardized and divided by the
sequence's running scale (its volatility regime), and the prediction is scaled back. The
step runs in plain numpy (``model.npz``); ``BACKEND = "onnx"`` switches to onnxruntime
(``model.onnx``, one thread), which ``make bench`` measured as the slower of the two here.
"""

from pathlib import Path

from models.recurrent.serving import load_runtime
from models.runtime.solution import SequenceModel

BACKEND = "numpy"  # reads model.npz; "onnx" reads model.onnx


class PredictionModel(SequenceModel):
    def __init__(self):
        super().__init__(load_runtime(Path(__file__).resolve().parent, BACKEND))
