"""The project's one ``.npz`` writer, and the fitted-state file a solution ships.

Why not pickle: a pickle of estimator objects runs code on load and breaks when library
versions differ between the workbench and the grader. Here a file holds only numbers and a
JSON description (a hash of the pipeline's steps, its input and output names), read back with
``allow_pickle=False``. The steps themselves live with the model that uses them
(``model.json``), so a file cannot silently disagree with them: loading checks the hash.

``save_npz`` writes the same bytes for the same arrays (sorted entries, fixed zip timestamps),
so retraining with the same seed leaves git with no change. Every ``.npz`` the project writes
(features, linear and tree heads, recurrent nets, out-of-fold predictions) goes through it.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "wunderbench-features/2"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SPEC_KEY = "spec"
_STATE_PREFIX = "state/"


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """An ``.npz`` numpy can read (allow_pickle=False), with identical bytes for identical arrays.

    Written to a temporary name and moved in at the end, so a reader never sees half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(tmp, "w") as archive:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            array = np.asarray(arrays[key])
            array = array if array.flags.c_contiguous else np.ascontiguousarray(array)  # keeps 0-d arrays 0-d
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue(), compresslevel=9)
    tmp.replace(path)
    return path


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
    return save_npz(target, arrays)


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
        raise ValueError(f"{source}: format {spec.get('format')!r} is not {FORMAT!r}; retrain the solution")
    return spec, state
