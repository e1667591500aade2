"""Paths in a candidate's traceback, mapped from the sandbox's copy back to what the user gave.

The candidate runs from a temporary copy (``.../wunderbench-run-*/candidate/``); a traceback
that names that copy sends the user to a folder that no longer exists. Each file of the copy
came from somewhere the user can open: their folder, a project module the packager vendored
into it, or a member of their zip.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Callable


def _origins(candidate: Path) -> dict[str, str]:
    """Name in the sandbox copy -> where the user finds that file, for a solution folder."""
    if (candidate / "manifest.json").is_file():
        from harness.package import PackageError, collect

        try:
            return {name: str(source) for name, source in collect(candidate).items()}
        except PackageError:
            return {}
    return {}


def namer(candidate: Path) -> Callable[[str], str]:
    """Where the user finds the sandbox copy's file ``name`` (relative to the copy's root):
    ``<folder>/<name>`` (or the project module it was vendored from) or ``<zip>:<member>``."""
    if candidate.is_file() and zipfile.is_zipfile(candidate):
        return lambda name: f"{candidate}:{name}"
    origins = _origins(candidate)
    return lambda name: origins.get(name, str(candidate / name))


def to_user_paths(text: str, sandbox_copy: Path, candidate: Path) -> str:
    """``text`` with every path inside ``sandbox_copy`` replaced by the file the user has
    (``namer``)."""
    if not text:
        return text
    name_of = namer(candidate)
    return re.sub(re.escape(str(sandbox_copy)) + r"/([^\s\"',:()]+)", lambda m: name_of(m.group(1)), text)
