"""The command line: one sub-command per job, each module registering its own.

A module that owns a job exposes ``register(subparsers)``, adding its parser(s) with
``set_defaults(func=handler)``; a handler takes the parsed arguments and returns an exit code.
Options several commands share are declared once here, as groups (``add_data_options``,
``add_limit_options``); ``options_from`` fills an options dataclass from the parsed arguments
by field name, so an option is declared once and never copied by hand into a call.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, Callable, Iterable, NoReturn, TypeVar

from harness import competitions

EXIT_CODES = """\
exit codes: 0 passed (or passed with warnings), 1 the candidate failed (or a check did),
2 the input or the command is wrong (a bad option, a missing or malformed file)."""
"""The one exit-code scheme of every command; shown in every --help (and in the README)."""


class UserError(Exception):
    """A problem the user can fix (bad path, bad data, bad option): printed without a traceback."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (``error: ...``) and exit 2 via ``UserError``.

    argparse's own error prints the whole usage first and exits the interpreter; here the message
    names the option and points at ``--help``, and ``main`` turns it into exit code 2.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("epilog", EXIT_CODES)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see {self.prog} --help)")


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def output_file(text: str) -> str:
    """An argparse type: a file to write at the end of a run; an existing folder there is refused
    at once, not after the run."""
    from pathlib import Path

    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; name a file in it, such as {Path(text) / 'report.html'}")
    return text


def competition_key(text: str) -> str:
    """An argparse type: a competition key or name ("A", "next-state", "B", "lob"), as its key."""
    try:
        return competitions.get(text).key
    except KeyError as exc:
        raise argparse.ArgumentTypeError(str(exc.args[0])) from None


def add_data_options(parser: argparse.ArgumentParser, sequences_default: int | None = None,
                     competition: bool = True, sequences_help: str | None = None) -> None:
    """--data, --sequences and (for commands that accept a bare candidate) --competition."""
    parser.add_argument("--data", help="parquet file to replay (default: the generated valid set of the competition)")
    parser.add_argument("--sequences", type=positive_int, default=sequences_default,
                        help=sequences_help or "replay only the first N sequences"
                        + (f" (default {sequences_default})" if sequences_default else " (default: all)"))
    if competition:
        parser.add_argument("--competition", type=competition_key,
                            help="A or B: picks the default data when the candidate has no manifest.json")


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    """The grader's limits and the projection's margin, as simulate and the gate apply them."""
    from harness.competitions import SAFETY_FACTOR

    parser.add_argument("--memory-gb", type=positive_float, help="memory cap (default: the competition's, 16)")
    parser.add_argument("--minutes", type=positive_float,
                        help="time limit (default: the competition's, 60 for A, 90 for B)")
    parser.add_argument("--safety", type=positive_float, default=SAFETY_FACTOR,
                        help=f"slow-grader factor for the time projection (default {SAFETY_FACTOR})")
    parser.add_argument("--test-sequences", type=positive_int,
                        help="sequences in the full test set (default: the competition's)")


def add_execution_options(parser: argparse.ArgumentParser, what: str) -> None:
    """--workers, --backend and --address: where the parallel work of a command runs
    (``harness.execution``); ``what`` says what the workers do, for the help."""
    from harness.execution import BACKENDS

    parser.add_argument("--workers", type=positive_int, default=1, help=f"{what} (default 1)")
    parser.add_argument("--backend", choices=BACKENDS, default="local",
                        help="local processes (default) or a Ray cluster (--address; without one a local Ray "
                             "instance is started for the run)")
    parser.add_argument("--address", help="with --backend ray: the cluster's head, as `ray start --head` prints it")


def engine_from(args: argparse.Namespace):
    """The ``harness.execution.Engine`` the execution options name; a bad combination is the user's (exit 2)."""
    from harness.execution import Engine

    try:
        return Engine(args.backend, args.workers, args.address)
    except ValueError as exc:
        raise UserError(str(exc)) from None


Options = TypeVar("Options")


def options_from(args: argparse.Namespace, cls: type[Options], **overrides: Any) -> Options:
    """``cls`` (an options dataclass) filled from the parsed arguments of the same names."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {name: value for name, value in vars(args).items() if name in names and value is not None}
    return cls(**{**values, **overrides})


Register = Callable[[argparse._SubParsersAction], None]


def build_parser(prog: str = "python -m harness", also: Iterable[Register] = ()) -> argparse.ArgumentParser:
    """The harness's commands, plus those ``also`` registers (the ``wunderbench`` command lists
    the training commands this way: the harness itself never imports ``models``)."""
    from harness import compare_cli, gate_cli, package_cli, profile_cli, simulate_cli
    from harness.market import cli as market_cli

    parser = OneLineParser(
        prog=prog,
        description="Local grader, simulator and gate for Wunder Fund's streaming RNN challenges.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in (simulate_cli.register, gate_cli.register, compare_cli.register, package_cli.register,
                     profile_cli.register,
                     market_cli.register, *also):
        register(sub)
    return parser


def main(argv: list[str] | None = None, prog: str = "python -m harness", also: Iterable[Register] = ()) -> int:
    try:
        args = build_parser(prog, also).parse_args(argv)
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
