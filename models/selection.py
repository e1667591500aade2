"""Budget-aware member selection for ensembles: each member's per-row time measured in the
sandbox, then greedy forward selection by out-of-fold gain per microsecond within the limits.

The budget: the projected full test-set time, (sum of the chosen members' us/row) x the test
set's rows x the safety factor (``harness.competitions.SAFETY_FACTOR``), within the competition's
minutes, and the chosen members' files within the archive cap. A member's time is the steady
per-row time of its own packaged replay (``harness.simulate``: one core, the grader's loop).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.competitions import SAFETY_FACTOR, Competition

SOLUTION_TEMPLATE = '''"""A member of an ensemble, packaged alone to measure its time per row."""

from pathlib import Path

from models.runtime.members import load_folder
from models.runtime.solution import SequenceModel

FAMILY = {family!r}


class PredictionModel(SequenceModel):
    def __init__(self):
        super().__init__(load_folder(Path(__file__).resolve().parent, FAMILY))
'''


class SelectionError(RuntimeError):
    """A member could not be measured (its packaged replay failed); the message says which and why."""


@dataclass(frozen=True)
class Budget:
    """The limits a selection must respect, from the competition's."""

    test_rows: int
    minutes: float
    archive_bytes: int
    safety: float = SAFETY_FACTOR

    @classmethod
    def of(cls, comp: Competition, safety: float = SAFETY_FACTOR) -> "Budget":
        return cls(comp.test_rows, comp.limits.minutes, int(comp.limits.archive_mb * 1024**2), safety)

    def projected_minutes(self, us_per_row: float) -> float:
        return us_per_row * 1e-6 * self.test_rows * self.safety / 60.0


def member_bytes(folder: Path) -> int:
    """Bytes of every file under a member folder (a zip only shrinks them)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def measure_latency(member: Path, family: str, competition: str, data: Path, sequences: int) -> float:
    """Steady microseconds per row of the member folder replayed alone, packaged, in the sandbox."""
    from models.evaluate import package_and_replay

    with tempfile.TemporaryDirectory(prefix="wunderbench-member-") as tmp:
        solution = Path(tmp) / Path(member).name
        shutil.copytree(member, solution)
        files = sorted(p.relative_to(solution).as_posix() for p in solution.rglob("*") if p.is_file())
        (solution / "manifest.json").write_text(json.dumps({"competition": competition, "artifacts": files}))
        (solution / "solution.py").write_text(SOLUTION_TEMPLATE.format(family=family))
        report = package_and_replay(solution, data, max(sequences, 2))
    if report.error is not None or report.timing.projection is None:
        raise SelectionError(f"member {Path(member).name}: its packaged replay failed ({report.status}: "
                             f"{report.error}); fix the member or drop it from 'members'")
    return float(report.timing.projection.per_row_us)


def greedy_select(names: list[str], score: Callable[[list[int]], float], us_per_row: list[float],
                  sizes: list[int], budget: Budget) -> tuple[list[int], list[dict]]:
    """Forward selection: start from the best member alone, then repeatedly add the member with the best (OOF score gain) / (us per row)
    among those that keep the projected time within ``budget.minutes`` and the files within the
    archive cap; stop when no member gains. ``score(indices)`` is the OOF score of a blend of
    those members. Returns the chosen indices in the order added and the selection table (one
    row per member: us/row, marginal gain when added (or why not), cumulative score, projected
    minutes)."""
    chosen: list[int] = []
    current = 0.0
    total_us, total_bytes = 0.0, 0
    table: dict[int, dict] = {i: {"member": n, "us_per_row": float(us_per_row[i]), "bytes": int(sizes[i]),
                                  "selected": False, "why": "no gain"} for i, n in enumerate(names)}
    while True:
        best, best_ratio, best_score = None, 0.0, current
        for i in range(len(names)):
            if i in chosen:
                continue
            if budget.projected_minutes(total_us + us_per_row[i]) > budget.minutes:
                table[i]["why"] = "over the time budget"
                continue
            if total_bytes + sizes[i] > budget.archive_bytes:
                table[i]["why"] = "over the size cap"
                continue
            candidate = score(chosen + [i])
            if not chosen:  # the first member: the best alone (an empty ensemble has no score to gain on)
                if best is None or candidate > best_score:
                    best, best_score = i, candidate
                continue
            gain = candidate - current
            ratio = gain / max(us_per_row[i], 1e-3)
            if gain > 0 and ratio > best_ratio:
                best, best_ratio, best_score = i, ratio, candidate
        if best is None:
            break
        total_us += us_per_row[best]
        total_bytes += sizes[best]
        gain = best_score - current if chosen else best_score
        table[best].update(selected=True, why="selected", order=len(chosen), marginal_gain=gain,
                           cumulative_score=best_score, projected_minutes=budget.projected_minutes(total_us))
        chosen.append(best)
        current = best_score
    return chosen, [table[i] for i in chosen] + [table[i] for i in range(len(names)) if i not in chosen]
