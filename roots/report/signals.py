"""The report's "Signals" section of a run: each quality classifier's score histogram with the cut that
was applied (or none, when it only annotates), and the documents overlapping each evaluation set.

Drawn from the stored `signals` column of the run's (sampled) documents and the counts in stats.json, so
a steward can choose or move a cut, then apply it with `roots run --rethreshold`.
"""

from __future__ import annotations

import json

import numpy as np

from roots.report.fmt import fmt_int, fmt_num
from roots.report.markup import esc, section, table
from roots.report.runs import RunData
from roots.report.svg import svg_histogram


def section_signals(run: RunData, anchor: str) -> str:
    classifiers = run.stats.get("classifiers") or {}
    dec = run.stats.get("decontamination") or {}
    if not classifiers and not dec:
        return section(
            anchor,
            "Signals",
            '<p class="muted">No quality classifier and no evaluation set were active in this run.</p>',
        )
    docs = run.docs
    parsed = [json.loads(s) if s else {} for s in docs.strings["signals"]]
    parts = []
    for name, c in sorted(classifiers.items()):
        rows = [i for i, sig in enumerate(parsed) if f"{name}_score" in sig]
        values = np.array([parsed[i][f"{name}_score"] for i in rows], dtype=np.float64)
        status, reason = docs.status[rows], docs.reason[rows]
        here = reason == f"classifier:{name}"
        layers = [("kept", status == "kept"), ("rej", here), ("oth", (status != "kept") & ~here)]
        cut = c.get("cut")
        marks = (
            [] if c.get("annotate_only") or cut is None else [(str(c.get("cut_kind") or "min"), float(cut))]
        )
        held = c.get("heldout") or {}
        parts.append(
            svg_histogram(
                f"{name}_score · {c.get('lang') or 'all'} · n={len(rows)}",
                values,
                layers,
                False,
                marks,
                fixed_hi=1.0,
            )
        )
        parts.append(
            f'<p class="params">{esc(name)}: '
            + esc(
                "annotate only (nothing rejected)"
                if c.get("annotate_only")
                else f"{c.get('cut_kind')} {fmt_num(cut)}"
                if cut is not None
                else "no cut"
            )
            + esc(
                f"; {fmt_int(c.get('scored'))} scored, {fmt_int(c.get('rejected'))} rejected; "
                f"held-out precision {held.get('precision')}, recall {held.get('recall')}"
            )
            + "</p>"
        )
    if dec:
        rows_t = [
            (name, fmt_int(v.get("documents_overlapping")), fmt_int(v.get("documents_removed")))
            for name, v in sorted((dec.get("per_set") or {}).items())
        ]
        parts.append(
            "<h4>Evaluation sets</h4>"
            + table(("set", "documents overlapping", "removed"), rows_t, numeric=(1, 2))
        )
    return section(anchor, "Signals", "".join(parts))
