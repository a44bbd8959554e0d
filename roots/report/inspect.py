"""`roots inspect`: the first documents of a run matching a reason and a language, shown in the terminal
with their status, statistics against the thresholds and the start of their text.

Documents are hostile input here too: `terminal_safe` shows control and format characters as escapes so a
document cannot drive the operator's terminal. It streams the run and holds only the `n` documents it
shows.
"""

from __future__ import annotations

import json
import math
import textwrap
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from roots.core.errors import UserError
from roots.report.fmt import fmt_int, fmt_num
from roots.report.metrics import METRICS
from roots.report.runs import Docs, RunData, Smallest, doc_batches, fetch_texts, to_docs
from roots.stages import quality

INSPECT_CHARS = 300

_INVISIBLE = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs"}


def terminal_safe(text: str) -> str:
    """Text for a terminal: control and format characters (ANSI escapes, bidi overrides, zero-width
    characters) shown as `\\x..`/`\\u....` escapes, so a document cannot move the cursor or reorder what
    the operator reads. Newlines become a visible `⏎`."""
    out = []
    for ch in text:
        if ch == "\n":
            out.append("⏎ ")
        elif unicodedata.category(ch) in _INVISIBLE:
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def _stat_line(docs: Docs, i: int, params: quality.LangParams | None, manifest: Mapping[str, Any]) -> str:
    items = []
    for metric in METRICS:
        value = docs.numbers[metric.column][i]
        if math.isnan(value):
            continue
        bounds = metric.marks(params, manifest)
        flag = any((k.startswith("min") and value < v) or (not k.startswith("min") and value > v)
                   for k, v in bounds)
        shown = f"{metric.column}={fmt_num(value)}"
        if bounds:
            shown += " (" + ", ".join(f"{k} {fmt_num(v)}" for k, v in bounds) + ")" + (" !" if flag else "")
        items.append(shown)
    return "; ".join(items) or "not scored (removed before the quality stage)"


def signals_line(raw: str | None, stats: Mapping[str, Any]) -> str:
    """A row's classifier scores against the cut the run applied (`!` below it, `annotate only` when the
    classifier rejects nothing) and the evaluation sets it overlaps."""
    data = json.loads(raw) if raw else {}
    items = []
    for name, entry in sorted((stats.get("classifiers") or {}).items()):
        score = data.get(f"{name}_score")
        if score is None:
            continue
        cut = entry.get("cut")
        shown = f"{name}_score={fmt_num(score)}"
        if entry.get("annotate_only"):
            shown += " (annotate only)"
        elif cut is not None:
            shown += f" (min {fmt_num(cut)})" + (" !" if score < cut else "")
        items.append(shown)
    for name, ngram in sorted((data.get("contamination") or {}).items()):
        items.append(f"overlaps evaluation set {name}: \"{terminal_safe(ngram)}\"")
    return "; ".join(items) or "none"


def _match(batch: pa.Table, reason: str | None, lang: str | None) -> pa.ChunkedArray | pa.Array:
    """Rows of `batch` with `reason` (or kept, for `kept`) and `lang`; a filter left out matches all."""
    mask: Any = pa.array(np.ones(batch.num_rows, dtype=bool))
    if reason == "kept":
        mask = pc.and_(mask, pc.equal(batch.column("status"), "kept"))
    elif reason:
        mask = pc.and_(mask, pc.fill_null(pc.equal(batch.column("reason"), reason), False))
    if lang:
        mask = pc.and_(mask, pc.fill_null(pc.equal(batch.column("lang"), lang), False))
    return mask


def inspect_rows(run_dir: Path, reason: str | None = None, lang: str | None = None, n: int = 5) -> str:
    """Terminal view of the first `n` documents by id matching `reason` (a rejection reason, or `kept`) and
    `lang`, with status, detail, statistics against their thresholds and the start of the text.

    Deterministic (first by id) so two people looking at the same run see the same documents. A reason or
    language that never occurs in the run is a UserError listing the ones that do (it is usually a typo).
    """
    run = RunData.load(Path(run_dir))
    reasons_seen: set[str] = set()
    langs_seen: set[str] = set()
    matched, first = 0, Smallest(max(0, n), ["id", "status"])  # the first n by id
    for batch in doc_batches(run.dir):  # streamed: memory follows `n`, not the run
        reasons_seen.update(str(r) for r in pc.unique(batch.column("reason")).to_pylist() if r)
        langs_seen.update(str(x) for x in pc.unique(batch.column("lang")).to_pylist() if x)
        hit = _match(batch, reason, lang)
        matched += int(pc.sum(pc.cast(hit, pa.int64())).as_py() or 0)
        first.add(batch.filter(hit))
    reasons, langs = sorted(reasons_seen), sorted(langs_seen)
    if reason and reason != "kept" and reason not in reasons:
        raise UserError(f"no document in {run.name} was rejected with reason {reason!r}; "
                        f"reasons in this run: {', '.join(reasons) or 'none'} (or `kept`).")
    if lang and lang not in langs:
        raise UserError(f"no document in {run.name} has language {lang!r}; languages: {', '.join(langs)}.")
    docs = to_docs(first.table())
    picked = list(range(len(docs)))
    texts = fetch_texts(run.dir, [str(docs.ids[i]) for i in picked])
    what = ", ".join(f"{k}={v}" for k, v in (("reason", reason), ("lang", lang)) if v) or "all documents"
    lines = [f"{run.name}: {matched} document(s) match {what}; showing the first {len(picked)} by id", ""]
    for i in picked:
        lines.extend(_inspect_block(run, docs, i, texts))
    return "\n".join(lines).rstrip() + "\n"


def _inspect_block(run: RunData, docs: Docs, i: int, texts: Mapping[str, str]) -> list[str]:
    doc_lang = str(docs.strings["lang"][i] or "und")
    status = str(docs.status[i]) + (f": {docs.reason[i]} ({docs.detail[i]})" if docs.reason[i] else "")
    pred = docs.strings["lang_predicted"][i]
    lid = (f"predicted {pred} score {fmt_num(docs.numbers['lang_score'][i])} "
           f"via {docs.strings['lang_backend'][i]}"
           if pred else f"via {docs.strings['lang_backend'][i] or 'none'}")
    text = texts.get(str(docs.ids[i]), "")
    shown = terminal_safe(text[:INSPECT_CHARS]) + ("…" if len(text) > INSPECT_CHARS else "")
    wrap = textwrap.TextWrapper(width=110, initial_indent="  ", subsequent_indent="  ")
    return ["-" * 110,
            f"id      {terminal_safe(str(docs.ids[i]))}",
            f"status  {terminal_safe(status)}",
            (f"lang    {terminal_safe(doc_lang)} ({terminal_safe(lid)}); "
             f"{fmt_int(docs.numbers['n_chars'][i])} chars"),
            *textwrap.wrap("stats   " + _stat_line(docs, i, run.params(doc_lang), run.manifest), width=110,
                           subsequent_indent=" " * 8),
            *textwrap.wrap("signals " + signals_line(docs.strings["signals"][i], run.stats), width=110,
                           subsequent_indent=" " * 8),
            "text", *(wrap.wrap(shown) or ["  (empty)"]), ""]
