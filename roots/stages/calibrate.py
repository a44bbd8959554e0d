"""Per-language quality thresholds calibrated from clean reference text (FineWeb-2's idea, ROOTS's filters).

ROOTS tuned its thresholds by hand for 13 languages; every other language runs on its `default` row,
which was tuned for none. Here each statistic is measured on lines of text known to be good (one line =
one document, the kind of text `roots lm train` takes) and each threshold is put where it keeps the
requested share of them. Pure functions: reading the corpus and writing roots.yaml are the job's
(`roots.jobs.thresholds`).

How a threshold is chosen: a document is rejected when it fails any one bound, so the rejected share is
at most the sum of the bounds' shares. With `m` calibrated bounds and a requested `keep`, each bound may
reject `(1 - keep) / m` of the reference lines (the union bound, so the whole set keeps at least `keep`
whatever the correlation between statistics). The threshold is the conformal order statistic: for a
maximum, the ceil((n + 1)(1 - t))-th smallest of the n values, for a minimum the mirror one; for lines
drawn like the reference lines, a new line fails that bound with probability at most `t`. A corpus too
small for that statistic (fewer than 1/t - 1 lines) is refused rather than calibrated on its extremes.

Which bounds are calibrated: every registered bound except the flagged-word maximum (clean text has no
flagged words, so calibration would reject the first one; the base value stays), the word-count maximum
(reference lines are short), the stop-word minimum of a language without a list, and bounds the base row
switches off on purpose (mean word length for scripts without spaces).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from roots.core.errors import UserError
from roots.core.schema import QUALITY_FILTERS, Bound
from roots.stages import normalise as norm
from roots.stages import quality

NOT_CALIBRATED = frozenset({"flagged_words_max", "number_words_max"})
"""Bounds calibration leaves at their base value (see the module docstring)."""


@dataclass(frozen=True)
class BoundResult:
    """One calibrated bound: its new value, its base value, and what it rejects of the reference lines."""

    field: str
    column: str
    side: str
    value: float
    base: float | None
    rejected: int


@dataclass(frozen=True)
class Calibration:
    lang: str
    keep: float
    lines: int
    tail: float  # the share each bound may reject: (1 - keep) / number of calibrated bounds
    bounds: tuple[BoundResult, ...]
    kept: int  # reference lines that pass every calibrated bound together
    skipped: dict[str, str] = field(default_factory=dict)  # bound field -> why it was not calibrated

    @property
    def thresholds(self) -> dict[str, Any]:
        """The values to write under `thresholds.<lang>` in roots.yaml."""
        return {b.field: int(b.value) if b.value.is_integer() and b.field.startswith("number_words")
                else b.value for b in self.bounds}


def calibrated_bounds(lang: str, base: quality.LangParams) -> tuple[list[tuple[str, Bound]], dict[str, str]]:
    """[(statistic column, bound)] to calibrate for `lang`, and {field: why not} for the others."""
    chosen: list[tuple[str, Bound]] = []
    skipped: dict[str, str] = {}
    for f in QUALITY_FILTERS:
        for bound in f.bounds:
            if bound.field in NOT_CALIBRATED:
                skipped[bound.field] = "kept at its base value"
            elif not quality.applies(f, base):
                skipped[bound.field] = f"no {f.requires} list for {lang}"
            elif getattr(base, bound.field) is None and bound.field != "stopwords_min":
                skipped[bound.field] = "off for this language"
            else:
                chosen.append((f.column, bound))
    return chosen, skipped


def measure(lines: Iterable[str], lang: str, base: quality.LangParams) -> list[dict[str, float]]:
    """The statistics of each reference line, measured as a run measures a document: normalised, ROOTS's
    word removals with `base`'s settings, then `quality.compute_stats`. Lines left empty are dropped."""
    out = []
    for line in lines:
        text = quality.modify_document(norm.normalise(line), base)
        if text.strip():
            out.append(quality.compute_stats(text, lang, base))
    return out


def order_statistic(values: Sequence[float], tail: float, side: str) -> float:
    """The conformal threshold that a new value fails with probability at most `tail` (see the module
    docstring); `values` need not be sorted. Raises UserError when there are too few values."""
    n = len(values)
    k = math.ceil((n + 1) * (1 - tail))
    if k > n:
        raise UserError(f"{n} reference lines are too few to set a threshold that rejects at most "
                        f"{tail:.2%} of them per statistic; give at least {math.ceil(1 / tail) - 1} lines, "
                        "or ask for a lower --keep.")
    ordered = sorted(values)
    return ordered[k - 1] if side == "max" else ordered[n - k]


def _rounded(value: float, bound: Bound) -> float:
    """Round outwards (a maximum up, a minimum down) so rounding never rejects the line at the boundary:
    counts to whole numbers, ratios to 6 decimals."""
    scale = 1 if bound.kind == "int" else 10 ** 6
    rounded = math.ceil(value * scale) if bound.side == "max" else math.floor(value * scale)
    return rounded / scale


def calibrate(lines: Iterable[str], lang: str, keep: float = 0.98,
              base: quality.LangParams | None = None) -> Calibration:
    """Thresholds for `lang` that keep at least `keep` of reference text like `lines` (module docstring).

    `base` supplies how statistics are measured (n-gram lengths, word removals) and the values of the
    bounds that are not calibrated; by default `lang`'s current row.
    """
    if not 0.5 <= keep < 1:
        raise UserError(f"--keep must be at least 0.5 and below 1 (the share of reference lines to keep), "
                        f"got {keep}.")
    base = base or quality.load_params(lang)
    stats = measure(lines, lang, base)
    if not stats:
        raise UserError("the reference corpus has no text left after normalisation (empty file?).")
    chosen, skipped = calibrated_bounds(lang, base)
    tail = (1 - keep) / len(chosen)
    results = []
    for column, bound in chosen:
        values = [s[column] for s in stats]
        value = _rounded(order_statistic(values, tail, bound.side), bound)
        rejected = sum((v > value) if bound.side == "max" else (v < value) for v in values)
        results.append(BoundResult(bound.field, column, bound.side, value, getattr(base, bound.field),
                                   rejected))
    kept = sum(all((s[b.column] <= b.value) if b.side == "max" else (s[b.column] >= b.value) for b in results)
               for s in stats)
    return Calibration(lang, keep, len(stats), tail, tuple(results), kept, skipped)
