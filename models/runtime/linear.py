"""A linear head: y = design(x) @ coef + intercept, where the design is a column subset of the
pipeline's outputs, optionally followed by degree-2 products of those columns.

One object serves training (``design_batch`` builds the rows a ridge is fitted on), offline
evaluation (``predict_batch``) and the solution (``predict_row``, no allocation per row), so
the features a model was fitted on are by construction the ones it is served.
"""

from __future__ import annotations

import numpy as np


def all_pairs(width: int) -> np.ndarray:
    """Index pairs (i, j), i <= j, of every degree-2 monomial of ``width`` columns: (P, 2)."""
    if width < 1:
        raise ValueError(f"need at least one column for products, got {width}")
    upper = np.triu_indices(width)
    return np.column_stack(upper).astype(np.intp)


class LinearHead:
    """Linear map of selected pipeline outputs (and, when ``pairs`` is given, their products)."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, columns: np.ndarray | None = None,
                 pairs: np.ndarray | None = None) -> None:
        self.coef = np.ascontiguousarray(coef, dtype=np.float64)
        self.intercept = np.ascontiguousarray(intercept, dtype=np.float64)
        self.columns = None if columns is None else np.asarray(columns, dtype=np.intp)
        self.pairs = None if pairs is None or len(pairs) == 0 else np.asarray(pairs, dtype=np.intp).reshape(-1, 2)
        if self.coef.ndim != 2 or self.intercept.shape != (self.coef.shape[1],):
            raise ValueError(f"coef must be (inputs, outputs) and intercept (outputs,), got {self.coef.shape} "
                             f"and {self.intercept.shape}")
        self._row_design: np.ndarray | None = None
        self._row_out = np.zeros(self.coef.shape[1])

    def design_width_for(self, selected: int) -> int:
        """Design columns for ``selected`` chosen inputs: the inputs plus one per product."""
        return selected + (0 if self.pairs is None else len(self.pairs))

    def check_inputs(self, n_inputs: int) -> None:
        """Raise unless this head fits a pipeline with ``n_inputs`` outputs."""
        selected = n_inputs if self.columns is None else len(self.columns)
        if self.columns is not None and len(self.columns) and self.columns.max() >= n_inputs:
            raise ValueError(f"linear head selects column {self.columns.max()} of a {n_inputs}-column pipeline")
        width = self.design_width_for(selected)
        if width != self.coef.shape[0]:
            raise ValueError(f"linear head expects {self.coef.shape[0]} design columns, the pipeline gives {width}")

    @property
    def n_outputs(self) -> int:
        return self.coef.shape[1]

    # ------------------------------------------------------------------------------ batch
    def design_batch(self, x: np.ndarray) -> np.ndarray:
        """Design rows (N, D) from pipeline outputs (N, F)."""
        selected = x if self.columns is None else x[:, self.columns]
        if self.pairs is None:
            return np.ascontiguousarray(selected)
        products = selected[:, self.pairs[:, 0]] * selected[:, self.pairs[:, 1]]
        return np.concatenate([selected, products], axis=1)

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        """Predictions (N, K) from pipeline outputs (N, F)."""
        return self.design_batch(x) @ self.coef + self.intercept

    # -------------------------------------------------------------------------- streaming
    def predict_row(self, x: np.ndarray) -> np.ndarray:
        """Prediction (K,) for one row of pipeline outputs; the returned vector is reused."""
        design = self._row_design
        if design is None:
            selected = len(x) if self.columns is None else len(self.columns)
            design = self._row_design = np.zeros(self.design_width_for(selected))
            self._selected_view = design[:selected]
            self._product_view = design[selected:]
        if self.columns is None:
            np.copyto(self._selected_view, x)
        else:
            np.take(x, self.columns, out=self._selected_view)
        if self.pairs is not None:
            chosen = self._selected_view
            np.multiply(chosen[self.pairs[:, 0]], chosen[self.pairs[:, 1]], out=self._product_view)
        out = self._row_out
        np.dot(design, self.coef, out=out)
        np.add(out, self.intercept, out=out)
        return out

    # ---------------------------------------------------------------------------- storage
    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Plain arrays for an ``.npz`` (keys start with ``prefix``)."""
        out = {f"{prefix}coef": self.coef, f"{prefix}intercept": self.intercept}
        if self.columns is not None:
            out[f"{prefix}columns"] = self.columns
        if self.pairs is not None:
            out[f"{prefix}pairs"] = self.pairs
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> "LinearHead":
        if f"{prefix}coef" not in arrays:
            raise ValueError(f"no linear head under {prefix!r} in the weights file")
        return cls(arrays[f"{prefix}coef"], arrays[f"{prefix}intercept"], arrays.get(f"{prefix}columns"),
                   arrays.get(f"{prefix}pairs"))
