"""``python -m harness``: the grader's command line."""

from harness.cli import main

raise SystemExit(main())
