"""Web inputs: WARC (1.0/1.1, plain or gzip per record), WET, and folders of HTML files; HTML to text.

Every WARC record ends somewhere (the accounting counts records, not pages):

- a `response` record with HTTP 200 and an HTML content type is a document: its charset from the HTTP
  header, then the page's `<meta>`, then detection; its main text from the card's extractor;
- any other record is a *rejected* document with its own reason and an empty text: `not_response`
  (request, metadata, warcinfo, revisit... records), `http_status` (a 404, a redirect: the detail has the
  status and the `Location`), `not_html` (an image, a PDF), `url_not_allowed` / `url_blocked` (the source's
  URL rules, checked before the page is decoded, so a pseudo-crawl over a large WARC set does not pay
  extraction for pages it drops), `no_main_text` (the extractor found none);
- a record that cannot be read is *quarantined* with the file and its byte offset: an unparseable WARC
  header, a truncated record (fewer bytes than its Content-Length: the usual end of an interrupted
  download; the records before it are kept), a page that no candidate charset decodes, or a broken gzip
  member, after which reading resumes at the next gzip member.

Why fastwarc (resiliparse) for reading: it parses WARC in C++ and was ~3x faster than warcio on the same
file here; warcio writes the test and sample WARCs (an independent implementation checks the reader).
The extractor is `data.extractor` on the card; README "I have WARC files of these sites" gives the
measurements behind the default.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import posixpath
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import IO, Any

from roots.io.urlrules import domain_of

ReaderSpec = Any  # roots.io.readers.ReaderSpec; not imported, as readers imports this module

FORMATS = ("warc", "wet", "html")
"""The card formats this module reads (`roots.io.readers.READERS`)."""
EXTRACTORS = ("resiliparse", "trafilatura", "justext")
DEFAULT_EXTRACTOR = "resiliparse"
"""Chosen by measurement (README, `make bench`): on the hand-checked sample it kept as much main text (98.7%)
and dropped as much chrome (100%) as Trafilatura, at 6x its pages per second per core (326 against 52)."""

HTML_TYPES = ("text/html", "application/xhtml+xml")
MAX_RAW = 4096
MAX_PAGE_BYTES = 8 << 20  # larger pages are truncated captures or data dumps, not prose: quarantined
GZIP_MAGIC = b"\x1f\x8b\x08"
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""",
                           re.IGNORECASE)
_SNIFF_HTML = re.compile(rb"^\s*(<!--.*?-->\s*)*(<!doctype\s+html|<html|<head|<body)",
                         re.IGNORECASE | re.DOTALL)


# ------------------------------------------------------------------------------------------------ records

def _quarantine(spec: ReaderSpec, path: str, offset: int, raw: bytes, error: str) -> dict[str, Any]:
    # same shape as roots.io.readers.quarantine; the "line" of a WARC record is its byte offset
    return {"kind": "quarantine", "source": spec.source, "file": path, "line": offset,
            "raw": bytes(raw[:MAX_RAW]), "error": f"{error} (byte offset {offset:,} of {path})"}


def _doc_id(spec: ReaderSpec, record_id: str | None, origin: str) -> str:
    if record_id:
        return record_id.strip("<>").removeprefix("urn:uuid:")
    return f"{spec.source}-{hashlib.sha1(origin.encode('utf-8')).hexdigest()[:16]}"


def _meta(fields: dict[str, Any]) -> str:
    data = {k: v for k, v in fields.items() if v not in (None, "")}
    return json.dumps(data, ensure_ascii=False, sort_keys=True, default=str) if data else ""


def rejected(doc_id: str, origin: str, url: str | None, meta: dict[str, Any], reason: str,
             detail: str) -> dict[str, Any]:
    """A record that is not a document: kept in the accounting as a rejection with an empty text (the
    processor turns `reject` into the row's reason and detail)."""
    return {"kind": "doc", "id": doc_id, "text": "", "url": url, "origin": origin, "meta": _meta(meta),
            "reject": [reason, detail]}


# ------------------------------------------------------------------------------------------------ charset

def _valid_codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None


def meta_charset(data: bytes) -> str | None:
    """The charset a page declares in `<meta charset>` or `<meta http-equiv content="...; charset=">`."""
    m = _META_CHARSET.search(data[:16384])
    return _valid_codec(m.group(1).decode("ascii", "replace")) if m else None


def decode_page(data: bytes, header_charset: str | None) -> tuple[str | None, str]:
    """(text, charset used) or (None, why). Candidates in order: the HTTP header, `<meta>`, a byte order
    mark, detection (resiliparse's, trained on web pages). A candidate must decode the bytes strictly,
    and a page with NUL bytes is binary, whatever it claims."""
    if b"\x00" in data[:65536] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None, "binary content (NUL bytes) in a page labelled HTML"
    tried: list[str] = []
    candidates: list[str | None] = [_valid_codec(header_charset), meta_charset(data)]
    if data.startswith(codecs.BOM_UTF8):
        candidates.insert(0, "utf-8-sig")
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates.insert(0, "utf-16")
    for name in candidates:
        if name is None or name in tried:
            continue
        tried.append(name)
        try:
            return data.decode(name), name
        except (UnicodeDecodeError, LookupError):
            continue
    from resiliparse.parse.encoding import detect_encoding

    detected = _valid_codec(detect_encoding(data[:65536]))
    if detected and detected not in tried:
        tried.append(detected)
        try:
            return data.decode(detected), detected
        except (UnicodeDecodeError, LookupError):
            pass
    return None, f"undecodable page: not valid in any candidate charset ({', '.join(tried) or 'none'})"


# ------------------------------------------------------------------------------------------------ extraction

def page_info(html: str) -> tuple[str | None, str | None]:
    """(title, `lang` attribute of <html>) through resiliparse's parser (lexbor; ~0.1 ms a page)."""
    from resiliparse.parse.html import HTMLTree

    tree = HTMLTree.parse(html)
    root = tree.document.query_selector("html") if tree.document is not None else None
    lang = root.getattr("lang") if root is not None else None
    title = (tree.title or "").strip() or None
    return title, (lang.strip() or None) if lang else None


CHROME_TOKENS = frozenset({"nav", "navbar", "navigation", "menu", "breadcrumb", "breadcrumbs", "pagination",
                           "pager", "sidebar", "header", "footer", "cookie", "cookies", "consent", "social",
                           "share"})
"""Class or id words of page chrome. Resiliparse's main-content rules drop <nav>, <footer> and many such
blocks already; some sites mark theirs only by class (texinfo's `nav-panel`, a `cookie-consent` div), so
those are removed first. Measured on the hand-checked sample (README): chrome dropped 55% -> 100%, main
text unchanged (98.7%), at ~6 ms a large page."""
_WORDS = re.compile(r"[\s_-]+")


def _strip_chrome(tree: Any) -> None:
    """Remove elements whose class or id names them as chrome, unless one holds most of the page's text
    (a `<div class="has-sidebar">` around the whole article must stay).

    A hand-written walk, not `query_selector_all`: iterating resiliparse's node collections costs O(n) per
    item (1 s for the ~560 classed elements of one Node.js docs page), a walk ~3 ms for all of them."""
    body = tree.body
    if body is None:
        return
    total = len(body.text or "")
    doomed = []
    stack = [body]
    while stack:
        el = stack.pop()
        child = el.first_element_child
        while child is not None:
            names = f"{child.class_name or ''} {child.id or ''}"
            if names.strip() and set(_WORDS.split(names.lower())) & CHROME_TOKENS \
                    and len(child.text or "") < 0.5 * total:
                doomed.append(child)  # its subtree goes with it: not walked
            else:
                stack.append(child)
            child = child.next_element_sibling
    for el in doomed:
        el.decompose()


def _resiliparse(html: str, lang: str | None) -> str:
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    tree = HTMLTree.parse(html)
    _strip_chrome(tree)
    return extract_plain_text(tree, main_content=True, alt_texts=False, list_bullets=False, links=False,
                              form_fields=False, noscript=False)


def _trafilatura(html: str, lang: str | None) -> str:
    import trafilatura

    # datatrove's (FineWeb's) settings: precision over recall, no comments, no images
    return trafilatura.extract(html, favor_precision=True, include_comments=False, include_images=False,
                               deduplicate=True) or ""


_JUSTEXT_LANGS = {"en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian",
                  "pt": "Portuguese", "nl": "Dutch", "ru": "Russian", "pl": "Polish", "cs": "Czech",
                  "sv": "Swedish", "fi": "Finnish", "da": "Danish", "tr": "Turkish", "ar": "Arabic",
                  "el": "Greek", "hu": "Hungarian", "ro": "Romanian", "uk": "Ukrainian", "ca": "Catalan",
                  "id": "Indonesian", "vi": "Vietnamese", "bg": "Bulgarian", "hr": "Croatian"}


@lru_cache(maxsize=64)
def _stoplist(lang: str | None) -> frozenset[str]:
    import justext

    name = _JUSTEXT_LANGS.get((lang or "").split("-")[0].lower())
    return frozenset(justext.get_stoplist(name)) if name else frozenset()


def _justext(html: str, lang: str | None) -> str:
    import justext

    stoplist = _stoplist(lang)
    # without a stop-word list for the page's language, jusText's language-independent mode (its docs):
    # stop-word densities set to 0, so only length and link density classify a paragraph
    kwargs = {} if stoplist else {"stopwords_low": 0.0, "stopwords_high": 0.0}
    paragraphs = justext.justext(html.encode("utf-8"), stoplist, encoding="utf-8", **kwargs)
    return "\n".join(p.text for p in paragraphs if not p.is_boilerplate)


EXTRACT: dict[str, Callable[[str, str | None], str]] = {
    "resiliparse": _resiliparse, "trafilatura": _trafilatura, "justext": _justext}


def extract(html: str, extractor: str = DEFAULT_EXTRACTOR, lang: str | None = None) -> str:
    """Main text of a page; an extractor that fails on a page yields no text (the page is then rejected
    as `no_main_text` with the error), never a crashed worker."""
    return EXTRACT[extractor](html, lang).strip()


# ------------------------------------------------------------------------------------------------ pages

def _page(spec: ReaderSpec, doc_id: str, origin: str, url: str | None, data: bytes,
          header_charset: str | None, meta: dict[str, Any], path: str, offset: int) -> dict[str, Any]:
    """One HTML page to a document (or a quarantine entry / rejection)."""
    if len(data) > MAX_PAGE_BYTES:
        return _quarantine(spec, path, offset, data, f"page of {len(data):,} bytes > {MAX_PAGE_BYTES:,}")
    html, charset = decode_page(data, header_charset)
    if html is None:
        return _quarantine(spec, path, offset, data, charset)
    meta["charset"] = charset
    try:
        title, lang = page_info(html)
        meta.update(title=title, html_lang=lang)
        text = extract(html, spec.extractor, lang)
    except Exception as exc:  # noqa: BLE001 - any extractor failure is this page's problem, not the run's
        return rejected(doc_id, origin, url, meta, "no_main_text", f"{spec.extractor} failed: {exc}"[:300])
    if not text:
        return rejected(doc_id, origin, url, meta, "no_main_text",
                        f"{spec.extractor} found no main text in {len(data):,} bytes of HTML")
    return {"kind": "doc", "id": doc_id, "text": text, "url": url, "origin": origin, "meta": _meta(meta)}


def _is_html(content_type: str | None, data: bytes) -> bool:
    if content_type:
        return content_type.split(";")[0].strip().lower() in HTML_TYPES
    return bool(_SNIFF_HTML.match(data[:1024]))  # no Content-Type: sniff, as browsers do


def _records(path: str, fh: IO[bytes], parse_http: bool) -> Iterator[tuple[Any, int] | tuple[None, str]]:
    """(record, offset) for every WARC record, or (None, "offset\x1ferror") for a broken gzip member,
    which is skipped by resuming at the next gzip member.

    fastwarc needs a stream it can seek (it panics otherwise), and so does resuming; a stream that cannot
    seek is first copied to a temporary file (on disk: memory stays flat whatever the file's size)."""
    from fastwarc.warc import ArchiveIterator

    original = fh
    if not fh.seekable():
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the generator ends (below)
        shutil.copyfileobj(fh, spool, 1 << 20)
        spool.seek(0)
        fh = spool
    try:
        yield from _resumable(fh, parse_http, ArchiveIterator)
    finally:
        if fh is not original:
            fh.close()


def _resumable(fh: IO[bytes], parse_http: bool, archive: Any) -> Iterator[tuple[Any, int] | tuple[None, str]]:
    start = fh.tell()
    last = -1
    while True:
        try:
            for record in archive(fh, parse_http=parse_http):
                last = record.stream_pos
                yield record, last
            return
        except OSError as exc:
            broken = _next_member(fh, max(last + 1, start))
            resume = _next_member(fh, broken + 1) if broken is not None else None
            where = broken if broken is not None else max(last, 0)
            if resume is None:
                yield None, f"{where}\x1f{exc}; no gzip member after it, the rest of the file is lost"
                return
            yield None, f"{where}\x1f{exc}; reading resumed at the next gzip member (byte {resume:,})"
            fh.seek(resume)
            start = last = resume - 1


def _next_member(fh: IO[bytes], pos: int) -> int | None:
    """Offset of the next gzip member header at or after `pos`."""
    fh.seek(pos)
    carry = b""
    base = pos
    while chunk := fh.read(1 << 20):
        buf = carry + chunk
        i = buf.find(GZIP_MAGIC)
        if i >= 0:
            return base - len(carry) + i
        carry = buf[-2:]
        base += len(chunk)
    return None


def _header(record: Any, name: str) -> str | None:
    value = record.headers.get(name)
    return str(value) if value else None


def read_warc(spec: ReaderSpec, path: str, fh: IO[bytes]) -> Iterator[dict[str, Any]]:
    """A WARC file (`.warc` or `.warc.gz`, gzip recognised by its bytes): one row per record."""
    yield from _read_archive(spec, path, fh, wet=False)


def read_wet(spec: ReaderSpec, path: str, fh: IO[bytes]) -> Iterator[dict[str, Any]]:
    """A WET file (Common Crawl's extracted text): `conversion` records are the documents."""
    yield from _read_archive(spec, path, fh, wet=True)


def _read_archive(spec: ReaderSpec, path: str, fh: IO[bytes], wet: bool) -> Iterator[dict[str, Any]]:
    name = posixpath.basename(path)
    rules = spec.url_rules
    for record, where in _records(path, fh, parse_http=not wet):
        if record is None:
            offset, _, error = str(where).rpartition("\x1f")
            yield _quarantine(spec, path, int(offset or 0), b"", f"broken gzip member: {error}")
            continue
        offset = int(where)
        origin = f"{name}:{offset}"
        rtype = str(record.record_type) if record.record_type is not None else "unknown"
        record_id = _header(record, "WARC-Record-ID")
        url = _header(record, "WARC-Target-URI")
        if url:
            url = url.strip("<>")
        doc_id = _doc_id(spec, record_id, origin)
        meta: dict[str, Any] = {"warc_record_id": record_id, "fetch_date": _header(record, "WARC-Date"),
                                "domain": domain_of(url), "warc_type": rtype}
        if rtype in ("unknown", "no_type", "any_type"):
            yield _quarantine(spec, path, offset, _raw_headers(record),
                              "unparseable WARC record (no valid WARC-Type header)")
            continue
        expected = "conversion" if wet else "response"
        if rtype != expected:
            yield rejected(doc_id, origin, url, meta, "not_response",
                           f"{rtype} record; the documents of a {'WET' if wet else 'WARC'} file are its "
                           f"{expected} records")
            continue
        try:
            data = record.reader.read()
        except OSError as exc:
            yield _quarantine(spec, path, offset, b"", f"unreadable record body: {exc}")
            continue
        if len(data) < record.content_length:
            yield _quarantine(spec, path, offset, data[:MAX_RAW],
                              f"truncated record: {len(data):,} of {record.content_length:,} bytes "
                              "(an interrupted download or copy); the records before it were read")
            continue
        if wet:
            yield from _wet_record(spec, path, offset, doc_id, origin, url, data, meta, record)
            continue
        if not record.is_http or record.http_headers is None:
            yield _quarantine(spec, path, offset, data, "response record without a parseable HTTP header")
            continue
        status = record.http_headers.status_code
        meta["http_status"] = status
        if status != 200:
            location = record.http_headers.get("Location")
            detail = f"HTTP {status}" + (f" (redirect to {location})" if location else "")
            yield rejected(doc_id, origin, url, meta, "http_status", detail)
            continue
        ctype = record.http_headers.get("Content-Type")
        if not _is_html(ctype, data):
            yield rejected(doc_id, origin, url, meta, "not_html", f"Content-Type {ctype or '(none)'}")
            continue
        verdict = rules.check(url) if rules is not None else None
        if verdict is not None:
            yield rejected(doc_id, origin, url, meta, *verdict)
            continue
        yield _page(spec, doc_id, origin, url, data, record.http_charset, meta, path, offset)


def _wet_record(spec: ReaderSpec, path: str, offset: int, doc_id: str, origin: str, url: str | None,
                data: bytes, meta: dict[str, Any], record: Any) -> Iterator[dict[str, Any]]:
    meta["warc_lang"] = _header(record, "WARC-Identified-Content-Language")
    verdict = spec.url_rules.check(url) if spec.url_rules is not None else None
    if verdict is not None:
        yield rejected(doc_id, origin, url, meta, *verdict)
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield _quarantine(spec, path, offset, data, f"undecodable WET text (not UTF-8) at byte {exc.start}")
        return
    yield {"kind": "doc", "id": doc_id, "text": text.strip(), "url": url, "origin": origin,
           "meta": _meta(meta)}


def _raw_headers(record: Any) -> bytes:
    try:
        return "\n".join(f"{k}: {v}" for k, v in record.headers.items()).encode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - a record this broken has nothing better to show
        return b""


def read_html(spec: ReaderSpec, path: str, fh: IO[bytes]) -> Iterator[dict[str, Any]]:
    """One `.html` file, one document; its id and origin are its path below the folder given."""
    data = fh.read(MAX_PAGE_BYTES + 1)
    root = spec.code_root
    rel = path[len(root):].lstrip("/\\") if root and path.startswith(root) else ""
    rel = rel or posixpath.basename(path)
    doc_id = f"{spec.source}-{hashlib.sha1(rel.encode('utf-8')).hexdigest()[:16]}"
    meta: dict[str, Any] = {"file": rel}
    verdict = spec.url_rules.check(None) if spec.url_rules is not None else None
    if verdict is not None:
        yield rejected(doc_id, rel, None, meta, *verdict)
        return
    yield _page(spec, doc_id, rel, None, data, None, meta, path, 0)
