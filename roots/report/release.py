"""The release section of the report page: sources included (with clearance basis) and excluded, languages
and token counts, and tokenizer fertility on the held-out split, all read from the release manifest.

Separate from the run sections so it works on a release directory with or without the runs that fed it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from roots.release.parts import group_of
from roots.report.fmt import fmt_bytes, fmt_int
from roots.report.markup import Raw, esc, section, table
from roots.report.runs import clearance_text, manifest_entries, takedowns_text
from roots.report.svg import Bar, svg_bars


def section_release(manifest: Mapping[str, Any]) -> str:
    """The release manifest: sources included (with clearance basis), excluded (and why), languages and
    token counts. Separate from the run sections so it works on a release directory with or without the
    runs that fed it."""
    included = manifest_entries(manifest.get("sources", manifest.get("included")))
    excluded = manifest_entries(manifest.get("excluded"))
    inc_rows = [(e.get("name"), e.get("license", "?"), clearance_text(e),
                 e.get("cleared_for") or "not recorded", fmt_int(e.get("documents")),
                 fmt_int(e.get("tokens"))) for e in included]
    exc_rows = [(e.get("name"), e.get("reason", "not recorded")) for e in excluded]
    langs = manifest.get("languages") or {}
    lang_items = sorted(((str(k), v if isinstance(v, Mapping) else {"tokens": v}) for k, v in langs.items()),
                        key=lambda kv: (-(kv[1].get("tokens") or kv[1].get("documents") or 0), kv[0]))
    lang_rows = [(k, fmt_int(v.get("documents")), fmt_int(v.get("tokens")), fmt_bytes(v.get("bytes")))
                 for k, v in lang_items]
    bars = [Bar(k, ((0, float(v.get("tokens") or 0), "kept"),), fmt_int(v.get("tokens")))
            for k, v in lang_items if v.get("tokens")]
    body = (f"<p>Release {esc(manifest.get('name', ''))} created {esc(manifest.get('created', 'unknown'))}; "
            f"takedowns applied: {esc(takedowns_text(manifest))}.</p>"
            "<h4>Sources included</h4>"
            + table(("source", "licence", "clearance basis", "cleared for", "documents", "tokens"), inc_rows,
                    numeric=(4, 5))
            + "<h4>Sources excluded</h4>" + table(("source", "why"), exc_rows)
            + "<h4>Languages</h4>"
            + table(("language", "documents", "tokens", "bytes"), lang_rows, numeric=(1, 2, 3))
            + (svg_bars("Tokens per language", bars) if bars else "")
            + decontamination_table(manifest)
            + section_fertility(manifest))
    return section("release", "Release", body, level=2)


def decontamination_table(manifest: Mapping[str, Any]) -> str:
    """Per evaluation set: the sources whose run checked it, those checked at merge, documents removed."""
    per_set = (manifest.get("decontamination") or {}).get("per_set") or {}
    if not per_set:
        return ""
    rows = [(name, ", ".join(v.get("checked_in_runs") or []) or "–",
             ", ".join(v.get("checked_at_merge") or []) or "–", fmt_int(v.get("documents_removed_in_runs")),
             fmt_int(v.get("documents_removed_at_merge"))) for name, v in sorted(per_set.items())]
    return "<h4>Decontamination</h4>" + table(("evaluation set", "checked in runs of", "checked at merge for",
                                                "removed in runs", "removed at merge"), rows, numeric=(3, 4))


FERTILITY_FLAG = 1.5  # tokens/word this many times the median of its word unit, or more, is drawn red


def _fertility_flags(items: Sequence[tuple[str, Mapping[str, Any]]]) -> tuple[set[str], dict[str, float]]:
    """(languages to flag, median tokens/word per word unit). Each word unit is judged on its own: tokens
    per character-word are lower by construction, so against one shared median a poorly served zh or th
    would never stand out, and every whitespace language would look worse than it is."""
    by_unit: dict[str, list[tuple[str, float]]] = {}
    for lang, v in items:
        if v.get("tokens_per_word"):
            by_unit.setdefault(str(v.get("word_unit", "?")), []).append((lang, float(v["tokens_per_word"])))
    flagged: set[str] = set()
    medians: dict[str, float] = {}
    for unit, values in by_unit.items():
        medians[unit] = float(np.median([r for _, r in values]))
        worst = max(r for _, r in values)
        flagged |= {lang for lang, r in values if r >= worst or r >= FERTILITY_FLAG * medians[unit]}
    return flagged, medians


def section_fertility(manifest: Mapping[str, Any]) -> str:
    """Tokens per word and per character of each language on the held-out split (`manifest["fertility"]`,
    written by `roots.release.fertility` at merge), worst first within each word unit, so a steward sees which
    languages the vocabulary serves poorly: a language cut into more pieces per word costs more compute per
    word and gets a shorter effective context. Red: the worst language of each word unit and any at
    `FERTILITY_FLAG` times its unit's median or more. Languages with no held-out document are listed as not
    measured rather than silently left out."""
    data = manifest.get("fertility")
    intro = ("<p>Tokens per word and per character on the held-out (validation) text, which the tokenizer "
             "was not trained on; BLOOM's paper compared tokenizers this way (fertility). Tokens exclude the "
             "end-of-document token. Words are whitespace-separated, except for languages written without "
             "spaces (zh, ja, th, …), where each character of that script is a word; the two units are not "
             "directly comparable, so each is ranked and judged on its own.</p>")
    if not isinstance(data, Mapping):
        return section("release-fertility", "Tokenizer fertility",
                       '<p class="muted">Not recorded in this manifest (built before fertility was '
                       "measured); rebuild the release to measure it.</p>", level=4)
    items = [(str(k), v) for k, v in data.items() if isinstance(v, Mapping)]
    unit_order = {"whitespace": 0, "character": 1}
    items.sort(key=lambda kv: (unit_order.get(str(kv[1].get("word_unit")), 2), str(kv[1].get("word_unit")),
                               -(kv[1].get("tokens_per_word") or 0.0), kv[0]))
    flagged, medians = _fertility_flags(items)
    rows = [(Raw(f'<span class="warn">{esc(k)}</span>') if k in flagged else k,
             v.get("word_unit", "?"), fmt_int(v.get("documents")), fmt_int(v.get("words")),
             fmt_int(v.get("chars")), fmt_int(v.get("tokens")), _ratio_text(v.get("tokens_per_word")),
             _ratio_text(v.get("tokens_per_char"), 3))
            for k, v in items]
    bars = [Bar(k, ((0, float(v["tokens_per_word"]), "rej" if k in flagged else "kept"),),
                f"{float(v['tokens_per_word']):.2f}"
                + (" (character words)" if v.get("word_unit") == "character" else ""))
            for k, v in items if v.get("tokens_per_word")]
    langs = manifest.get("languages")
    # manifest languages are shard groups (all code is `code`); fertility is keyed by document language
    measured = {group_of(str(k)) for k in data}
    missing = sorted(str(k) for k in langs if str(k) not in measured) if isinstance(langs, Mapping) else []
    body = intro
    if medians:
        stated = "; ".join(f"{esc(unit)} words {esc(_ratio_text(m))}" for unit, m in
                           sorted(medians.items(), key=lambda um: (unit_order.get(um[0], 2), um[0])))
        body += (f"<p>{len(items)} language(s) measured. Median tokens per word: {stated}. "
                 f'<span class="sw rej"></span> red: the worst language of each word unit and any at '
                 f"{FERTILITY_FLAG:g}× its unit's median or more.</p>")
    body += table(("language", "word unit", "held-out documents", "words", "characters", "tokens",
                   "tokens / word", "tokens / character"), rows, numeric=(2, 3, 4, 5, 6, 7))
    if bars:
        body += svg_bars("Tokens per word on held-out text (worst first, by word unit)", bars)
    if missing:
        body += (f'<p class="muted">Not measured (no held-out document): {esc(", ".join(missing))}.</p>')
    return section("release-fertility", "Tokenizer fertility", body, level=4)


def _ratio_text(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{float(value):.{digits}f}"
