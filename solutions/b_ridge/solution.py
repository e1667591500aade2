"""B: ridge on order-book features plus degree-2 products of the 12 most important ones (ranked
by LightGBM), trained by ``python -m models train solutions/b_ridge``.

The streaming feature pipeline (raw book, order-book features, their EMAs, mid z-scores) feeds
one linear map to (t0, t1).

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
