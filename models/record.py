"""The run record: a small JSON per training run (config, data hashes, seeds, scores, time).

Written to ``runs/<solution>-<UTC timestamp>.json``; ``runs/`` is git-ignored. Enough to tell
two runs apart and to reproduce one: the config, the exact data (by hash), the seeds.
"""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from harness.data import file_sha256  # noqa: F401 - the one file hash; records name data by it

RUNS_DIR = Path("runs")


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def to_plain(value):
    """JSON-able copies of numpy scalars and arrays."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def environment() -> dict:
    import lightgbm
    import numpy
    import sklearn

    return {"python": platform.python_version(), "numpy": numpy.__version__, "lightgbm": lightgbm.__version__,
            "scikit-learn": sklearn.__version__, "machine": platform.machine()}


def write_record(name: str, record: dict, root: str | Path = RUNS_DIR) -> Path:
    """Write ``record`` as ``<root>/<name>-<UTC stamp>.json``; returns the path."""
    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{utc_stamp()}.json"
    counter = 1
    while path.exists():
        path = folder / f"{name}-{utc_stamp()}-{counter}.json"
        counter += 1
    path.write_text(json.dumps(to_plain(record), indent=2, sort_keys=True) + "\n")
    return path
