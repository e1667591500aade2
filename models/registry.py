"""Model families: name -> the function that trains a solution of that family.

The contract every family implements (the recurrent family plugs in here too)::

    train_solution(solution_dir: Path, manifest: dict, train: SequenceSet, valid: SequenceSet,
                   console: rich.console.Console) -> dict

It trains per ``manifest["train"]`` (the family's config), writes the files named in
``manifest["artifacts"]`` into ``solution_dir`` and returns a JSON-able run record with at least
``family``, ``config``, ``valid_score`` (the headline metric on ``valid``, computed offline),
``per_output``, ``oracle_fraction`` (when the valid file has an oracle sidecar) and ``seconds``.
Families are imported only when used, so a family with heavy dependencies costs nothing to others.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

FAMILIES: dict[str, str] = {
    "baseline": "models.baselines:train_solution",
    "ridge_var": "models.linear:train_solution",
    "ridge_poly": "models.linear:train_solution",
    "lightgbm": "models.boosting:train_solution",
    "gru": "models.recurrent.train:train_solution",
}
"""Family name -> "module:function" of its trainer."""

OFFLINE: dict[str, str] = {"gru": "models.recurrent.serving:load_offline"}
"""Loaders of a trained folder's batch form (``predict_sequences``) for families with their own
files; every other family writes ``model.json`` and loads with ``DEFAULT_OFFLINE``."""

DEFAULT_OFFLINE = "models.runtime.predictor:load"


def _resolve(target: str) -> Callable:
    module_name, _, function = target.partition(":")
    return getattr(importlib.import_module(module_name), function)


def _known(family: str) -> str:
    if family not in FAMILIES:
        raise KeyError(f"unknown model family {family!r}; known families: {', '.join(sorted(FAMILIES))}")
    return family


def trainer(family: str) -> Callable[..., dict]:
    """The ``train_solution`` function of ``family``, with a clear error for an unknown name."""
    return _resolve(FAMILIES[_known(family)])


def offline_loader(family: str) -> Callable:
    """The function that loads a trained folder of ``family`` as a batch predictor."""
    return _resolve(OFFLINE.get(_known(family), DEFAULT_OFFLINE))
