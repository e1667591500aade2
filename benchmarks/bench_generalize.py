"""The generalization benchmark in a small setting: a ridge trained and scored on two scenarios.

``python -m models generalize`` trains a temporary copy of a solution on each scenario's train
and valid sets and scores it on that scenario's test set, as a fraction of the test set's
oracle; this runs it on ``solutions/a_ridge_var`` with few sequences, so ``make bench`` shows
the table in a few minutes. For the real measure use more scenarios and sequences:
``python -m models generalize solutions/<name> --scenarios 1-5 --sequences 300``.

Run: ``.venv/bin/python benchmarks/bench_generalize.py [--solution solutions/a_ridge_var] [--scenarios 1-2]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.cli import main as models_main  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solution", default=str(ROOT / "solutions" / "a_ridge_var"))
    parser.add_argument("--scenarios", default="1-2")
    parser.add_argument("--sequences", default="32")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-generalize-") as runs:
        return models_main(["generalize", args.solution, "--scenarios", args.scenarios, "--sequences", args.sequences,
                            "--valid-sequences", "12", "--test-sequences", "16", "--runs", runs])


if __name__ == "__main__":
    raise SystemExit(main())
