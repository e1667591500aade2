"""Tables as plain data, rendered for the terminal (rich) or as one self-contained HTML page.

``harness compare`` and ``models leaderboard`` lay their results out as ``Section``s (a title,
column names, rows of text) and render the same sections twice: to the terminal, and to the
``--report`` page. Nothing here knows what the numbers mean.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Section:
    title: str
    columns: list[str]
    rows: list[list[str]]


def terminal_tables(parts: list[Section]):
    """The sections as rich tables."""
    from rich.table import Table

    tables = []
    for part in parts:
        table = Table(title=part.title)
        for i, column in enumerate(part.columns):
            table.add_column(column, justify="left" if i == 0 else "right")
        for row in part.rows:
            table.add_row(*row)
        tables.append(table)
    return tables


_CSS = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #bbb;padding:2px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
        "caption{font-weight:bold;text-align:left;padding:4px 0}")


def html_page(title: str, parts: list[Section], notes: list[str] = ()) -> str:
    """One self-contained page (no scripts, no network): a heading, the notes, a table per section.
    Every piece of text is escaped (labels are file names the user chose)."""
    body = [f"<h1>{html.escape(title)}</h1>", *(f"<p>{html.escape(n)}</p>" for n in notes)]
    for part in parts:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in part.columns)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in part.rows)
        body.append(f"<table><caption>{html.escape(part.title)}</caption><tr>{head}</tr>{rows}</table>")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n")


def write_text(path: str | Path, text: str) -> Path:
    """``text`` at ``path``, written beside it first and moved in (never half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
