"""B: LightGBM per target (t0, t1) on top of a ridge base, trained by
``python -m models train solutions/b_lightgbm``.

The streaming feature pipeline (raw book, order-book features, their EMAs, mid z-scores) feeds a
ridge base; one merged LightGBM model file (both targets, read with lightgbm.Booster) adds its
correction.

Artifacts (model.json, pipeline.npz, weights.npz, trees.txt) sit beside this
file, in the folder and in the zip. The model resets whenever seq_ix changes.
"""

from pathlib import Path

from models.runtime.predictor import load
from models.runtime.solution import SequenceModel


class PredictionModel(SequenceModel):
    def __init__(self):
        super().__init__(load(Path(__file__).resolve().parent))
