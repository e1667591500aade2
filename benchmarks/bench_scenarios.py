"""The scenario suite at a glance: per scenario, the ceiling, a simple baseline and the form.

For each competition and each scenario (``default`` and 1-5 unless told otherwise) it draws
the market, generates a small train and valid set, and prints one row: the observable oracle's
score on valid, a simple baseline's (A: the mean of the sequence so far; B: a ridge on the
current row's features, fitted on train), the baseline as a fraction of the oracle, a few form
statistics and how many form rows (``harness.market.form``) pass. Structures should differ
(oracle and baseline move) while the form rows all pass.

Run: ``.venv/bin/python benchmarks/bench_scenarios.py [--only A|B] [--scenarios default,1-5]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.competitions import A, B  # noqa: E402
from harness.market.form import failures, form_rows  # noqa: E402
from harness.market.oracle import oracle_scores, scored_targets  # noqa: E402
from harness.market.scenarios import generate_scenario, label, parse_scenarios  # noqa: E402
from harness.metrics import score  # noqa: E402

SIZES = {"A": {"train": 192, "valid": 64}, "B": {"train": 300, "valid": 100}}
"""Small sets; A's pooled std band (0.97-1.03) is meant for full-size sets, and on fewer than ~150
sequences even the default market can fall outside it by chance."""


def a_row(paths: dict[str, Path]) -> tuple[float, list[str], int, int]:
    from harness.market import calibrate as cal

    _, train = cal.load_sequences(paths["train"])
    _, valid = cal.load_sequences(paths["valid"])
    base = score(A, cal.targets(valid), cal.pooled(cal.predict_mean_so_far(valid)))[A.metric]
    x = np.concatenate([train, valid])
    rows = cal.data_rows_a(x)
    m = cal.marginal_stats(x)
    stats = [f"{m['std'].mean():.3f}", f"{m['kurt'].mean():.2f}", f"{cal.lag1_pooled(x):.3f}",
             f"{cal.lag1_within(x):.3f}", f"{cal.correlation_stats(x)['explained'][4]:.3f}"]
    return base, stats, len(form_rows("A", rows)), len(failures("A", rows))


def b_row(paths: dict[str, Path]) -> tuple[float, list[str], int, int]:
    from harness.market import b_stats as st
    from harness.market.calibrate_b import feature_rows, load_b, ridge_predict, target_rows

    train, valid = load_b(paths["train"]), load_b(paths["valid"])
    base = score(B, scored_targets(paths["valid"], B), ridge_predict(train, valid))[B.metric]
    rows = feature_rows(train) + target_rows(train)
    t = train.targets[:, B.first_scored_step : B.last_scored_step + 1]
    dv0 = train.features[:, :, B.feature_columns.index("dv0")]
    stats = [f"{st.excess_kurtosis(t[..., 0]):.1f}", f"{st.excess_kurtosis(t[..., 1]):.1f}",
             f"{st.pooled_autocorr(t[..., 0], 1):.3f}", f"{np.corrcoef(t[..., 0].ravel(), t[..., 1].ravel())[0, 1]:.3f}",
             f"{(dv0 <= 0).mean():.3f}"]
    return base, stats, len(form_rows("B", rows)), len(failures("B", rows))


STAT_NAMES = {
    "A": ("std", "excess kurtosis", "lag-1 pooled", "lag-1 within", "top-5 explained"),
    "B": ("t0 kurtosis", "t1 kurtosis", "t0 lag-1", "corr(t0, t1)", "dv0 <= 0"),
}
BASELINE = {"A": "mean so far", "B": "ridge, current row"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("A", "B"))
    parser.add_argument("--scenarios", default="default,1-5")
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 200)  # piped: no truncated columns
    for key in (args.only,) if args.only else ("A", "B"):
        comp = A if key == "A" else B
        table = Table(title=f"{key}: scenarios on {SIZES[key]['train']} train / {SIZES[key]['valid']} valid sequences "
                            f"(scores on valid, {comp.metric})")
        for name in ("scenario", "oracle", BASELINE[key], "baseline / oracle", *STAT_NAMES[key], "form rows", "s"):
            table.add_column(name, justify="left" if name == "scenario" else "right")
        for scenario in parse_scenarios(args.scenarios):
            started = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="bench-scenarios-") as tmp:
                paths = generate_scenario(key, scenario, Path(tmp), SIZES[key], seed=100)
                oracle = oracle_scores(paths["valid"])["observable"]
                base, stats, n_form, n_bad = (a_row if key == "A" else b_row)(paths)
            table.add_row(label(scenario), f"{oracle:.4f}", f"{base:.4f}", f"{base / oracle:.3f}", *stats,
                          f"{n_form - n_bad} of {n_form}", f"{time.perf_counter() - started:.0f}")
        console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
