"""Training the network families (``gru`` here, ``tcn`` and ``window_attn`` in ``block_family``):
the fit loop and the family entry point they share.

The loop: AdamW, gradient-norm clipping, ReduceLROnPlateau and early stopping, all driven by
the competition's own metric (``SequenceSet.score``, i.e. ``harness.metrics``) on the stopping
set: one half of the valid file's sequences (the record's valid score is on the other half,
which no choice touched) or a sequence-grouped fold of the train file. A best epoch that is
the last one run is warned about (console and record): the model was still improving. Whole sequences are fed
from a zero state, as the grader replays them; ``chunk`` > 0 cuts them into truncated
back-propagation windows that carry the state forward. Seeds fix the initialization, the
batch order and the augmentation draws, and torch runs on a fixed thread count, so the same
config and data give the same weights.

``NetFamily`` implements ``models.family.Family`` for every network: ``train`` fits it (and,
stopped on a train fold, hands that fold's predictions over as out-of-fold predictions);
``write`` writes the artifacts the manifest names and checks the written one-step runtimes
against PyTorch over whole sequences. ``FAMILY`` (``gru``) also measures the 8-bit variant's
score and writes the ``.onnx`` one-step graph when named. ``step_sample`` trains on sampled
steps of whole sequences (what makes a windowed body affordable).
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
from models.recurrent.block_nets import TcnNet, WindowAttnNet
from models.recurrent.config import NetTrainConfig, RecurrentConfig, TcnConfig, WindowAttnConfig, head_groups
from models.recurrent.export import export_onnx
from models.recurrent.nets import RecurrentNet, SequenceNet
from models.recurrent.runtime_numpy import NumpyStep, run_sequences
from models.recurrent.runtime_onnx import OnnxStep
from models.recurrent.serving import FEATURES, RecurrentRuntime
from models.recurrent.spec import NetSpec, quantize

EXPORT_TOLERANCE = 1e-5
"""Largest absolute difference allowed between PyTorch and a one-step runtime over whole sequences."""


class TrainingError(RuntimeError):
    """Training cannot go on as configured; the message says why and what to change."""


@dataclass
class FitResult:
    net: SequenceNet
    best_score: float | None
    """The stopping set's score at the kept epoch; None without a stopping set (``stop_on="none"``)."""
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


def build_net(cfg: NetTrainConfig, comp: Competition, train: SequenceSet) -> SequenceNet:
    """A fresh network of the config's family whose input and target scalings are measured on
    ``train`` (whose ``features`` are the network's inputs: the raw rows, or a feature
    pipeline's outputs)."""
    in_mean, in_std = _finite_mean_std(train.features)
    out_mean, out_std = _finite_mean_std(train.targets[:, train.scored])
    if not cfg.input_norm:
        in_mean, in_std = np.zeros_like(in_mean), np.ones_like(in_std)
    groups = head_groups(cfg, comp.prediction_names, distinct_targets=bool(comp.target_columns))
    sn = cfg.seqnorm
    frame = dict(
        n_features=train.features.shape[-1], output_names=comp.prediction_names, groups=groups,
        head_hidden=cfg.head_hidden, in_shift=in_mean, in_scale=1.0 / in_std,
        in_clip=cfg.input_clip, out_shift=out_mean, out_scale=out_std,
        seqnorm_prior=sn.prior if sn.enabled else 0.0, seqnorm_log_input=sn.log_scale_input,
        seqnorm_rescale_output=sn.rescale_output, mean_prior=sn.mean_prior if sn.mean_input else 0.0,
        skip=cfg.skip != "none",
    )
    if isinstance(cfg, TcnConfig):
        return TcnNet(channels=cfg.channels, dilations=tuple(cfg.dilations), kernel=cfg.kernel, **frame)
    if isinstance(cfg, WindowAttnConfig):
        return WindowAttnNet(hidden=cfg.hidden, window=cfg.window, attn_dim=cfg.attn_dim, **frame)
    return RecurrentNet(cell=cfg.cell, hidden=cfg.hidden, layers=cfg.layers, **frame)


@torch.no_grad()
def fit_ridge_skip(cfg: NetTrainConfig, net: SequenceNet, train: SequenceSet, mask: np.ndarray) -> None:
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


def _loss_mask(cfg: NetTrainConfig, data: SequenceSet) -> np.ndarray:
    """(S, T) rows whose loss counts: every row with a target, or only the scored ones."""
    finite = np.isfinite(data.targets).all(axis=2)
    if cfg.loss_steps == "scored":
        finite &= data.scored[None, :]
    return finite


def _loss(cfg: NetTrainConfig, net: SequenceNet, y_std: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
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


SELECTION_SEED = 0
"""Fixed seed of valid's selection / report split: the same file always splits the same way,
whatever the model's seed, so two models' reported scores are on the same sequences."""


def selection_split(valid: SequenceSet) -> tuple[np.ndarray, np.ndarray]:
    """(selection positions, report positions): valid's sequences split in two halves by
    sequence (``cv.group_folds``, fixed seed). The epoch is chosen on the first; the second is
    touched by no choice, so its score is an honest estimate."""
    if len(valid) < 2:
        raise TrainingError(f"valid has {len(valid)} sequence(s); choosing the epoch on one half and reporting on "
                            "the other needs at least 2 (pass more --valid-sequences, or stop_on \"fold\")")
    halves = cv.group_folds(valid.seq_ix, 2, SELECTION_SEED)
    return np.flatnonzero(halves == 0), np.flatnonzero(halves == 1)


def _stopping_sets(cfg: NetTrainConfig, train: SequenceSet, valid: SequenceSet,
                   seed: int) -> tuple[SequenceSet, SequenceSet | None, str, np.ndarray | None]:
    """(fit set, stopping set, its label, valid positions to report on): a sequence-grouped
    fold of train (report on all of valid), or one half of valid (report on the other half,
    ``selection_split``), or none (``stop_on="none"``: all of train, report on all of valid);
    at most ``stop_sequences`` of the stopping set, because it is scored after every epoch.
    Only the first ``train_limit`` train sequences are used, when set."""
    if cfg.train_limit is not None and cfg.train_limit < len(train):
        train = train.subset(np.arange(cfg.train_limit))  # the first sequences: bounded memory and time
    if cfg.stop_on == "none":
        return train, None, f"no stopping set ({cfg.epochs} epochs)", None
    if cfg.stop_on == "fold":
        fit, held = cv.fold_split(len(train), cfg.folds, cfg.fold, seed)
        fit_set, stop, label, report = train.subset(fit), train.subset(held), f"fold {cfg.fold}/{cfg.folds}", None
    else:
        chosen, report = selection_split(valid)
        fit_set, stop, label = train, valid.subset(chosen), "valid selection half"
    if cfg.stop_sequences is not None and cfg.stop_sequences < len(stop):
        stop = stop.subset(np.arange(cfg.stop_sequences))
    return fit_set, stop, label, report


def still_improving(result: "FitResult", cfg: NetTrainConfig) -> str | None:
    """The warning when the best epoch is the last one run and no patience stop ended the
    run: the model was still improving, so more epochs (or a higher cap) would likely help."""
    if result.best_epoch != result.epochs_run or result.stopped_by == "patience" or cfg.stop_on == "none":
        return None
    if cfg.converge:
        return (f"still improving at the last epoch ({result.epochs_run}, {result.stopped_by}): "
                "raise converge_cap or max_minutes")
    return f"still improving at the last epoch ({result.epochs_run}): raise epochs, or set converge"


# -- the optional feature front-end ------------------------------------------------------------


def fit_features(cfg: NetTrainConfig, comp: Competition, fit_set: SequenceSet):
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


def evaluate(net: SequenceNet, data: SequenceSet, batch: int) -> dict[str, float]:
    """The competition's scores of ``net`` on whole sequences of ``data`` (offline)."""
    return data.score(net.predict(data.features, batch=batch))


def fit(cfg: NetTrainConfig, comp: Competition, train: SequenceSet, stop: SequenceSet | None,
        console: Console | None = None, stop_label: str = "valid") -> FitResult:
    """Train a network on ``train``, early-stopping on the metric over ``stop``; with ``stop``
    None (``stop_on="none"``), exactly ``cfg.epochs`` epochs, keeping the last."""
    if (stop is None) != (cfg.stop_on == "none"):
        raise TrainingError(f"stop_on {cfg.stop_on!r} " + ("needs a stopping set" if stop is None
                                                           else "trains without a stopping set"))
    if len(train) == 0 or (stop is not None and len(stop) == 0):
        stopping = 0 if stop is None else len(stop)
        raise TrainingError(f"need train and stopping sequences; got {len(train)} and {stopping}")
    with torch_threads(cfg.threads):
        return _fit(cfg, comp, train, stop, console, stop_label)


def _fit(cfg: NetTrainConfig, comp: Competition, train: SequenceSet, stop: SequenceSet,
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
    stopped_by = "cap" if cfg.converge else "epochs"
    history: list[dict] = []
    console = console or Console(quiet=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        limit = cfg.converge_cap if cfg.converge else cfg.epochs
        epochs_task = bar.add_task(f"epochs ({stop_label} {metric}: -)", total=limit)
        batch_task = bar.add_task("batches", total=n_batches)
        epoch = 0
        for epoch in range(1, limit + 1):
            t_epoch = time.perf_counter()
            if cfg.lr_schedule is not None:
                for group in opt.param_groups:
                    group["lr"] = float(cfg.lr_schedule[epoch - 1])
            epoch_lr = opt.param_groups[0]["lr"]
            net.train()
            order = rng.permutation(len(train))[:per_epoch]
            bar.reset(batch_task, total=n_batches)
            total_loss, count = 0.0, 0
            for k in range(n_batches):
                idx = torch.from_numpy(np.sort(order[k * cfg.batch_size : (k + 1) * cfg.batch_size]))
                x, y, m = feats[idx], targets[idx], mask[idx]
                x, y = augment(x, y, net.in_shift, net.out_shift, cfg.augment.scale_sigma, cfg.augment.noise_std,
                               cfg.augment.prob, follow, in_std, gen)
                total_loss += _train_batch(cfg, net, opt, x, y, m, rng)
                count += 1
                bar.advance(batch_task)
            if stop is None:  # nothing to choose on: the last epoch is kept
                score, headline, improved, best_epoch = None, None, False, epoch
            else:
                score = evaluate(net, stop, cfg.eval_batch)
                headline = score[metric]
                if cfg.lr_schedule is None:
                    sched.step(headline)
                improved = headline > best
                if improved:
                    best, best_epoch, best_state, stale = headline, epoch, copy.deepcopy(net.state_dict()), 0
                else:
                    stale += 1
            lr = opt.param_groups[0]["lr"]
            seconds = time.perf_counter() - t_epoch
            history.append({"epoch": epoch, "loss": total_loss / max(count, 1), "stop_score": headline,
                            "per_output": None if score is None else {n: score[n] for n in comp.prediction_names},
                            "epoch_lr": epoch_lr, "lr": lr, "seconds": seconds})
            shown = "-" if headline is None else f"{headline:.4f}, best {best:.4f} @ {best_epoch}"
            bar.update(epochs_task, advance=1, description=f"epochs ({stop_label} {metric}: {shown})")
            console.print(f"epoch {epoch:3d}  loss {total_loss / max(count, 1):.5f}  {stop_label} {metric} "
                          f"{'-' if headline is None else f'{headline:.4f}'}{' *' if improved else '  '}  "
                          f"lr {epoch_lr:.2e}  {seconds:.0f} s", highlight=False)
            if not np.isfinite(total_loss):
                raise TrainingError(f"the loss became {total_loss} at epoch {epoch}; lower lr or raise grad_clip")
            if stale >= cfg.patience > 0:
                console.print(f"early stop: no gain for {stale} epochs; best epoch {best_epoch}", highlight=False)
                stopped_by = "patience"
                break
            elapsed = time.perf_counter() - started
            if cfg.max_minutes is not None and epoch < limit and elapsed * (epoch + 1) / epoch > cfg.max_minutes * 60:
                console.print(f"time budget: another epoch would end past {cfg.max_minutes:g} min; best epoch "
                              f"{best_epoch}", highlight=False)
                stopped_by = "time budget"
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return FitResult(net, None if stop is None else float(best), best_epoch, epoch, history,
                     time.perf_counter() - started, stopped_by)


def _train_batch(cfg: NetTrainConfig, net: SequenceNet, opt: torch.optim.Optimizer,
                 x: torch.Tensor, y: torch.Tensor, m: torch.Tensor, rng: np.random.Generator | None = None) -> float:
    """One batch: whole sequences, or truncated windows of ``cfg.chunk`` rows carrying state (one
    optimizer step per window), or ``cfg.step_sample`` sampled steps of whole sequences; returns
    the mean loss over the windows."""
    steps = x.shape[1]
    chunk = cfg.chunk or steps
    at = None
    if cfg.step_sample:
        rows = np.flatnonzero(m.any(dim=0).numpy())
        if len(rows) > cfg.step_sample:
            at = torch.from_numpy(np.sort((rng or np.random.default_rng(cfg.seed)).choice(rows, cfg.step_sample,
                                                                                         replace=False)))
    with torch.no_grad():
        u, scale = net.prepare(x)
    state = None
    total, windows = 0.0, 0
    for a in range(0, steps, chunk):
        b = min(a + chunk, steps)
        if not m[:, a:b].any():
            continue
        if at is not None:  # chunk == 0 here (the config checks it): one window, the sampled steps
            y_std, state = net(x, None, prepared=(u, scale), at=at)
            loss = _loss(cfg, net, y_std, y[:, at], m[:, at])
        else:
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
        if state is not None:
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


def check_runtimes(folder: Path, spec, steps: dict[str, object], rows: np.ndarray, reference: np.ndarray,
                   tolerance: float = EXPORT_TOLERANCE) -> dict[str, float]:
    """Largest |difference| of each one-step runtime in ``steps`` (label -> bare step model) from
    ``reference`` (PyTorch's whole-sequence predictions) over whole sequences of raw ``rows``, each
    runtime behind the streaming feature pipeline written in ``folder`` when there is one; raises
    beyond ``tolerance``."""
    diffs = {}
    for label, step in steps.items():
        runtime = RecurrentRuntime(step, serving.load_features(folder, spec))
        diffs[f"{label}_max_abs_diff"] = float(np.abs(run_steps(runtime, rows) - reference).max())
    bad = {k: v for k, v in diffs.items() if not v <= tolerance}
    if bad:
        raise TrainingError(f"a one-step runtime disagrees with PyTorch beyond {tolerance:g}: {bad}")
    return diffs


# -- the family entry point ----------------------------------------------------------------------


@dataclass
class NetModel:
    """What ``train`` hands to ``write``: the shipped spec, the fitted pipeline (or None), and
    the raw rows and PyTorch predictions the written runtimes are checked against."""

    spec: object
    pipeline: object
    check_rows: np.ndarray
    reference: np.ndarray



def fold_oof(stop_set: SequenceSet, predictions: np.ndarray) -> dict[str, np.ndarray]:
    """Out-of-fold predictions of the held-out fold's scored rows, keyed by (seq_ix, step) like
    ``models.training.oof_payload``. The fold also chose the best epoch, so these are slightly
    optimistic for that choice, but no weight was fitted on them. ``split_seed`` fixes the fold
    across seeds, so seed averages and ensembles share its rows."""
    steps = np.flatnonzero(stop_set.scored)
    k = stop_set.competition.n_outputs
    return {"seq_ix": np.repeat(stop_set.seq_ix, len(steps)), "step": np.tile(steps, len(stop_set)).astype(np.int32),
            "prediction": predictions[:, steps].reshape(-1, k).astype(np.float32),
            "target": stop_set.targets[:, steps].reshape(-1, k).astype(np.float32)}


class NetFamily:
    """The ``Family`` of the networks trained here; a subclass says how its spec ships (``ship``),
    what its whole-sequence numpy form is (``run_sequences``) and which files it writes
    (``write_artifact``, ``step_runtimes``)."""

    name = ""
    config: type = NetTrainConfig
    artifact_suffixes: tuple[str, ...] = (".npz",)

    def ship(self, cfg, spec, valid: SequenceSet, record: dict):
        """The spec to write (the trained one by default)."""
        return spec

    def run_sequences(self, spec, features: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def write_artifact(self, spec, path: Path) -> None:
        spec.save(path)

    def step_runtimes(self, spec, folder: Path, artifacts: list[str], scratch: Path) -> dict[str, object]:
        raise NotImplementedError

    def train(self, cfg: NetTrainConfig, train: SequenceSet, valid: SequenceSet, console: Console) -> Trained:
        comp = train.competition
        with torch_threads(cfg.threads):
            split_seed = cfg.seed if cfg.split_seed is None else cfg.split_seed
            fit_set, stop_set, label, report_index = _stopping_sets(cfg, train, valid, split_seed)
            if report_index is not None:  # scores below are on the half no choice was made on
                valid = valid.subset(report_index)
            raw_valid = valid
            pipeline = None
            meta = {"competition": comp.key, "family": self.name, "config": to_dict(cfg)}
            if cfg.features is not None:
                pipeline = fit_features(cfg, comp, fit_set)
                meta["features"] = {"input_names": list(comp.feature_columns), "steps": pipeline.steps}
                console.print(f"feature pipeline: {pipeline.n_outputs} inputs per row", highlight=False)
                fit_set, valid = with_features(pipeline, fit_set), with_features(pipeline, valid)
                stop_set = None if stop_set is None else with_features(pipeline, stop_set)
            stopping = label if stop_set is None else f"stopping on {label} ({len(stop_set)} sequences)"
            console.print(f"[bold]{self.name}[/] {cfg.describe()} on {len(fit_set)} sequences "
                          f"({cfg.train_sequences or len(fit_set)} per epoch), {stopping}, {cfg.threads} thread(s)")
            result = fit(cfg, comp, fit_set, stop_set, console, label)
            net = result.net
            torch_score = valid.score(net.predict(valid.features, batch=cfg.eval_batch))[comp.metric]
            oof = fold_oof(stop_set, net.predict(stop_set.features, batch=cfg.eval_batch)) if cfg.stop_on == "fold" else None
            spec = net.to_spec(meta)
            warning = still_improving(result, cfg)
            if warning:
                console.print(f"[yellow]warning:[/] {warning}", highlight=False)
            record = {"config": to_dict(cfg), "stop_on": label, "stop_score": result.best_score,
                      "selection": {"on": label, "sequences": 0 if stop_set is None else len(stop_set),
                                    "score": result.best_score},
                      "report": {"on": "valid" if report_index is None else "valid report half",
                                 "sequences": len(valid)},
                      "warnings": [warning] if warning else [],
                      "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
                      "stopped_by": result.stopped_by, "history": result.history,
                      "parameters": spec.n_parameters(), "torch_valid_score": torch_score,
                      "train_sequences": len(fit_set), "fit_seconds": result.seconds}
            shipped = self.ship(cfg, spec, valid, record)
            check_x = valid.features[: cfg.check_sequences]
            # a shipped variant (int8) is checked against the same variant evaluated whole-sequence
            reference = net.predict(check_x) if shipped is spec else self.run_sequences(shipped, check_x)
        console.print(f"valid {comp.metric} {torch_score:.4f} (PyTorch)", highlight=False)
        model = NetModel(shipped, pipeline, raw_valid.features[: cfg.check_sequences], reference)
        return Trained(model, record, oof, report_index=report_index)

    def write(self, trained: Trained, folder: Path, artifacts: list[str]) -> list[str]:
        """Write the named artifacts, then check the written runtimes against PyTorch."""
        model: NetModel = trained.model
        folder = Path(folder)
        if serving.ARTIFACTS["numpy"] not in artifacts:
            raise ConfigError(f"{folder / 'manifest.json'}: 'artifacts' must include \"{serving.ARTIFACTS['numpy']}\" "
                              "(the net and its feature steps)")
        if (model.pipeline is not None) != (FEATURES in artifacts):
            raise ConfigError(f"{folder / 'manifest.json'}: \"{FEATURES}\" must be among the artifacts exactly when "
                              "train.features is set")
        for name in artifacts:
            path = folder / name
            if name == FEATURES:
                model.pipeline.save(path)
            elif path.suffix in self.artifact_suffixes:
                self.write_artifact(model.spec, path)
            else:
                raise ConfigError(f"artifact {name!r}: the {self.name} family writes {self.artifact_suffixes} files only")
        scratch = folder / ".export_check.onnx"
        try:
            steps = self.step_runtimes(model.spec, folder, list(artifacts), scratch)
            checks = check_runtimes(folder, model.spec, steps, model.check_rows, model.reference)
        finally:
            scratch.unlink(missing_ok=True)
        trained.record["export"] = {**checks, "checked_sequences": len(model.check_rows), "tolerance": EXPORT_TOLERANCE}
        return list(artifacts)

    def load_online(self, folder: Path) -> RecurrentRuntime:
        return serving.load_runtime(folder)

    def load_offline(self, folder: Path) -> serving.OfflinePredictor:
        return serving.load_offline(folder)


class RecurrentFamily(NetFamily):
    """``gru``: also measures the int8 variant's score and ships it when ``quantize``; writes the
    numpy spec and, when named, the one-step ONNX graph (both checked)."""

    name = "gru"
    config = RecurrentConfig
    artifact_suffixes = (".npz", ".onnx")

    def ship(self, cfg: RecurrentConfig, spec: NetSpec, valid: SequenceSet, record: dict) -> NetSpec:
        int8_score = valid.score(run_sequences(quantize(spec), valid.features))[valid.competition.metric]
        torch_score = record["torch_valid_score"]
        record["int8"] = {"valid_score": int8_score, "cost": torch_score - int8_score, "shipped": cfg.quantize}
        return quantize(spec) if cfg.quantize else spec

    def run_sequences(self, spec: NetSpec, features: np.ndarray) -> np.ndarray:
        return run_sequences(spec, features)

    def write_artifact(self, spec: NetSpec, path: Path) -> None:
        if path.suffix == ".onnx":
            export_onnx(spec, path)
        else:
            spec.save(path)

    def step_runtimes(self, spec: NetSpec, folder: Path, artifacts: list[str], scratch: Path) -> dict[str, object]:
        onnx_path = next((folder / n for n in artifacts if n.endswith(".onnx")), None)
        return {"onnx": OnnxStep(onnx_path or export_onnx(spec, scratch)), "numpy": NumpyStep(spec)}


FAMILY = RecurrentFamily()
