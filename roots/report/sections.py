"""The sections of one source run on the report page: overview, waterfall, language identification,
statistics per language, borderline samples, duplicate clusters, PII and quarantine, and run info.

Each section is drawn from the run's stored per-document statistics against the thresholds that were
actually applied, so a data steward can judge a threshold and trace every removal to example documents.
Samples are chosen by distance to the threshold with ids breaking ties, so the output is deterministic.
"""

from __future__ import annotations

import heapq
import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from roots.core.schema import QUALITY_FILTERS, STAGE_ORDER, stage_of
from roots.report.fmt import fmt_bytes, fmt_int, fmt_num, pct
from roots.report.markup import Raw, esc, section, slug, table
from roots.report.metrics import (
    METRICS,
    Metric,
    metric_for_reason,
    ppl_limit,
    threshold_origin,
    threshold_text,
)
from roots.report.runs import BATCH_ROWS, Docs, RunData, dedup_status, fetch_texts
from roots.report.signals import section_signals
from roots.report.svg import Bar, axis_value, svg_bars, svg_histogram
from roots.stages import quality

SAMPLES_PER_REASON = 3
SAMPLE_CHARS = 600
TOP_CLUSTERS = 10


def _doc_block(docs: Docs, i: int, texts: Mapping[str, str], metric: Metric | None,
               params: quality.LangParams | None, manifest: Mapping[str, Any]) -> str:
    """One document: id, status, language, the statistic that matters with its threshold, and its text."""
    doc_id = str(docs.ids[i])
    meta = [f"<b>{esc(doc_id)}</b>", esc(docs.status[i]), f"lang {esc(docs.strings['lang'][i])}"]
    if metric is not None:
        value = docs.numbers[metric.column][i]
        bounds = ", ".join(f"{k} {fmt_num(v)}" for k, v in metric.marks(params, manifest))
        meta.append(f"{esc(metric.column)}={esc(fmt_num(value))}" + (f" ({esc(bounds)})" if bounds else ""))
    detail = docs.detail[i]
    text = texts.get(doc_id, "")
    clipped = text[:SAMPLE_CHARS] + ("…" if len(text) > SAMPLE_CHARS else "")
    return (f'<div class="doc"><div class="meta">{" · ".join(meta)}</div>'
            + (f'<div class="detail">{esc(detail)}</div>' if detail else "")
            + f"<pre>{esc(clipped)}</pre></div>")


def overview_lang_rows(run: RunData) -> list[tuple[int, str, str, int, float, int]]:
    """(kept, language, source, rejected, bytes in, bytes out) per language of one run, exact even when
    the run's documents are sampled (from `Docs.totals`, counted over all of them)."""
    docs, rows = run.docs, []
    if docs.sampled and docs.totals is not None:
        langs = sorted({lang for lang, _status, _reason in docs.totals.by_lang})
        for lang in langs:
            kept, rejected, _ = docs.totals.lang_counts(lang)
            rows.append((kept, lang, run.name, rejected, docs.totals.bytes_by_lang[lang],
                         run.kept_bytes.get(lang, 0)))
        return rows
    for lang, idx in docs.by_lang.items():
        kept_mask = docs.status[idx] == "kept"
        bytes_in = float(np.nansum(docs.numbers["n_bytes"][idx]))
        rows.append((int(kept_mask.sum()), lang, run.name, int((~kept_mask).sum()), bytes_in,
                     run.kept_bytes.get(lang, 0)))
    return rows


def section_overview(runs: Sequence[RunData],
                     lang_rows: Sequence[tuple[int, str, str, int, float, int]] | None = None) -> str:
    """Documents and bytes in and out per source, then per language and source (`lang_rows`: what
    `overview_lang_rows` gave for each run, collected while the runs were rendered one at a time)."""
    rows, bars = [], []
    for run in runs:
        d, b = run.stats.get("documents", {}), run.stats.get("bytes", {})
        rows.append((run.name, fmt_int(d.get("input")), fmt_int(d.get("kept")), fmt_int(d.get("rejected")),
                     fmt_int(d.get("quarantined")), pct(d.get("kept", 0), d.get("input", 0)),
                     fmt_bytes(b.get("in")), fmt_bytes(b.get("out")),
                     pct(b.get("out") or 0, b.get("in") or 0)))
        kept, rej, quar = d.get("kept", 0), d.get("rejected", 0), d.get("quarantined", 0)
        bars.append(Bar(run.name, ((0, kept, "kept"), (kept, kept + rej, "rej"),
                                   (kept + rej, kept + rej + quar, "quar")),
                        f"{fmt_int(kept)} / {fmt_int(d.get('input'))} kept"))
    per_source = table(("source", "documents in", "kept", "rejected", "quarantined", "kept %", "bytes in",
                        "bytes out", "bytes kept %"), rows, numeric=range(1, 9))
    chart = svg_bars("Documents per source: kept, rejected, quarantined", bars)
    if lang_rows is None:
        lang_rows = [row for run in runs for row in overview_lang_rows(run)]
    lang_rows = sorted(lang_rows, key=lambda r: (-r[0], r[1], r[2]))
    per_lang = table(("language", "source", "documents in", "kept", "rejected", "bytes in", "bytes out"),
                     [(lang, src, fmt_int(k + r), fmt_int(k), fmt_int(r), fmt_bytes(bi), fmt_bytes(bo))
                      for k, lang, src, r, bi, bo in lang_rows], numeric=range(2, 7))
    note = ('<p class="muted">Bytes in per language are the UTF-8 size of the documents as read (quarantined '
            "records have no language); bytes out are the kept text after cleaning and PII scrubbing.</p>")
    return section("overview", "Documents and bytes in and out", per_source + chart
                   + f"<h4>Per language and source</h4>{note}<details><summary>{len(lang_rows)} rows"
                   f"</summary>{per_lang}</details>", level=2)


def _waterfall_steps(run: RunData) -> list[tuple[str, str, int]]:
    """(label, stage, removed) per rejection reason in pipeline order, largest first within a stage."""
    reasons = run.stats.get("reasons") or {}
    ordered = sorted(reasons.items(), key=lambda kv: (STAGE_ORDER.index(stage_of(kv[0])), -kv[1], kv[0]))
    return [(reason, stage_of(reason), int(n)) for reason, n in ordered]


def section_waterfall(run: RunData, anchor: str) -> str:
    """Input, minus quarantine, minus each filter's removals in pipeline order, down to what was kept."""
    d = run.stats.get("documents", {})
    n_in, live = int(d.get("input", 0)), int(d.get("input", 0))
    bars = [Bar("input", ((0, n_in, "kept"),), fmt_int(n_in))]
    quar = int(d.get("quarantined", 0))
    bars.append(Bar("quarantine (unreadable)", ((live - quar, live, "quar"),), f"−{fmt_int(quar)}"))
    live -= quar
    rows = []
    for reason, stage, n in _waterfall_steps(run):
        bars.append(Bar(f"{stage}: {reason}", ((live - n, live, "rej"),), f"−{fmt_int(n)} ({pct(n, n_in)})"))
        rows.append((stage, reason, fmt_int(live), fmt_int(n), fmt_int(live - n), pct(n, n_in)))
        live -= n
    bars.append(Bar("kept", ((0, live, "kept"),), fmt_int(live)))
    stage_rows = [(s.get("stage"), fmt_int(s.get("in")), fmt_int(s.get("removed")), fmt_int(s.get("out")))
                  for s in run.stats.get("stages") or []]
    body = (svg_bars(f"{run.name}: removals per filter", bars)
            + table(("stage", "reason", "in", "removed", "out", "% of input"), rows, numeric=(2, 3, 4, 5))
            + "<h4>Per stage</h4>" + table(("stage", "in", "removed", "out"), stage_rows, numeric=(1, 2, 3)))
    return section(anchor, "Removals per filter (waterfall)", body)


def _lang_summary(docs: Docs, lang: str, idx: np.ndarray) -> str:
    if docs.sampled and docs.totals is not None:  # exact counts, not the sample's
        kept, rejected, reasons = docs.totals.lang_counts(lang)
        top = ", ".join(f"{r} {n:,}" for r, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:4])
        return (f"{lang}: {kept + rejected:,} documents, {kept:,} kept, {rejected:,} rejected"
                + (f" ({top})" if top else "") + f"; charts from {len(idx):,} sampled")
    kept = int((docs.status[idx] == "kept").sum())
    reasons = Counter(str(r) for r in docs.reason[idx] if r)
    top = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:4])
    return (f"{lang}: {len(idx)} documents, {kept} kept, {len(idx) - kept} rejected"
            + (f" ({top})" if top else ""))


def _params_line(run: RunData, params: quality.LangParams | None) -> str:
    if params is None:
        return '<p class="warn">thresholds could not be loaded for this language (invalid overrides)</p>'
    ppl_value, ppl_kind = ppl_limit(run.manifest, params)
    ppl = ((run.stats.get("languages") or {}).get(params.lang) or {}).get("perplexity") or {}
    ppl_text = (f"perplexity {ppl_kind} {fmt_num(ppl_value)}" if ppl.get("scored") or not ppl
                else "perplexity: no model, not filtered" if ppl.get("no_model")
                else "perplexity: not applied")
    items = [f"from {threshold_origin(run.manifest, params.lang)}", f"lid_min {fmt_num(params.lid_min)}"]
    for f in QUALITY_FILTERS:
        text = threshold_text(f, params)
        name = f.column if len(f.bounds) > 1 else f.bounds[0].field
        items.append(f"{f.reason}: no list, not filtered" if text is None
                     else f"{f.reason}: off" if text == "off" else f"{name} {text}")
    items.append(ppl_text)
    return f'<p class="params">Thresholds: {esc("; ".join(items))}</p>'


def lang_charts(run: RunData, lang: str, idx: np.ndarray) -> str:
    """One histogram per statistic for one language, layered kept / removed by this filter / removed for
    another reason, with this language's thresholds on each."""
    docs = run.docs
    charts = []
    for metric in METRICS:
        values = docs.numbers[metric.column][idx]
        ok = ~np.isnan(values)
        status, reason = docs.status[idx][ok], docs.reason[idx][ok]
        here = reason == metric.reason
        layers = [("kept", status == "kept"), ("rej", here), ("oth", (status != "kept") & ~here)]
        marks = run.marks(metric, lang)
        title = f"{metric.column} · {lang} · n={int(ok.sum())}"
        fixed = 1.0 if metric.column == "lang_score" else None
        charts.append(svg_histogram(title, values[ok], layers, metric.log, marks, fixed_hi=fixed))
    return "".join(charts)


def _chart_langs(docs: Docs) -> dict[str, np.ndarray]:
    """Rows per language for the charts: `docs.by_lang`, except that a sampled run lists every language
    of the run, largest first by its exact count, with no rows for a language the sample missed."""
    if not docs.sampled or docs.totals is None:
        return docs.by_lang
    sizes = Counter[str]()
    for (lang, _status, _reason), n in docs.totals.by_lang.items():
        sizes[lang] += n
    empty = np.zeros(0, dtype=np.int64)
    return {lang: docs.by_lang.get(lang, empty) for lang in sorted(sizes, key=lambda lg: (-sizes[lg], lg))}


def section_distributions(run: RunData, anchor: str) -> str:
    """Every statistic per language, from the stored values, against the thresholds that were applied."""
    parts = [('<p class="muted">Bars: <span class="sw kept"></span> kept, <span class="sw rej"></span> '
              'removed by this filter, <span class="sw oth"></span> removed for another reason. '
              "Dashed lines: the thresholds applied to the language (table row plus the run's recipe "
              "overrides). Word counts and perplexity use a log scale. Documents removed before scoring "
              "have no statistics.</p>"),
             run.docs.sample_note()]
    for i, (lang, idx) in enumerate(_chart_langs(run.docs).items()):
        opened = " open" if i == 0 else ""
        parts.append(f"<details{opened}><summary>{esc(_lang_summary(run.docs, lang, idx))}</summary>"
                     f"{_params_line(run, run.params(lang))}<div class=\"grid\">{lang_charts(run, lang, idx)}"
                     "</div></details>")
    if not run.docs.by_lang:
        parts.append('<p class="muted">No documents.</p>')
    return section(anchor, "Statistics per language", "".join(parts))


def section_langid(run: RunData, anchor: str) -> str:
    """Declared (assigned) language against the language-ID prediction, plus which backend decided."""
    docs, cfg = run.docs, run.config
    declared = ", ".join(cfg.get("declared") or []) or "multi (language ID assigns the language)"
    pairs: Counter[tuple[str, str]] = Counter()
    kept_pairs: Counter[tuple[str, str]] = Counter()
    per_lang: dict[str, Counter[str]] = {}
    if docs.sampled and docs.totals is not None:  # the same tables, counted over every document
        for (lang, pred, kept), n in sorted(docs.totals.predicted.items(), key=lambda kv: repr(kv[0])):
            key = "none" if pred is None else ("same" if pred == lang else "other")
            per_lang.setdefault(lang, Counter())[key] += n
            if pred is not None and pred != lang:
                pairs[(lang, str(pred))] += n
                kept_pairs[(lang, str(pred))] += n if kept else 0
    else:
        for i in range(len(docs)):
            lang, pred = str(docs.strings["lang"][i] or "und"), docs.strings["lang_predicted"][i]
            key = "none" if pred is None else ("same" if pred == lang else "other")
            per_lang.setdefault(lang, Counter())[key] += 1
            if pred is not None and pred != lang:
                pairs[(lang, str(pred))] += 1
                kept_pairs[(lang, str(pred))] += docs.status[i] == "kept"
    agree_rows = [(lang, fmt_int(sum(c.values())), fmt_int(c["same"]), fmt_int(c["other"]),
                   fmt_int(c["none"]), pct(c["same"], c["same"] + c["other"]))
                  for lang, c in sorted(per_lang.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))]
    mismatch_rows = [(lang, pred, fmt_int(n), fmt_int(kept_pairs[(lang, pred)]),
                      fmt_int(n - kept_pairs[(lang, pred)]))
                     for (lang, pred), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:30]]
    backends = (docs.totals.backends if docs.sampled and docs.totals is not None
                else Counter(str(b or "none") for b in docs.strings["lang_backend"]))
    notes = (run.stats.get("notes") or {}).get("langid_not_filtered") or []
    body = (f"<p>Declared: {esc(declared)}. Model: {esc(cfg.get('langid_model'))}"
            + (" (skipped in this run)" if run.skipped("langid") else "") + ".</p>"
            + "<h4>Backend that assigned the language</h4>"
            + table(("backend", "documents"), [(k, fmt_int(v)) for k, v in sorted(backends.items())],
                    numeric=(1,))
            + "<h4>Most frequent disagreements (assigned language, predicted language)</h4>"
            + table(("assigned", "predicted", "documents", "kept", "rejected"), mismatch_rows,
                    numeric=(2, 3, 4))
            + f"<details><summary>Agreement per assigned language ({len(agree_rows)})</summary>"
            + table(("assigned", "documents", "predicted the same", "predicted another", "no prediction",
                     "agreement"), agree_rows, numeric=(1, 2, 3, 4, 5)) + "</details>"
            + "".join(f'<p class="warn">{esc(n)}</p>' for n in notes))
    return section(anchor, "Language identification", body)


def _nearest_kept(values: np.ndarray, kept_idx: np.ndarray, value: float, used: set[int],
                  log: bool) -> int | None:
    """The kept document whose statistic is closest to `value` (lowest id on ties), not shown before."""
    candidates = [int(i) for i in kept_idx if int(i) not in used and not math.isnan(values[i])]
    if not candidates or math.isnan(value):
        return None
    arr = np.asarray(candidates, dtype=np.int64)
    dist = np.abs(axis_value(values[arr], log) - axis_value(np.asarray([value]), log)[0])
    return int(arr[int(np.argmin(dist))])  # argmin returns the first, and rows are in id order


def _pick_rejected(run: RunData, reason: str, metric: Metric | None, rows: np.ndarray) -> list[int]:
    """The removed documents closest to their language's threshold (the borderline cases), by id on ties;
    without a statistic, the first by id."""
    if metric is None:
        return [int(i) for i in rows[:SAMPLES_PER_REASON]]
    docs = run.docs
    scored = []
    for i in rows:
        value = docs.numbers[metric.column][i]
        marks = run.marks(metric, str(docs.strings["lang"][i] or "und"))
        if math.isnan(value) or not marks:
            dist = math.inf
        else:
            tv = float(axis_value(np.asarray([value]), metric.log)[0])
            dist = min(abs(tv - float(axis_value(np.asarray([m]), metric.log)[0])) for _, m in marks)
        scored.append((dist, int(i)))
    scored.sort()
    return [i for _, i in scored[:SAMPLES_PER_REASON]]


def section_samples(run: RunData, anchor: str) -> str:
    """For each rejection reason, the borderline removed documents beside the nearest kept document of the
    same language by the statistic behind the reason: what the threshold separates, in the text itself."""
    docs = run.docs
    chosen: list[tuple[str, Metric | None, list[tuple[int, int | None]]]] = []
    for reason, _stage, _n in _waterfall_steps(run):
        if reason.startswith("duplicate"):
            continue
        metric = metric_for_reason(reason)
        rows = np.nonzero(docs.reason == reason)[0]
        picks = []
        used: set[int] = set()
        for i in _pick_rejected(run, reason, metric, rows):
            lang = str(docs.strings["lang"][i] or "und")
            kept_idx = docs.by_lang.get(lang, np.zeros(0, np.int64))
            kept_idx = kept_idx[docs.status[kept_idx] == "kept"]
            near = None
            if metric is not None:
                near = _nearest_kept(docs.numbers[metric.column], kept_idx, docs.numbers[metric.column][i],
                                     used, metric.log)
            if near is not None:
                used.add(near)
            picks.append((i, near))
        chosen.append((reason, metric, picks))
    texts = fetch_texts(run.dir, {str(docs.ids[j]) for _, _, picks in chosen for p in picks for j in p
                                  if j is not None})
    parts = []
    for reason, metric, picks in chosen:
        rows_html = []
        for i, near in picks:
            lang = str(docs.strings["lang"][i] or "und")
            params = run.params(lang)
            left = _doc_block(docs, i, texts, metric, params, run.manifest)
            right = (_doc_block(docs, near, texts, metric, params, run.manifest) if near is not None
                     else '<p class="muted">no kept document in this language has this statistic</p>')
            rows_html.append(f'<div class="pair"><div>{left}</div><div>{right}</div></div>')
        what = f"by {metric.column}" if metric is not None else ""
        removed = (docs.totals.reason_count(lambda r, want=reason: r == want)
                   if docs.sampled and docs.totals is not None else int((docs.reason == reason).sum()))
        if docs.sampled and not picks:
            rows_html.append('<p class="muted">none of these documents is in the sample</p>')
        parts.append(f'<h4 id="{esc(anchor)}-{slug(reason)}">{esc(reason)} <span class="muted">'
                     f"({fmt_int(removed)} removed; nearest kept {esc(what)})</span></h4>"
                     '<div class="pair head"><div>removed</div><div>nearest kept</div></div>'
                     f'{"".join(rows_html)}')
    if not parts:
        parts.append('<p class="muted">No document was rejected.</p>')
    return section(anchor, "Removed documents next to kept ones near the threshold",
                   docs.sample_note() + "".join(parts))


def _cluster_of(docs: Docs, i: int) -> str:
    cluster = docs.strings["cluster"][i]
    if cluster:
        return str(cluster)
    match = re.match(r"duplicate of (\S+)", str(docs.detail[i] or ""))
    return match.group(1) if match else str(docs.ids[i])


def _dup_kind(docs: Docs, i: int) -> str:
    """exact / near / url from the detail `duplicate of X (near ...)`, else the reason itself."""
    match = re.search(r"\((exact|near|url|template)\b", str(docs.detail[i] or ""))
    return match.group(1) if match else str(docs.reason[i])


def section_duplicates(run: RunData, anchor: str) -> str:
    """Duplicate clusters, largest first, with the kept copy beside one removed copy.

    On a sampled run the number removed is exact (`Totals`) and the clusters are as far as the sample sees
    them: copies are sampled by their own id, so a cluster shows only its sampled copies and its kept copy
    may be outside the sample (its text is then fetched by id all the same)."""
    docs = run.docs
    rows = [i for i in range(len(docs)) if str(docs.reason[i] or "").startswith("duplicate")]
    sampled = docs.sampled and docs.totals is not None
    removed = (docs.totals.reason_count(lambda r: r.startswith("duplicate")) if docs.totals and sampled
               else len(rows))
    if not removed:
        why = dedup_status(run.manifest, run.stats)
        return section(anchor, "Duplicate clusters",
                       f'<p class="muted">No duplicate clusters: {esc(why)}.</p>')
    clusters: dict[str, list[int]] = {}
    for i in rows:
        clusters.setdefault(_cluster_of(docs, i), []).append(i)
    order = sorted(clusters.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    kept_index = {str(docs.ids[i]): i for i in range(len(docs)) if docs.status[i] == "kept"}
    top = order[:TOP_CLUSTERS]
    texts = fetch_texts(run.dir, [c for c, _ in top] + [str(docs.ids[m[0]]) for _, m in top])
    in_sample = " in the sample" if sampled else ""
    summary = table(("cluster (kept id)", f"removed copies{in_sample}", "kinds"),
                    [(c, fmt_int(len(m)), ", ".join(sorted({_dup_kind(docs, i) for i in m})))
                     for c, m in order[:50]],
                    numeric=(1,))
    pairs = []
    for cluster, members in top:
        keeper = kept_index.get(cluster)
        if keeper is not None:
            left = _doc_block(docs, keeper, texts, None, None, run.manifest)
        elif sampled and cluster in texts:
            left = (f'<div class="doc"><div class="meta"><b>{esc(cluster)}</b> · kept (not in the sample)'
                    "</div>"
                    f"<pre>{esc(texts[cluster][:SAMPLE_CHARS])}</pre></div>")
        else:
            left = f'<p class="muted">kept copy {esc(cluster)} not in this run</p>'
        right = _doc_block(docs, members[0], texts, None, None, run.manifest)
        pairs.append(f"<h4>{esc(cluster)}: {len(members)} removed{in_sample}</h4>"
                     f'<div class="pair"><div>{left}</div><div>{right}</div></div>')
    if sampled:
        head = (f"<p>{fmt_int(removed)} documents removed as duplicates.</p>" + docs.sample_note()
                + f"<p>In the sample: {fmt_int(len(rows))} removed copies in {fmt_int(len(clusters))} "
                "clusters.</p>")
    else:
        head = (f"<p>{fmt_int(len(rows))} documents removed as duplicates in {fmt_int(len(clusters))} "
                "clusters.</p>")
    body = (head + f"<details><summary>Largest clusters{in_sample} ({min(len(order), 50)} of {len(order)})"
            + f"</summary>{summary}</details><h4>The {len(top)} largest: kept copy and one removed copy</h4>"
            + "".join(pairs))
    return section(anchor, "Duplicate clusters", body)


def section_pii(run: RunData, anchor: str) -> str:
    """PII replacements per tag, including configured tags that never fired (evidence they were looked
    for)."""
    counts = dict(run.stats.get("pii_replacements") or {})
    tags = sorted(set(run.config.get("pii_tags") or []) | set(counts))
    docs = run.docs
    docs_with = (docs.totals.pii_kept if docs.sampled and docs.totals is not None
                 else sum(1 for i in range(len(docs)) if docs.status[i] == "kept" and docs.strings["pii"][i]))
    if run.skipped("pii") or not tags:
        return section(anchor, "PII replacements", '<p class="muted">PII scrubbing was not applied.</p>')
    bars = [Bar(tag, ((0, counts.get(tag, 0), "kept"),), fmt_int(counts.get(tag, 0))) for tag in tags]
    kept = [i for i in range(len(docs)) if docs.status[i] == "kept"]
    per_tag: dict[str, list[str]] = {t: [] for t in tags}  # ids of kept documents with the tag, by id
    for i in kept:
        if docs.strings["pii"][i]:
            for t in _pii_tags_of(docs.strings["pii"][i]):
                per_tag.setdefault(t, []).append(str(docs.ids[i]))
    shown = {t: sorted(ids)[:PII_CONTEXTS] for t, ids in per_tag.items()}
    texts = fetch_texts(run.dir, [i for ids in shown.values() for i in ids])
    rows = [(t, fmt_int(counts.get(t, 0)), fmt_int(len(per_tag.get(t, []))),
             pct(len(per_tag.get(t, [])), len(kept)) if kept else "-") for t in tags]
    contexts = "".join(
        f"<h4>{esc(t)}</h4><ul>" + "".join(f"<li><code>{esc(c)}</code></li>" for i in shown[t]
                                           for c in pii_contexts(texts.get(i, ""), t)[:1]) + "</ul>"
        for t in tags if shown.get(t))
    body = (f"<p>{fmt_int(sum(counts.values()))} replacements in {fmt_int(docs_with)} kept documents.</p>"
            + svg_bars(f"{run.name}: PII replacements per tag", bars)
            + table(("tag", "replacements", "kept documents" + (" (in the sample)" if docs.sampled else ""),
                     "share of kept documents"), rows, numeric=(1, 2, 3))
            + ("<details><summary>Replacements in context (the kept text: values already masked; "
               "`roots inspect NAME --pii TAG` shows them on the steward's terminal)</summary>"
               + contexts + "</details>" if contexts else ""))
    return section(anchor, "PII replacements", body)


def _pii_tags_of(value: str) -> list[str]:
    """The tags of a document's `pii` column (JSON counts per tag); a value that is not such a mapping
    names no tag (the document still counts among the documents with replacements)."""
    try:
        counts = json.loads(value)
    except ValueError:
        return []
    return [str(t) for t in counts] if isinstance(counts, dict) else []


PII_CONTEXTS = 3
"""Documents per tag whose first replacement the report shows in context."""


def pii_contexts(text: str, tag: str, width: int = 60) -> list[str]:
    """Each `PI:<TAG>` of a kept (already scrubbed) text with `width` characters either side, on one line.
    Only scrubbed text is read, so no original value can reach the shareable report."""
    out, token, pos = [], f"PI:{tag}", 0
    while (at := text.find(token, pos)) >= 0:
        lo, hi = max(0, at - width), min(len(text), at + len(token) + width)
        out.append(("…" if lo else "") + " ".join(text[lo:hi].split()) + ("…" if hi < len(text) else ""))
        pos = at + len(token)
    return out


def section_quarantine(run: RunData, anchor: str) -> str:
    """Records that could not be read as documents, grouped by error, with the first few raw lines."""
    errors: Counter[str] = Counter()
    q: list[dict[str, Any]] = []  # the first 10 by (file, line, error), as a stable sort of all would give
    for path in sorted((run.dir / "quarantine").glob("*.parquet")):
        # a batch at a time: raw lines can be long, and only the first 10 records are shown
        for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(
                batch_size=BATCH_ROWS, columns=["file", "line", "raw", "error"], use_threads=False):
            records = batch.to_pylist()
            errors.update(str(r["error"]) for r in records)
            q = heapq.nsmallest(10, [*q, *records],
                                key=lambda r: (str(r["file"]), r["line"] or 0, str(r["error"])))
    if not q:
        return section(anchor, "Quarantine", '<p class="muted">No quarantined records.</p>')
    rows = [(e, fmt_int(n)) for e, n in sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))[:30]]
    samples = [(Path(str(r["file"])).name, fmt_int(r["line"]), r["error"],
                Raw(f"<code>{esc((r['raw'] or b'')[:200].decode('utf-8', 'replace'))}</code>"))
               for r in q[:10]]
    body = (table(("error", "records"), rows, numeric=(1,)) + "<h4>First records</h4>"
            + table(("file", "line", "error", "raw (first 200 bytes)"), samples, numeric=(1,)))
    return section(anchor, "Quarantine", body)


def section_run_info(run: RunData, anchor: str) -> str:
    """Where the numbers come from: input fingerprint, configuration hash, versions, recorded times."""
    m, cfg = run.manifest, run.config
    versions = m.get("versions") or {}
    lid = versions.get("langid_model") or {}
    rows = [("card", m.get("card")), ("card sha256", m.get("card_sha256")),
            ("input files", fmt_int(len((m.get("input") or {}).get("files") or []))),
            ("input fingerprint", (m.get("input") or {}).get("fingerprint")),
            ("config hash", m.get("config_hash")),
            ("recipe operations", ", ".join(cfg.get("recipe") or []) or "none"),
            ("skipped stages", ", ".join(cfg.get("skip") or []) or "none"),
            ("language-ID model", f"{cfg.get('langid_model')} (sha256 {lid.get('sha256', '?')})"),
            ("roots / Beam", f"{versions.get('roots')} / {versions.get('apache_beam')}"),
            ("started / finished", f"{m.get('started')} / {m.get('finished')}"),
            ("wall seconds", fmt_num((run.stats.get("timings") or {}).get("wall_seconds")))]
    notes = (run.stats.get("notes") or {}).get("perplexity_not_filtered") or []
    extra = (f"<details><summary>{len(notes)} perplexity notes</summary><ul>"
             + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul></details>") if notes else ""
    licences = (run.stats.get("notes") or {}).get("license_differs_from_card") or []
    differ = (run.stats.get("code_licenses") or {}).get("differs_from_card", len(licences))
    if licences:  # code sources: files whose own licence statement is not the card's
        extra += (f'<p class="warn">{fmt_int(differ)} code file(s) state a licence other than the card\'s'
                  f"</p><details><summary>files</summary><ul>"
                  + "".join(f"<li>{esc(n)}</li>" for n in licences) + "</ul></details>")
    return section(anchor, "Run", table(("", ""), rows, cls="kv") + extra)


def source_section(run: RunData) -> str:
    """Everything about one run, each part under its own anchor (`<source>-<part>`)."""
    a = slug(run.name)
    parts = [section_run_info(run, f"{a}-run"), section_waterfall(run, f"{a}-waterfall"),
             section_langid(run, f"{a}-langid"), section_distributions(run, f"{a}-distributions"),
             section_samples(run, f"{a}-samples"), section_duplicates(run, f"{a}-duplicates"),
             section_signals(run, f"{a}-signals"),
             section_pii(run, f"{a}-pii"), section_quarantine(run, f"{a}-quarantine")]
    return f'<section id="src-{a}" class="source"><h2>Source: {esc(run.name)}</h2>{"".join(parts)}</section>'
