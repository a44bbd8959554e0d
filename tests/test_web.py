"""Web sources (issue 22): WARC, WET and HTML inputs, text extraction, URL rules, per-site boilerplate.

The WARC under test is written with warcio (tests/web_pages.py) and read with fastwarc: pages in six
languages and three scripts (Latin, Cyrillic, Japanese), a PDF, an image, a redirect, a 404, request,
metadata and warcinfo records, a page in windows-1251 declared only in <meta>, an undecodable page and a
truncated final record. Every record must end kept, rejected with its reason, or quarantined with its
byte offset.
"""

from __future__ import annotations

import gzip as gzip_lib
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from warcio.warcwriter import WARCWriter

from roots.dedup import minhash, rowkeys
from roots.dedup.minhash import DedupConfig
from roots.io import outputs, readers, urlrules, web
from roots.stages.process import DocumentProcessor, ProcessConfig, lang_hint
from tests.conftest import write_card
from tests.web_pages import ARTICLES, CHROME_LINES, CHROME_MENU, LEGACY, page_html, write_warc


def outcome(record: dict) -> str:
    if record["kind"] == "quarantine":
        return "quarantined"
    if record.get("reject"):
        return f"rejected:{record['reject'][0]}"
    return "kept"


def read_all(path: Path, **spec_args) -> list[dict]:
    spec = readers.ReaderSpec(source="web", fmt=spec_args.pop("fmt", "warc"), **spec_args)
    with open(path, "rb") as fh:
        return list(readers.read(spec, str(path), fh))


@pytest.mark.parametrize("gz", [True, False], ids=["warc.gz", "warc"])
def test_every_record_accounted_with_its_reason(tmp_path, gz):
    path = tmp_path / ("crawl.warc.gz" if gz else "crawl.warc")
    expected = write_warc(path, gzip=gz)
    records = read_all(path)
    assert len(records) == len(expected) == 19
    assert [outcome(r) for r in records] == [e.split(":")[0] if e.startswith("kept") else e
                                             for _, e in expected]
    quarantined = [r for r in records if r["kind"] == "quarantine"]
    assert "binary content" in quarantined[0]["error"] and "truncated record" in quarantined[1]["error"]
    for q in quarantined:  # file and byte offset, so the record can be found and fetched again
        assert q["file"] == str(path) and q["line"] > 0 and f"byte offset {q['line']:,}" in q["error"]
    # the records before the truncated last one are all there
    assert Counter(outcome(r) for r in records)["kept"] == 6
    redirect = next(r for r in records if outcome(r) == "rejected:http_status")
    assert redirect["reject"][1] == "HTTP 301 (redirect to https://news.example.org/science/rivers)"


def test_metadata_kept_per_document(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    write_warc(path, gzip=True)
    docs = {r["url"]: r for r in read_all(path) if outcome(r) == "kept"}
    ru = docs["https://gazeta.example.ru/nauka/les"]
    meta = json.loads(ru["meta"])
    assert meta["domain"] == "gazeta.example.ru" and meta["http_status"] == 200
    assert meta["html_lang"] == "ru" and meta["title"] == "Лес после пожара"
    assert meta["warc_record_id"].startswith("<urn:uuid:") and meta["fetch_date"].startswith("20")
    assert ru["id"] == meta["warc_record_id"].strip("<>").removeprefix("urn:uuid:")
    # windows-1251 declared only in <meta> (the HTTP header has no charset): decoded from the meta tag
    legacy = docs[LEGACY[0]]
    assert json.loads(legacy["meta"])["charset"] == "cp1251"
    assert LEGACY[4][0] in legacy["text"]


@pytest.mark.parametrize("extractor", ["resiliparse", "trafilatura"])
def test_extracted_text_has_main_text_not_chrome(tmp_path, extractor):
    path = tmp_path / "crawl.warc"
    write_warc(path, gzip=False)
    docs = {r["url"]: r["text"] for r in read_all(path, extractor=extractor) if outcome(r) == "kept"}
    assert len(docs) == 6
    for url, _, _, _, paragraphs in [*ARTICLES, LEGACY]:
        text = docs[url]
        for paragraph in paragraphs:
            assert paragraph in text, (extractor, url)
        for chrome in [*CHROME_LINES, "Related story number", "do not extract me", "color: #333"]:
            assert chrome not in text, (extractor, url, chrome)
        lines = {line.strip() for line in text.split("\n")}
        assert not lines & set(CHROME_MENU), (extractor, url)


def test_justext_keeps_long_paragraphs_drops_link_lists():
    long_para = ("The committee met on Tuesday to discuss the budget for the coming year, and after a long "
                 "debate the members agreed that the library, the swimming pool and the school buses would "
                 "all receive more money than last year, while the road works would have to wait.")
    html = page_html("en", "Budget", [long_para, long_para.replace("Tuesday", "Friday")])
    text = web.extract(html, "justext", "en")
    assert long_para in text and "Related story number" not in text and "Careers" not in text


def test_broken_gzip_member_quarantined_and_reading_resumes(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    write_warc(path, gzip=True, truncate_last=False)
    data = bytearray(path.read_bytes())
    good = read_all(path)
    victim = next(r for r in good if r.get("url") == "https://zeitung.example.de/stadt/fahrrad"
                  and outcome(r) == "kept")
    offset = int(victim["origin"].rsplit(":", 1)[1])
    data[offset + 30:offset + 90] = b"\x00" * 60  # the member's deflate stream is now garbage
    path.write_bytes(bytes(data))
    records = read_all(path)
    broken = [r for r in records if r["kind"] == "quarantine"]
    assert len(broken) == 2 and all("broken gzip member" in r["error"] for r in broken[:1])
    assert broken[0]["line"] == offset
    kept_urls = {r["url"] for r in records if outcome(r) == "kept"}
    # the pages before and after the broken member are read
    assert "https://gazeta.example.ru/nauka/les" in kept_urls and "https://news.example.org/last" in kept_urls
    assert "https://zeitung.example.de/stadt/fahrrad" not in kept_urls


def test_stream_that_cannot_seek_reads_the_same(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    write_warc(path, gzip=True, truncate_last=True)
    data = path.read_bytes()

    class Pipe(io.RawIOBase):  # a stream that cannot seek, as some remote filesystems give
        def __init__(self, payload: bytes) -> None:
            self.inner = io.BytesIO(payload)

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            chunk = self.inner.read(len(b))
            b[:len(chunk)] = chunk
            return len(chunk)

    spec = readers.ReaderSpec(source="web", fmt="warc")
    records = list(readers.read(spec, str(path), io.BufferedReader(Pipe(data))))
    assert [(outcome(r), r.get("text")) for r in records] == [(outcome(r), r.get("text"))
                                                             for r in read_all(path)]


# ------------------------------------------------------------------------------------------------ URL rules

def test_allow_and_deny_lists(tmp_path):
    blocklist = tmp_path / "domains"
    blocklist.write_text("# UT1-style list\nspam.example\nads.example.net\n\n")
    hosts = tmp_path / "hosts"
    hosts.write_text("0.0.0.0 tracker.example.org  # a hosts file line\n127.0.0.1 localhost\n")
    urls_file = tmp_path / "urls"
    urls_file.write_text("news.example.org/ads/\n")
    files = tuple((str(p), "x") for p in (blocklist, hosts, urls_file))
    rules = urlrules.UrlRules(allow=("example.org", "journal.example.fr/culture/"), deny=("bad.example.org",),
                              deny_files=files)
    assert rules.check("https://www.example.org/a") is None
    assert rules.check("https://news.example.org/science/rivers") is None  # subdomain of a seed
    assert rules.check("https://journal.example.fr/culture/x") is None  # under an allowed prefix
    assert rules.check("https://journal.example.fr/sport/x")[0] == "url_not_allowed"
    assert rules.check("https://notexample.org/") == (
        "url_not_allowed", ("notexample.org is not under any of recipe.urls.allow (example.org, "
                           "journal.example.fr/culture/)"))
    assert rules.check("https://bad.example.org/p") == ("url_blocked", "bad.example.org (recipe.urls.deny)")
    assert rules.check("http://x.tracker.example.org/") == ("url_blocked",
                                                            f"tracker.example.org (listed in {hosts})")
    assert rules.check("https://news.example.org/ads/banner.html") == (
        "url_blocked", f"news.example.org/ads (listed in {urls_file})")
    deny_only = urlrules.UrlRules(deny_files=files[:1])
    assert deny_only.check("https://spam.example/") == ("url_blocked",
                                                        f"spam.example (listed in {blocklist})")
    assert deny_only.check("https://ham.example/") is None and deny_only.check(None) is None
    assert rules.check(None)[0] == "url_not_allowed"


def test_url_rules_in_the_reader_before_extraction(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    write_warc(path, gzip=True)
    rules = urlrules.UrlRules(allow=("example.org", "example.ru", "example.bg"), deny=("gazeta.example.ru",))
    records = read_all(path, url_rules=rules)
    by_url = {r["url"]: outcome(r) for r in records if r["kind"] == "doc" and r["url"] and r["text"] != ""
              or outcome(r).startswith("rejected:url")}
    assert by_url["https://news.example.org/science/rivers"] == "kept"
    assert by_url["https://novosti.example.bg/obshtestvo/pazar"] == "kept"
    assert by_url["https://gazeta.example.ru/nauka/les"] == "rejected:url_blocked"
    assert by_url["https://journal.example.fr/culture/bibliotheque"] == "rejected:url_not_allowed"
    assert by_url["https://shinbun.example.jp/kagaku/umi"] == "rejected:url_not_allowed"


def test_url_rules_from_card_errors(tmp_path):
    with pytest.raises(Exception, match="unknown key"):
        urlrules.from_card({"alow": ["x.org"]}, "card.yaml", tmp_path)
    with pytest.raises(Exception, match="no file"):
        urlrules.from_card({"deny_files": ["missing.txt"]}, "card.yaml", tmp_path)
    rules, normalise = urlrules.from_card({"allow": ["x.org"], "normalise": True}, "card.yaml", tmp_path)
    assert rules.allow == ("x.org",) and normalise


def test_url_rules_apply_to_other_formats_in_the_processor():
    cfg = ProcessConfig(source="s", skip=frozenset({"langid", "quality", "perplexity", "pii", "modify"}),
                        url_rules=urlrules.UrlRules(deny=("spam.example",)))
    rows = DocumentProcessor(cfg).process([
        {"id": "1", "text": "hello there", "url": "http://spam.example/x"},
        {"id": "2", "text": "hello there", "url": "http://ham.example/x"}])
    assert [(r["status"], r["reason"]) for r in rows] == [("rejected", "url_blocked"), ("kept", None)]


def test_normalised_url_key():
    assert urlrules.normalise_url("https://WWW.Example.com/a/index.html?x=1#f") == "example.com/a"
    assert urlrules.normalise_url("http://example.com/a/") == urlrules.normalise_url("http://example.com/a")
    assert urlrules.normalise_url("http://example.com/%7Euser") == "example.com/~user"
    assert urlrules.normalise_url("http://example.com:8080/") == "example.com:8080/"
    assert minhash.url_key("https://www.x.org/a/", normalise=True) == "x.org/a"
    assert minhash.url_key("https://www.x.org/a/") == "www.x.org/a/"  # ROOTS's key stays the default


@given(st.from_regex(r"https?://(www\.)?[a-z]{1,8}\.(org|com)(/[a-zA-Z0-9~%._-]{0,8}){0,3}/?",
                     fullmatch=True))
def test_normalise_url_is_idempotent(url):
    key = urlrules.normalise_url(url)
    assert key is not None and urlrules.normalise_url("http://" + key) == key


# ------------------------------------------------------------------------------------------------ boilerplate

def test_template_lines_counted_per_domain():
    nav = "Home | Products | About us | Contact | Careers"
    rows = [{"_node": rowkeys.node_text((str(i), "o")), "url": f"https://{site}/p{i}",
             "text": f"{nav}\nArticle {i} of {site} with its own words."}
            for i, site in enumerate(["a.example"] * 3 + ["b.example"] * 2)]
    for per_domain, frequent_sites in ((True, {"a.example"}), (False, {"a.example", "b.example"})):
        counts: Counter[bytes] = Counter()
        for row in rows:
            counts.update(rowkeys.template_keys(row, {}, 15, per_domain))
        frequent = {k for k, n in counts.items() if n >= 3}
        cfg = DedupConfig(template=True, template_min_count=3, template_per_domain=per_domain, near=False,
                          exact=False)
        out, _ = rowkeys.prepare([dict(r) for r in rows], cfg, {}, frequent)
        cleaned = {urlrules.domain_of(r["url"]) for r in out if nav not in r["text"]}
        assert cleaned == frequent_sites


def test_lang_hint_parsed():
    assert lang_hint(json.dumps({"html_lang": "pt-BR"})) == "pt"
    assert lang_hint(json.dumps({"html_lang": "{{lang}}"})) is None
    assert lang_hint("") is None


# ------------------------------------------------------------------------------------------------ formats

def test_html_folder_one_document_per_file(tmp_path, ws, run_cli):
    pages = ws.root / "site" / "sub"
    pages.mkdir(parents=True)
    for i, (_, lang, _, title, paras) in enumerate(ARTICLES[:3]):
        (pages / f"p{i}.html").write_text(page_html(lang, title, paras), encoding="utf-8")
    (pages / "notes.txt").write_text("not a page")
    write_card(ws, "site", "site", fmt="html", extra="recipe: {skip: [perplexity, dedup]}\n")
    rc, _out, err = run_cli("--workspace", str(ws.root), "run", "site")
    assert rc == 0, err
    stats = json.loads((ws.root / "runs" / "site" / "stats.json").read_text())
    assert stats["documents"]["input"] == 3
    kept = list(outputs.iter_kind(ws.root / "runs" / "site", "kept", ["origin", "text", "meta"]))
    assert {r["origin"] for r in kept} == {"sub/p0.html", "sub/p1.html", "sub/p2.html"}
    assert all("Careers" not in r["text"] for r in kept)


def test_wet_conversion_records_are_documents(tmp_path):
    path = tmp_path / "crawl.warc.wet.gz"
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=True)
    w.write_record(w.create_warcinfo_record("crawl.wet", {"software": "test"}))
    text = ARTICLES[0][4][0].encode("utf-8")
    rec = w.create_warc_record("https://news.example.org/science/rivers", "conversion",
                               payload=io.BytesIO(text), warc_content_type="text/plain",
                               warc_headers_dict={"WARC-Identified-Content-Language": "eng"})
    w.write_record(rec)
    path.write_bytes(buf.getvalue())
    records = read_all(path, fmt="wet")
    assert [outcome(r) for r in records] == ["rejected:not_response", "kept"]
    assert records[1]["text"] == ARTICLES[0][4][0]
    assert json.loads(records[1]["meta"])["warc_lang"] == "eng"


def test_gzip_of_whole_plain_warc_is_read(tmp_path):
    """A `.warc.gz` compressed as one stream (not per record) is still a valid gzip file: read it."""
    plain = tmp_path / "crawl.warc"
    expected = write_warc(plain, gzip=False, truncate_last=False)
    whole = tmp_path / "whole.warc.gz"
    whole.write_bytes(gzip_lib.compress(plain.read_bytes()))
    assert [outcome(r) for r in read_all(whole)] == [outcome(r) for r in read_all(plain)]
    assert len(expected) == 19


# ------------------------------------------------------------------------------------------------ a run

def test_warc_source_run_through_the_cli(tmp_path, ws, run_cli):
    (ws.root / "crawl").mkdir()
    write_warc(ws.root / "crawl" / "a.warc.gz", gzip=True)
    write_warc(ws.root / "crawl" / "b.warc", gzip=False)
    (ws.root / "blocked.txt").write_text("zeitung.example.de\n")
    write_card(ws, "crawl", "crawl/*.warc*", fmt="warc", data_extra=", extractor: trafilatura",
               extra="recipe:\n  skip: [perplexity]\n  langid_hint: true\n"
                     "  urls: {deny_files: [blocked.txt], normalise: true}\n"
                     "  dedup: {url: true, template: true, template_per_domain: true}\n")
    rc, _out, err = run_cli("--workspace", str(ws.root), "run", "crawl")
    assert rc == 0, err
    run = ws.root / "runs" / "crawl"
    stats = json.loads((run / "stats.json").read_text())
    docs = stats["documents"]
    assert docs["input"] == 38 and docs["quarantined"] == 4
    reasons = stats["reasons"]
    assert reasons["not_response"] == 2 * 7 and reasons["not_html"] == 4 and reasons["http_status"] == 4
    assert reasons["url_blocked"] == 2
    # the same pages in both files: URL dedup (normalised) keeps one of each
    assert reasons.get("duplicate_url", 0) + reasons.get("duplicate_exact", 0) + \
        reasons.get("duplicate_near", 0) >= 1 or docs["kept"] <= 5
    web_stage = next(s for s in stats["stages"] if s["stage"] == "web")
    assert web_stage["removed"] == 2 * 7 + 4 + 4 + 2
    assert stats["lang_hint"]["documents_with_hint"] >= 5
    assert stats["lang_hint"]["agree"] + stats["lang_hint"]["disagree"] == \
        stats["lang_hint"]["documents_with_hint"]
    quarantine = list(outputs.iter_kind(run, "quarantine", ["file", "line", "error"]))
    assert {Path(q["file"]).name for q in quarantine} == {"a.warc.gz", "b.warc"}
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["reader"]["extractor"] == "trafilatura"


def test_bad_extractor_is_a_user_error(ws, run_cli):
    write_card(ws, "crawl", "crawl.warc", fmt="warc", data_extra=", extractor: lynx")
    rc, out, err = run_cli("--workspace", str(ws.root), "source", "validate")
    assert rc == 2 and "extractor" in err + out


# ------------------------------------------------------------------------------------------------ the sample

def test_bundled_sample_extraction_quality_with_the_default_extractor(tmp_path):
    """The default extractor's numbers in the README, on the hand-checked sample, as a regression guard."""
    from tests.bench import web_bench

    out = tmp_path / "child.json"
    web_bench.child_roots(web.DEFAULT_EXTRACTOR, web_bench.SAMPLE, out, keep_texts=True)
    result = json.loads(out.read_text())
    assert result["pages"] == web_bench.PAGES_PER_COPY
    pages = json.loads(web_bench.ANNOTATIONS.read_text())["pages"]
    quality = web_bench.score(result["texts"], pages)
    assert quality["main_kept"] >= 0.98 and quality["chrome_dropped"] == 1.0
    # the scorer itself: a text with everything scores 1/0, an empty one 0/1
    url, want = next(iter(pages.items()))
    assert web_bench.score({url: "\n".join(want["main"] + want["chrome"])}, {url: want}) == {
        "main_kept": 1.0, "chrome_dropped": 0.0}
    assert web_bench.score({}, {url: want}) == {"main_kept": 0.0, "chrome_dropped": 1.0}


def test_lang_hint_decides_only_when_language_id_is_unsure():
    def verdict(hint_on: bool, score: float, declared: tuple[str, ...] = ()) -> tuple:
        proc = DocumentProcessor(ProcessConfig(source="s", declared=declared, langid_hint=hint_on))
        row = {"lang_predicted": "en", "lang_score": score, "lang_backend": "fasttext", "status": "pending",
               "reason": None, "detail": None, "meta": json.dumps({"html_lang": "fr-FR"})}
        proc.language_verdict(row, [])
        return row["lang"], row["lang_backend"], row["reason"]

    assert verdict(True, 0.1) == ("fr", "html_lang", None)  # unsure: the page's lang attribute decides
    assert verdict(False, 0.1) == ("en", "fasttext", "language")  # off: recorded only
    assert verdict(True, 0.99) == ("en", "fasttext", None)  # sure: the prediction stands
    assert verdict(True, 0.1, declared=("de",))[2] == "language"  # a hint outside the declared languages
