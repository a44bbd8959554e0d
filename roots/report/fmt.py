"""Number formatting shared by the HTML report and the Markdown data cards: counts, statistics, byte sizes
and percentages written the same way (and "–" for a missing value) wherever they appear.
"""

from __future__ import annotations

import math
from typing import Any


def fmt_int(n: Any) -> str:
    return "–" if n is None else f"{int(n):,}"


def fmt_num(x: Any) -> str:
    """Compact, stable number formatting for statistics (4 significant digits)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    x = float(x)
    return f"{x:.0f}" if x.is_integer() and abs(x) < 1e9 else f"{x:.4g}"


def fmt_bytes(n: Any) -> str:
    if n is None:
        return "–"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def pct(part: float, whole: float) -> str:
    return "–" if not whole else f"{100.0 * part / whole:.1f}%"
