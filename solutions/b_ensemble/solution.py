"""An ensemble, trained by ``python -m models train`` from manifest.json (family "ensemble").

``members/`` holds each chosen member's own files (a seed average holds one folder per seed);
``members.json`` says how they combine and ``blend.npz`` holds the per-output weights (or the
ridge stacker) and the weak-target guard. Every member steps on every row, so each keeps its
state; the model resets whenever seq_ix changes. See models/ensemble.py for how it was fitted.
"""

from pathlib import Path

from models.runtime.members import load_folder
from models.runtime.solution import SequenceModel


class PredictionModel(SequenceModel):
    def __init__(self):
        super().__init__(load_folder(Path(__file__).resolve().parent))
