"""Synthetic markets for both competitions, each with its exact oracle.

The real data cannot ship, so the workbench generates its own; ``calibration.md`` says what
the generated sets must look like. Generators are imported lazily: the A and B modules are
independent, and a command that needs one should not pay for (or break on) the other.
"""

from __future__ import annotations

import importlib

from harness.market.base import Chunk, Generator, Sidecar, load_sidecar, sidecar_path, write_set

GENERATORS: dict[str, str] = {
    "A": "harness.market.a:AGenerator",
    "B": "harness.market.b:BGenerator",
}
"""Competition key -> "module:Class" of its generator."""


def get_generator(key: str) -> Generator:
    """An instance of the generator for competition ``key`` ("A"/"B", or a competition name)."""
    from harness.competitions import get

    comp = get(key)
    target = GENERATORS.get(comp.key)
    if target is None:
        raise KeyError(f"no market generator registered for competition {comp.key}")
    module_name, _, cls_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise KeyError(f"the {comp.key} generator ({module_name}) is not built yet") from exc
        raise
    return getattr(module, cls_name)()


__all__ = [
    "GENERATORS",
    "Chunk",
    "Generator",
    "Sidecar",
    "get_generator",
    "load_sidecar",
    "sidecar_path",
    "write_set",
]
