"""The recurrent family's training configuration: ``manifest["train"]`` parsed and checked once.

Every option has a default, so a manifest names only what it changes; an unknown key or a bad
value is an error that names the key, because a typo that silently falls back to a default
would train a different model than the one the manifest describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.config import ConfigError, FeaturesConfig, require

CELLS = ("gru", "lstm")
SKIPS = ("none", "learned", "ridge")
LOSSES = ("mse", "mse_abs", "pearson")
LOSS_STEPS = ("all", "scored")
STOP_ON = ("valid", "fold")


@dataclass
class SeqNormConfig:
    """Causal per-sequence scale normalization.

    Inputs (after global standardization) are divided by the root mean square of the sequence
    so far, shrunk toward 1 by ``prior`` pseudo-steps; outputs are multiplied back when
    ``rescale_output`` (A, whose targets are the next inputs). ``log_scale_input`` also feeds
    log(scale) to the network so it still knows the sequence's volatility. ``mean_input`` also
    feeds each feature's running mean over the sequence so far (shrunk toward the global mean
    by ``mean_prior`` pseudo-rows, divided by the scale): a per-sequence level a GRU would
    otherwise have to integrate over hundreds of steps.
    """

    enabled: bool = False
    prior: float = 20.0
    log_scale_input: bool = True
    rescale_output: bool = True
    mean_input: bool = False
    mean_prior: float = 20.0


@dataclass
class LossConfig:
    """``mse``; ``mse_abs``: MSE plus ``abs_weight`` times a |target|-weighted MSE; ``pearson``:
    minus the weighted Pearson of the clipped predictions, plus ``mse_weight`` times MSE."""

    name: str = "mse"
    abs_weight: float = 1.0
    mse_weight: float = 0.0


@dataclass
class AugmentConfig:
    """Per-sequence scale augmentation (log-normal factor of sd ``scale_sigma``) and Gaussian
    input noise of sd ``noise_std``, both in standardized units; ``prob`` is per sequence."""

    scale_sigma: float = 0.0
    noise_std: float = 0.0
    prob: float = 1.0


@dataclass
class RecurrentConfig:
    """Everything ``manifest["train"]`` may set. ``features``: an optional feature pipeline (a
    preset and extra steps, ``models.config.FeaturesConfig``) whose outputs replace the raw row
    as the network's input, in training and at inference alike. ``skip``: a linear map from the cell input straight to the outputs, ``learned`` with the rest or fitted
    first as a ridge (``ridge_alpha``, on ``ridge_sequences``) and frozen, so the recurrent part
    learns what the linear model leaves (a GRU on a ridge base)."""

    cell: str = "gru"
    hidden: int = 128
    layers: int = 2
    head_hidden: int = 0
    heads: list[list[str]] | None = None
    skip: str = "none"
    ridge_alpha: float = 1e-3
    ridge_sequences: int = 2000
    features: FeaturesConfig | None = None
    features_fit_sequences: int = 256
    input_norm: bool = True
    input_clip: float = 8.0
    seqnorm: SeqNormConfig = field(default_factory=SeqNormConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    loss_steps: str = "all"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    lr: float = 2e-3
    weight_decay: float = 1e-2
    batch_size: int = 32
    grad_clip: float = 1.0
    chunk: int = 0
    epochs: int = 30
    max_minutes: float | None = None
    patience: int = 6
    plateau_patience: int = 2
    plateau_factor: float = 0.5
    min_lr: float = 1e-5
    stop_on: str = "valid"
    folds: int = 5
    fold: int = 0
    train_sequences: int | None = None
    train_limit: int | None = None
    stop_sequences: int | None = None
    eval_batch: int = 256
    seed: int = 0
    split_seed: int | None = None
    threads: int = 1
    quantize: bool = False
    check_sequences: int = 2

    def __post_init__(self) -> None:
        require(self.cell in CELLS, "cell", f"must be one of {CELLS}, got {self.cell!r}")
        require(self.skip in SKIPS, "skip", f"must be one of {SKIPS}, got {self.skip!r}")
        require(self.ridge_alpha >= 0, "ridge_alpha", "must be non-negative")
        require(self.loss.name in LOSSES, "loss.name", f"must be one of {LOSSES}, got {self.loss.name!r}")
        require(self.loss_steps in LOSS_STEPS, "loss_steps", f"must be one of {LOSS_STEPS}, got {self.loss_steps!r}")
        require(self.stop_on in STOP_ON, "stop_on", f"must be one of {STOP_ON}, got {self.stop_on!r}")
        for key in ("hidden", "layers", "batch_size", "epochs", "eval_batch", "threads", "check_sequences",
                    "features_fit_sequences", "ridge_sequences"):
            value = getattr(self, key)
            require(isinstance(value, int) and value >= 1, key, "must be a positive integer")
        for key in ("head_hidden", "chunk", "patience", "plateau_patience", "seed"):
            value = getattr(self, key)
            require(isinstance(value, int) and value >= 0, key, "must be a non-negative integer")
        for key in ("lr", "plateau_factor"):
            require(getattr(self, key) > 0, key, "must be positive")
        require(self.plateau_factor < 1, "plateau_factor", "must be below 1")
        for key in ("weight_decay", "grad_clip", "input_clip", "min_lr"):
            require(getattr(self, key) >= 0, key, "must be non-negative (0 turns it off)")
        require(self.split_seed is None or (isinstance(self.split_seed, int) and self.split_seed >= 0), "split_seed",
                "must be null (the seed draws the folds) or a non-negative integer")
        require(self.folds >= 2 and 0 <= self.fold < self.folds, "fold",
                f"needs folds >= 2 and 0 <= fold < folds, got {self.fold}/{self.folds}")
        require(self.seqnorm.prior > 0, "seqnorm.prior", "must be positive")
        require(self.seqnorm.mean_prior > 0, "seqnorm.mean_prior", "must be positive")
        require(self.augment.scale_sigma >= 0 and self.augment.noise_std >= 0, "augment",
                "sigmas must be non-negative")
        require(0 <= self.augment.prob <= 1, "augment.prob", "must lie in [0, 1]")
        require(self.max_minutes is None or self.max_minutes > 0, "max_minutes", "must be null or positive")
        for key in ("train_sequences", "train_limit", "stop_sequences"):
            value = getattr(self, key)
            require(value is None or (isinstance(value, int) and value >= 1), key,
                    "must be null or a positive integer")
        if self.heads is not None:
            ok = isinstance(self.heads, list) and all(
                isinstance(g, list) and g and all(isinstance(n, str) for n in g) for g in self.heads)
            require(ok, "heads", "must be null or a list of non-empty lists of output names")


def head_groups(cfg: RecurrentConfig, output_names: tuple[str, ...], distinct_targets: bool) -> list[list[int]]:
    """Output indices of each head. Default: one head per target when the targets are distinct
    quantities (B's t0, t1), one head for a group of like outputs (A's next state)."""
    if cfg.heads is None:
        return [[i] for i in range(len(output_names))] if distinct_targets else [list(range(len(output_names)))]
    index = {n: i for i, n in enumerate(output_names)}
    groups = []
    for group in cfg.heads:
        missing = [n for n in group if n not in index]
        if missing:
            raise ConfigError(f"train.heads: unknown output(s) {missing}; outputs are {list(output_names)}")
        groups.append([index[n] for n in group])
    flat = sorted(i for g in groups for i in g)
    if flat != list(range(len(output_names))):
        raise ConfigError("train.heads: every output must belong to exactly one head")
    return groups
