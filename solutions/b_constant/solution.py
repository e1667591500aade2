"""Baseline for B: the same prediction on every row.

Weighted Pearson of a constant is defined as 0, so this is the floor; it also shows what the
gate's "not degenerate" check warns about.
"""

import numpy as np


class PredictionModel:
    def __init__(self):
        self.value = np.zeros(2)

    def predict(self, data_point):
        if not data_point.need_prediction:
            return None
        return self.value.copy()
