"""The transform protocol: one definition, two forms (streaming and batch) that must agree.

Why two forms: training computes features over whole sequences at once, while ``predict``
sees one row at a time and must answer in microseconds. Every transform therefore has

* a batch form, ``transform(sequences)``: a (sequences, time, inputs) array in, a
  (sequences, time, outputs) array out, vectorized over sequences and columns;
* a streaming form, ``reset()`` then ``update(row)`` once per row, O(1) or O(window) per
  row, numpy only, writing into a preallocated output vector.

How they are kept equal: both forms run the same arithmetic in the same order. Running sums
are updated with ``s += new - old`` when streaming and with ``cumsum(new - old)`` in batch
(``cumsum`` adds in time order, so the two are bit-for-bit identical); lags repeat the first
row of the sequence in both forms; recursions such as EMAs run the same recursion over time
in batch, vectorized over sequences. Tests prove parity on random data.

Semantics for the first rows of a sequence (shared by every transform): the history before
row 0 is taken to be row 0 repeated. So a lag k at row t < k is row 0, a difference is 0,
and rolling sums, means and variances cover the rows available so far (n = min(t + 1, w)).

Streaming machinery: a pipeline owns one :class:`StreamContext` per input it sees. The
context keeps the last rows in a ring buffer and gathers, with one ``numpy.take`` per row,
every lagged row that any transform asked for (and the same rows minus the first row).
Transforms get persistent views into that gather when they are bound, so a transform's
per-row work is a handful of in-place numpy calls on equal-length flat blocks (numpy's
fastest path: about 1 us a call here, twice that when broadcasting) and no allocation.
The per-row budget is set by the number of numpy calls, not by the number of outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from .numerics import SEQUENCE_START

__all__ = [
    "SEQUENCE_START",
    "TRANSFORMS",
    "StreamContext",
    "StreamRunner",
    "Transform",
    "as_sequences",
]

_BATCH_ELEMENT_BUDGET = 1 << 19
"""Elements per intermediate (sequences, time, columns) block in batch forms (4 MiB of float64).

Batch forms process a few sequences at a time so their intermediates stay in cache; the
result does not depend on the chunk size because every transform treats sequences
independently.
"""


def as_sequences(sequences: np.ndarray, n_inputs: int, what: str) -> np.ndarray:
    """Validate a batch input and return it as a float64 (sequences, time, inputs) array.

    A 2-D (time, inputs) array is accepted as a single sequence. Non-finite values are
    refused: the streaming form does not check every row (that would cost time per call),
    so the batch form, where a check is cheap, says so loudly instead.
    """
    array = np.asarray(sequences)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(
            f"{what}: expected an array of shape (sequences, time, {n_inputs}) or (time, {n_inputs}), "
            f"got shape {array.shape}"
        )
    if array.shape[2] != n_inputs:
        raise ValueError(f"{what}: expected {n_inputs} input columns, got {array.shape[2]}")
    if array.shape[1] == 0:
        raise ValueError(f"{what}: sequences must hold at least one step")
    array = np.ascontiguousarray(array, dtype=np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{what}: inputs must be finite (found NaN or infinity)")
    return array


# SEQUENCE_START: a lag meaning the row before the sequence began, i.e. the first row (by
# first-row fill). Its centred value is always 0, so expanding windows use it as the value
# that never leaves.


class StreamContext:
    """Causal memory of one input stream, shared by the transforms that read that stream.

    ``lag_requests`` holds, per transform, the lags it wants every row (0 = the current row,
    ``SEQUENCE_START`` = the first row); they are gathered together into ``gathered`` (raw
    values) and ``centered`` (values minus the sequence's first row), with ``first_tiled``
    the first row repeated once per gathered row. ``offsets[i]`` says where request i starts.
    A transform asks for a lag twice when it wants that row twice in its block: operating
    on equal-length flat blocks keeps numpy on its fast path (broadcasting costs ~2x per call).
    ``window(n)`` returns the last n rows, oldest first, as a view (only if ``window`` > 0).
    """

    def __init__(self, n_columns: int, lag_requests: Sequence[Sequence[int]], window: int) -> None:
        lags = [0]
        offsets = []
        for request in lag_requests:
            offsets.append(len(lags))
            lags.extend(int(lag) for lag in request)
        if any(lag < 0 and lag != SEQUENCE_START for lag in lags):
            raise ValueError(f"lags must be zero or positive (or SEQUENCE_START), got {sorted(set(lags))}")
        self.offsets: tuple[int, ...] = tuple(offsets)
        self.depth = max(max(lags) + 1, int(window), 1)
        self.n_columns = n_columns
        depth = self.depth
        # With a window, every row is written twice (at p and p + depth) so any recent window
        # is one contiguous slice; without one, a plain ring of ``depth`` rows is enough.
        self._double = int(window) > 0
        ring_rows = 2 * depth if self._double else depth
        self._start_row = ring_rows  # holds the sequence's first row, written once per sequence
        self._buffer = np.zeros((ring_rows + 1, n_columns))
        positions = np.arange(depth, dtype=np.intp)[:, None]
        lag_array = np.asarray(lags, dtype=np.intp)[None, :]
        if self._double:
            index = positions + depth - lag_array
        else:
            index = (positions - lag_array) % depth
        self._gather_index = np.where(lag_array == SEQUENCE_START, self._start_row, index).astype(np.intp)
        rows = len(lags)
        self.gathered = np.zeros((rows, n_columns))
        self.centered = np.zeros((rows, n_columns))
        self.gathered_flat = self.gathered.reshape(-1)
        self.centered_flat = self.centered.reshape(-1)
        self.first_tiled = np.zeros(rows * n_columns)
        self._first_grid = self.first_tiled.reshape(rows, n_columns)
        self.current = self.gathered[0]
        self.centered_current = self.centered[0]
        self.first = np.zeros(n_columns)
        self.step = -1
        self._position = 0

    def reset(self) -> None:
        """Forget the sequence; the next row pushed is row 0 of a new one."""
        self.step = -1

    def push(self, row: np.ndarray) -> None:
        """Record the next row and refresh ``gathered`` and ``centered``."""
        buffer = self._buffer
        if self.step < 0:
            if np.shape(row) != (self.n_columns,):
                raise ValueError(f"expected a row of {self.n_columns} values, got shape {np.shape(row)}")
            buffer[:] = row
            self.first[:] = row
            self._first_grid[:] = row
            position = self._position = 0
            self.step = 0
        else:
            position = self._position + 1
            if position == self.depth:
                position = 0
            self._position = position
            buffer[position] = row
            if self._double:
                buffer[position + self.depth] = row
            self.step += 1
        buffer.take(self._gather_index[position], axis=0, out=self.gathered, mode="wrap")
        np.subtract(self.gathered_flat, self.first_tiled, self.centered_flat)

    def window(self, length: int) -> np.ndarray:
        """The last ``length`` rows (first row repeated before the sequence began), oldest first."""
        if not self._double:
            raise RuntimeError("this stream keeps no window; a transform must declare `window` to read one")
        end = self._position + self.depth + 1
        return self._buffer[end - length : end]


TRANSFORMS: dict[str, type[Transform]] = {}
"""The one registry of transforms: every subclass that declares its own ``kind`` registers
itself here when its module is imported, so a pipeline step ``{"kind": ...}`` can name it."""


class Transform:
    """A feature transform with a batch form and a streaming form that give equal results.

    Lifecycle: ``setup(input_names)`` fixes the input columns and the output names; ``fit``
    (only for transforms with fitted state) learns from training sequences; then either
    ``transform(sequences)`` or ``reset()`` / ``update(row)``.

    Subclasses implement ``_output_names_for``, ``_transform_batch`` (or
    ``_transform_chunk``) and ``step``; they declare what history they need through ``lags``
    (rows back, 0 = current; a lag may repeat to get a row twice in the block) and
    ``window`` (how many recent rows ``StreamContext.window`` must return). Fitted
    transforms set ``needs_fit`` and implement ``_learn``, ``fitted_state`` and
    ``load_fitted_state``. Per-sequence running state is re-initialised on a sequence's
    first row (``context.step == 0``), so a reset only has to reset the context.
    """

    kind: ClassVar[str] = "transform"
    needs_fit: ClassVar[bool] = False
    batch_element_budget: ClassVar[int] = _BATCH_ELEMENT_BUDGET

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            if TRANSFORMS.get(cls.kind, cls) is not cls:
                raise TypeError(f"{cls.__name__}: kind {cls.kind!r} is already {TRANSFORMS[cls.kind].__name__}'s")
            TRANSFORMS[cls.kind] = cls

    def __init__(self) -> None:
        self._input_names: tuple[str, ...] | None = None
        self._output_names: tuple[str, ...] = ()
        self._fitted = False
        self._runner: StreamRunner | None = None
        self.lags: tuple[int, ...] = ()
        self.window: int = 0

    # ----------------------------------------------------------------------------- schema
    def setup(self, input_names: Sequence[str]) -> tuple[str, ...]:
        """Fix the input columns; returns the output column names (stable, in output order)."""
        names = tuple(str(name) for name in input_names)
        if not names:
            raise ValueError(f"{self.describe()}: needs at least one input column")
        if len(set(names)) != len(names):
            raise ValueError(f"{self.describe()}: input column names must be unique, got {list(names)}")
        self._input_names = names
        self._runner = None
        self._output_names = tuple(self._output_names_for(names))
        if not self._output_names:
            raise ValueError(f"{self.describe()}: produces no outputs for inputs {list(names)}")
        return self._output_names

    def _output_names_for(self, input_names: tuple[str, ...]) -> list[str]:
        raise NotImplementedError

    @property
    def input_names(self) -> tuple[str, ...]:
        if self._input_names is None:
            raise RuntimeError(f"{self.describe()}: call setup(input_names) first")
        return self._input_names

    @property
    def output_names(self) -> tuple[str, ...]:
        self.input_names  # raises a clear error before setup
        return self._output_names

    @property
    def n_inputs(self) -> int:
        return len(self.input_names)

    @property
    def n_outputs(self) -> int:
        return len(self.output_names)

    def describe(self) -> str:
        """A short label for messages."""
        return type(self).__name__

    # ---------------------------------------------------------------------------- fitting
    @property
    def is_fitted(self) -> bool:
        return self._fitted or not self.needs_fit

    def fit(self, sequences: np.ndarray) -> Transform:
        """Learn fitted state from training sequences (sequences, time, inputs); returns self."""
        self._fit(as_sequences(sequences, self.n_inputs, f"{self.describe()}.fit"))
        return self

    def _fit(self, sequences: np.ndarray) -> None:
        """Fit on validated float64 sequences (composites override this to fit their parts)."""
        self._learn(sequences)
        self._fitted = True
        self._runner = None

    def _learn(self, sequences: np.ndarray) -> None:
        """Learn fitted numbers from validated float64 training sequences; stateless: nothing."""

    def fitted_state(self) -> dict[str, np.ndarray]:
        """Fitted numbers as plain arrays (what a solution ships); empty when nothing is fitted."""
        return {}

    def load_fitted_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``fitted_state`` returned."""
        if state:
            raise ValueError(f"{self.describe()}: has no fitted state but got keys {sorted(state)}")
        self._fitted = True

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError(
                f"{self.describe()}: not fitted; call fit(training_sequences) or load a fitted state first"
            )

    # ------------------------------------------------------------------------------ batch
    def transform(self, sequences: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Batch form: (sequences, time, inputs) -> (sequences, time, outputs), computed in float64.

        A 2-D (time, inputs) array is treated as one sequence and gives (time, outputs).
        ``out`` may be a preallocated (sequences, time, outputs) array, for example float32
        to halve the memory of a large training set; values are rounded only when stored.
        """
        two_dimensional = np.ndim(sequences) == 2
        array = as_sequences(sequences, self.n_inputs, f"{self.describe()}.transform")
        self._require_fitted()
        shape = array.shape[:2] + (self.n_outputs,)
        if out is None:
            out = np.empty(shape)
        elif out.shape != shape or out.dtype.kind != "f":
            raise ValueError(
                f"{self.describe()}.transform: out must be a float array of shape {shape}, got {out.dtype} {out.shape}"
            )
        self._transform_into(array, out)
        return out[0] if two_dimensional else out

    def _batch_width(self) -> int:
        """Columns of the widest intermediate array the batch form builds per step."""
        return max(self.n_inputs, self.n_outputs)

    def _transform_into(self, sequences: np.ndarray, out: np.ndarray) -> None:
        """Write the batch form of validated sequences into ``out``, a few sequences at a time."""
        count, steps, _ = sequences.shape
        chunk = max(1, self.batch_element_budget // (steps * self._batch_width()))
        for start in range(0, count, chunk):
            stop = min(start + chunk, count)
            self._transform_chunk(sequences[start:stop], out[start:stop])

    def _transform_chunk(self, sequences: np.ndarray, out: np.ndarray) -> None:
        """Batch form of a few sequences into ``out`` (override to write outputs in place)."""
        out[...] = self._transform_batch(sequences)

    def _transform_batch(self, sequences: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -------------------------------------------------------------------------- streaming
    def bind(self, context: StreamContext, offset: int) -> None:
        """Attach to a stream: keep views of the rows this transform asked for."""
        self._require_fitted()
        count = len(self.lags)
        self._context = context
        self._current = context.current
        self._centered_current = context.centered_current
        self._first = context.first
        self._lagged = context.gathered[offset : offset + count]
        self._centered_lagged = context.centered[offset : offset + count]
        width = context.n_columns
        self._lagged_flat = context.gathered_flat[offset * width : (offset + count) * width]
        self._centered_flat = context.centered_flat[offset * width : (offset + count) * width]
        self._first_flat = context.first_tiled[offset * width : (offset + count) * width]
        self._out_seen: np.ndarray | None = None
        self._on_bind()

    def is_bound_to(self, context: StreamContext) -> bool:
        """Whether streaming reads ``context`` (False after the transform was bound elsewhere)."""
        return getattr(self, "_context", None) is context

    def _on_bind(self) -> None:
        """Allocate per-stream buffers once, after binding."""

    def _watch_out(self, out: np.ndarray) -> None:
        """Call at the top of ``step``: re-derives cached views when the output buffer changes.

        Owners pass the same output view every row, so this is one identity check per row.
        """
        if out is not self._out_seen:
            self._out_seen = out
            self._on_out(out)

    def _on_out(self, out: np.ndarray) -> None:
        """Cache reshaped views of a new output buffer (subclasses that need them)."""

    def reset_state(self) -> None:
        """Clear per-sequence state (the context itself is reset by its owner)."""

    def step(self, out: np.ndarray) -> None:
        """Write the outputs for the row just pushed into the context into ``out``."""
        raise NotImplementedError

    def reset(self) -> None:
        """Streaming form: start a new sequence."""
        if self._runner is None:
            self._runner = StreamRunner(self)
        self._runner.reset()

    def update(self, row: np.ndarray) -> np.ndarray:
        """Streaming form: the outputs for the next row of the current sequence.

        The returned vector is reused by the next call; copy it to keep it.
        """
        if self._runner is None:
            self._runner = StreamRunner(self)
            self._runner.reset()
        return self._runner.update(row)


class StreamRunner:
    """Drives one transform over a stream of rows: owns its context and output buffer."""

    def __init__(self, transform: Transform) -> None:
        self.transform = transform
        self.context = StreamContext(transform.n_inputs, [transform.lags], transform.window)
        transform.bind(self.context, self.context.offsets[0])
        self.out = np.zeros(transform.n_outputs)

    def reset(self) -> None:
        self.context.reset()
        self.transform.reset_state()

    def update(self, row: np.ndarray) -> np.ndarray:
        self.context.push(row)
        self.transform.step(self.out)
        return self.out
