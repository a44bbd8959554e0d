"""Hugging Face dataset cards for a source run (`runs/<source>/README.md`) and for a release.

A card is where a user of the data learns what was done to it, so it lists the exact steps and thresholds
the run applied, read back from the run's own manifest and stats (not from today's configuration, which
may have changed since), like the released ROOTS per-source datasets did under "BigScience processing
steps / Filters applied to: {lang}". The YAML header uses the Hugging Face metadata keys so the Hub
shows licence, languages and size correctly.

Rendering is pure (`render_*` take dicts and return text) and deterministic; the `write_*` functions only
read inputs and write the file atomically.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from roots.core.errors import UserError
from roots.core.schema import QUALITY_FILTERS, stage_of
from roots.core.yamlio import atomic_write_text
from roots.report.fmt import fmt_bytes, fmt_num, pct
from roots.report.metrics import lang_params, ppl_limit, threshold_origin, threshold_text
from roots.report.runs import (
    RunData,
    clearance_text,
    dedup_settings,
    dedup_status,
    kept_bytes_by_lang,
    manifest_entries,
    takedowns_text,
)
from roots.stages import quality

CARD_NAME = "README.md"

# Licence ids the Hub accepts in `license:` (hub-docs "Licenses"); anything else becomes `other`.
HF_LICENSES = frozenset([
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m",
    "bigscience-bloom-rail-1.0", "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd",
    "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5",
    "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0",
    "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0",
    "cc-by-nc-sa-4.0", "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0",
    "epl-1.0", "epl-2.0", "etalab-2.0", "eupl-1.1", "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0",
    "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0", "isc", "lppl-1.3c", "ms-pl", "mpl-2.0", "odc-by", "odbl",
    "openrail++", "osl-3.0", "postgresql", "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr",
    "unknown", "other",
])
# SPDX spellings whose Hub id differs by more than case.
_SPDX_ALIASES = {"pddl-1.0": "pddl", "odc-by-1.0": "odc-by", "odbl-1.0": "odbl", "gfdl-1.3": "gfdl",
                 "gfdl-1.2": "gfdl", "0bsd": "bsd", "apache-2": "apache-2.0", "cc0": "cc0-1.0"}
SIZE_CATEGORIES = ((10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"),
                   (10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B"), (10**10, "1B<n<10B"),
                   (10**11, "10B<n<100B"), (10**12, "100B<n<1T"))


# ============================================================================================ metadata
def hf_license(spdx: str) -> str:
    """The Hub's licence id for an SPDX id: lower case, `-only`/`-or-later` dropped, a few renames, and
    `other` for anything the Hub does not list (LicenseRef-*, public-domain, custom terms)."""
    key = re.sub(r"-(only|or-later)$", "", str(spdx).strip().lower())
    key = _SPDX_ALIASES.get(key, key)
    return key if key in HF_LICENSES else "other"


def size_category(n: int) -> str:
    """The Hub's `size_categories` bucket for a number of examples (documents)."""
    for bound, name in SIZE_CATEGORIES:
        if n < bound:
            return name
    return "n>1T"


def _license_fields(spdx: str, homepage: str | None) -> dict[str, Any]:
    """`license:` plus, for `other`, the `license_name`/`license_link` the Hub asks for."""
    hf = hf_license(spdx)
    fields: dict[str, Any] = {"license": hf}
    if hf == "other":
        fields["license_name"] = re.sub(r"[^a-z0-9]+", "-", str(spdx).lower()).strip("-") or "custom"
        if homepage:
            fields["license_link"] = homepage
    return fields


def _front_matter(meta: Mapping[str, Any]) -> str:
    """YAML header between `---` lines; safe_dump quotes what YAML 1.1 would misread (`no`, `on`)."""
    return "---\n" + yaml.safe_dump(dict(meta), sort_keys=False, allow_unicode=True, default_flow_style=False,
                                    width=1000) + "---\n"


def md_cell(value: Any) -> str:
    """A Markdown table cell: pipes and newlines would break the table."""
    return str("" if value is None else value).replace("|", "\\|").replace("\n", " ")


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _int(n: Any) -> str:
    return "–" if n is None else f"{int(n):,}"


# ============================================================================================ source card
def seen_languages(stats: Mapping[str, Any], card: Mapping[str, Any]) -> list[str]:
    """Languages with kept documents (what the dataset holds); the card's declared ones if nothing was
    kept."""
    langs = sorted(k for k, v in (stats.get("languages") or {}).items() if v.get("kept") and k != "und")
    return langs or [str(x) for x in card.get("languages") or [] if x not in ("multi", "und")]


def _custodian_text(card: Mapping[str, Any]) -> str:
    cust = card.get("custodian") or {}
    if not isinstance(cust, Mapping):
        return str(cust)
    parts = [str(cust.get("name", "unknown"))]
    parts += [f"({cust['type']})"] if cust.get("type") else []
    parts += [f"contact: {cust['contact']}"] if cust.get("contact") else []
    return " ".join(parts)


def _ppl_status(stats: Mapping[str, Any], langs: Sequence[str]) -> dict[str, list[str]]:
    """Languages per perplexity outcome, from the run's own counters (`scored`, `no_model`, `skipped`)."""
    out: dict[str, list[str]] = {}
    for lang in langs:
        counts = ((stats.get("languages") or {}).get(lang) or {}).get("perplexity") or {}
        status = next((s for s in ("scored", "no_model", "skipped") if counts.get(s)), "not_reached")
        out.setdefault(status, []).append(lang)
    return out


def _step_langid(cfg: Mapping[str, Any], versions: Mapping[str, Any], skip: Sequence[str]) -> str:
    model = cfg.get("langid_model") or "?"
    sha = (versions.get("langid_model") or {}).get("sha256")
    declared = list(cfg.get("declared") or [])
    what = (f"declared language(s) {', '.join(declared)}: a document predicted as another language is "
            "rejected (`language`), as is one predicted as a declared language below its minimum score "
            "`lid_min`"
            if declared else "the prediction assigns each document's language (multilingual source); a "
            "prediction below the language's `lid_min` is rejected (`language`)")
    skipped = " **Skipped in this run.**" if "langid" in skip else ""
    return f"**Language identification** with fastText `{model}`" + (f" (sha256 `{sha}`)" if sha else "") + \
        f": {what}.{skipped}"


def _step_perplexity(stats: Mapping[str, Any], langs: Sequence[str], skip: Sequence[str]) -> str:
    if "perplexity" in skip:
        return "**Perplexity**: skipped in this run."
    status = _ppl_status(stats, langs)
    parts = []
    if status.get("scored"):
        parts.append("scored with a per-language KenLM model and capped (`ppl_max` or `ppl_percentile`, "
                     f"table below) for {', '.join(status['scored'])}")
    if status.get("no_model"):
        parts.append(f"no model, so not filtered by perplexity, for {', '.join(status['no_model'])}")
    return "**Perplexity** (cc_net / ROOTS): " + ("; ".join(parts) or "no document reached this stage") + "."


def _step_dedup(stats: Mapping[str, Any], manifest: Mapping[str, Any]) -> str:
    dups = {r: n for r, n in (stats.get("reasons") or {}).items() if r.startswith("duplicate")}
    settings = dedup_settings(manifest)
    shown = (" with " + ", ".join(f"`{k}={v}`" for k, v in sorted(settings.items()))) if settings else ""
    if dups:
        return (f"**Deduplication**{shown} (exact hash of the normalised text and MinHash near-duplicates; "
                "one document per cluster is kept): "
                + ", ".join(f"`{r}` {n:,}" for r, n in sorted(dups.items())) + " removed.")
    return f"**Deduplication**: {dedup_status(manifest, stats)}."


def processing_steps(stats: Mapping[str, Any], manifest: Mapping[str, Any]) -> list[str]:
    """The steps the run applied, in pipeline order, each with its exact settings from the manifest."""
    cfg = manifest.get("config") or {}
    skip = list(cfg.get("skip") or [])
    reader = manifest.get("reader") or {}
    files = (manifest.get("input") or {}).get("files") or []
    docs = stats.get("documents") or {}
    ops = list(cfg.get("recipe") or [])
    tags = list(cfg.get("pii_tags") or [])
    langs = sorted(stats.get("languages") or {})
    pii = stats.get("pii_replacements") or {}
    read = (f"**Read** {len(files)} `{reader.get('fmt', '?')}` file(s) (input fingerprint "
            f"`{(manifest.get('input') or {}).get('fingerprint', '?')}`); {_int(docs.get('quarantined'))} "
            "record(s) that could not be read as documents were quarantined.")
    if cfg.get("code"):
        return code_steps(read, stats, manifest, ops, skip, pii)
    return [
        (f"**Read** {len(files)} `{reader.get('fmt', '?')}` file(s) (input fingerprint "
        f"`{(manifest.get('input') or {}).get('fingerprint', '?')}`); {_int(docs.get('quarantined'))} "
        "record(s) that could not be read as documents were quarantined."),
        f"**Length cap**: documents over {_int(cfg.get('max_chars'))} characters are rejected (`too_long`).",
        "**Catalogue operations** (ROOTS `clean.py` names), in order: "
        + (", ".join(f"`{op}`" for op in ops) if ops else "none") + ".",
        "**Normalisation**: ftfy mojibake repair, Unicode NFC, uniform whitespace (ROOTS steps 1-2).",
        _step_langid(cfg, manifest.get("versions") or {}, skip),
        "**Word removals** before scoring (ROOTS `ModifyingDocuments`): words containing URL or markup "
        "fragments and over-long words, where the language's row enables them (table below)."
        + (" **Skipped in this run.**" if "modify" in skip else ""),
        "**Quality filters** in ROOTS order, the first failure naming the reason: word count, character "
        "repetition, word repetition, special characters, stop words, flagged words (thresholds below)."
        + (" **Skipped in this run.**" if "quality" in skip else ""),
        _step_perplexity(stats, langs, skip),
        *signal_steps(stats, cfg),
        ("**PII scrubbing** (ROOTS tags, replaced by `PI:<TAG>`): "
         + ", ".join(f"`{t}` {pii.get(t, 0):,}" for t in tags) + " replacements."
         if tags and "pii" not in skip else "**PII scrubbing**: not applied."),
        _step_dedup(stats, manifest),
    ]


def signal_steps(stats: Mapping[str, Any], cfg: Mapping[str, Any]) -> list[str]:
    """The quality classifiers (held-out precision/recall, the cut, what they removed) and the evaluation
    sets checked (documents overlapping and removed), when the run had any; and the annotate-only stages."""
    steps = []
    for name, c in sorted((stats.get("classifiers") or {}).items()):
        held = c.get("heldout") or {}
        cut = ("annotate only: scores stored, nothing rejected" if c.get("annotate_only")
               else f"{c.get('cut_kind')} {fmt_num(c.get('cut'))}" if c.get("cut") is not None
               else "no cut")
        steps.append(f"**Quality classifier `{name}`** (fastText, reason `classifier:{name}`) on "
                     f"{c.get('lang') or 'every language'}: {cut}; {_int(c.get('scored'))} scored, "
                     f"{_int(c.get('rejected'))} rejected. Held-out precision {held.get('precision')}, "
                     f"recall {held.get('recall')} at score 0.5.")
    dec = stats.get("decontamination") or {}
    if dec:
        rows = ", ".join(f"`{n}` {_int(v.get('documents_overlapping'))} overlapping / "
                         f"{_int(v.get('documents_removed'))} removed"
                         for n, v in sorted(dec["per_set"].items()))
        ns = sorted({int(s["n"]) for s in dec.get("sets") or []})
        steps.append(f"**Decontamination** ({'/'.join(map(str, ns))}-gram overlap with registered evaluation "
                     f"sets, reason `contaminated`{'; annotate only' if dec.get('annotate_only') else ''}): "
                     f"{rows}.")
    annotate = sorted(cfg.get("annotate_only") or [])
    if annotate:
        steps.append("**Annotate only** (score stored, nothing rejected): "
                     + ", ".join(f"`{a}`" for a in annotate) + ".")
    return steps


def release_decontamination(manifest: Mapping[str, Any]) -> str:
    """The release card's decontamination section: per evaluation set, where it was checked and what it
    removed (in the source runs and at merge)."""
    per_set = ((manifest.get("decontamination") or {}).get("per_set")) or {}
    if not per_set:
        return ""
    rows = [(f"`{n}`", v.get("n"), ", ".join(v.get("checked_in_runs") or []) or "–",
             ", ".join(v.get("checked_at_merge") or []) or "–", _int(v.get("documents_removed_in_runs")),
             _int(v.get("documents_removed_at_merge"))) for n, v in sorted(per_set.items())]
    return ("\n## Decontamination\n\nDocuments sharing an n-gram with a registered evaluation set are "
            "removed; sets registered after a source's run are checked at merge.\n\n"
            + md_table(("set", "n", "checked in runs of", "checked at merge for", "removed in runs",
                        "removed at merge"), rows))


def code_steps(read: str, stats: Mapping[str, Any], manifest: Mapping[str, Any], ops: Sequence[str],
               skip: Sequence[str], pii: Mapping[str, int]) -> list[str]:
    """A code source's steps (ROOTS's GitHub branch): no natural-language stages, code filters, secrets."""
    reasons = stats.get("reasons") or {}
    code_reasons = ", ".join(f"`{r}` {n:,}" for r, n in sorted(reasons.items())
                             if r.startswith("code_")) or "none"
    return [
        read,
        "**Catalogue operations**, in order: "
        + (", ".join(f"`{op}`" for op in ops) if ops else "none") + ".",
        ("**Programming language** from the file extension (`roots/data/code_languages.yaml`); `lang` is "
         "`code-<language>`. No normalisation, language ID, word removal, stop-word, flagged-word or "
         "perplexity filter runs on code."),
        ("**Code filters** per language (binary, size, unknown extension, licence, auto-generated markers, "
         "maximum and mean line length, alphanumeric fraction, token-length spread); "
         f"removals: {code_reasons}."),
        ("**Secrets** replaced (`PI:PRIVATE_KEY`, `PI:PASSWORD`, `PI:KEY`) and e-mail addresses scrubbed: "
         + (", ".join(f"`{t}` {n:,}" for t, n in sorted(pii.items())) or "no replacements") + "."
         if "pii" not in skip else "**Secrets scrubbing**: not applied."),
        _step_dedup(stats, manifest),
    ]


def _ppl_cell(lang: str, stats: Mapping[str, Any], manifest: Mapping[str, Any], p: quality.LangParams) -> str:
    """The perplexity cap, or why there was none: a cap without a model filters nothing."""
    status = next(iter(_ppl_status(stats, [lang])))
    if status in ("no_model", "skipped"):
        return "no model (off)" if status == "no_model" else "skipped"
    ppl_value, ppl_kind = ppl_limit(manifest, p)
    return f"{ppl_kind} {fmt_num(ppl_value)}"


def _threshold_row(lang: str, stats: Mapping[str, Any], manifest: Mapping[str, Any]) -> list[str]:
    p = lang_params(manifest, lang)
    origin = threshold_origin(manifest, lang)
    if p is None:
        return [lang, origin, "invalid overrides", *["" for _ in range(len(QUALITY_FILTERS) + 3)]]
    cells = [threshold_text(f, p, span="–") for f in QUALITY_FILTERS]
    return [lang, origin, fmt_num(p.lid_min), *("no list (off)" if c is None else c for c in cells),
            _ppl_cell(lang, stats, manifest, p),
            f">{p.long_word_max_length} chars" if p.remove_long_words else "no",
            "yes" if p.remove_incorrect_substrings else "no"]


def code_thresholds_table(stats: Mapping[str, Any], manifest: Mapping[str, Any]) -> str:
    """The code filters' thresholds per programming language seen, with the card's overrides applied."""
    from roots.stages import code

    cfg = manifest.get("config") or {}
    table = code.load_table(cfg.get("code_languages"))
    overrides = cfg.get("thresholds") or {}
    headers = ("language", "max bytes", "chars min–max", "max line length", "mean line length max",
               "alphanumeric min", "token-length std min", "auto-generated markers (first lines)")
    rows = []
    for lang in sorted(stats.get("languages") or {}):
        merged = {**(overrides.get(code.UNKNOWN_LANG) or {}), **(overrides.get(lang) or {})}
        p = table.params(code.lang_key(lang) or "", merged or None)
        rows.append([lang, _int(p.max_bytes), f"{p.min_chars}–{p.max_chars}", p.max_line_length,
                     p.mean_line_length, p.alphanum_fraction_min, p.token_length_std_min,
                     f"{len(p.autogenerated_markers)} markers ({p.autogenerated_lines} lines)"])
    return md_table(headers, rows)


def thresholds_table(stats: Mapping[str, Any], manifest: Mapping[str, Any]) -> str:
    """One row per language actually seen in the run, with the thresholds it was filtered with."""
    if (manifest.get("config") or {}).get("code"):
        return code_thresholds_table(stats, manifest)
    langs = sorted(stats.get("languages") or {})
    headers = ("language", "thresholds from", "lid_min",
               *(f"{f.label} {'–'.join(b.side for b in f.bounds)}" for f in QUALITY_FILTERS),
               "perplexity", "long words removed", "URL-like words removed")
    return md_table(headers, [_threshold_row(lang, stats, manifest) for lang in langs])


def counts_section(stats: Mapping[str, Any], kept_bytes: Mapping[str, int]) -> str:
    docs = stats.get("documents") or {}
    n_in = docs.get("input") or 0
    totals = md_table(("", "documents", "% of input"),
                      [(k, _int(docs.get(k)), pct(docs.get(k) or 0, n_in))
                       for k in ("input", "kept", "rejected", "quarantined")])
    reasons = sorted((stats.get("reasons") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    per_reason = md_table(("reason", "stage", "documents", "% of input"),
                          [(f"`{r}`", stage_of(r), _int(n), pct(n, n_in)) for r, n in reasons])
    langs = stats.get("languages") or {}
    total_kept = docs.get("kept") or 0
    per_lang = md_table(
        ("language", "kept", "% of kept", "kept bytes", "rejected", "rejections by reason"),
        [(lang, _int(v.get("kept")), pct(v.get("kept") or 0, total_kept), fmt_bytes(kept_bytes.get(lang, 0)),
          _int(v.get("rejected")), ", ".join(f"{r} {n}" for r, n in sorted((v.get("reasons") or {}).items())))
         for lang, v in sorted(langs.items(), key=lambda kv: (-(kv[1].get("kept") or 0), kv[0]))])
    bytes_ = stats.get("bytes") or {}
    return (f"Bytes in: {fmt_bytes(bytes_.get('in'))}; "
            f"bytes out (kept text): {fmt_bytes(bytes_.get('out'))}.\n\n"
            + totals + "\n### Removed per reason\n\n" + per_reason + "\n### Per language\n\n" + per_lang)


def render_data_card(stats: Mapping[str, Any], manifest: Mapping[str, Any], card: Mapping[str, Any],
                     kept_bytes: Mapping[str, int] | None = None) -> str:
    """The card as text, from the run's stats and manifest and the source card dict (pure)."""
    name = str(card.get("name") or stats.get("source") or manifest.get("source"))
    pretty = str(card.get("pretty_name") or name)
    langs = seen_languages(stats, card)
    docs = stats.get("documents") or {}
    meta: dict[str, Any] = {"pretty_name": pretty, **_license_fields(str(card.get("license", "unknown")),
                                                                    card.get("homepage"))}
    meta.update({"language": langs, "multilinguality": "multilingual" if len(langs) > 1 else "monolingual",
                 "size_categories": [size_category(int(docs.get("kept") or 0))],
                 "task_categories": ["text-generation"], "task_ids": ["language-modeling"],
                 "configs": [{"config_name": "default", "data_files": [{"split": "train",
                                                                        "path": "kept/*.parquet"}]}]})
    lic = str(card.get("license", "unknown"))
    lic_text = f"\n\n```\n{card['license_text']}\n```" if card.get("license_text") else ""
    steps = "\n".join(f"{i}. {step}" for i, step in enumerate(processing_steps(stats, manifest), start=1))
    m = manifest
    return (_front_matter(meta)
            + f"\n# {pretty}\n\n"
            + f"- **Dataset uid**: `{name}`\n- **Homepage**: {card.get('homepage') or 'not recorded'}\n"
            + f"- **Custodian**: {_custodian_text(card)}\n- **Licence**: `{lic}`{lic_text}\n"
            + f"- **Type / category**: {card.get('type', '–')} / {card.get('category', '–')}\n"
            + f"- **PII likelihood (catalogue)**: {card.get('pii_likelihood', 'not recorded')}\n"
            + f"- **Languages**: {', '.join(langs) or 'none'} "
            f"(declared: {', '.join(map(str, card.get('languages') or []))})\n"
            + f"\n## Description\n\n{str(card.get('description') or 'No description recorded.').strip()}\n"
            + "\n## BigScience processing steps\n\n"
            + f"Filters applied to: {', '.join(langs) or 'none'}\n\n{steps}\n"
            + "\n### Thresholds per language\n\n"
            "The packaged ROOTS table row for each language seen in the run, "
            + "with this run's recipe overrides applied (`default` row for languages without their own).\n\n"
            + thresholds_table(stats, manifest)
            + "\n## Counts\n\n" + counts_section(stats, kept_bytes or {})
            + "\n## Provenance\n\n"
            + f"- Card: `{m.get('card', '?')}` (sha256 `{m.get('card_sha256', '?')}`)\n"
            + f"- Configuration hash: `{m.get('config_hash', '?')}`\n"
            + f"- roots {(m.get('versions') or {}).get('roots', '?')}; run started {m.get('started', '?')}, "
            + f"finished {m.get('finished', '?')}\n"
            + "- Columns: `kept/*.parquet` holds `id`, `text` (scrubbed), `lang`, `lang_score`, `url`, every "
            + "statistic above and `cluster`; rejected documents and their reasons are not part of this "
            "dataset.\n")


def write_data_card(run_dir: Path, card: Mapping[str, Any]) -> Path:
    """Write `runs/<source>/README.md` for a finished run; `card` is the source's YAML as a dict."""
    run = RunData.load(Path(run_dir))
    if card.get("name") and str(card["name"]) != run.name:
        raise UserError(f"{run_dir} is a run of {run.name!r}, not of source {card['name']!r}.")
    path = run.dir / CARD_NAME
    atomic_write_text(path, render_data_card(run.stats, run.manifest, card, kept_bytes_by_lang(run.dir)))
    return path


# ============================================================================================ release card
def _release_languages(manifest: Mapping[str, Any], included: Sequence[Mapping[str, Any]]) -> dict[str, dict]:
    langs = manifest.get("languages")
    if isinstance(langs, Mapping):
        return {str(k): dict(v) if isinstance(v, Mapping) else {"tokens": v} for k, v in langs.items()}
    found: dict[str, dict] = {}
    for entry in included:
        value = entry.get("languages") or []
        for lang in (value if isinstance(value, (list, tuple)) else list(value)):
            found.setdefault(str(lang), {})
    return found


def _total(manifest: Mapping[str, Any], included: Sequence[Mapping[str, Any]], key: str) -> int | None:
    value = manifest.get(key)
    if isinstance(value, Mapping):
        value = value.get("total")
    if isinstance(value, (int, float)):
        return int(value)
    parts = [e.get(key) for e in included if isinstance(e.get(key), (int, float))]
    return int(sum(parts)) if parts else None


def render_release_card(manifest: Mapping[str, Any]) -> str:
    """A card for a release from its manifest: sources in (with clearance basis) and out (with why),
    languages with document and token shares, and totals. Missing fields read as "not recorded"."""
    included = manifest_entries(manifest.get("sources", manifest.get("included")))
    excluded = manifest_entries(manifest.get("excluded"))
    langs = _release_languages(manifest, included)
    licenses = sorted({hf_license(str(e.get("license", "unknown"))) for e in included})
    n_docs, n_tokens = _total(manifest, included, "documents"), _total(manifest, included, "tokens")
    name = str(manifest.get("name") or "roots release")
    meta: dict[str, Any] = {"pretty_name": name,
                            "license": licenses[0] if len(licenses) == 1 else "other"}
    if meta["license"] == "other":
        meta["license_name"] = "multiple-licenses" if len(licenses) > 1 else "custom"
        meta["license_link"] = "README.md"
    meta.update({"language": sorted(langs),
                 "multilinguality": "multilingual" if len(langs) > 1 else "monolingual",
                 "size_categories": [size_category(n_docs or 0)], "task_categories": ["text-generation"],
                 "task_ids": ["language-modeling"]})
    inc_rows = [(f"`{e.get('name')}`", f"`{e.get('license', '?')}`", clearance_text(e),
                 str(e.get("cleared_for") or "not recorded"),
                 _int(e.get("documents")), _int(e.get("tokens"))) for e in included]
    training_only = [str(e.get("name")) for e in included
                     if isinstance(e.get("scopes"), list) and "release" not in e["scopes"]]
    exc_rows = [(f"`{e.get('name')}`", e.get("reason", "not recorded")) for e in excluded]
    lang_items = sorted(langs.items(), key=lambda kv: (-(kv[1].get("tokens") or 0), kv[0]))
    lang_rows = [(lang, _int(v.get("documents")), _int(v.get("tokens")),
                  pct(v.get("tokens") or 0, n_tokens or 0),
                  fmt_bytes(v.get("bytes")) if v.get("bytes") is not None else "–") for lang, v in lang_items]
    takedown_text = takedowns_text(manifest)
    folded = (manifest.get("folded_languages") or {}) if isinstance(manifest.get("folded_languages"),
                                                                   Mapping) else {}
    return (_front_matter(meta) + f"\n# {name}\n\n"
            + str(manifest.get("description")
                  or "A multilingual pretraining corpus built with roots.").strip() + "\n\n"
            + f"- **Created**: {manifest.get('created', 'not recorded')}\n"
            + f"- **Documents**: {_int(n_docs)}\n- **Tokens**: {_int(n_tokens)}\n"
            + f"- **Takedowns applied**: {takedown_text}\n"
            + "\n## Sources included\n\nEach source is in the release because the licence policy or a "
            + "permission record clears it for training; the basis is listed, with what else it is "
            + "cleared for.\n\n"
            + md_table(("source", "licence", "clearance basis", "cleared for", "documents", "tokens"),
                       inc_rows)
            + (f"\n**Not for redistribution**: {', '.join(f'`{n}`' for n in training_only)} "
               "is cleared for training only. This release may be used to train models but must not be "
               "shared as it is; remove the source (or get a permission covering release) before "
               "publishing the data.\n" if training_only else "")
            + "\n## Sources excluded\n\n" + md_table(("source", "why"), exc_rows)
            + "\n## Languages\n\n"
            + md_table(("language", "documents", "tokens", "% of tokens", "bytes"), lang_rows)
            + "".join(f"\nLanguages folded into `{g}` (each below the merge's `min_language_tokens`): "
                      f"{', '.join(map(str, langs_in))}.\n" for g, langs_in in sorted(folded.items()))
            + release_decontamination(manifest)
            + "\nEach source's own card (`runs/<source>/README.md`) lists the processing steps and "
            + "thresholds applied to it.\n")


def write_release_card(release_dir: Path, manifest: Mapping[str, Any]) -> Path:
    """Write `<release_dir>/README.md` from the release manifest dict."""
    release_dir = Path(release_dir)
    if not release_dir.is_dir():
        raise UserError(f"{release_dir}: no such release directory.")
    path = release_dir / CARD_NAME
    atomic_write_text(path, render_release_card(manifest))
    return path
