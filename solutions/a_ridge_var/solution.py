"""A: VAR(16) ridge on the raw state, trained by ``python -m models train solutions/a_ridge_var``.

The streaming feature pipeline keeps the current row and 15 lags; a linear map gives the next
state. The weak-target guard (fitted on out-of-fold predictions) may shrink weak features
toward their training mean.

Artifacts (model.json, pipeline.npz, weights.npz) sit beside this
file, in the folder and in the zip. The model resets whenever seq_ix changes.
"""

from pathlib import Path

from models.runtime.predictor import load

HERE = Path(__file__).resolve().parent
ARTIFACTS = ('model.json', 'pipeline.npz', 'weights.npz')


class PredictionModel:
    def __init__(self):
        self.model = load(HERE)
        self.seq_ix = None

    def predict(self, data_point):
        if data_point.seq_ix != self.seq_ix:
            self.seq_ix = data_point.seq_ix
            self.model.reset()
        out = self.model.update(data_point.state, bool(data_point.need_prediction))
        return None if out is None else out.copy()
