"""B: ridge on order-book features plus degree-2 products of the 12 most important ones (ranked
by LightGBM), trained by ``python -m models train solutions/b_ridge``.

The streaming feature pipeline (raw book, order-book features, their EMAs, mid z-scores) feeds
one linear map to (t0, t1).

Artifacts (model.json, pipeline.npz, weights.npz) sit beside this
file, in the folder and in the zip. The model resets whenever seq_ix changes.
"""

from pathlib import Path

from models.runtime.predictor import load
from models.runtime.solution import SequenceModel


class PredictionModel(SequenceModel):
    def __init__(self):
        super().__init__(load(Path(__file__).resolve().parent))
