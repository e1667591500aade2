"""What a recurrent solution's ``PredictionModel`` runs: a one-step runtime chosen by name.

``numpy`` reads ``model.npz`` (plain numpy, fewest moving parts); ``onnx`` reads
``model.onnx`` (onnxruntime, one thread). ``benchmarks/bench_recurrent.py`` measures both;
the solutions ship the faster one. onnxruntime is imported only when it is asked for, so a
numpy solution starts without it. When the folder holds ``features.npz`` (a fitted feature
pipeline), each row goes through the pipeline's streaming ``update`` first, as in training.
"""

from __future__ import annotations

from pathlib import Path

ARTIFACTS = {"numpy": "model.npz", "onnx": "model.onnx"}
"""The artifact each backend reads, relative to the solution folder."""

FEATURES = "features.npz"
"""The optional fitted feature pipeline whose outputs are the network's inputs."""


class RecurrentRuntime:
    """A one-step network, fed the raw row or the outputs of a streaming feature pipeline, with
    the one-row interface of every trained model (``reset``, ``update(row, need)``)."""

    def __init__(self, model, pipeline=None):
        self.model = model
        self.pipeline = pipeline

    def reset(self) -> None:
        if self.pipeline is not None:
            self.pipeline.reset()
        self.model.reset()

    def step(self, row):
        """The prediction for ``row`` (the network steps on every row, needed or not)."""
        return self.model.step(row if self.pipeline is None else self.pipeline.update(row))

    def update(self, row, need: bool = True):
        prediction = self.step(row)
        return prediction if need else None


def load_features(folder: str | Path, spec) -> object | None:
    """The fitted feature pipeline of ``folder`` (``features.npz``), rebuilt from the resolved
    steps recorded once in the spec's meta (``meta["features"]``); None when there is none."""
    features = spec.meta.get("features")
    if features is None:
        return None
    from features import pipelines

    return pipelines.load(Path(folder) / FEATURES, features["input_names"], features["steps"])


def _spec(folder: Path):
    """The spec of ``folder``'s ``model.npz``: a GRU/LSTM ``NetSpec`` or a ``BlockSpec`` (tcn,
    window_attn), told apart by the format its header records."""
    from models.recurrent import block_spec
    from models.recurrent.spec import NetSpec, peek_format

    path = folder / ARTIFACTS["numpy"]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; train the solution first (make train SOLUTION={folder.name})")
    if peek_format(path) == block_spec.FORMAT:
        return block_spec.BlockSpec.load(path)
    return NetSpec.load(path)


def _is_block(spec) -> bool:
    """Whether ``spec`` is a tcn/window_attn ``BlockSpec`` (else a GRU/LSTM ``NetSpec``)."""
    from models.recurrent.block_spec import BlockSpec

    return isinstance(spec, BlockSpec)


def load_runtime(folder: str | Path, backend: str = "numpy") -> RecurrentRuntime:
    """The one-step runtime of the model in ``folder`` (``step(row) -> (K,) float64``).

    ``model.npz`` is read in both cases: it holds the numpy net and the feature steps. Of the
    block families, only window_attn has an ONNX form (its body; ``runtime_blocks.WindowOnnxStep``).
    """
    if backend not in ARTIFACTS:
        raise ValueError(f"unknown backend {backend!r}; use one of {sorted(ARTIFACTS)}")
    folder = Path(folder)
    spec = _spec(folder)
    if _is_block(spec):
        if backend == "onnx" and spec.kind != "window_attn":
            raise ValueError(f"{folder}: the {spec.kind} family runs in numpy only; use backend 'numpy'")
        from models.recurrent.runtime_blocks import step_runtime

        model = step_runtime(spec, folder / ARTIFACTS["onnx"] if backend == "onnx" else None)
    elif backend == "onnx":
        from models.recurrent import runtime_onnx

        model = runtime_onnx.load(folder / ARTIFACTS["onnx"])
    else:
        from models.recurrent.runtime_numpy import NumpyStep

        model = NumpyStep(spec)
    return RecurrentRuntime(model, load_features(folder, spec))


class OfflinePredictor:
    """The batch form of a trained recurrent solution, from the files it ships: whole sequences
    through the feature pipeline's batch form and the numpy network (``runtime_numpy``), so
    that parity compares the shipped artifacts, not the PyTorch net they came from."""

    def __init__(self, spec, pipeline=None):
        self.spec = spec
        self.pipeline = pipeline

    def predict_sequences(self, features, steps=None):
        """Predictions (S, T, K) for whole sequences (S, T, F); rows outside ``steps`` are NaN."""
        import numpy as np

        if _is_block(self.spec):
            from models.recurrent.runtime_blocks import run_sequences
        else:
            from models.recurrent.runtime_numpy import run_sequences

        x = features if self.pipeline is None else self.pipeline.transform(features)
        out = run_sequences(self.spec, x)
        if steps is not None:
            out[:, ~np.asarray(steps, dtype=bool)] = np.nan
        return out


def load_offline(folder: str | Path) -> OfflinePredictor:
    """The ``OfflinePredictor`` of the trained solution in ``folder`` (reads ``model.npz``)."""
    folder = Path(folder)
    spec = _spec(folder)
    return OfflinePredictor(spec, load_features(folder, spec))
