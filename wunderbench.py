"""``wunderbench``: the workbench's one command; each sub-command runs the same code as
``python -m harness <command>`` or ``python -m models <command>`` (both keep working).

It is a module above both packages because the harness never imports ``models`` (the grader must
not depend on what it grades) while ``models`` imports the harness: only something outside both
may offer both. ``models`` is imported only to list its commands and to run them.
"""

from __future__ import annotations

import sys

PROG = "wunderbench"
MODEL_COMMANDS = ("train", "parity", "compare-offline", "leaderboard", "auto", "generalize")
"""Sub-commands that ``models.cli`` runs; every other one is the harness's."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from models import cli as models_cli

    if argv and argv[0] in MODEL_COMMANDS:
        return models_cli.main(argv, prog=PROG)
    from harness import cli as harness_cli

    return harness_cli.main(argv, prog=PROG, also=(models_cli.register,))


if __name__ == "__main__":
    raise SystemExit(main())
