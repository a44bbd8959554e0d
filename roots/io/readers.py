"""Turn input files into document records, one generator per card format; no Beam here.

Every record a file yields is either a document (`kind == "doc"`) or a quarantine entry (`kind ==
"quarantine"`, with the raw bytes, the line or row number and the error). Nothing is skipped
silently except blank lines in line-oriented formats, which are not documents.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from roots.io import compressed, web
from roots.io.urlrules import UrlRules

MAX_RAW_BYTES = 4096  # how much of a bad record quarantine keeps: enough to see what went wrong


@dataclass(frozen=True)
class ReaderSpec:
    source: str
    fmt: str
    text_field: str = "text"
    id_field: str | None = None
    url_field: str | None = None
    text_unit: str = "line"  # text format: "line" or "document"
    csv_delimiter: str = ","
    # Code sources (`kind: code`): a text source is a tree of files, one document per file; other formats
    # hold one file per record, its path in `path_field` (which gives the programming language).
    code: bool = False
    path_field: str = "path"
    license_field: str | None = None
    code_root: str | None = None  # tree root, so document ids and origins are paths inside the tree
    max_file_bytes: int = 1 << 20
    # Web formats (roots/io/web.py): the HTML-to-text extractor, and the card's URL rules, checked before
    # a page is decoded and extracted.
    extractor: str = web.DEFAULT_EXTRACTOR
    url_rules: UrlRules | None = None


def stable_id(source: str, origin: str) -> str:
    """Id for records without one: the same file and position always give the same id."""
    return f"{source}-{hashlib.sha1(origin.encode('utf-8')).hexdigest()[:16]}"


def quarantine(spec: ReaderSpec, path: str, line: int, raw: bytes | str, error: str) -> dict[str, Any]:
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
    return {"kind": "quarantine", "source": spec.source, "file": path, "line": line,
            "raw": bytes(data[:MAX_RAW_BYTES]), "error": error}


def _document(spec: ReaderSpec, path: str, line: int, record: dict[str, Any]) -> dict[str, Any]:
    """Build a document from a parsed record, or a quarantine entry if its text is unusable."""
    if spec.code:
        return _code_record(spec, path, line, record)
    if spec.text_field not in record:
        return quarantine(spec, path, line, _dump(record), f"no field {spec.text_field!r} in the record "
                          f"(fields: {', '.join(sorted(map(str, record))) or 'none'}); "
                          "set data.text_field in the card")
    text = record[spec.text_field]
    if not isinstance(text, str):
        return quarantine(spec, path, line, _dump(record), f"field {spec.text_field!r} is "
                          f"{type(text).__name__}, expected a string")
    origin = f"{posixpath.basename(path)}:{line}"
    doc_id = record.get(spec.id_field) if spec.id_field else None
    if spec.id_field and (doc_id is None or isinstance(doc_id, (dict, list))):
        doc_id = None
    url = record.get(spec.url_field) if spec.url_field else None
    meta = {k: v for k, v in record.items() if k not in {spec.text_field, spec.id_field, spec.url_field}}
    return {
        "kind": "doc",
        "id": str(doc_id) if doc_id is not None else stable_id(spec.source, origin),
        "text": text,
        "url": url if isinstance(url, str) else None,
        "origin": origin,
        "meta": _dump(meta) if meta else "",
    }


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str)


def read_jsonl(spec: ReaderSpec, path: str, fh: IO[bytes]) -> Iterator[dict[str, Any]]:
    for line_no, raw in enumerate(fh, start=1):
        raw = raw.rstrip(b"\r\n")
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield quarantine(spec, path, line_no, raw, f"undecodable bytes (not UTF-8) at byte {exc.start}")
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield quarantine(spec, path, line_no, raw, f"malformed JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(record, dict):
            yield quarantine(spec, path, line_no, raw, f"JSON {type(record).__name__}, expected an object")
            continue
        yield _document(spec, path, line_no, record)


def read_text(spec: ReaderSpec, path: str, fh: IO[bytes]) -> Iterator[dict[str, Any]]:
    if spec.code:
        yield read_code_file(spec, path, fh)
        return
    if spec.text_unit == "document":
        data = fh.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield quarantine(spec, path, 0, data, f"undecodable bytes (not UTF-8) at byte {exc.start}")
            return
        yield _document(spec, path, 0,
                        {"text": text} if spec.text_field == "text" else {spec.text_field: text})
        return
    for line_no, raw in enumerate(fh, start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            yield quarantine(spec, path, line_no, raw, f"undecodable bytes (not UTF-8) at byte {exc.start}")
            continue
        yield _document(spec, path, line_no, {spec.text_field: text})


def read_csv(spec: ReaderSpec, path: str, fh: IO[bytes]) -> Iterator[dict[str, Any]]:
    # surrogateescape keeps going past bad bytes; the affected rows are quarantined one by one.
    stream = io.TextIOWrapper(fh, encoding="utf-8", errors="surrogateescape", newline="")
    reader = csv.DictReader(stream, delimiter=spec.csv_delimiter)
    try:
        for row in reader:
            line_no = reader.line_num
            if None in row:
                yield quarantine(spec, path, line_no, _dump({str(k): v for k, v in row.items()}),
                                 "more cells than header columns")
                continue
            bad = next((k for k, v in row.items() if isinstance(v, str) and _has_surrogates(v)), None)
            if bad is not None:
                yield quarantine(spec, path, line_no, row[bad],
                                 f"undecodable bytes (not UTF-8) in column {bad!r}")
                continue
            yield _document(spec, path, line_no, dict(row))
    except csv.Error as exc:
        yield quarantine(spec, path, reader.line_num, b"",
                         f"CSV parse error: {exc}; the rest of the file was skipped")


def code_document(spec: ReaderSpec, doc_id: str, origin: str, file_path: str | None, content: str | bytes,
                  license_value: Any = None, meta: str = "") -> dict[str, Any]:
    """A code document: the file's exact text (no normalisation, so it round-trips byte for byte), or,
    for a binary or oversized file, an empty text and the reason (`code_binary`, `code_size`) that the
    processor rejects it with. Those are rejections, not quarantine: a binary in a source tree is not a
    broken record to fix, and the stats should count it with the other code filters."""
    data = content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass")
    error, text = None, ""
    if len(data) > spec.max_file_bytes:
        error = ["code_size", f"{len(data)} bytes > max {spec.max_file_bytes} bytes per file"]
    elif isinstance(content, str) and (nul := content.find("\x00")) >= 0:
        error = ["code_binary", f"binary file: NUL character at offset {nul}"]
    elif isinstance(content, bytes):
        decoded, why = decode_source(content)
        if decoded is None:
            error = ["code_binary", why]
        else:
            text = decoded
    else:
        text = content
    return {"kind": "doc", "id": doc_id, "text": text, "url": None, "origin": origin, "meta": meta,
            "code_path": file_path, "license": license_value, "code_error": error, "code_bytes": len(data)}


def _code_record(spec: ReaderSpec, path: str, line: int, record: dict[str, Any]) -> dict[str, Any]:
    """A record of a JSONL/Parquet/CSV/Arrow code dataset: `content` and `path` fields (names from the
    card)."""
    if spec.text_field not in record:
        return quarantine(spec, path, line, _dump(record), f"no field {spec.text_field!r} in the record "
                          f"(fields: {', '.join(sorted(map(str, record))) or 'none'}); "
                          "set data.text_field in the card")
    content = record[spec.text_field]
    if not isinstance(content, (str, bytes)):
        return quarantine(spec, path, line, _dump(record), f"field {spec.text_field!r} is "
                          f"{type(content).__name__}, expected a string or bytes")
    file_path = record.get(spec.path_field)
    doc_id = record.get(spec.id_field) if spec.id_field else None
    if doc_id is None or isinstance(doc_id, (dict, list)):
        doc_id = stable_id(spec.source, f"{posixpath.basename(path)}:{line}")
    meta = {k: v for k, v in record.items() if k not in {spec.text_field, spec.id_field, spec.license_field}}
    lic = record.get(spec.license_field) if spec.license_field else None
    doc = code_document(spec, str(doc_id), f"{posixpath.basename(path)}:{line}",
                        file_path if isinstance(file_path, str) else None, content, lic,
                        _dump(meta) if meta else "")
    url = record.get(spec.url_field) if spec.url_field else None
    doc["url"] = url if isinstance(url, str) else None
    return doc


def read_code_file(spec: ReaderSpec, path: str, fh: IO[bytes]) -> dict[str, Any]:
    """One source file, one document; its id and origin are its path inside the tree (stable across
    machines and workspaces), so `main.go` in two directories are two documents."""
    data = fh.read(spec.max_file_bytes + 1)
    size = len(data)
    if size > spec.max_file_bytes:  # count the rest without holding it: a stray 4 GB dump must not OOM
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            size += len(chunk)
        data = b""
    rel = relative_path(spec.code_root, path)
    doc = code_document(spec, stable_id(spec.source, rel), rel, rel, data)
    if size > spec.max_file_bytes:
        doc["code_error"] = ["code_size",
                             f"{size} bytes > max {spec.max_file_bytes} bytes per file (not read)"]
        doc["code_bytes"] = size
    return doc


def relative_path(root: str | None, path: str) -> str:
    if root and path.startswith(root):
        return path[len(root):].lstrip("/\\") or posixpath.basename(path)
    return path


def code_root(location: str) -> str:
    """The directory a code tree's paths are relative to: the location up to its first glob character."""
    prefix = re.match(r"[^*?\[]*", location).group(0)  # type: ignore[union-attr]
    if prefix == location and not location.endswith("/") and not _is_local_file(location):
        return location.rstrip("/") + "/"  # a directory
    return prefix if prefix.endswith("/") else posixpath.dirname(prefix) + "/"


def _is_local_file(location: str) -> bool:
    return "://" not in location and os.path.isfile(location)


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _rows_from_batches(spec: ReaderSpec, path: str, batches: Iterator[Any]) -> Iterator[dict[str, Any]]:
    row_no = 0
    for batch in batches:
        for record in batch.to_pylist():
            row_no += 1
            yield _document(spec, path, row_no, record)


def read_parquet(spec: ReaderSpec, path: str, fh: IO[bytes]) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(fh)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a corrupt file
        yield quarantine(spec, path, 0, b"", f"not a readable Parquet file: {exc}")
        return
    yield from _rows_from_batches(spec, path, pf.iter_batches(batch_size=1024))


def read_arrow_stream(spec: ReaderSpec, path: str, fh: IO[bytes]) -> Iterator[dict[str, Any]]:
    """`datasets` save_to_disk folders hold Arrow IPC *stream* files (`data-0000x-of-0000n.arrow`)."""
    import pyarrow as pa

    try:
        reader = pa.ipc.open_stream(fh)
    except pa.ArrowInvalid:
        try:
            reader = pa.ipc.open_file(pa.BufferReader(fh.read()))
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        except Exception as exc:  # noqa: BLE001 - as above, any failure means an unreadable file
            yield quarantine(spec, path, 0, b"", f"not a readable Arrow file: {exc}")
            return
        yield from _rows_from_batches(spec, path, batches)
        return
    yield from _rows_from_batches(spec, path, iter(reader))


READERS = {
    "jsonl": read_jsonl,
    "text": read_text,
    "csv": read_csv,
    "parquet": read_parquet,
    "hf": read_arrow_stream,
    "warc": web.read_warc,
    "wet": web.read_wet,
    "html": web.read_html,
}


def file_pattern(fmt: str, location: str, code: bool = False) -> str:
    """The glob Beam should match: a save_to_disk folder is read through its Arrow files, a code tree
    given as a directory through every file below it."""
    if fmt == "hf":
        return location.rstrip("/") + "/*.arrow"
    if fmt == "html" and not re.search(r"[*?\[]", location) and not _is_local_file(location):
        return location.rstrip("/") + "/**.html"  # a folder of pages, at any depth
    if code and fmt == "text" and not re.search(r"[*?\[]", location) and not _is_local_file(location):
        return location.rstrip("/") + "/**"
    return location


LINE_FORMATS = frozenset({"jsonl", "text", "csv"})
"""Formats read as a byte stream, so a compressed file of them is decompressed on the way (Parquet and
Arrow files compress inside and need random access)."""


def read(spec: ReaderSpec, path: str, fh: IO[bytes],
         sizes: dict[str, int] | None = None) -> Iterator[dict[str, Any]]:
    """The records of one input file. A gzip, bzip2, xz or zstd file of a line-oriented format is read
    through its decompressed stream (recognised by its bytes, not its name); if the stream is damaged,
    the records before the damage are kept and one quarantine entry says where reading stopped.

    `sizes`, when given, receives `text_bytes`: the decompressed bytes read from a compressed file, so
    that bytes in and bytes out compare text with text (set only for compressed files)."""
    codec = compressed.sniff(fh) if spec.fmt in LINE_FORMATS and not spec.code and fh.seekable() else None
    if codec is None:
        yield from READERS[spec.fmt](spec, path, fh)
        return
    stream = compressed.open_stream(fh, codec)
    line = 0
    try:
        for record in READERS[spec.fmt](spec, path, stream):
            line = max(line, _line_of(record))
            yield record
        if sizes is not None:
            out_at, _ = compressed.position(stream, fh)
            if out_at is not None:
                sizes["text_bytes"] = out_at
    except compressed.CORRUPT as exc:
        out_at, in_at = compressed.position(stream, fh)
        where = (f"after {out_at:,} decompressed bytes" if out_at is not None else "part way")
        where += f" (compressed byte {in_at:,})" if in_at is not None else ""
        yield quarantine(spec, path, line + 1, b"",
                         f"corrupt {codec} stream: {str(exc) or type(exc).__name__}; "
                         f"reading stopped {where}. "
                         f"The {line:,} line(s) before it were read; the rest of the file is lost: fetch or "
                         "compress it again")


def _line_of(record: dict[str, Any]) -> int:
    """The line a record came from (documents carry it in `origin`, quarantine entries in `line`)."""
    if record.get("kind") == "quarantine":
        return int(record.get("line") or 0)
    tail = str(record.get("origin") or "").rpartition(":")[2]
    return int(tail) if tail.isdigit() else 0


def decode_source(data: bytes) -> tuple[str | None, str | None]:
    """(text, None) for a UTF-8 text file, or (None, why) for a binary one (a NUL byte, or not UTF-8).

    BigQuery's `NOT binary`, which ROOTS relied on, is the same test git uses: a NUL byte. Latin-1 source
    files are rare enough that guessing their encoding is not worth mis-decoding real binaries.
    """
    nul = data.find(b"\x00")
    if nul >= 0:
        return None, f"binary file: NUL byte at offset {nul}"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"binary file: not UTF-8 at byte {exc.start}"
