"""A solution's ``manifest.json``, read and checked once, as the one type that the harness
(package, gate) and ``models`` (training) read.

Keys: ``competition`` ("A" or "B"), ``artifacts`` (files beside ``solution.py`` that ship in the
zip), ``trained`` (whether ``python -m models train`` builds the artifacts), ``family`` and
``train`` (which model family trains it and its settings; read by ``models``), ``gate`` (per-
solution gate settings). An unknown key is an error naming it, so a typo is never ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.competitions import COMPETITIONS

MANIFEST = "manifest.json"


class ManifestError(ValueError):
    """The manifest is missing or malformed; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class Manifest:
    folder: Path
    competition: str
    artifacts: tuple[str, ...] = ()
    trained: bool = False
    family: str | None = None
    train: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.folder / MANIFEST

    @classmethod
    def read(cls, folder: str | Path) -> Manifest:
        """The manifest of the solution ``folder``; ManifestError when it is missing or malformed."""
        folder = Path(folder)
        path = folder / MANIFEST
        if not path.exists():
            raise ManifestError(f"{path}: missing; a solution folder needs a manifest naming its competition and "
                                "artifacts")
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(values, dict):
            raise ManifestError(f"{path}: must be a JSON object")
        known = sorted(name for name in cls.__dataclass_fields__ if name != "folder")
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ManifestError(f"{path}: unknown key(s) {unknown}; valid keys are {known}")
        if values.get("competition") not in COMPETITIONS:
            raise ManifestError(f"{path}: 'competition' must be one of {sorted(COMPETITIONS)}")
        artifacts = values.get("artifacts", [])
        if not isinstance(artifacts, list) or not all(isinstance(name, str) for name in artifacts):
            raise ManifestError(f"{path}: 'artifacts' must be a list of file names")
        for key, kind in (("trained", bool), ("train", dict), ("gate", dict)):
            if key in values and not isinstance(values[key], kind):
                raise ManifestError(f"{path}: '{key}' must be a JSON {'true/false' if kind is bool else 'object'}")
        return cls(folder, values["competition"], tuple(artifacts), values.get("trained", False),
                   values.get("family"), values.get("train", {}), values.get("gate", {}))
