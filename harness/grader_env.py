"""What the organizers' image has installed, and how to tell whether an import will resolve there.

The list is the published requirements (``shared/contracts.md``), by distribution name. An
import is fine on the grader when it is the standard library, the grader's ``utils``, a module
shipped inside the archive, one of these distributions, or something they depend on.
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

GRADER_IMAGE = "python:3.11-slim-bookworm"

GRADER_DISTRIBUTIONS = (
    "numpy", "scipy", "pandas", "pyarrow", "fastparquet", "polars", "jax", "jaxlib", "tqdm", "joblib",
    "numba", "einops", "rich", "loguru", "pydantic", "hydra-core", "omegaconf", "pyyaml", "python-dotenv",
    "scikit-learn", "xgboost", "lightgbm", "catboost", "statsmodels", "torch", "torchvision", "torchaudio",
    "lightning", "torchmetrics", "tensorflow", "transformers", "accelerate", "datasets", "tokenizers",
    "sentencepiece", "optuna", "mlflow", "wandb", "matplotlib", "seaborn", "onnxruntime", "onnx", "pytest",
    "flax", "daal4py", "orbax-checkpoint",
)

# Import names of the distributions above, for the static check (no installation needed).
GRADER_IMPORT_NAMES = frozenset({
    "numpy", "scipy", "pandas", "pyarrow", "fastparquet", "polars", "jax", "jaxlib", "tqdm", "joblib",
    "numba", "einops", "rich", "loguru", "pydantic", "hydra", "omegaconf", "yaml", "dotenv", "sklearn",
    "xgboost", "lightgbm", "catboost", "statsmodels", "torch", "torchvision", "torchaudio", "lightning",
    "pytorch_lightning", "lightning_fabric", "torchmetrics", "tensorflow", "keras", "transformers",
    "accelerate", "datasets", "tokenizers", "sentencepiece", "optuna", "mlflow", "wandb", "matplotlib",
    "seaborn", "onnxruntime", "onnx", "pytest", "flax", "daal4py", "orbax",
    # dependencies of the above that code commonly imports directly
    "threadpoolctl", "pytz", "dateutil", "packaging", "PIL", "google", "typing_extensions", "filelock",
    "fsspec", "huggingface_hub", "safetensors", "sympy", "networkx", "jinja2", "tzdata", "six", "ml_dtypes",
    "opt_einsum", "cloudpickle", "pydantic_core", "annotated_types", "markdown_it", "pygments",
    # required by grader packages not installed here (accelerate, wandb; mlflow, wandb and datasets
    # require requests, which requires the other four), so the closure below misses them; numpy's
    # f2py imports charset_normalizer whenever it is installed, so scipy alone pulls it in
    "psutil", "requests", "charset_normalizer", "urllib3", "idna", "certifi",
})

PROVIDED_BY_GRADER = frozenset({"utils"})


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@lru_cache(maxsize=1)
def _installed_closure() -> frozenset[str]:
    """The grader's distributions plus everything they require, as far as this machine knows."""
    seen: set[str] = set()
    todo = [_normalize(d) for d in GRADER_DISTRIBUTIONS]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for req in requires:
            if "extra ==" in req:
                continue
            match = re.match(r"[A-Za-z0-9_.\-]+", req)
            if match:
                todo.append(_normalize(match.group(0)))
    return frozenset(seen)


@lru_cache(maxsize=1)
def _module_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def is_stdlib(module: str) -> bool:
    return module in sys.stdlib_module_names or module in sys.builtin_module_names


def is_vendored(module: str, candidate_root: Path) -> bool:
    return (candidate_root / f"{module}.py").is_file() or (candidate_root / module).is_dir() or any(
        candidate_root.glob(f"{module}.*.so"))


def static_import_ok(module: str, candidate_root: Path) -> bool:
    """Whether ``import module`` in the candidate's source would resolve on the grader."""
    return (is_stdlib(module) or module in PROVIDED_BY_GRADER or module in GRADER_IMPORT_NAMES
            or is_vendored(module, candidate_root))


def runtime_module_ok(module: str, candidate_root: Path) -> bool:
    """Whether a module found loaded after the constructor exists on the grader.

    Modules that came from installed distributions pass when the distribution is one of the
    grader's or one of their (transitive) requirements.
    """
    if static_import_ok(module, candidate_root):
        return True
    dists = _module_distributions().get(module, [])
    return any(_normalize(d) in _installed_closure() for d in dists)
