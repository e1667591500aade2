"""Whole parquet tables as NumPy arrays, read with polars.

Where the project reads a whole table at once (the oracle sidecars, the calibration's
statistics), polars' ``read_parquet`` and ``DataFrame.to_numpy`` were 1.7 to 4.5 times faster
than pyarrow's ``read_table`` and per-column ``to_numpy`` on the generated sets
(``benchmarks/bench_tables.py``), and give the same arrays exactly: both decode the same stored
values into the same dtype with no arithmetic. Streaming, validated reads stay with
``harness.data.ParquetSource``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import polars as pl


def read(path: str | Path, columns: Sequence[str] | None = None) -> pl.DataFrame:
    """The whole file (or ``columns`` of it) as a polars frame."""
    return pl.read_parquet(path, columns=list(columns) if columns is not None else None)


def matrix(frame: pl.DataFrame, columns: Sequence[str], dtype: np.dtype | type) -> np.ndarray:
    """``columns`` of ``frame`` side by side, (rows, len(columns)), C-ordered, as ``dtype``."""
    return np.ascontiguousarray(frame.select(list(columns)).to_numpy(), dtype=dtype)


def column(frame: pl.DataFrame, name: str, dtype: np.dtype | type | None = None) -> np.ndarray:
    """One column as a NumPy array (as ``dtype`` when given)."""
    values = frame.get_column(name).to_numpy()
    return values if dtype is None else values.astype(dtype, copy=False)
