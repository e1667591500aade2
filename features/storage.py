"""The fitted-state file a solution ships: one small ``.npz`` of plain arrays plus a JSON spec.

Why not pickle: a pickle of estimator objects runs code on load and breaks when library
versions differ between the workbench and the grader. Here the file holds only numbers and
a JSON description (which pipeline builder, its options, the input and output names), read
back with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "wunderbench-features/1"
_SPEC_KEY = "spec"
_STATE_PREFIX = "state/"


def save_fitted(path: str | Path, spec: dict[str, Any], state: dict[str, np.ndarray]) -> Path:
    """Write ``spec`` (JSON-serialisable) and ``state`` (name -> array) to ``path`` (.npz)."""
    target = Path(path)
    if target.suffix != ".npz":
        raise ValueError(f"fitted-state files are .npz; got {target.name!r}")
    arrays: dict[str, np.ndarray] = {_SPEC_KEY: np.array(json.dumps({"format": FORMAT, **spec}, sort_keys=True))}
    for key, value in state.items():
        array = np.asarray(value)
        if array.dtype == object:
            raise TypeError(f"fitted state {key!r} is an object array; only numeric arrays can be saved")
        arrays[_STATE_PREFIX + key] = array
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(target, **arrays)
    return target


def load_fitted(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read what ``save_fitted`` wrote: (spec, state)."""
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"no fitted-state file at {source}")
    with np.load(source, allow_pickle=False) as archive:
        if _SPEC_KEY not in archive.files:
            raise ValueError(f"{source} is not a feature-pipeline file (no {_SPEC_KEY!r} entry)")
        spec = json.loads(str(archive[_SPEC_KEY]))
        state = {key[len(_STATE_PREFIX) :]: archive[key] for key in archive.files if key.startswith(_STATE_PREFIX)}
    if spec.get("format") != FORMAT:
        raise ValueError(f"{source}: format {spec.get('format')!r} is not {FORMAT!r}")
    return spec, state
