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


def load_features(path: str | Path):
    """The fitted feature pipeline saved at ``path``, rebuilt from the steps it records."""
    from features.storage import load_fitted
    from models.runtime import pipelines

    spec, _ = load_fitted(path)
    return pipelines.load(path, spec["input_names"], spec["options"]["steps"])


def load_runtime(folder: str | Path, backend: str = "numpy") -> RecurrentRuntime:
    """The one-step runtime of the model in ``folder`` (``step(row) -> (K,) float64``)."""
    if backend not in ARTIFACTS:
        raise ValueError(f"unknown backend {backend!r}; use one of {sorted(ARTIFACTS)}")
    path = Path(folder) / ARTIFACTS[backend]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; train the solution first (make train SOLUTION={Path(folder).name})")
    if backend == "onnx":
        from models.recurrent import runtime_onnx

        model = runtime_onnx.load(path)
    else:
        from models.recurrent import runtime_numpy

        model = runtime_numpy.load(path)
    features = Path(folder) / FEATURES
    return RecurrentRuntime(model, load_features(features) if features.is_file() else None)
