"""The command line: one sub-command per job, each module registering its own.

A module that owns a job exposes ``register(subparsers)``, adding its parser(s) with
``set_defaults(func=handler)``; a handler takes the parsed arguments and returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that add sub-commands; each must define register(subparsers).
COMMAND_MODULES = (
    "harness.simulate_cli",
    "harness.gate_cli",
    "harness.market.cli",
)


class UserError(Exception):
    """A problem the user can fix (bad path, bad data, bad option): printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness",
        description="Local grader, simulator and gate for Wunder Fund's streaming RNN challenges.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that job is not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
