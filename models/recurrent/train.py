"""Training the recurrent family: the fit loop and the ``train_solution`` entry point.

The loop: AdamW, gradient-norm clipping, ReduceLROnPlateau and early stopping, all driven by
the competition's own metric (``SequenceSet.score``, i.e. ``harness.metrics``) on the stopping
set: the valid file or a sequence-grouped fold of the train file. Whole sequences are fed
from a zero state, as the grader replays them; ``chunk`` > 0 cuts them into truncated
back-propagation windows that carry the state forward. Seeds fix the initialization, the
batch order and the augmentation draws, and torch runs on a fixed thread count, so the same
config and data give the same weights.

``FAMILY`` implements ``models.family.Family``: ``train`` fits the network and measures the
8-bit variant's score; ``write`` writes the artifacts the manifest names (``.npz`` spec for the
numpy runtime, ``.onnx`` one-step graph) and checks the written files against PyTorch over whole
sequences.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from harness.competitions import Competition
from models import cv
from models.config import ConfigError, build_pipeline, to_dict
from models.data import SequenceSet
from models.family import Trained
from models.recurrent import losses, serving
from models.recurrent.augment import augment
from models.recurrent.config import RecurrentConfig, head_groups
from models.recurrent.export import export_onnx
from models.recurrent.nets import RecurrentNet
from models.recurrent.runtime_numpy import NumpyStep, run_sequences
from models.recurrent.runtime_onnx import OnnxStep
from models.recurrent.serving import FEATURES, RecurrentRuntime
from models.recurrent.spec import NetSpec, quantize

EXPORT_TOLERANCE = 1e-5
"""Largest absolute difference allowed between PyTorch and a one-step runtime over whole sequences."""

ARTIFACT_SUFFIXES = (".npz", ".onnx")


class TrainingError(RuntimeError):
    """Training cannot go on as configured; the message says why and what to change."""


@dataclass
class FitResult:
    net: RecurrentNet
    best_score: float
    best_epoch: int
    epochs_run: int
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    stopped_by: str = "epochs"


# -- data preparation --------------------------------------------------------------------------


def _finite_mean_std(values: np.ndarray, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation of the finite entries of (S, T, C) ``values``,
    merged chunk by chunk of sequences (Chan's formula), so memory stays at one chunk."""
    cols = values.shape[-1]
    count, mean, m2 = np.zeros(cols), np.zeros(cols), np.zeros(cols)
    for a in range(0, values.shape[0], chunk):
        block = values[a : a + chunk].reshape(-1, cols).astype(np.float64)
        ok = np.isfinite(block)
        n = ok.sum(axis=0)
        if not n.any():
            continue
        block = np.where(ok, block, 0.0)
        b_mean = block.sum(axis=0) / np.maximum(n, 1)
        b_m2 = (np.where(ok, block - b_mean, 0.0) ** 2).sum(axis=0)
        total = count + n
        delta = b_mean - mean
        mean = mean + delta * n / np.maximum(total, 1)
        m2 = m2 + b_m2 + delta**2 * count * n / np.maximum(total, 1)
        count = total
    var = m2 / np.maximum(count, 1)
    return mean.astype(np.float32), np.sqrt(np.maximum(var, 1e-12)).astype(np.float32)


def build_net(cfg: RecurrentConfig, comp: Competition, train: SequenceSet) -> RecurrentNet:
    """A fresh network whose input and target scalings are measured on ``train`` (whose
    ``features`` are the network's inputs: the raw rows, or a feature pipeline's outputs)."""
    in_mean, in_std = _finite_mean_std(train.features)
    out_mean, out_std = _finite_mean_std(train.targets[:, train.scored])
    if not cfg.input_norm:
        in_mean, in_std = np.zeros_like(in_mean), np.ones_like(in_std)
    groups = head_groups(cfg, comp.prediction_names, distinct_targets=bool(comp.target_columns))
    sn = cfg.seqnorm
    return RecurrentNet(
        n_features=train.features.shape[-1], output_names=comp.prediction_names, groups=groups, cell=cfg.cell,
        hidden=cfg.hidden, layers=cfg.layers, head_hidden=cfg.head_hidden, in_shift=in_mean, in_scale=1.0 / in_std,
        in_clip=cfg.input_clip, out_shift=out_mean, out_scale=out_std,
        seqnorm_prior=sn.prior if sn.enabled else 0.0, seqnorm_log_input=sn.log_scale_input,
        seqnorm_rescale_output=sn.rescale_output, mean_prior=sn.mean_prior if sn.mean_input else 0.0,
        skip=cfg.skip != "none",
    )


@torch.no_grad()
def fit_ridge_skip(cfg: RecurrentConfig, net: RecurrentNet, train: SequenceSet, mask: np.ndarray) -> None:
    """Solve the skip map as a ridge of the standardized targets on the cell inputs (over the
    loss rows of the first ``ridge_sequences`` sequences) and freeze it."""
    n_in = net.skip.in_features
    xtx = np.zeros((n_in + 1, n_in + 1))
    xty = np.zeros((n_in + 1, net.skip.out_features))
    count = 0
    n_seq = min(cfg.ridge_sequences, len(train))
    for a in range(0, n_seq, 64):
        x = torch.from_numpy(np.ascontiguousarray(train.features[a : min(a + 64, n_seq)], dtype=np.float32))
        u, scale = net.prepare(x)
        y = torch.from_numpy(np.nan_to_num(train.targets[a : min(a + 64, n_seq)].astype(np.float32)))
        target = (y - net.out_shift) / net.out_scale
        if net.seqnorm_rescale_output:
            target = target / scale
        m = torch.from_numpy(mask[a : min(a + 64, n_seq)]).reshape(-1)
        rows = torch.cat([u.reshape(-1, n_in), torch.ones(u.shape[0] * u.shape[1], 1)], dim=1)[m].double().numpy()
        t = target.reshape(-1, target.shape[-1])[m].double().numpy()
        xtx += rows.T @ rows
        xty += rows.T @ t
        count += rows.shape[0]
    penalty = cfg.ridge_alpha * count * np.eye(n_in + 1)
    penalty[-1, -1] = 0.0  # the intercept is not shrunk
    w = np.linalg.solve(xtx + penalty, xty)
    net.skip.weight.copy_(torch.from_numpy(w[:-1].T.astype(np.float32)))
    net.skip.bias.copy_(torch.from_numpy(w[-1].astype(np.float32)))
    net.skip.requires_grad_(False)


def _loss_mask(cfg: RecurrentConfig, data: SequenceSet) -> np.ndarray:
    """(S, T) rows whose loss counts: every row with a target, or only the scored ones."""
    finite = np.isfinite(data.targets).all(axis=2)
    if cfg.loss_steps == "scored":
        finite &= data.scored[None, :]
    return finite


def _loss(cfg: RecurrentConfig, net: RecurrentNet, y_std: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The configured loss of standardized predictions ``y_std`` against raw targets ``y``."""
    target_std = (y - net.out_shift) / net.out_scale
    name = cfg.loss.name
    if name == "mse":
        return losses.mse(y_std, target_std, mask)
    if name == "mse_abs":
        return losses.mse(y_std, target_std, mask) + cfg.loss.abs_weight * losses.abs_weighted_mse(
            y_std, target_std, mask, weight_target=y)
    loss = losses.pearson_loss(net.to_units(y_std), y, mask)
    if cfg.loss.mse_weight:
        loss = loss + cfg.loss.mse_weight * losses.mse(y_std, target_std, mask)
    return loss


def _stopping_sets(cfg: RecurrentConfig, train: SequenceSet, valid: SequenceSet,
                   seed: int) -> tuple[SequenceSet, SequenceSet, str]:
    """(fit set, stopping set, its label): the valid file, or a sequence-grouped fold of train;
    at most ``stop_sequences`` of it, because the stopping set is scored after every epoch. Only
    the first ``train_limit`` train sequences are used, when set."""
    if cfg.train_limit is not None and cfg.train_limit < len(train):
        train = train.subset(np.arange(cfg.train_limit))  # the first sequences: bounded memory and time
    if cfg.stop_on == "fold":
        fit, held = cv.fold_split(len(train), cfg.folds, cfg.fold, seed)
        fit_set, stop, label = train.subset(fit), train.subset(held), f"fold {cfg.fold}/{cfg.folds}"
    else:
        fit_set, stop, label = train, valid, "valid"
    if cfg.stop_sequences is not None and cfg.stop_sequences < len(stop):
        stop = stop.subset(np.arange(cfg.stop_sequences))
    return fit_set, stop, label


# -- the optional feature front-end ------------------------------------------------------------


def fit_features(cfg: RecurrentConfig, comp: Competition, fit_set: SequenceSet):
    """The configured feature pipeline, fitted (when it has anything to fit) on train sequences."""
    pipeline = build_pipeline(comp.feature_columns, cfg.features.steps(comp.feature_columns))
    if not pipeline.is_fitted:
        pipeline.fit(fit_set.features[: cfg.features_fit_sequences])
    return pipeline


def with_features(pipeline, data: SequenceSet, chunk: int = 256) -> SequenceSet:
    """``data`` with its rows replaced by the pipeline's outputs (float32), in chunks of sequences."""
    out = np.empty(data.features.shape[:2] + (pipeline.n_outputs,), dtype=np.float32)
    for a in range(0, len(data), chunk):
        pipeline.transform(data.features[a : a + chunk], out=out[a : a + chunk])
    if not np.isfinite(out).all():
        raise TrainingError("the feature pipeline produced non-finite values; the network cannot take them")
    return replace(data, features=out)


# -- the fit loop ------------------------------------------------------------------------------


@contextlib.contextmanager
def torch_threads(n: int):
    """Run torch on ``n`` threads, then restore the previous count. One thread is the default:
    on a small shared machine a second thread mostly spins, and the count must be fixed for
    reproducible sums."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def evaluate(net: RecurrentNet, data: SequenceSet, batch: int) -> dict[str, float]:
    """The competition's scores of ``net`` on whole sequences of ``data`` (offline)."""
    return data.score(net.predict(data.features, batch=batch))


def fit(cfg: RecurrentConfig, comp: Competition, train: SequenceSet, stop: SequenceSet,
        console: Console | None = None, stop_label: str = "valid") -> FitResult:
    """Train a network on ``train``, early-stopping on the metric over ``stop``."""
    if len(train) == 0 or len(stop) == 0:
        raise TrainingError(f"need train and stopping sequences; got {len(train)} and {len(stop)}")
    with torch_threads(cfg.threads):
        return _fit(cfg, comp, train, stop, console, stop_label)


def _fit(cfg: RecurrentConfig, comp: Competition, train: SequenceSet, stop: SequenceSet,
         console: Console | None, stop_label: str) -> FitResult:
    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    net = build_net(cfg, comp, train)
    if cfg.skip == "ridge":
        fit_ridge_skip(cfg, net, train, _loss_mask(cfg, train))
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=cfg.plateau_factor,
                                                       patience=cfg.plateau_patience, min_lr=cfg.min_lr)
    feats = torch.from_numpy(np.ascontiguousarray(train.features, dtype=np.float32))
    targets = torch.from_numpy(np.nan_to_num(train.targets.astype(np.float32), nan=0.0))
    mask = torch.from_numpy(_loss_mask(cfg, train))
    in_std = 1.0 / net.in_scale
    follow = not comp.target_columns  # next-state targets are the inputs one row later
    per_epoch = min(cfg.train_sequences or len(train), len(train))
    n_batches = -(-per_epoch // cfg.batch_size)
    metric = comp.metric
    best, best_epoch, best_state, stale = -np.inf, 0, None, 0
    stopped_by = "epochs"
    history: list[dict] = []
    console = console or Console(quiet=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        epochs_task = bar.add_task(f"epochs ({stop_label} {metric}: -)", total=cfg.epochs)
        batch_task = bar.add_task("batches", total=n_batches)
        epoch = 0
        for epoch in range(1, cfg.epochs + 1):
            t_epoch = time.perf_counter()
            net.train()
            order = rng.permutation(len(train))[:per_epoch]
            bar.reset(batch_task, total=n_batches)
            total_loss, count = 0.0, 0
            for k in range(n_batches):
                idx = torch.from_numpy(np.sort(order[k * cfg.batch_size : (k + 1) * cfg.batch_size]))
                x, y, m = feats[idx], targets[idx], mask[idx]
                x, y = augment(x, y, net.in_shift, net.out_shift, cfg.augment.scale_sigma, cfg.augment.noise_std,
                               cfg.augment.prob, follow, in_std, gen)
                total_loss += _train_batch(cfg, net, opt, x, y, m)
                count += 1
                bar.advance(batch_task)
            score = evaluate(net, stop, cfg.eval_batch)
            headline = score[metric]
            sched.step(headline)
            improved = headline > best
            if improved:
                best, best_epoch, best_state, stale = headline, epoch, copy.deepcopy(net.state_dict()), 0
            else:
                stale += 1
            lr = opt.param_groups[0]["lr"]
            seconds = time.perf_counter() - t_epoch
            history.append({"epoch": epoch, "loss": total_loss / max(count, 1), "stop_score": headline,
                            "per_output": {n: score[n] for n in comp.prediction_names}, "lr": lr, "seconds": seconds})
            bar.update(epochs_task, advance=1,
                       description=f"epochs ({stop_label} {metric}: {headline:.4f}, best {best:.4f} @ {best_epoch})")
            console.print(f"epoch {epoch:3d}  loss {total_loss / max(count, 1):.5f}  {stop_label} {metric} "
                          f"{headline:.4f}{' *' if improved else '  '}  lr {lr:.2e}  {seconds:.0f} s",
                          highlight=False)
            if not np.isfinite(total_loss):
                raise TrainingError(f"the loss became {total_loss} at epoch {epoch}; lower lr or raise grad_clip")
            if stale >= cfg.patience > 0:
                console.print(f"early stop: no gain for {stale} epochs; best epoch {best_epoch}", highlight=False)
                stopped_by = "patience"
                break
            elapsed = time.perf_counter() - started
            if cfg.max_minutes is not None and epoch < cfg.epochs and elapsed * (epoch + 1) / epoch > cfg.max_minutes * 60:
                console.print(f"time budget: another epoch would end past {cfg.max_minutes:g} min; best epoch "
                              f"{best_epoch}", highlight=False)
                stopped_by = "time budget"
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return FitResult(net, float(best), best_epoch, epoch, history, time.perf_counter() - started, stopped_by)


def _train_batch(cfg: RecurrentConfig, net: RecurrentNet, opt: torch.optim.Optimizer,
                 x: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> float:
    """One batch: whole sequences, or truncated windows of ``cfg.chunk`` rows carrying state (one
    optimizer step per window); returns the mean loss over the windows."""
    steps = x.shape[1]
    chunk = cfg.chunk or steps
    with torch.no_grad():
        u, scale = net.prepare(x)
    state = None
    total, windows = 0.0, 0
    for a in range(0, steps, chunk):
        b = min(a + chunk, steps)
        if not m[:, a:b].any():
            continue
        prepared = (u[:, a:b], None if scale is None else scale[:, a:b])
        y_std, state = net(x[:, a:b], state, prepared=prepared)
        loss = _loss(cfg, net, y_std, y[:, a:b], m[:, a:b])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        total += float(loss.detach())
        windows += 1
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
    return total / max(windows, 1)


# -- export checks -----------------------------------------------------------------------------


def run_steps(model, features: np.ndarray) -> np.ndarray:
    """Whole sequences through a one-step runtime (reset per sequence), as the grader would."""
    s_count, steps, _ = features.shape
    first = model.step(features[0, 0].astype(np.float64))
    out = np.zeros((s_count, steps, first.shape[0]))
    for s in range(s_count):
        model.reset()
        for t in range(steps):
            out[s, t] = model.step(features[s, t].astype(np.float64))
    return out


def check_runtimes(folder: Path, spec: NetSpec, onnx_path: Path, rows: np.ndarray, reference: np.ndarray,
                   tolerance: float = EXPORT_TOLERANCE) -> dict[str, float]:
    """Largest |difference| of the ONNX graph and the numpy step from ``reference`` (PyTorch's
    whole-sequence predictions) over whole sequences of raw ``rows``, each runtime behind the
    streaming feature pipeline written in ``folder`` when there is one; raises beyond ``tolerance``."""

    def wrap(model):
        return RecurrentRuntime(model, serving.load_features(folder, spec))

    diffs = {"onnx_max_abs_diff": float(np.abs(run_steps(wrap(OnnxStep(onnx_path)), rows) - reference).max()),
             "numpy_max_abs_diff": float(np.abs(run_steps(wrap(NumpyStep(spec)), rows) - reference).max())}
    bad = {k: v for k, v in diffs.items() if not v <= tolerance}
    if bad:
        raise TrainingError(f"a one-step runtime disagrees with PyTorch beyond {tolerance:g}: {bad}")
    return diffs


def stop_fold_oof(net: RecurrentNet, stop: SequenceSet, cfg: RecurrentConfig) -> dict[str, np.ndarray]:
    """Out-of-fold predictions on the held-out stopping fold (``stop_on: "fold"``), for ensembles:
    the fold is never fitted on, though it chose the epoch (one number, a slight optimism).
    ``split_seed`` fixes the fold across seeds, so seed averages and ensembles share its rows."""
    steps = np.flatnonzero(stop.scored)
    k = stop.competition.n_outputs
    predicted = net.predict(stop.features, batch=cfg.eval_batch)[:, steps]
    return {"seq_ix": np.repeat(stop.seq_ix, len(steps)), "step": np.tile(steps, len(stop)).astype(np.int32),
            "prediction": predicted.reshape(-1, k).astype(np.float32),
            "target": stop.targets[:, steps].reshape(-1, k).astype(np.float32)}


# -- the family entry point ----------------------------------------------------------------------


@dataclass
class RecurrentModel:
    """What ``train`` hands to ``write``: the shipped spec, the fitted pipeline (or None), and
    the raw rows and PyTorch predictions the written runtimes are checked against."""

    spec: NetSpec
    pipeline: object
    check_rows: np.ndarray
    reference: np.ndarray


class RecurrentFamily:
    name = "gru"
    config = RecurrentConfig

    def train(self, cfg: RecurrentConfig, train: SequenceSet, valid: SequenceSet, console: Console) -> Trained:
        comp = train.competition
        with torch_threads(cfg.threads):
            split_seed = cfg.seed if cfg.split_seed is None else cfg.split_seed
            fit_set, stop_set, label = _stopping_sets(cfg, train, valid, split_seed)
            raw_valid = valid
            pipeline = None
            meta = {"competition": comp.key, "family": self.name, "config": to_dict(cfg)}
            if cfg.features is not None:
                pipeline = fit_features(cfg, comp, fit_set)
                meta["features"] = {"input_names": list(comp.feature_columns), "steps": pipeline.steps}
                console.print(f"feature pipeline: {pipeline.n_outputs} inputs per row", highlight=False)
                fit_set, stop_set, valid = (with_features(pipeline, d) for d in (fit_set, stop_set, valid))
            console.print(f"[bold]{self.name}[/] {cfg.cell} {cfg.layers}x{cfg.hidden} on {len(fit_set)} sequences "
                          f"({cfg.train_sequences or len(fit_set)} per epoch), stopping on {label} "
                          f"({len(stop_set)} sequences), {cfg.threads} thread(s)")
            result = fit(cfg, comp, fit_set, stop_set, console, label)
            net = result.net
            torch_score = valid.score(net.predict(valid.features, batch=cfg.eval_batch))[comp.metric]
            spec = net.to_spec(meta)
            shipped = quantize(spec) if cfg.quantize else spec
            check_x = valid.features[: cfg.check_sequences]
            # int8 weights are checked against the same int8 network evaluated whole-sequence
            reference = run_sequences(shipped, check_x) if cfg.quantize else net.predict(check_x)
            int8_score = valid.score(run_sequences(quantize(spec), valid.features))[comp.metric]
        record = {"config": to_dict(cfg), "stop_on": label, "stop_score": result.best_score,
                  "best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "stopped_by": result.stopped_by,
                  "history": result.history, "parameters": spec.n_parameters(), "torch_valid_score": torch_score,
                  "int8": {"valid_score": int8_score, "cost": torch_score - int8_score, "shipped": cfg.quantize},
                  "train_sequences": len(fit_set), "fit_seconds": result.seconds}
        console.print(f"valid {comp.metric} {torch_score:.4f} (PyTorch); int8 {int8_score:.4f}", highlight=False)
        model = RecurrentModel(shipped, pipeline, raw_valid.features[: cfg.check_sequences], reference)
        return Trained(model, record, stop_fold_oof(net, stop_set, cfg) if cfg.stop_on == "fold" else None)

    def write(self, trained: Trained, folder: Path, artifacts: list[str]) -> list[str]:
        """Write the named artifacts, then check the written runtimes against PyTorch."""
        model: RecurrentModel = trained.model
        folder = Path(folder)
        if serving.ARTIFACTS["numpy"] not in artifacts:
            raise ConfigError(f"{folder / 'manifest.json'}: 'artifacts' must include \"{serving.ARTIFACTS['numpy']}\" "
                              "(the net and its feature steps; add \"model.onnx\" for the onnxruntime backend)")
        if (model.pipeline is not None) != (FEATURES in artifacts):
            raise ConfigError(f"{folder / 'manifest.json'}: \"{FEATURES}\" must be among the artifacts exactly when "
                              "train.features is set")
        for name in artifacts:
            path = folder / name
            if name == FEATURES:
                model.pipeline.save(path)
            elif path.suffix == ".npz":
                model.spec.save(path)
            elif path.suffix == ".onnx":
                export_onnx(model.spec, path)
            else:
                raise ConfigError(f"artifact {name!r}: the recurrent family writes {ARTIFACT_SUFFIXES} files only")
        onnx_path = next((folder / n for n in artifacts if n.endswith(".onnx")), None)
        scratch = folder / ".export_check.onnx"
        try:
            checks = check_runtimes(folder, model.spec, onnx_path or export_onnx(model.spec, scratch), model.check_rows,
                                    model.reference)
        finally:
            scratch.unlink(missing_ok=True)
        trained.record["export"] = {**checks, "checked_sequences": len(model.check_rows), "tolerance": EXPORT_TOLERANCE}
        return list(artifacts)

    def load_online(self, folder: Path) -> RecurrentRuntime:
        return serving.load_runtime(folder)

    def load_offline(self, folder: Path) -> serving.OfflinePredictor:
        return serving.load_offline(folder)


FAMILY = RecurrentFamily()
