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


def _origins(candidate: Path) -> dict[str, str]:
    """Name in the sandbox copy -> where the user finds that file, for a solution folder."""
    if (candidate / "manifest.json").is_file():
        from harness.package import PackageError, collect

        try:
            return {name: str(source) for name, source in collect(candidate).items()}
        except PackageError:
            return {}
    return {}


def to_user_paths(text: str, sandbox_copy: Path, candidate: Path) -> str:
    """``text`` with every path inside ``sandbox_copy`` replaced by the file the user has:
    ``<folder>/<name>`` (or the project module it was vendored from) or ``<zip>:<member>``."""
    if not text:
        return text
    is_zip = candidate.is_file() and zipfile.is_zipfile(candidate)
    origins = {} if is_zip else _origins(candidate)

    def origin(match: re.Match) -> str:
        name = match.group(1)
        if is_zip:
            return f"{candidate}:{name}"
        return origins.get(name, str(candidate / name))

    return re.sub(re.escape(str(sandbox_copy)) + r"/([^\s\"',:()]+)", origin, text)
