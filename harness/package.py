"""Building the upload: a byte-for-byte reproducible zip of a solution folder.

What goes in: ``solution.py`` and the other Python files of the folder, the artifacts its
``manifest.json`` names, and the modules of this project's ``features`` and ``models`` packages
that those files import (followed transitively), so the zip needs only the grader's libraries.
Entries are sorted, timestamps and permissions fixed, so the same inputs give the same bytes.
"""

from __future__ import annotations

import ast
import importlib.util
import zipfile
from pathlib import Path

from harness.manifest import MANIFEST, Manifest, ManifestError

VENDORED_PACKAGES = ("features", "models")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class PackageError(ValueError):
    """The solution folder cannot be packaged as asked; the message says what to fix."""


def read_manifest(solution: Path) -> Manifest:
    """The solution's manifest; PackageError (what packaging and the gate report) when it is
    missing or malformed."""
    try:
        return Manifest.read(solution)
    except ManifestError as exc:
        raise PackageError(str(exc)) from exc


def _package_root(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise PackageError(f"the project package {name!r} is not importable; run `make setup`")
    return Path(list(spec.submodule_search_locations)[0])


def _module_file(root: Path, dotted: list[str]) -> Path | None:
    """The file of ``features.x.y`` inside the package folder ``root``, if it exists."""
    base = root.joinpath(*dotted[1:])
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _project_imports(path: Path, package_of: str | None = None) -> set[tuple[str, ...]]:
    """Dotted names of project modules imported by the file at ``path`` (absolute and relative)."""
    found = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if package_of is None:
                    continue
                base = package_of.split(".")[: len(package_of.split(".")) - node.level + 1]
                mod = base + (node.module.split(".") if node.module else [])
                names = [mod] + [mod + [alias.name] for alias in node.names]
            else:
                mod = (node.module or "").split(".")
                names = [mod] + [mod + [alias.name] for alias in node.names]
        else:
            continue
        for parts in names:
            if parts and parts[0] in VENDORED_PACKAGES:
                found.add(tuple(parts))
    return found


def vendored_files(sources: list[Path]) -> dict[str, Path]:
    """Archive name -> file for every project module the sources need, with parent ``__init__``s."""
    out: dict[str, Path] = {}
    todo = [(p, None) for p in sources]
    seen: set[tuple[str, ...]] = set()
    while todo:
        path, package = todo.pop()
        for dotted in _project_imports(path, package):
            for depth in range(1, len(dotted) + 1):
                prefix = dotted[:depth]
                if prefix in seen:
                    continue
                seen.add(prefix)
                root = _package_root(prefix[0])
                file = _module_file(root, list(prefix))
                if file is None:
                    continue  # an attribute imported from a module, not a module
                arcname = "/".join((prefix[0],) + tuple(file.relative_to(root).parts))
                out[arcname] = file
                is_pkg = file.name == "__init__.py"
                todo.append((file, ".".join(prefix) if is_pkg else ".".join(prefix[:-1]) or prefix[0]))
    return out


def collect(solution: Path) -> dict[str, Path]:
    """Archive name -> source file for everything the zip of ``solution`` holds."""
    solution = Path(solution)
    if not (solution / "solution.py").is_file():
        raise PackageError(f"{solution}: no solution.py at the top of the folder")
    manifest = read_manifest(solution)
    files = {p.relative_to(solution).as_posix(): p for p in solution.rglob("*.py")
             if "__pycache__" not in p.parts and not p.name.startswith(".")}
    for artifact in manifest.artifacts:
        path = solution / artifact
        if not path.is_file():
            raise PackageError(f"{path}: named in {MANIFEST} but missing; train it first (make train SOLUTION={solution.name})")
        files[Path(artifact).as_posix()] = path
    files.update(vendored_files([p for p in files.values() if p.suffix == ".py"]))
    return dict(sorted(files.items()))


def build_zip(solution: str | Path, out: str | Path, force: bool = False) -> Path:
    """Write the reproducible zip of ``solution`` to ``out``; refuse to overwrite unless ``force``."""
    out = Path(out)
    if out.exists() and not force:
        raise PackageError(f"{out} exists; pass --force to overwrite it")
    files = collect(Path(solution))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".partial")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name, path in files.items():
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, path.read_bytes(), compresslevel=9)
    tmp.replace(out)
    return out
