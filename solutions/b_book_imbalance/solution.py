"""Baseline for B: a causal rule from the top of the book, no training.

Volume imbalance at the best level, (bid volume - ask volume) / (bid volume + ask volume),
smoothed by a short EMA within the sequence: more resting bids than asks tends to precede a
rise. The same signal is returned for both targets; only its sign and ordering matter to a
correlation metric.
"""

import numpy as np

BEST_BID_VOLUME = 12  # v0: column 12 of the state (p0..p11 come first)
BEST_ASK_VOLUME = 18  # v6
ALPHA = 0.3


class PredictionModel:
    def __init__(self):
        self.seq_ix = None
        self.ema = 0.0

    def predict(self, data_point):
        if data_point.seq_ix != self.seq_ix:
            self.seq_ix = data_point.seq_ix
            self.ema = 0.0
        bid = data_point.state[BEST_BID_VOLUME]
        ask = data_point.state[BEST_ASK_VOLUME]
        total = bid + ask
        imbalance = (bid - ask) / total if total > 0 else 0.0
        self.ema = (1 - ALPHA) * self.ema + ALPHA * imbalance
        if not data_point.need_prediction:
            return None
        return np.array([self.ema, self.ema])
