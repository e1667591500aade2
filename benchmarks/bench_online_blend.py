"""What online exponential-weights blending gains over the static weights, on trained A models.

The members of a trained ensemble folder (default ``solutions/a_ensemble``), or the trained
solution folders given with ``--members``, predict the valid file offline; they were trained on
the train file only, so on valid their predictions are out of sample, like OOF rows. On those rows, with the valid sequences split into sequence-grouped folds:
the static NNLS weights cross-validated (what the ensemble ships without ``online``), the online
blend nested-cross-validated (``models.online_blend.fit_online``: weights and rate fitted on the
other folds), their difference with a paired 95% bootstrap interval over sequences, and each
rate's score with the weights fitted on all rows; then what the online update costs a row at
run time beside the static linear map (same members' predictions, one run, so compare the two).
Nothing here is written or shipped.

Usage: python benchmarks/bench_online_blend.py [--solution DIR | --members DIR ...] [--data PARQUET]
       [--sequences N] [--folds F] [--rates R ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.manifest import Manifest  # noqa: E402
from models.config import ConfigError  # noqa: E402
from models.data import load_sequences  # noqa: E402
from models.ensemble import cross_validated, metric, nnls_weights  # noqa: E402
from models.members import load_offline_folder  # noqa: E402
from models.online_blend import DEFAULT_RATES, fit_online, refuse_unless_revealed  # noqa: E402
from harness.market.defaults import ensure  # noqa: E402
from models.runtime.members import MEMBERS_FILE, read_members  # noqa: E402
from models.runtime.online_weights import ExpWeights  # noqa: E402


def row_costs(prior: np.ndarray, inv_scale: np.ndarray, p: np.ndarray, y: np.ndarray,
              rows: int = 20000) -> tuple[float, float]:
    """Microseconds a row of the runtime's static map and of its online observe + blend."""
    rows = min(rows, p.shape[1])
    preds = [np.ascontiguousarray(p[:, i]) for i in range(rows)]
    started = time.perf_counter()
    for x in preds:
        (prior * x).sum(axis=0)
    static = time.perf_counter() - started
    online = ExpWeights(prior, 0.01, inv_scale)
    started = time.perf_counter()
    for i, x in enumerate(preds):
        online.observe(x, y[i])
        online.blend(x)
    return static / rows * 1e6, (time.perf_counter() - started) / rows * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solution", default=str(ROOT / "solutions" / "a_ensemble"))
    parser.add_argument("--members", nargs="+", default=None, help="trained solution folders (instead of --solution)")
    parser.add_argument("--data", default=None, help="a parquet file (default: the generated A valid set)")
    parser.add_argument("--sequences", type=int, default=None, help="first N sequences of --data (default all)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--rates", type=float, nargs="+", default=list(DEFAULT_RATES))
    args = parser.parse_args()
    console = Console()
    started = time.perf_counter()
    if args.members:
        folders = [(Path(f), Manifest.read(f).family) for f in args.members]
    else:
        solution = Path(args.solution)
        if not (solution / MEMBERS_FILE).is_file():
            console.print(f"[yellow]{solution.name}: not trained (make train SOLUTION={solution.name}); skipped[/]")
            return 0
        folders = [(solution / m["folder"], m["family"]) for m in read_members(solution)["members"]]
    args.data = args.data or str(ensure("A", "valid", quiet=True))
    data = load_sequences(args.data, args.sequences, oracle=False)
    comp = data.competition
    refuse_unless_revealed(comp)
    names = [folder.name for folder, _ in folders]
    with console.status("members predicting"):
        members = [load_offline_folder(folder, fam) for folder, fam in folders]
        steps = np.flatnonzero(data.scored)
        p = np.stack([m.predict_sequences(data.features, data.scored)[:, steps].reshape(-1, comp.n_outputs)
                      for m in members])
    y = data.scored_targets().astype(np.float64)
    seq_ix = np.repeat(data.seq_ix, len(steps))
    step = np.tile(steps, len(data))
    weights = lambda a, b: (nnls_weights(a, b), np.zeros(b.shape[1]))  # noqa: E731
    with console.status("static weights, cross-validated"):
        static = cross_validated(p, y, seq_ix, args.folds, 0, weights)
    with console.status("online rate, nested cross-validation"):
        online = fit_online(comp, p, y, seq_ix, step, args.rates, args.folds, 0, nnls_weights, static)
    low, high = online["interval"]
    score_static, score_online = metric(comp, y, static), online["score"]

    table = Table(title=f"online vs static blend of {', '.join(names)} on {Path(args.data).name} "
                        f"({len(data)} sequences, {args.folds} sequence-grouped folds, {comp.metric_label})")
    for column in ("blend", "score", "note"):
        table.add_column(column, justify="right" if column == "score" else "left")
    for name, pred in zip(names, p):
        table.add_row(f"member {name}", f"{metric(comp, y, pred):.5f}", "alone")
    table.add_row("static weights", f"{score_static:.5f}", "cross-validated")
    table.add_row("online weights", f"{score_online:.5f}",
                  f"nested CV; fold rates {', '.join(f'{r:g}' for r in online['fold_rates'])}")
    table.add_row("online - static", f"{score_online - score_static:+.5f}",
                  f"paired 95% interval {low:+.5f} to {high:+.5f}: {'kept' if online['kept'] else 'not kept'}")
    fit = online["fit"]
    for rate, score in fit.scores.items():
        table.add_row(f"rate {rate:g}", f"{score:.5f}", "weights and rate on all rows" + (" (chosen)" if rate == fit.rate
                                                                                            else ""))
    console.print(table)
    static_us, online_us = row_costs(fit.prior, fit.inv_scale, p, y)
    console.print(f"one row, {len(members)} members x {comp.n_outputs} outputs: static map {static_us:.1f} us, "
                  f"online update and blend {online_us:.1f} us (members' own time not included)", highlight=False)
    console.print(f"{time.perf_counter() - started:.0f} s", highlight=False)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except ConfigError as exc:  # e.g. a B file: its targets never reach the model
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
