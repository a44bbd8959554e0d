"""HTML building blocks of the report: escaping, anchors, tables and sections.

Documents are hostile input: every string that comes from the data (text, ids, URLs, details, error
messages) goes through `esc` (`html.escape`, quotes included) before it reaches the page; `table` escapes
every cell unless it is a `Raw` value already built and escaped by the report modules.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


def esc(value: Any) -> str:
    """Escape anything for HTML text and attribute values (quotes included)."""
    return html.escape("" if value is None else str(value), quote=True)


def slug(value: str) -> str:
    """An id-safe anchor for a source name (names are validated, but anchors must never carry markup)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", value).strip("-") or "x"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = (),
          cls: str = "") -> str:
    """An HTML table; every cell is escaped unless it is a `Raw` value built by the report."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            content = cell.html if isinstance(cell, Raw) else esc(cell)
            cells.append(f'<td class="n">{content}</td>' if i in numeric else f"<td>{content}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        body = [f'<tr><td colspan="{len(headers)}" class="muted">none</td></tr>']
    cls_attr = f' class="{cls}"' if cls else ""
    return f"<table{cls_attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


@dataclass(frozen=True)
class Raw:
    """Markup built (and escaped) by the report, passed through `table` unchanged."""

    html: str


def section(anchor: str, title: str, body: str, level: int = 3) -> str:
    return f'<section id="{esc(anchor)}"><h{level}>{esc(title)}</h{level}>{body}</section>'
