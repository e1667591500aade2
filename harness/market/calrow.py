"""The calibration table's row and its three renderings (markdown, JSON, rich), shared by A and B.

Kept apart from the statistics so the B calibration can import it without pulling in A's
baselines, and so the renderings stay one definition.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class CalRow:
    """One line of a calibration table: a statistic, the real value, ours, and the verdict.

    ``accept`` is the acceptance range as text (None when the statistic is only reported) and
    ``ok`` whether ``generated`` falls inside it (None when there is nothing to check).
    """

    statistic: str
    real: str
    generated: float | str
    accept: str | None = None
    ok: bool | None = None
    lo: float | None = None  # the band's ends as numbers (``ranged`` rows), for checks with a margin
    hi: float | None = None

    @classmethod
    def ranged(cls, statistic: str, real: str, value: float, lo: float | None, hi: float | None) -> "CalRow":
        """A row checked against the closed range [lo, hi]; either end may be open (None)."""
        if lo is None and hi is None:
            return cls(statistic, real, float(value))
        if lo is not None and hi is not None:
            accept = f"[{lo:g}, {hi:g}]"
        elif lo is not None:
            accept = f">= {lo:g}"
        else:
            accept = f"<= {hi:g}"
        finite = math.isfinite(value)
        ok = finite and (lo is None or value >= lo) and (hi is None or value <= hi)
        return cls(statistic, real, float(value), accept, bool(ok), lo, hi)

    @classmethod
    def above(cls, statistic: str, real: str, value: float, floor: float, floor_name: str) -> "CalRow":
        """A row that must exceed another generated value (named for the reader)."""
        ok = math.isfinite(value) and value > floor
        return cls(statistic, real, float(value), f"> {floor_name} ({floor:.4f})", bool(ok))

    def generated_text(self) -> str:
        if isinstance(self.generated, str):
            return self.generated
        return f"{self.generated:.4f}"

    def verdict(self) -> str:
        return "" if self.ok is None else ("pass" if self.ok else "FAIL")


def summary(rows: list[CalRow]) -> tuple[int, int]:
    """(checked rows, passing rows)."""
    checked = [r for r in rows if r.ok is not None]
    return len(checked), sum(1 for r in checked if r.ok)


def to_markdown(rows: list[CalRow], title: str, notes: list[str] | None = None) -> str:
    """The table as a markdown document: a heading, notes, the table and a pass count."""
    lines = [f"# {title}", ""]
    for note in notes or []:
        lines.append(f"- {note}")
    if notes:
        lines.append("")
    lines.append("| statistic | real | generated | accept | verdict |")
    lines.append("|---|---|---|---|---|")
    for r in rows:
        cells = [r.statistic, r.real, r.generated_text(), r.accept or "", r.verdict()]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    n, good = summary(rows)
    lines += ["", f"{good} of {n} checked statistics within tolerance.", ""]
    return "\n".join(lines)


def to_json(rows: list[CalRow], meta: dict[str, Any] | None = None) -> str:
    n, good = summary(rows)
    doc = {"meta": meta or {}, "checked": n, "passed": good, "rows": [asdict(r) for r in rows]}
    return json.dumps(doc, indent=2, default=float)


def rich_table(rows: list[CalRow], title: str) -> Any:
    """A rich ``Table`` for the terminal."""
    from rich.table import Table

    table = Table(title=title)
    for name, justify in (("statistic", "left"), ("real", "left"), ("generated", "right"), ("accept", "left"), ("", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        verdict = r.verdict()
        style = "green" if r.ok else ("red" if r.ok is False else "")
        table.add_row(r.statistic, r.real, r.generated_text(), r.accept or "", f"[{style}]{verdict}[/]" if style else verdict)
    return table


def write_reports(rows: list[CalRow], out_dir: Path, key: str, title: str, meta: dict[str, Any], notes: list[str]) -> tuple[Path, Path]:
    """Write ``calibration_<key>.md`` and ``.json`` under out_dir; return both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"calibration_{key}.md"
    js = out_dir / f"calibration_{key}.json"
    md.write_text(to_markdown(rows, title, notes))
    js.write_text(to_json(rows, {**meta, "notes": notes}))
    return md, js
