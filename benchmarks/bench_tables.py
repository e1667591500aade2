"""Whole-table reads: pyarrow (what the project does) against polars, on the generated sets.

Run: .venv/bin/python benchmarks/bench_tables.py [--repeat 3] [--a-train FILE] [--b-file FILE]

The project reads whole tables in a few places, all with pyarrow (``pq.read_table`` and
``Column.to_numpy``; no project code handles tables with pandas: the only pandas reader is
``benchmarks/naive_reference.py``, which imitates the organizers' scorer on purpose):

* ``harness.market.base.load_sidecar``: the oracle sidecar beside a data file and the data
  file's scored-row index (every ``simulate``, ``gate`` and training run on generated data);
* ``harness.market.calibrate.load_sequences`` and ``calibrate_b.load_b``: a whole file as
  (S, T, F) arrays for the calibration statistics;
* ``models.data.load_sequences``: training data; it streams validated blocks
  (``harness.data.ParquetSource``), so its polars counterpart (one read, no validation) is an
  upper bound on what polars could save there, not a drop-in;
* ``harness.data.ParquetSource.sequence_ids``: two columns of the whole file.

Each operation is done both ways on the same file; the arrays must be equal exactly (both
decode the same stored values into the same dtype, no arithmetic: equal by construction), and
the table shows the best of ``--repeat`` wall times (the machine is shared: the best run is the
uncontended cost) and their ratio. The load average is printed because every time scales with it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.competitions import SEQUENCE_LENGTH, A, B  # noqa: E402
from harness.data import ParquetSource  # noqa: E402
from harness.market.base import HIDDEN_PREFIX, ORACLE_PREFIX, sidecar_path  # noqa: E402


def sidecar_pyarrow(data: Path) -> tuple[np.ndarray, ...]:
    """What ``load_sidecar`` reads: the sidecar whole and the data file's scored-row index."""
    table = pq.read_table(sidecar_path(data))
    names = table.column_names
    meta = pq.read_table(data, columns=["seq_ix", "step_in_seq", "need_prediction"])
    need = meta.column("need_prediction").to_numpy().astype(bool)
    oracle = np.column_stack([table.column(c).to_numpy() for c in names if c.startswith(ORACLE_PREFIX)])
    hidden = np.column_stack([table.column(c).to_numpy() for c in names if c.startswith(HIDDEN_PREFIX)])
    return (meta.column("seq_ix").to_numpy()[need].astype(np.int64), table.column("seq_ix").to_numpy().astype(np.int64),
            oracle.astype(np.float64), hidden.astype(np.float64))


def sidecar_polars(data: Path) -> tuple[np.ndarray, ...]:
    table = pl.read_parquet(sidecar_path(data))
    meta = pl.read_parquet(data, columns=["seq_ix", "need_prediction"])
    seq = meta.filter(pl.col("need_prediction") == 1)["seq_ix"].to_numpy().astype(np.int64)
    oracle = table.select(pl.selectors.starts_with(ORACLE_PREFIX)).to_numpy().astype(np.float64)
    hidden = table.select(pl.selectors.starts_with(HIDDEN_PREFIX)).to_numpy().astype(np.float64)
    return seq, table["seq_ix"].to_numpy().astype(np.int64), oracle, hidden


def calibrate_pyarrow(data: Path) -> tuple[np.ndarray, ...]:
    """``calibrate.load_sequences``: features (S, T, F) as float64."""
    table = pq.read_table(data, columns=["seq_ix", "step_in_seq", *A.feature_columns])
    n = table.num_rows // SEQUENCE_LENGTH
    feats = np.stack([table.column(c).to_numpy() for c in A.feature_columns], axis=-1)
    return (table.column("step_in_seq").to_numpy(), feats.reshape(n, SEQUENCE_LENGTH, -1).astype(np.float64))


def calibrate_polars(data: Path) -> tuple[np.ndarray, ...]:
    table = pl.read_parquet(data, columns=["seq_ix", "step_in_seq", *A.feature_columns])
    n = table.height // SEQUENCE_LENGTH
    feats = table.select(A.feature_columns).to_numpy()
    return table["step_in_seq"].to_numpy(), feats.reshape(n, SEQUENCE_LENGTH, -1).astype(np.float64)


def load_b_pyarrow(data: Path) -> tuple[np.ndarray, ...]:
    """``calibrate_b.load_b``: features float32 (S, T, F), targets float64."""
    table = pq.read_table(data, columns=["step_in_seq", *B.feature_columns, *B.target_columns])
    s = table.num_rows // SEQUENCE_LENGTH
    feats = np.empty((s, SEQUENCE_LENGTH, B.n_features), dtype=np.float32)
    for i, c in enumerate(B.feature_columns):
        feats[:, :, i] = table.column(c).to_numpy().reshape(s, SEQUENCE_LENGTH)
    tg = np.stack([table.column(c).to_numpy().astype(np.float64) for c in B.target_columns], axis=-1)
    return feats, tg


def load_b_polars(data: Path) -> tuple[np.ndarray, ...]:
    table = pl.read_parquet(data, columns=["step_in_seq", *B.feature_columns, *B.target_columns])
    s = table.height // SEQUENCE_LENGTH
    feats = table.select(B.feature_columns).to_numpy().reshape(s, SEQUENCE_LENGTH, B.n_features)
    return feats.astype(np.float32, copy=False), table.select(B.target_columns).to_numpy().astype(np.float64)


def training_stream(data: Path) -> tuple[np.ndarray, ...]:
    """``models.data.load_sequences``'s read: validated float64 blocks copied into float32."""
    source = ParquetSource(data)
    comp = source.competition
    feats = np.empty((source.num_rows, comp.n_features), dtype=np.float32)
    row = 0
    for block in source.blocks():
        feats[row : row + len(block.values)] = block.values[:, 3 : 3 + comp.n_features]
        row += len(block.values)
    return (feats,)


def training_polars(data: Path) -> tuple[np.ndarray, ...]:
    comp = ParquetSource(data).competition
    table = pl.read_parquet(data, columns=list(comp.feature_columns))
    return (table.to_numpy().astype(np.float32, copy=False),)


def ids_pyarrow(data: Path) -> tuple[np.ndarray, ...]:
    return (ParquetSource(data).sequence_ids(),)


def ids_polars(data: Path) -> tuple[np.ndarray, ...]:
    table = pl.read_parquet(data, columns=["seq_ix", "step_in_seq"])
    return (table.filter(pl.col("step_in_seq") == 0)["seq_ix"].to_numpy().astype(np.int64),)


def best_of(fn: Callable[[Path], tuple], path: Path, repeat: int) -> tuple[float, tuple]:
    best, out = float("inf"), ()
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(path)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--a-train", type=Path, default=ROOT / "data/A/train.parquet")
    parser.add_argument("--a-valid", type=Path, default=ROOT / "data/A/valid.parquet")
    parser.add_argument("--b-file", type=Path, default=ROOT / "data/B/valid.parquet")
    args = parser.parse_args()
    cases = [
        ("oracle sidecar + scored index (load_sidecar)", args.a_valid, sidecar_pyarrow, sidecar_polars),
        ("A whole file as (S,T,F) float64 (calibrate)", args.a_train, calibrate_pyarrow, calibrate_polars),
        ("B whole file, features + targets (calibrate_b)", args.b_file, load_b_pyarrow, load_b_polars),
        ("training features float32 (models.data; stream validates)", args.a_train, training_stream, training_polars),
        ("sequence ids (ParquetSource.sequence_ids)", args.a_train, ids_pyarrow, ids_polars),
    ]
    table = Table(title=f"Whole-table reads, best of {args.repeat} (load average {os.getloadavg()[0]:.1f}, "
                        f"{os.cpu_count()} cores, polars {pl.__version__}, pyarrow {pa.__version__})")
    for name in ("operation", "file", "MB", "pyarrow s", "polars s", "pyarrow / polars", "equal"):
        table.add_column(name, justify="left" if name in ("operation", "file") else "right")
    for label, path, current, candidate in cases:
        t_current, a = best_of(current, path, args.repeat)
        t_polars, b = best_of(candidate, path, args.repeat)
        equal = len(a) == len(b) and all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b))
        table.add_row(label, str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
                      f"{path.stat().st_size / 1e6:.0f}", f"{t_current:.3f}", f"{t_polars:.3f}",
                      f"{t_current / t_polars:.2f}", "yes" if equal else "NO")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
