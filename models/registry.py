"""Model families by name: each entry is a ``models.family.Family`` object, imported only when
used (a family with heavy dependencies costs nothing to the others)."""

from __future__ import annotations

import importlib

from models.config import ConfigError
from models.family import Family

FAMILIES: dict[str, str] = {
    "baseline": "models.baselines:FAMILY",
    "ridge_var": "models.linear:RIDGE_VAR",
    "ridge_poly": "models.linear:RIDGE_POLY",
    "lightgbm": "models.boosting:FAMILY",
    "gru": "models.recurrent.train:FAMILY",
}
"""Family name -> "module:attribute" of its ``Family`` object."""


def family(name: str) -> Family:
    """The family called ``name``; ConfigError naming the known ones otherwise."""
    if name not in FAMILIES:
        raise ConfigError(f"unknown model family {name!r}; known families: {', '.join(sorted(FAMILIES))}")
    module_name, _, attribute = FAMILIES[name].partition(":")
    return getattr(importlib.import_module(module_name), attribute)
