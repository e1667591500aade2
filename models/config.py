"""Family configs: dataclasses read from a manifest's ``train`` object, and the one error type
for a user's configuration mistakes.

Every family's config is a dataclass whose defaults are the family's defaults, so a manifest
names only what it changes. An unknown key is an error naming it and the valid ones, because a
typo that silently fell back to a default would train another model than the manifest says.
``ConfigError`` is the only exception ``python -m models`` prints without a traceback; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, TypeVar

from features import pipelines

T = TypeVar("T")


class ConfigError(ValueError):
    """The user's configuration (manifest, family settings, paths) is wrong; the message says the fix."""


def _nested_dataclass(hint: Any) -> type | None:
    """The dataclass a field holds (also inside ``X | None``), else None."""
    if is_dataclass(hint):
        return hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next((arg for arg in typing.get_args(hint) if is_dataclass(arg)), None)
    return None


def from_dict(cls: type[T], values: dict[str, Any] | None, where: str = "train") -> T:
    """``cls`` built from JSON ``values`` (nested dataclasses from nested objects); ConfigError on
    an unknown key or a value its checks refuse."""
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a JSON object of settings, got {type(values).__name__}")
    known = sorted(f.name for f in fields(cls))
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {known}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        nested = _nested_dataclass(hints[key])
        kwargs[key] = from_dict(nested, value, f"{where}.{key}") if nested is not None and value is not None else value
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as plain JSON-able values (for run records)."""
    return asdict(config)


def require(ok: bool, key: str, what: str) -> None:
    """Raise ConfigError ``train.<key>: <what>`` unless ``ok`` (for configs' ``__post_init__``)."""
    if not ok:
        raise ConfigError(f"train.{key}: {what}")


@dataclass
class FeaturesConfig:
    """A manifest's ``features``: a named preset (``features.pipelines.PRESETS``) and extra steps
    placed after it, side by side."""

    preset: str | None = None
    extra: list[dict] = field(default_factory=list)

    def steps(self, input_names: tuple[str, ...]) -> list[dict]:
        """The resolved pipeline steps (what ``model.json`` records)."""
        try:
            return pipelines.resolve(input_names, self.preset, self.extra)
        except ValueError as exc:
            raise ConfigError(f"train.features: {exc}") from exc


def build_pipeline(input_names: tuple[str, ...], steps: list[dict]):
    """The (unfitted) pipeline of ``steps``; ConfigError when a step is malformed."""
    try:
        return pipelines.build(input_names, steps)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"train.features: {exc}") from exc
