"""The network families' training configuration: ``manifest["train"]`` parsed and checked once.

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
STOP_ON = ("valid", "fold", "none")


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
class NetTrainConfig:
    """What every network family of this package (``gru``, ``tcn``, ``window_attn``) reads from
    ``manifest["train"]``: the frame around the body, the data, the loss and the fit loop.
    ``features``: an optional feature pipeline (a preset and extra steps,
    ``models.config.FeaturesConfig``) whose outputs replace the raw row as the network's input,
    in training and at inference alike. ``skip``: a linear map from the cell input straight to
    the outputs, ``learned`` with the rest or fitted first as a ridge (``ridge_alpha``, on
    ``ridge_sequences``) and frozen, so the network learns what the linear model leaves.
    ``step_sample`` > 0: each batch's loss counts only that many steps drawn at random (the
    same for the batch), which is what makes a windowed body affordable to train; 0 counts all.

    ``converge``: train until ``patience`` epochs pass without a better selection score, up to
    ``converge_cap`` epochs (``epochs`` is then unused), so a run ends when the model converged
    rather than when a guessed count ran out. ``stop_on="valid"`` chooses the epoch on one half
    of valid's sequences and reports the score on the other (``selection_split``);
    ``stop_on="none"`` chooses nothing: it fits all of train for exactly ``epochs`` epochs and
    keeps the last, which is how a refit repeats an epoch count chosen earlier (``models auto``).
    ``lr_schedule``: the learning rate of each epoch, in order, instead of the plateau schedule
    (which needs a stopping set), so a refit can replay the rates the chosen run used."""

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
    step_sample: int = 0
    epochs: int = 30
    converge: bool = False
    converge_cap: int = 200
    max_minutes: float | None = None
    patience: int = 6
    plateau_patience: int = 2
    plateau_factor: float = 0.5
    min_lr: float = 1e-5
    stop_on: str = "valid"
    lr_schedule: list[float] | None = None
    folds: int = 5
    fold: int = 0
    train_sequences: int | None = None
    train_limit: int | None = None
    stop_sequences: int | None = None
    eval_batch: int = 256
    seed: int = 0
    split_seed: int | None = None
    threads: int = 1
    check_sequences: int = 2

    def __post_init__(self) -> None:
        require(self.skip in SKIPS, "skip", f"must be one of {SKIPS}, got {self.skip!r}")
        require(self.ridge_alpha >= 0, "ridge_alpha", "must be non-negative")
        require(self.loss.name in LOSSES, "loss.name", f"must be one of {LOSSES}, got {self.loss.name!r}")
        require(self.loss_steps in LOSS_STEPS, "loss_steps", f"must be one of {LOSS_STEPS}, got {self.loss_steps!r}")
        require(self.stop_on in STOP_ON, "stop_on", f"must be one of {STOP_ON}, got {self.stop_on!r}")
        require(isinstance(self.converge, bool), "converge", "must be true or false")
        require(self.stop_on != "none" or not self.converge, "converge",
                "needs a stopping set; with stop_on \"none\" set epochs to the count wanted")
        if self.lr_schedule is not None:
            ok = isinstance(self.lr_schedule, list) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in self.lr_schedule)
            require(ok, "lr_schedule", "must be null or a list of positive learning rates, one per epoch")
            require(not self.converge and len(self.lr_schedule) >= self.epochs, "lr_schedule",
                    f"needs a rate for each of the {self.epochs} epochs (and converge off); "
                    f"got {len(self.lr_schedule)}")
        require(not self.converge or self.patience > 0, "converge",
                "needs patience > 0 (training stops when the selection score stops improving)")
        for key in ("batch_size", "epochs", "converge_cap", "eval_batch", "threads", "check_sequences",
                    "features_fit_sequences", "ridge_sequences"):
            value = getattr(self, key)
            require(isinstance(value, int) and value >= 1, key, "must be a positive integer")
        for key in ("head_hidden", "chunk", "step_sample", "patience", "plateau_patience", "seed"):
            value = getattr(self, key)
            require(isinstance(value, int) and value >= 0, key, "must be a non-negative integer")
        for key in ("lr", "plateau_factor"):
            require(getattr(self, key) > 0, key, "must be positive")
        require(self.plateau_factor < 1, "plateau_factor", "must be below 1")
        require(not (self.step_sample and self.chunk), "step_sample",
                "samples steps of whole sequences; set chunk to 0 or step_sample to 0")
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

    def describe(self) -> str:
        """The body in a few words, for the training log."""
        raise NotImplementedError


@dataclass
class RecurrentConfig(NetTrainConfig):
    """``gru``: stacked GRU/LSTM cells (``cell``, ``hidden``, ``layers``) carrying their state from
    row to row; ``chunk`` > 0 trains on truncated back-propagation windows; ``quantize`` ships
    int8 weights."""

    cell: str = "gru"
    hidden: int = 128
    layers: int = 2
    quantize: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.cell in CELLS, "cell", f"must be one of {CELLS}, got {self.cell!r}")
        for key in ("hidden", "layers"):
            value = getattr(self, key)
            require(isinstance(value, int) and value >= 1, key, "must be a positive integer")

    def describe(self) -> str:
        return f"{self.cell} {self.layers}x{self.hidden}"


def _whole_sequences(cfg: NetTrainConfig) -> None:
    require(cfg.chunk == 0, "chunk", "must be 0: this family carries no state between chunks (whole sequences only)")


@dataclass
class TcnConfig(NetTrainConfig):
    """``tcn``: causal dilated convolutions of ``kernel`` taps, one residual layer per dilation,
    ``channels`` wide (receptive field 1 + (kernel - 1) * sum(dilations) rows)."""

    channels: int = 64
    dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    kernel: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        _whole_sequences(self)
        require(isinstance(self.channels, int) and self.channels >= 1, "channels", "must be a positive integer")
        require(isinstance(self.kernel, int) and self.kernel >= 1, "kernel", "must be a positive integer")
        require(isinstance(self.dilations, list) and bool(self.dilations)
                and all(isinstance(d, int) and d >= 1 for d in self.dilations), "dilations",
                "must be a non-empty list of positive integers")

    def describe(self) -> str:
        return f"{len(self.dilations)}x{self.channels} (kernel {self.kernel}, dilations {self.dilations})"


@dataclass
class WindowAttnConfig(NetTrainConfig):
    """``window_attn``: a bidirectional GRU of width ``hidden`` over the trailing ``window`` rows,
    pooled by scaled dot-product attention (``attn_dim``) to the current row. Training samples
    ``step_sample`` steps per batch (every window is a GRU run of its own)."""

    hidden: int = 64
    window: int = 100
    attn_dim: int = 64
    step_sample: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        _whole_sequences(self)
        for key in ("hidden", "window", "attn_dim"):
            value = getattr(self, key)
            require(isinstance(value, int) and value >= 1, key, "must be a positive integer")

    def describe(self) -> str:
        return f"bi-GRU {self.hidden} over {self.window} rows, attention {self.attn_dim}"


def head_groups(cfg: NetTrainConfig, output_names: tuple[str, ...], distinct_targets: bool) -> list[list[int]]:
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
