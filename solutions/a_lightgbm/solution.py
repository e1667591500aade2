"""A: LightGBM per feature on top of a ridge base, trained by
``python -m models train solutions/a_lightgbm``.

The streaming feature pipeline (lags, EMAs, running moments) feeds a ridge base; one merged
LightGBM model file (all 32 targets' trees, read with lightgbm.Booster) adds its correction.

Artifacts (model.json, pipeline.npz, weights.npz, trees.txt) sit beside this
file, in the folder and in the zip. The model resets whenever seq_ix changes.
"""

from pathlib import Path

from models.runtime.predictor import load
from models.runtime.solution import SequenceModel


class PredictionModel(SequenceModel):
    def __init__(self):
        super().__init__(load(Path(__file__).resolve().parent))
