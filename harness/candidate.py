"""Turning a candidate (a solution folder or a zip) into a clean folder the child can run.

A solution folder with a ``manifest.json`` is laid out exactly as ``harness.package`` would zip
it (its files, its artifacts, the project modules it imports), so what is gated is what uploads.

Extraction is where an upload first meets the grader, so it refuses what a careful grader would:
absolute or ``..`` paths, links, archives that expand past a bound, and a ``solution.py`` that
is not at the root (one official example zipped the folder instead of its contents).
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_UNCOMPRESSED_BYTES = 2 * 1024**3
"""An archive that expands past this is treated as a zip bomb."""

SKIPPED_NAMES = ("__pycache__", ".DS_Store")


class CandidateLayoutError(ValueError):
    """The candidate cannot be run as submitted; ``kind`` names the gate check it fails."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind

    def __reduce__(self):  # travels back from a shard's worker as itself (``harness.execution``)
        return type(self), (self.kind, str(self))


@dataclass(frozen=True)
class ZipEntryProblem:
    name: str
    problem: str


def zip_entry_problems(archive: zipfile.ZipFile) -> list[ZipEntryProblem]:
    """Entries no grader should extract: absolute paths, ``..`` components, links."""
    problems = []
    for info in archive.infolist():
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            problems.append(ZipEntryProblem(name, "absolute path"))
        elif ".." in parts:
            problems.append(ZipEntryProblem(name, "'..' path component escapes the extraction folder"))
        elif stat.S_ISLNK(info.external_attr >> 16):
            problems.append(ZipEntryProblem(name, "symbolic link"))
    return problems


def _extract_zip(path: Path, dest: Path, max_bytes: int) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise CandidateLayoutError("archive", f"{path}: not a readable zip archive ({exc})") from exc
    with archive:
        problems = zip_entry_problems(archive)
        if problems:
            first = problems[0]
            raise CandidateLayoutError(
                "archive", f"{path}: entry {first.name!r} is unsafe ({first.problem}); rebuild the zip with "
                "`python -m harness package`"
            )
        total = sum(i.file_size for i in archive.infolist())
        if total > max_bytes:
            raise CandidateLayoutError(
                "archive", f"{path}: expands to {total / 1024**2:.0f} MB, over the {max_bytes / 1024**2:.0f} MB "
                "bound for uncompressed content (zip bomb guard)"
            )
        archive.extractall(dest)


def _copy_folder(path: Path, dest: Path) -> None:
    for item in path.rglob("*"):
        if item.is_symlink():
            raise CandidateLayoutError(
                "archive", f"{item}: symbolic links do not survive upload; copy the file into the folder instead"
            )
    shutil.copytree(path, dest, ignore=shutil.ignore_patterns(*SKIPPED_NAMES, "*.pyc"), dirs_exist_ok=True)


def _copy_as_packaged(path: Path, dest: Path) -> None:
    """A solution folder runs as its zip would: the same files, project modules vendored."""
    from harness.package import PackageError, collect

    try:
        files = collect(path)
    except PackageError as exc:
        raise CandidateLayoutError("layout", str(exc)) from exc
    for name, source in files.items():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def check_root_layout(root: Path, origin: Path) -> None:
    """``solution.py`` must sit at the root; say where it is if it is elsewhere."""
    if (root / "solution.py").is_file():
        return
    nested = sorted(p.relative_to(root) for p in root.rglob("solution.py"))
    if nested:
        folder = nested[0].parent
        raise CandidateLayoutError(
            "layout", f"{origin}: solution.py is inside {str(folder)!r}, not at the archive's root; the grader "
            f"will not find it. Zip the folder's contents, not the folder (cd {folder} && zip -r ../submission.zip .)"
        )
    raise CandidateLayoutError("layout", f"{origin}: no solution.py at the root")


def materialize(candidate: str | Path, dest: Path, max_uncompressed_bytes: int = MAX_UNCOMPRESSED_BYTES) -> Path:
    """Copy or extract ``candidate`` into ``dest`` (created), check its layout and return ``dest``."""
    path = Path(candidate)
    if not path.exists():
        raise CandidateLayoutError("layout", f"{path}: no such folder or zip")
    dest.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and (path / "manifest.json").is_file():
        _copy_as_packaged(path, dest)
    elif path.is_dir():
        _copy_folder(path, dest)
    elif zipfile.is_zipfile(path):
        _extract_zip(path, dest, max_uncompressed_bytes)
    else:
        raise CandidateLayoutError("layout", f"{path}: neither a folder nor a zip archive")
    check_root_layout(dest, path)
    return dest
