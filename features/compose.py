"""Composition: run transforms side by side (Concat) or one after another (Chain).

Why composites share history: transforms side by side read the same input stream, so a
Concat asks its context for the union of its members' lags once and hands each member its
own slice of that single gather. A Chain's later stages read a different stream (the
previous stage's outputs), so each later stage gets its own context.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import StreamContext, Transform


class Identity(Transform):
    """The input columns unchanged (so raw values sit beside derived ones)."""

    kind = "identity"

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        return list(input_names)

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        return sequences.copy()

    def step(self, out: np.ndarray) -> None:
        np.copyto(out, self._current)


class Select(Transform):
    """A subset of the input columns, named by column name, in the order given."""

    kind = "select"

    def __init__(self, columns: Sequence[str]) -> None:
        super().__init__()
        self.columns = tuple(str(column) for column in columns)
        if not self.columns:
            raise ValueError("Select needs at least one column name")

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        missing = [column for column in self.columns if column not in input_names]
        if missing:
            raise ValueError(f"Select: columns {missing} are not among the inputs {list(input_names)}")
        self._index = np.array([input_names.index(column) for column in self.columns], dtype=np.intp)
        return list(self.columns)

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        return sequences[:, :, self._index]

    def step(self, out: np.ndarray) -> None:
        self._current.take(self._index, out=out, mode="wrap")


def _prefixed(prefix: str, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {f"{prefix}.{key}": value for key, value in state.items()}


def _split_state(state: dict[str, np.ndarray], count: int, owner: str) -> list[dict[str, np.ndarray]]:
    parts: list[dict[str, np.ndarray]] = [{} for _ in range(count)]
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if not head.isdigit() or int(head) >= count or not rest:
            raise ValueError(f"{owner}: fitted-state key {key!r} does not name one of its {count} parts")
        parts[int(head)][rest] = value
    return parts


class _Composite(Transform):
    """Shared plumbing of Concat and Chain: members, fitted state under index prefixes."""

    def __init__(self, members: Sequence[Transform]) -> None:
        super().__init__()
        self.members = list(members)
        if not self.members:
            raise ValueError(f"{type(self).__name__} needs at least one transform")
        for member in self.members:
            if not isinstance(member, Transform):
                raise TypeError(f"{type(self).__name__}: {member!r} is not a Transform")
        if len({id(member) for member in self.members}) != len(self.members):
            raise ValueError(f"{type(self).__name__}: the same transform instance appears twice")

    @property
    def is_fitted(self) -> bool:
        return all(member.is_fitted for member in self.members)

    def fitted_state(self) -> dict[str, np.ndarray]:
        state: dict[str, np.ndarray] = {}
        for index, member in enumerate(self.members):
            state.update(_prefixed(str(index), member.fitted_state()))
        return state

    def load_fitted_state(self, state: dict[str, np.ndarray]) -> None:
        for member, part in zip(self.members, _split_state(state, len(self.members), self.describe())):
            member.load_fitted_state(part)
        self._runner = None

    def describe(self) -> str:
        return f"{type(self).__name__}[{', '.join(member.describe() for member in self.members)}]"

    def reset_state(self) -> None:
        for member in self.members:
            member.reset_state()

    def is_bound_to(self, context: StreamContext) -> bool:
        return super().is_bound_to(context) and self._members_bound()

    def _members_bound(self) -> bool:
        return all(member.is_bound_to(self._context) for member in self.members)


class Concat(_Composite):
    """Members side by side on the same input; outputs concatenated in member order."""

    kind = "concat"

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        names: list[str] = []
        self._slices: list[slice] = []
        lags: list[int] = []
        self._lag_offsets: list[int] = []
        for member in self.members:
            member_names = member.setup(input_names)
            self._slices.append(slice(len(names), len(names) + len(member_names)))
            names.extend(member_names)
            self._lag_offsets.append(len(lags))
            lags.extend(member.lags)
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"{self.describe()}: output names collide: {duplicates[:10]}")
        self.lags = tuple(lags)
        self.window = max(member.window for member in self.members)
        return names

    def _fit(self, sequences: np.ndarray) -> None:
        for member in self.members:
            member._fit(sequences)
        self._runner = None

    def _transform_into(self, sequences: np.ndarray, out: np.ndarray) -> None:
        for member, columns in zip(self.members, self._slices):
            member._transform_into(sequences, out[:, :, columns])

    def bind(self, context: StreamContext, offset: int) -> None:
        self._require_fitted()
        self._context = context
        for member, lag_offset in zip(self.members, self._lag_offsets):
            member.bind(context, offset + lag_offset)
        self._out_base: np.ndarray | None = None
        self._member_steps: list[tuple] = []

    def step(self, out: np.ndarray) -> None:
        if out is not self._out_base:
            self._out_base = out
            self._member_steps = [(member.step, out[columns]) for member, columns in zip(self.members, self._slices)]
        for member_step, view in self._member_steps:
            member_step(view)


class Chain(_Composite):
    """Stages one after another: each stage reads the previous stage's outputs."""

    kind = "chain"

    def __init__(self, stages: Sequence[Transform]) -> None:
        super().__init__(stages)
        self._stage_contexts: list[StreamContext] = []

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        names: tuple[str, ...] = input_names
        for stage in self.members:
            names = stage.setup(names)
        self.lags = self.members[0].lags
        self.window = self.members[0].window
        return list(names)

    def _fit(self, sequences: np.ndarray) -> None:
        current = sequences
        for index, stage in enumerate(self.members):
            stage._fit(current)
            if index + 1 < len(self.members):
                following = np.empty(current.shape[:2] + (stage.n_outputs,))
                stage._transform_into(current, following)
                current = following
        self._runner = None

    def _transform_into(self, sequences: np.ndarray, out: np.ndarray) -> None:
        current = sequences
        for index, stage in enumerate(self.members):
            if index + 1 == len(self.members):
                stage._transform_into(current, out)
            else:
                following = np.empty(current.shape[:2] + (stage.n_outputs,))
                stage._transform_into(current, following)
                current = following

    def bind(self, context: StreamContext, offset: int) -> None:
        self._require_fitted()
        self._context = context
        first = self.members[0]
        first.bind(context, offset)
        self._stage_outputs = [np.zeros(stage.n_outputs) for stage in self.members[:-1]]
        self._stage_contexts: list[StreamContext] = []
        for previous, stage in zip(self.members[:-1], self.members[1:]):
            stage_context = StreamContext(previous.n_outputs, [stage.lags], stage.window)
            stage.bind(stage_context, stage_context.offsets[0])
            self._stage_contexts.append(stage_context)
        self._later = list(zip(self._stage_contexts, self.members[1:], self._stage_outputs))

    def reset_state(self) -> None:
        super().reset_state()
        for stage_context in self._stage_contexts:
            stage_context.reset()

    def _members_bound(self) -> bool:
        later = zip(self.members[1:], self._stage_contexts)
        return self.members[0].is_bound_to(self._context) and all(stage.is_bound_to(ctx) for stage, ctx in later)

    def step(self, out: np.ndarray) -> None:
        outputs = self._stage_outputs
        if not outputs:
            self.members[0].step(out)
            return
        self.members[0].step(outputs[0])
        last = len(self._later) - 1
        for index, (stage_context, stage, source) in enumerate(self._later):
            stage_context.push(source)
            stage.step(out if index == last else outputs[index + 1])
