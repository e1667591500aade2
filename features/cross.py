"""Cross-feature interactions: products and ratios of the most correlated column pairs.

The pairs are chosen once, on training rows only, by absolute Pearson correlation, and then
frozen in the fitted state, so every later sequence gets the same columns. Output names are
positional (``pair0_product``, ``pair0_ratio``, ...) so they do not change when a refit picks
other pairs; ``pairs`` says which columns each position holds.
"""

from __future__ import annotations

import numpy as np

from .base import Transform
from .numerics import training_rows


def most_correlated_pairs(rows: np.ndarray, count: int) -> np.ndarray:
    """Indices (count, 2) of the column pairs i < j with the largest |correlation|.

    Constant columns have no correlation (scored 0). Ties keep (i, j) order, so the choice
    is deterministic.
    """
    width = rows.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.corrcoef(rows, rowvar=False) if len(rows) > 1 else np.zeros((width, width))
    correlation = np.nan_to_num(np.atleast_2d(correlation), nan=0.0)
    first, second = np.triu_indices(width, k=1)
    strength = np.abs(correlation[first, second])
    order = np.argsort(-strength, kind="stable")[:count]
    return np.stack([first[order], second[order]], axis=1).astype(np.intp)


class CrossFeatures(Transform):
    """a * b and a / (b + sign(b) * floor) for the ``n_pairs`` most correlated training pairs."""

    kind = "cross_features"
    needs_fit = True

    def __init__(
        self, n_pairs: int = 8, floor: float = 1e-8, prefix: str = "pair", max_rows: int = 200_000, seed: int = 0
    ) -> None:
        super().__init__()
        if int(n_pairs) < 1:
            raise ValueError(f"CrossFeatures: n_pairs must be positive, got {n_pairs}")
        if not floor > 0:
            raise ValueError(f"CrossFeatures: floor must be positive, got {floor}")
        self.n_pairs = int(n_pairs)
        self.floor = float(floor)
        self.prefix = str(prefix)
        self.max_rows = int(max_rows)
        self.seed = int(seed)

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        available = len(input_names) * (len(input_names) - 1) // 2
        if available < self.n_pairs:
            raise ValueError(
                f"CrossFeatures: {len(input_names)} inputs give {available} pairs, fewer than n_pairs={self.n_pairs}"
            )
        return [f"{self.prefix}{index}_product" for index in range(self.n_pairs)] + [
            f"{self.prefix}{index}_ratio" for index in range(self.n_pairs)
        ]

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """The chosen (numerator, denominator) column names, in output order."""
        self._require_fitted()
        return [(self.input_names[a], self.input_names[b]) for a, b in self._pairs]

    def _learn(self, sequences: np.ndarray) -> None:
        self._pairs = most_correlated_pairs(training_rows(sequences, self.max_rows, self.seed), self.n_pairs)

    def fitted_state(self) -> dict[str, np.ndarray]:
        self._require_fitted()
        return {"pairs": self._pairs.astype(np.int64)}

    def load_fitted_state(self, state: dict[str, np.ndarray]) -> None:
        if "pairs" not in state:
            raise ValueError(f"{self.describe()}: fitted state lacks 'pairs' (has {sorted(state)})")
        pairs = np.asarray(state["pairs"])
        if pairs.shape != (self.n_pairs, 2) or pairs.min() < 0 or pairs.max() >= self.n_inputs:
            raise ValueError(f"{self.describe()}: fitted pairs {pairs.tolist()} do not fit {self.n_inputs} inputs")
        self._pairs = pairs.astype(np.intp)
        self._fitted = True
        self._runner = None

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        numerator = sequences[:, :, self._pairs[:, 0]]
        denominator = sequences[:, :, self._pairs[:, 1]]
        product = numerator * denominator
        ratio = numerator / (denominator + np.copysign(self.floor, denominator))
        return np.concatenate([product, ratio], axis=2)

    def _on_bind(self) -> None:
        self._columns = np.concatenate([self._pairs[:, 0], self._pairs[:, 1]])
        self._operands = np.zeros(2 * self.n_pairs)
        self._numerator = self._operands[: self.n_pairs]
        self._denominator = self._operands[self.n_pairs :]
        self._shifted = np.zeros(self.n_pairs)

    def _on_out(self, out: np.ndarray) -> None:
        self._product_out = out[: self.n_pairs]
        self._ratio_out = out[self.n_pairs :]

    def step(self, out: np.ndarray) -> None:
        if out is not self._out_seen:
            self._watch_out(out)
        self._current.take(self._columns, out=self._operands, mode="wrap")
        np.multiply(self._numerator, self._denominator, self._product_out)
        np.copysign(self.floor, self._denominator, self._shifted)
        np.add(self._denominator, self._shifted, self._shifted)
        np.divide(self._numerator, self._shifted, self._ratio_out)
