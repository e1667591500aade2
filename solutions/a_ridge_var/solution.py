"""A: VAR(16) ridge on the raw state, trained by ``python -m models train solutions/a_ridge_var``.

The streaming feature pipeline keeps the current row and 15 lags; a linear map gives the next
state. The weak-target guard (fitted on out-of-fold predictions) may shrink weak features
toward their training mean.

Artifacts (model.json, pipeline.npz, weights.npz) sit beside this
file, in the folder and in the zip. The model resets whenever seq_ix changes.
"""

from pathlib import Path

from models.runtime.predictor import load
from models.runtime.solution import SequenceModel


class PredictionModel(SequenceModel):
    def __init__(self):
        super().__init__(load(Path(__file__).resolve().parent))
