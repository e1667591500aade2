"""Writing a trained model into its solution folder, in the files ``models.runtime.predictor`` reads.

The manifest names the artifacts a solution ships; a family writes exactly the files its head
needs and this module checks that the two lists agree, so ``harness package`` never misses a
file and never ships a stale one. ``weights.npz`` is written byte-for-byte reproducibly (fixed
zip timestamps, sorted entries), so retraining with the same seed leaves git with no change.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from models.runtime.predictor import FORMAT, MODEL_FILE, PIPELINE_FILE, TREES_FILE, WEIGHTS_FILE

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class ManifestError(ValueError):
    """The solution's manifest does not match what its family writes; the message says the fix."""


def files_for(head_kind: str) -> list[str]:
    """The artifact files of a head kind, in manifest order."""
    files = [MODEL_FILE, PIPELINE_FILE, WEIGHTS_FILE]
    return files + [TREES_FILE] if head_kind == "trees" else files


def check_manifest(manifest: dict, head_kind: str, folder: Path) -> list[str]:
    """The files to write; raises ManifestError when ``manifest['artifacts']`` names others."""
    expected = files_for(head_kind)
    listed = list(manifest.get("artifacts", []))
    if sorted(listed) != sorted(expected):
        raise ManifestError(f"{folder / 'manifest.json'}: 'artifacts' is {listed}, but this family writes "
                            f"{expected}; set \"artifacts\": {json.dumps(expected)}")
    return expected


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """An ``.npz`` numpy can read (allow_pickle=False), with identical bytes for identical arrays."""
    tmp = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(tmp, "w") as archive:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue(), compresslevel=9)
    tmp.replace(path)
    return path


def save_model(folder: Path, manifest: dict, *, competition: str, family: str, input_names: tuple[str, ...],
               output_names: tuple[str, ...], pipeline, head: dict, arrays: dict[str, np.ndarray],
               trees_text: str | None = None) -> list[str]:
    """Write model.json, pipeline.npz, weights.npz (and trees.txt) into ``folder``; returns the file names."""
    folder = Path(folder)
    files = check_manifest(manifest, head["kind"], folder)
    if (head["kind"] == "trees") != (trees_text is not None):
        raise ValueError("a tree head needs its model text, and only a tree head has one")
    spec = {"format": FORMAT, "competition": competition, "family": family, "input_names": list(input_names),
            "output_names": list(output_names), "pipeline": {"steps": pipeline.options["steps"]}, "head": head}
    (folder / MODEL_FILE).write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")
    pipeline.save(folder / PIPELINE_FILE)
    save_npz(folder / WEIGHTS_FILE, arrays)
    if trees_text is not None:
        (folder / TREES_FILE).write_text(trees_text)
    return files
