"""Models made of other models, served one row at a time: seed averages and ensembles.

A composite folder holds ``members.json`` and one subfolder per member; a member is itself a
trained model folder (a pipeline family's ``model.json`` files, a recurrent ``model.npz``) or
another composite (an ensemble member that averages seeds). ``load_folder`` reads any of them,
so one ``solution.py`` serves every composite solution:

* ``{"kind": "average", "members": [{"folder", "family"}...]}``: the arithmetic mean of the
  members (``"seeds": N`` in a training block);
* ``{"kind": "blend", "members": [...]}`` with ``blend.npz``: per output k,
  y_k = intercept_k + sum_m coef[m, k] * p_m,k (non-negative weights summing to 1 with a zero
  intercept, or a ridge stacker), then the weak-target guard. When ``blend.npz`` also holds
  ``online/rate`` (A only), the weights start at ``coef`` in every sequence and move toward the
  members that have been right so far (``models.runtime.online_weights``): each row's state is
  the target of the previous row's prediction.

Everything here is numpy and the members' own runtimes, so the packager can vendor it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.runtime.online_weights import ExpWeights
from models.runtime.predictor import Guard

MEMBERS_FILE = "members.json"
BLEND_FILE = "blend.npz"
PIPELINE_FAMILIES = ("baseline", "ridge_var", "ridge_poly", "lightgbm")
RECURRENT_FAMILIES = ("gru",)


def load_leaf(folder: Path, family: str):
    """The one-row model of a trained (non-composite) member folder of ``family``."""
    if family in PIPELINE_FAMILIES:
        from models.runtime.predictor import load

        return load(folder)
    if family in RECURRENT_FAMILIES:
        from models.recurrent.serving import load_runtime

        return load_runtime(folder)
    raise ValueError(f"{folder}: no one-row runtime for family {family!r}; add it to models.runtime.members")


def read_members(folder: str | Path) -> dict:
    """The parsed ``members.json`` of a composite folder."""
    path = Path(folder) / MEMBERS_FILE
    spec = json.loads(path.read_text())
    if spec.get("kind") not in ("average", "blend") or not isinstance(spec.get("members"), list):
        raise ValueError(f"{path}: expected kind 'average' or 'blend' and a list of members")
    return spec


def load_folder(folder: str | Path, family: str | None = None):
    """The one-row model of ``folder``: a composite when it holds ``members.json``, else a leaf."""
    folder = Path(folder)
    if not (folder / MEMBERS_FILE).is_file():
        return load_leaf(folder, family)
    spec = read_members(folder)
    members = [load_folder(folder / m["folder"], m["family"]) for m in spec["members"]]
    if spec["kind"] == "average":
        return Average(members)
    with np.load(folder / BLEND_FILE, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    return Blend(members, arrays["coef"], arrays["intercept"], Guard.from_arrays(arrays),
                 ExpWeights.from_arrays(arrays["coef"], arrays))


class Average:
    """The mean of members' predictions, one row at a time."""

    def __init__(self, members: list) -> None:
        self.members = members
        self._sum: np.ndarray | None = None

    def reset(self) -> None:
        for member in self.members:
            member.reset()

    def update(self, row: np.ndarray, need: bool = True) -> np.ndarray | None:
        outs = [member.update(row, need) for member in self.members]
        if not need:
            return None
        if self._sum is None:
            self._sum = np.zeros(len(outs[0]))
        total = self._sum
        total[:] = outs[0]
        for out in outs[1:]:
            total += out
        total /= len(outs)
        return total


class Blend:
    """Members combined per output by a linear map (or by online weights that start at it), then guarded."""

    def __init__(self, members: list, coef: np.ndarray, intercept: np.ndarray, guard: Guard,
                 online: ExpWeights | None = None) -> None:
        self.members = members
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.guard = guard
        self.online = online
        if self.coef.shape[0] != len(members):
            raise ValueError(f"blend has {self.coef.shape[0]} weight rows for {len(members)} members")
        self._preds = np.zeros(self.coef.shape)
        self._predicted_last_row = False

    def reset(self) -> None:
        for member in self.members:
            member.reset()
        if self.online is not None:
            self.online.reset()
        self._predicted_last_row = False

    def update(self, row: np.ndarray, need: bool = True) -> np.ndarray | None:
        if self.online is not None and self._predicted_last_row:
            self.online.observe(self._preds, row)  # this row's state is the last prediction's target
        self._predicted_last_row = need
        for m, member in enumerate(self.members):
            out = member.update(row, need)  # every member steps on every row: each keeps its own state
            if need:
                self._preds[m] = out
        if not need:
            return None
        if self.online is not None:
            out = self.online.blend(self._preds) + self.intercept
        else:
            out = (self.coef * self._preds).sum(axis=0) + self.intercept
        return self.guard.apply_row(out)
