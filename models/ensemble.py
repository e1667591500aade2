"""The ``ensemble`` family: members trained from their own configs, combined per output on
out-of-fold predictions, chosen within the time and size budget.

Training, in order:

1. Each member in ``members`` (a solution folder, whose manifest gives family, training block and
   artifacts, or an inline ``{"name", "family", "train", "artifacts"}``) is trained on the train
   file as its own manifest says (``"seeds": N`` included) and written to a scratch folder.
2. Out-of-fold predictions: a member's own ``Trained.oof`` (its sequence-grouped CV) when it has
   one; otherwise (a network stopped on valid) it is retrained on ``oof_folds`` sequence-grouped
   folds of the train file, each fold's model stopping on sequences it is fitted on (so the
   held-out fold and the valid file never steer it: in effect a fixed epoch budget), and its
   written files predict the held-out fold. The members' OOF sets are joined on (sequence, step).
3. Each member's time per row is measured in the sandbox (its files packaged alone and replayed
   on ``latency_sequences`` train sequences), and ``models.selection.greedy_select`` picks members
   by OOF gain per microsecond within the projected test-set time x safety and the 20 MB cap.
4. On the chosen members' OOF: per-output non-negative weights summing to 1 (``scipy.optimize.nnls``
   on the system with a heavily weighted sum-to-one row, then renormalized) and a per-output ridge
   stacker (members' predictions and an intercept); both are scored by a second, sequence-grouped
   CV over the OOF rows (``blend_folds``) and the stacker is kept only when it scores higher.
   With ``"online": true`` (A only), the weights may also move within each sequence as targets
   are revealed (``models.online_blend``: a rate from ``online_rates``, fitted out of fold and
   kept only when it beats the static weights there, by a paired 95% interval over sequences
   above 0; the stacker must then beat it).
   Then the weak-target guard (``models.guard``) on the blend's cross-validated predictions.

The valid file is never used to fit anything here; ``models.registry`` scores what was written on it.
The written folder: ``members.json`` (kind "blend"), ``blend.npz`` and ``members/<name>/`` (each
member's own files); ``models.runtime.members`` serves it one row at a time. Which members ship
depends on the selection, so ``write`` sets the manifest's ``artifacts`` to the files it wrote
(printed, and kept in the run record).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.optimize import nnls
from sklearn.linear_model import Ridge

from features.storage import save_npz
from harness import metrics
from harness.competitions import SAFETY_FACTOR, Competition
from harness.manifest import Manifest, ManifestError
from harness.execution import Engine
from models import cv
from models.config import ConfigError, require
from models.data import SequenceSet
from models.family import Trained
from models.guard import describe, fit_guard
from models.members import align_oof, load_offline_folder, write_members_file
from models.online_blend import DEFAULT_RATES, fit_online, refuse_unless_revealed
from models.runtime.members import BLEND_FILE, MEMBERS_FILE, load_folder
from models.runtime.online_weights import ExpWeights, blend_sequences
from models.runtime.predictor import Guard
from models.selection import Budget, greedy_select, measure_latency, member_bytes

SUM_TO_ONE_WEIGHT = 1e3
"""Weight of the sum-to-one row appended to the NNLS system, relative to the data's scale."""

STOP_SEQUENCES = 8
"""Fitted sequences an OOF retraining stops on (its own training data: a fixed-epoch budget)."""

MEMBERS_DIR = "members"


@dataclass
class EnsembleConfig:
    """A manifest's ``train`` block for ``"family": "ensemble"``."""

    members: list = field(default_factory=list)
    oof_folds: int = 3
    blend_folds: int = 5
    stacker_alpha: float = 1.0
    guard_threshold: float = 0.0
    select: bool = True
    latency_sequences: int = 2
    safety: float = SAFETY_FACTOR
    online: bool = False
    online_rates: list = field(default_factory=lambda: list(DEFAULT_RATES))
    seed: int = 0

    def __post_init__(self) -> None:
        require(isinstance(self.members, list), "members",
                "must be a list of members (solution folders or inline {name, family, train, artifacts})")
        require(isinstance(self.oof_folds, int) and self.oof_folds >= 2, "oof_folds", "must be an integer >= 2")
        require(isinstance(self.blend_folds, int) and self.blend_folds >= 2, "blend_folds", "must be an integer >= 2")
        require(self.stacker_alpha >= 0, "stacker_alpha", "must be non-negative")
        require(isinstance(self.latency_sequences, int) and self.latency_sequences >= 0, "latency_sequences",
                "must be a non-negative integer (0: do not measure; the selection then budgets size only)")
        require(self.safety >= 1, "safety", "must be at least 1")
        require(isinstance(self.online, bool), "online", "must be true or false")
        require(isinstance(self.online_rates, list) and bool(self.online_rates)
                and all(isinstance(r, (int, float)) and not isinstance(r, bool) and np.isfinite(r) and r >= 0
                        for r in self.online_rates), "online_rates",
                "must be a non-empty list of non-negative numbers (0, the static blend, is always tried too)")


@dataclass
class Member:
    """One member: its name (its folder under ``members/``), family, parsed config and artifacts."""

    name: str
    family: Any
    config: Any
    artifacts: list[str]


def parse_members(entries: list, engine: Engine = Engine()) -> list[Member]:
    """The members of a config; ConfigError naming the entry that is wrong."""
    from models.registry import configured

    if not entries:
        raise ConfigError("train.members: list at least one member (a solution folder or an inline "
                          "{name, family, train, artifacts})")
    members, names = [], set()
    for i, entry in enumerate(entries):
        where = f"train.members[{i}]"
        if isinstance(entry, str):
            try:
                manifest = Manifest.read(entry)
            except ManifestError as exc:
                raise ConfigError(f"{where}: {exc}") from exc
            name, fam_name, train, artifacts = Path(entry).name, manifest.family, manifest.train, manifest.artifacts
        elif isinstance(entry, dict):
            unknown = sorted(set(entry) - {"name", "family", "train", "artifacts"})
            if unknown or not all(k in entry for k in ("name", "family", "artifacts")):
                raise ConfigError(f"{where}: an inline member has keys name, family, artifacts and optional train; "
                                  f"got {sorted(entry)}")
            name, fam_name, train, artifacts = entry["name"], entry["family"], entry.get("train", {}), entry["artifacts"]
        else:
            raise ConfigError(f"{where}: must be a solution folder (string) or an inline member (object)")
        if fam_name == "ensemble":
            raise ConfigError(f"{where}: an ensemble cannot be a member of an ensemble")
        if not isinstance(name, str) or not name or "/" in name or name in names:
            raise ConfigError(f"{where}: member names must be distinct, non-empty folder names; got {name!r}")
        names.add(name)
        fam, config = configured(fam_name, train, f"{where}.train", engine)
        members.append(Member(name, fam, config, list(artifacts)))
    return members


# -- out-of-fold predictions of a member without its own ------------------------------------------------


def kfold_oof(member: Member, train: SequenceSet, folds: int, seed: int, console) -> dict[str, np.ndarray]:
    """OOF predictions of every scored row of ``train``: the member retrained on each fold's other
    sequences (stopping on those, never on the held-out fold or the valid file), its written files
    predicting the held-out fold."""
    fold_of = cv.group_folds(train.seq_ix, folds, seed)
    predictions = np.full(train.targets.shape, np.nan)
    quiet = Console(file=io.StringIO())
    for f in range(folds):
        fit = train.subset(np.flatnonzero(fold_of != f))
        held = np.flatnonzero(fold_of == f)
        console.print(f"  {member.name}: OOF fold {f + 1}/{folds} ({len(fit)} fit, {len(held)} held out)",
                      highlight=False)
        trained = member.family.train(member.config, fit, fit.subset(np.arange(min(len(fit), STOP_SEQUENCES))), quiet)
        with tempfile.TemporaryDirectory(prefix="wunderbench-oof-") as tmp:
            member.family.write(trained, Path(tmp), member.artifacts)
            model = member.family.load_offline(Path(tmp))
            predictions[held] = model.predict_sequences(train.features[held], train.scored)
    steps = np.flatnonzero(train.scored)
    k = train.competition.n_outputs
    return {"seq_ix": np.repeat(train.seq_ix, len(steps)), "step": np.tile(steps, len(train)).astype(np.int32),
            "prediction": predictions[:, steps].reshape(-1, k).astype(np.float32),
            "target": train.targets[:, steps].reshape(-1, k).astype(np.float32)}


# -- the combination --------------------------------------------------------------------------------------


def nnls_weights(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-output non-negative weights summing to 1: (M, K) from member predictions (M, N, K) and
    targets (N, K), by ``scipy.optimize.nnls`` with a heavily weighted sum-to-one row appended."""
    m, _, k = p.shape
    weights = np.zeros((m, k))
    for j in range(k):
        a, b = p[:, :, j].T, y[:, j]
        scale = SUM_TO_ONE_WEIGHT * max(float(np.sqrt(np.mean(b * b))), 1e-12) * np.sqrt(len(b))
        w, _ = nnls(np.vstack([a, np.full((1, m), scale)]), np.append(b, scale))
        weights[:, j] = w / w.sum() if w.sum() > 0 else np.full(m, 1.0 / m)
    return weights


def ridge_stacker(p: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-output ridge on the members' predictions of that output: (coef (M, K), intercept (K,))."""
    m, _, k = p.shape
    coef, intercept = np.zeros((m, k)), np.zeros(k)
    for j in range(k):
        fitted = Ridge(alpha=alpha).fit(p[:, :, j].T, y[:, j])
        coef[:, j], intercept[j] = fitted.coef_, fitted.intercept_
    return coef, intercept


def combine(p: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """(N, K) = sum over members of coef * predictions, plus the intercept."""
    return np.einsum("mk,mnk->nk", coef, p) + intercept


def cross_validated(p: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int, seed: int, fit) -> np.ndarray:
    """Predictions of the combiner ``fit(p, y) -> (coef, intercept)`` on each sequence-grouped fold
    of the OOF rows, fitted on the others."""
    fold_of = cv.group_folds(groups, folds, seed)
    out = np.empty_like(y)
    for f in range(folds):
        train_rows, test_rows = fold_of != f, fold_of == f
        coef, intercept = fit(p[:, train_rows], y[train_rows])
        out[test_rows] = combine(p[:, test_rows], coef, intercept)
    return out


def metric(comp: Competition, y: np.ndarray, prediction: np.ndarray) -> float:
    return metrics.score(comp, y, prediction)[comp.metric]


def fit_blend(comp: Competition, p: np.ndarray, y: np.ndarray, groups: np.ndarray, cfg: EnsembleConfig,
              steps: np.ndarray | None = None) -> dict:
    """Weights, the online rate (with ``cfg.online``; ``steps`` keys the rows with ``groups``), the
    stacker (each kept only when it beats the simpler combination out of fold), the guard; with the
    out-of-fold scores that decided."""
    weights = lambda a, b: (nnls_weights(a, b), np.zeros(b.shape[1]))  # noqa: E731
    stacker = lambda a, b: ridge_stacker(a, b, cfg.stacker_alpha)  # noqa: E731
    folds = min(cfg.blend_folds, len(np.unique(groups)))
    cv_weights = cross_validated(p, y, groups, folds, cfg.seed, weights)
    cv_stacker = cross_validated(p, y, groups, folds, cfg.seed, stacker)
    score_w, score_s = metric(comp, y, cv_weights), metric(comp, y, cv_stacker)
    candidates = {"weights": (score_w, cv_weights)}
    online_record, online_arrays = None, {}
    if cfg.online:
        if steps is None:
            raise ValueError("fit_blend: online blending needs the OOF rows' steps")
        online = fit_online(comp, p, y, groups, steps, cfg.online_rates, folds, cfg.seed, nnls_weights, cv_weights)
        fitted, kept = online["fit"], online["kept"]
        if kept:
            candidates["online"] = (online["score"], online["prediction"])
        online_record = {"kept": kept, "rate": fitted.rate if kept else 0.0, "fitted_rate": fitted.rate,
                         "oof_static": score_w, "oof_online": online["score"], "fold_rates": online["fold_rates"],
                         "difference_interval": list(online["interval"]),
                         "rate_scores_all_rows": {str(r): v for r, v in fitted.scores.items()}}
        online_arrays = ExpWeights(fitted.prior, fitted.rate, fitted.inv_scale).arrays() if kept else {}
    best = max(candidates, key=lambda name: candidates[name][0])
    use_stacker = score_s > candidates[best][0]
    combiner = "stacker" if use_stacker else best
    if use_stacker and online_record is not None and online_record["kept"]:
        online_record.update(kept=False, rate=0.0, why="the stacker scored higher")
        online_arrays = {}
    coef, intercept = (stacker if use_stacker else weights)(p, y)
    blended = cv_stacker if use_stacker else candidates[best][1]
    per_output = metrics.score(comp, y, blended)
    scores = np.array([per_output[n] for n in comp.prediction_names])
    guard = fit_guard(blended, y, y.mean(axis=0), scores, cfg.guard_threshold, competition=comp)
    guarded = metric(comp, y, guard.apply_batch(blended.copy()))
    return {"coef": coef, "intercept": intercept, "guard": guard, "combiner": combiner,
            "oof_weights": score_w, "oof_stacker": score_s, "oof_blend": max(score_s, candidates[best][0]),
            "oof_guarded": guarded, "oof_prediction": blended, "online": online_record,
            "online_arrays": online_arrays}


# -- the family ----------------------------------------------------------------------------------------------


@dataclass
class EnsembleModel:
    """What ``train`` hands to ``write``: the scratch folder holding every member's files, the
    chosen members, the blend arrays."""

    scratch: tempfile.TemporaryDirectory
    members: list[Member]
    arrays: dict[str, np.ndarray]


def selection_table(rows: list[dict], metric_label: str) -> Table:
    table = Table(title=f"member selection (OOF {metric_label}, gain per us/row, within the budget)")
    for column in ("member", "us/row", "marginal gain", "cumulative score", "projected minutes", "outcome"):
        table.add_column(column, justify="left" if column in ("member", "outcome") else "right")
    for row in rows:
        chosen = row["selected"]
        table.add_row(row["member"], f"{row['us_per_row']:.1f}",
                      f"{row['marginal_gain']:+.4f}" if chosen else "-",
                      f"{row['cumulative_score']:.4f}" if chosen else "-",
                      f"{row['projected_minutes']:.1f}" if chosen else "-", row["why"])
    return table


class EnsembleFamily:
    name = "ensemble"
    config = EnsembleConfig

    def __init__(self, engine: Engine = Engine()) -> None:
        self.engine = engine

    def with_engine(self, engine: Engine) -> "EnsembleFamily":
        """This family passing ``engine`` on to its members' seed trainings."""
        return EnsembleFamily(engine)

    def train(self, cfg: EnsembleConfig, train: SequenceSet, valid: SequenceSet, console) -> Trained:
        comp = train.competition
        if cfg.online:
            refuse_unless_revealed(comp)  # before an hour of member training, not after
        members = parse_members(cfg.members, self.engine)
        scratch = tempfile.TemporaryDirectory(prefix="wunderbench-ensemble-")
        root = Path(scratch.name)
        oofs, records = [], {}
        for member in members:
            console.rule(f"member {member.name} ({member.family.name})")
            trained = member.family.train(member.config, train, valid, console)
            (root / member.name).mkdir()
            member.family.write(trained, root / member.name, member.artifacts)
            oof = trained.oof
            source = "own CV"
            if oof is None:
                source = f"{cfg.oof_folds}-fold retraining"
                oof = kfold_oof(member, train, cfg.oof_folds, cfg.seed, console)
            oofs.append(oof)
            records[member.name] = {"family": member.family.name, "oof_source": source, "record": trained.record}
        rows, predictions = align_oof(oofs)
        p, y = np.stack(predictions), rows["target"]
        for member, pred in zip(members, predictions):
            records[member.name]["oof_score"] = metric(comp, y, pred)
        console.print(f"OOF rows shared by all members: {len(y)} of {len(np.unique(rows['seq_ix']))} sequences",
                      highlight=False)
        budget = Budget.of(comp, cfg.safety)
        sizes = [member_bytes(root / m.name) for m in members]
        latencies = [0.0] * len(members)
        if cfg.latency_sequences and train.source is not None:
            for i, member in enumerate(members):
                latencies[i] = measure_latency(root / member.name, member.family.name, comp.key, train.source,
                                               cfg.latency_sequences)
        names = [m.name for m in members]
        if cfg.select:
            blend_score = lambda idx: metric(comp, y, combine(p[idx], nnls_weights(p[idx], y), 0.0))  # noqa: E731
            chosen, table = greedy_select(names, blend_score, latencies, sizes, budget)
        else:
            chosen = list(range(len(members)))
            table = [{"member": n, "us_per_row": latencies[i], "bytes": sizes[i], "selected": True, "why": "all kept",
                      "marginal_gain": float("nan"), "cumulative_score": float("nan"),
                      "projected_minutes": budget.projected_minutes(sum(latencies[: i + 1]))}
                     for i, n in enumerate(names)]
        if not chosen:
            raise ConfigError("no member improves on an empty ensemble within the budget; see the selection table")
        console.print(selection_table(table, comp.metric_label))
        blend = fit_blend(comp, p[chosen], y, rows["seq_ix"], cfg, rows["step"])
        online = blend["online"]
        if online is not None:
            console.print(f"online blend: rate {online['fitted_rate']:g} fitted on all OOF rows; out of fold "
                          f"{online['oof_online']:.4f} against static {online['oof_static']:.4f}, difference "
                          f"{online['difference_interval'][0]:+.5f} to {online['difference_interval'][1]:+.5f} "
                          f"(fold rates {', '.join(f'{r:g}' for r in online['fold_rates'])}): "
                          f"{'kept' if online['kept'] else 'not kept'}", highlight=False)
        console.print(f"blend: {blend['combiner']} (OOF weights {blend['oof_weights']:.4f}, stacker "
                      f"{blend['oof_stacker']:.4f}, guarded {blend['oof_guarded']:.4f})", highlight=False)
        picked = [members[i] for i in chosen]
        arrays = {"coef": blend["coef"], "intercept": blend["intercept"], **blend["guard"].arrays(),
                  **blend["online_arrays"]}
        record = {"config": {**cfg.__dict__}, "members": records, "selection": table,
                  "selected": [m.name for m in picked], "latency_measured": bool(cfg.latency_sequences),
                  "budget": {"test_rows": budget.test_rows, "minutes": budget.minutes, "safety": budget.safety,
                             "archive_bytes": budget.archive_bytes},
                  "cv": {"oof_rows": int(len(y)), "oof_score": blend["oof_blend"], "oof_guarded": blend["oof_guarded"],
                         "oof_weights": blend["oof_weights"], "oof_stacker": blend["oof_stacker"],
                         "combiner": blend["combiner"], "online": online, "fold_scores": []},
                  "weights": {m.name: blend["coef"][i].tolist() for i, m in enumerate(picked)},
                  "guard": describe(blend["guard"], comp.prediction_names)}
        oof = {"seq_ix": rows["seq_ix"], "step": rows["step"], "prediction": blend["oof_prediction"].astype(np.float32),
               "target": y.astype(np.float32)}
        return Trained(EnsembleModel(scratch, picked, arrays), record, oof)

    def write(self, trained: Trained, folder: Path, artifacts: list[str]) -> list[str]:
        """The chosen members' files under ``members/``, ``blend.npz`` and ``members.json``; the
        manifest's ``artifacts`` is set to exactly these files (which ones depends on the selection)."""
        model: EnsembleModel = trained.model
        folder = Path(folder)
        staging = folder / f".{MEMBERS_DIR}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for member in model.members:
            shutil.copytree(Path(model.scratch.name) / member.name, staging / member.name)
        final = folder / MEMBERS_DIR
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)
        save_npz(folder / BLEND_FILE, model.arrays)
        write_members_file(folder, "blend", [{"folder": f"{MEMBERS_DIR}/{m.name}", "family": m.family.name}
                                             for m in model.members])
        files = [MEMBERS_FILE, BLEND_FILE] + sorted(p.relative_to(folder).as_posix()
                                                    for p in final.rglob("*") if p.is_file())
        if sorted(artifacts) != sorted(files):
            set_manifest_artifacts(folder, files)
            trained.record["artifacts_updated"] = True
        model.scratch.cleanup()
        return files

    def load_online(self, folder: Path):
        return load_folder(folder)

    def load_offline(self, folder: Path):
        return load_offline_folder(folder)


def set_manifest_artifacts(folder: Path, files: list[str]) -> None:
    """Rewrite ``artifacts`` in ``folder/manifest.json`` (written beside it, then moved in)."""
    path = Path(folder) / "manifest.json"
    values = json.loads(path.read_text())
    values["artifacts"] = files
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(values, indent=1) + "\n")
    os.replace(partial, path)


class OfflineBlend:
    """Batch form of ``models.runtime.members.Blend`` (the same linear map or online weights, and guard)."""

    def __init__(self, members: list, coef: np.ndarray, intercept: np.ndarray, guard: Guard,
                 online: ExpWeights | None = None) -> None:
        self.members, self.coef, self.intercept, self.guard, self.online = members, coef, intercept, guard, online

    @classmethod
    def load(cls, folder: Path, members: list) -> "OfflineBlend":
        with np.load(Path(folder) / BLEND_FILE, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        return cls(members, arrays["coef"], arrays["intercept"], Guard.from_arrays(arrays),
                   ExpWeights.from_arrays(arrays["coef"], arrays))

    def predict_sequences(self, features: np.ndarray, steps: np.ndarray | None = None) -> np.ndarray:
        p = np.stack([m.predict_sequences(features, steps) for m in self.members])
        s, t, k = p.shape[1:]
        if self.online is not None:
            # A: the state of row t + 1 is the target of the prediction at row t (the runtime's rule)
            revealed = np.full((s, t, k), np.nan)
            revealed[:, :-1] = features[:, 1:, :k]
            out = blend_sequences(self.online.prior, self.online.rate, self.online.inv_scale, p, revealed)
            out = (out + self.intercept).reshape(s * t, k)
        else:
            out = combine(p.reshape(len(self.members), s * t, k), self.coef, self.intercept)
        rows = np.isfinite(out).all(axis=1)
        out[rows] = self.guard.apply_batch(out[rows])
        return out.reshape(s, t, k)


FAMILY = EnsembleFamily()
