"""How many verdicts each deviation from ROOTS changes on the bundled UDHR sample (README, "Deviations").

    .venv/bin/python -m tests.bench.deviations

Each deviation is switched back to ROOTS's behaviour by its setting, and the sample is processed with it
on and off; a verdict is a document's outcome (kept, or the reason it was rejected), and the count is the
documents whose verdict differs. Two ways of running the sample:

- `multi`: the 8,794 paragraphs as the bundled `udhr` source runs them (language ID assigns the
  language; the card's thresholds);
- `declared`: the paragraphs of ROOTS's 13 languages (by the sample's own language tag), each language
  run as a source that declares it, which is how ROOTS ran its OSCAR languages; the language-ID settings
  only act there.

Settings that add strictness of our own (`special_characters_script_punctuation`, `lid_paragraphs`) are
measured by switching them on. Runs the real stages (fastText, CLD3), no KenLM model: about 3 minutes.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from roots.stages import quality
from roots.stages.process import DocumentProcessor, ProcessConfig

REPO = Path(__file__).resolve().parents[2]
UDHR = REPO / "sources" / "samples" / "udhr" / "udhr.jsonl"

# (what, setting that reverts or enables it, its value)
DEVIATIONS: list[tuple[str, dict[str, Any]]] = [
    ("special characters: ROOTS's exact set (with its letters and vowel signs)",
     {"special_characters_roots_compat": True}),
    ("special characters: + script sentence punctuation (opt-in, stricter)",
     {"special_characters_script_punctuation": True}),
    ("stop words: ROOTS's default 0.10 for languages outside its 13", {"stopwords_min": 0.10}),
    ("character repetition: ROOTS's 2022 formula", {"char_repetition_roots_compat": True}),
    ("words of unspaced scripts: whitespace split, as ROOTS", {"split_unspaced_scripts": False}),
    ("mean word length filter (Gopher, not ROOTS) off",
     {"mean_word_length_min": None, "mean_word_length_max": None}),
    ("language ID: low score rejects a declared language (ROOTS)", {"lid_strict_declared": True}),
    ("language ID after ROOTS's word removals (ROOTS's order)", {"lid_after_word_removal": True}),
    ("language ID per paragraph (opt-in)", {"lid_paragraphs": True}),
]

# Deviations switched by roots.yaml rather than per-language thresholds: (what, ProcessConfig fields)
CONFIG_DEVIATIONS: list[tuple[str, dict[str, Any]]] = [
    ("no Unicode repair or composition (ftfy, NFC), as ROOTS", {"normalise_unicode": False}),
    ("language ID by fastText alone (no CLD3 routing), as ROOTS", {"langid_routing": "FASTTEXT_ONLY"}),
]
FASTTEXT_ONLY = "order: [fasttext]\nbackends:\n  fasttext: {kind: fasttext, default_threshold: lid_min}\n"


def _records() -> list[dict[str, Any]]:
    with UDHR.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _card_thresholds() -> dict[str, dict[str, Any]]:
    card = yaml.safe_load((REPO / "sources" / "udhr.yaml").read_text(encoding="utf-8"))
    return {k: dict(v) for k, v in card["recipe"]["thresholds"].items()}


def _with(thresholds: Mapping[str, Mapping[str, Any]], setting: Mapping[str, Any],
          langs: set[str]) -> dict[str, dict[str, Any]]:
    """The card's thresholds plus `setting` for every language. A stop-word minimum is added only where
    the table has none (languages outside ROOTS's 13), so ROOTS's own rows keep their values."""
    out = {k: dict(v) for k, v in thresholds.items()}
    if "stopwords_min" in setting:
        for lang in langs:
            if quality.load_params(lang).stopwords_min is None:
                out.setdefault(lang, {}).update(setting)
        return out
    for lang in {*langs, "default"}:
        out.setdefault(lang, {}).update(setting)
    return out


LANGS_SEEN: set[str] = set()  # every language a run assigned, so per-language settings reach them all


def _verdicts(groups: list[tuple[tuple[str, ...], list[dict[str, Any]]]],
              thresholds: Mapping[str, Mapping[str, Any]], **cfg: Any) -> dict[str, str]:
    out = {}
    for declared, records in groups:
        processor = DocumentProcessor(ProcessConfig(source="udhr", declared=declared, thresholds=thresholds,
                                                    skip=frozenset({"perplexity", "pii"}), **cfg))
        rows = processor.process([{"id": r["id"], "text": r["text"]} for r in records])
        out.update({row["id"]: row["reason"] or "kept" for row in rows})
        LANGS_SEEN.update(row["lang"] for row in rows)
    return out


def measure() -> list[dict[str, Any]]:
    records = _records()
    multi = [((), records)]
    roots13 = [((lang,), [r for r in records if r["lang"] == lang]) for lang in quality.ROOTS_LANGUAGES]
    roots13 = [(d, rs) for d, rs in roots13 if rs]
    langs = {r["lang"] for r in records} | set(quality.known_languages())
    base = _card_thresholds()
    rows = []
    baseline = {"multi": _verdicts(multi, base), "declared": _verdicts(roots13, base)}
    langs |= LANGS_SEEN
    routing = Path(tempfile.mkdtemp()) / "fasttext_only.yaml"
    routing.write_text(FASTTEXT_ONLY, encoding="utf-8")
    cases = [(what, setting, {}) for what, setting in DEVIATIONS]
    for what, fields in CONFIG_DEVIATIONS:
        fields = {k: str(routing) if v == "FASTTEXT_ONLY" else v for k, v in fields.items()}
        shown = ({"normalise.unicode": False} if "normalise_unicode" in fields
                 else {"langid.routing": "fastText only"})
        cases.append((what, shown, fields))
    for what, setting, fields in cases:
        row: dict[str, Any] = {"deviation": what, "setting": setting}
        for name, groups in (("multi", multi), ("declared", roots13)):
            if fields:
                after = _verdicts(groups, base, **fields)
            else:
                after = _verdicts(groups, _with(base, setting, langs))
            before = baseline[name]
            changed = [i for i in before if before[i] != after[i]]
            newly_kept = sum(after[i] == "kept" for i in changed)
            row[name] = {"documents": len(before), "changed": len(changed), "kept_by_setting": newly_kept,
                         "rejected_by_setting": sum(before[i] == "kept" for i in changed)}
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [("| deviation | setting | multi: verdicts changed (kept / rejected by the setting) "
             "| declared ROOTS-13: changed (kept / rejected) |"), "|---|---|---|---|"]
    for row in rows:
        setting = ", ".join(f"`{k}: {json.dumps(v)}`" for k, v in row["setting"].items())
        cells = [f"{row[n]['changed']} ({row[n]['kept_by_setting']} / {row[n]['rejected_by_setting']})"
                 for n in ("multi", "declared")]
        lines.append(f"| {row['deviation']} | {setting} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    result = measure()
    print(markdown(result))
