"""The valid file in two disjoint parts: one for every choice, one for the report.

Every choice the search makes (a network's best epoch, the best trial, an ensemble's members
and weights) reads the *selection* part, and once the choice is made the refit fits on it too
(``models.auto.refit``); the *report* part is scored once, on the written solution, and nothing
fits or chooses on it, so its score is a fair estimate. The report part is the first sequences of the file: the simulator's oracle sidecar
lists a file's scored rows from its start, so only that part can be scored against the oracle
(the grader's sequences are shuffled, so the first ones are no special sample). The selection
part carries no ``source``, so nothing scores it against a sidecar that does not line up.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from models.config import ConfigError
from models.data import SequenceSet

REPORT_SHARE = 0.5
"""Share of the valid sequences kept for the report (the rest is for selection)."""


def report_count(n_sequences: int, share: float = REPORT_SHARE) -> int:
    """How many of ``n_sequences`` valid sequences the report keeps (at least one of each part)."""
    if n_sequences < 2:
        raise ConfigError(f"the valid file has {n_sequences} sequence(s); auto needs at least 2 (one to choose "
                          "with, one to report on)")
    return min(n_sequences - 1, max(1, round(n_sequences * share)))


def split_valid(valid: SequenceSet, share: float = REPORT_SHARE) -> tuple[SequenceSet, SequenceSet]:
    """(report part: the first sequences, with the file as source; selection part: the rest,
    without a source)."""
    n_report = report_count(len(valid), share)
    report = valid.subset(np.arange(n_report))
    select = replace(valid.subset(np.arange(n_report, len(valid))), source=None)
    return report, select
