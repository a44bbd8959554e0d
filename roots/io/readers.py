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
    # the input's root directory, so document ids and origins are paths inside it (two `a.txt` in two
    # folders of one directory source are two documents); None: the file's base name
    code_root: str | None = None
    max_file_bytes: int = 1 << 20
    # Symlinks among the matched files that lead out of `data_root` (the folder of the card's data path)
    # are read only when the card says `data.follow_symlinks: true` (see `link_problem`).
    data_root: str | None = None
    follow_symlinks: bool = False
    # Web formats (roots/io/web.py): the HTML-to-text extractor, and the card's URL rules, checked before
    # a page is decoded and extracted.
    extractor: str = web.DEFAULT_EXTRACTOR
    url_rules: UrlRules | None = None


def stable_id(source: str, origin: str) -> str:
    """Id for records without one: the same file and position always give the same id."""
    return f"{source}-{hashlib.sha1(origin.encode('utf-8')).hexdigest()[:16]}"


def quarantine(spec: ReaderSpec, path: str, line: int, raw: bytes | str, error: str) -> dict[str, Any]:
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
    return {"kind": "quarantine", "source": spec.source, "file": valid_text(path), "line": line,
            "raw": bytes(data[:MAX_RAW_BYTES]), "error": valid_text(error)}


def _document(spec: ReaderSpec, path: str, line: int, record: dict[str, Any]) -> dict[str, Any]:
    """Build a document from a parsed record, or a quarantine entry if its text is unusable.

    Whatever a record holds, the answer is one of the two: an unexpected failure while building the
    document (a value whose `str()` fails, say) quarantines that record, not the file; and every string
    field comes out valid UTF-8 (`valid_strings`), so no writer downstream fails on a lone surrogate."""
    try:
        return valid_strings(_build_document(spec, path, line, record))
    except Exception as exc:  # noqa: BLE001 - one record's failure must not end the file
        return quarantine(spec, path, line, _safe_dump(record), f"unreadable record: {_describe(exc)}")


def _build_document(spec: ReaderSpec, path: str, line: int, record: dict[str, Any]) -> dict[str, Any]:
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
    origin = f"{relative_path(spec.code_root, path) if spec.code_root else posixpath.basename(path)}:{line}"
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


def _safe_dump(obj: Any) -> bytes:
    """The raw bytes quarantine keeps of a record that failed: its JSON if that can be made, else repr."""
    try:
        return _dump(obj).encode("utf-8", "surrogatepass")
    except Exception:  # noqa: BLE001 - a record too deep or too odd for json: its repr is enough
        return repr(obj)[:MAX_RAW_BYTES].encode("utf-8", "backslashreplace")


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}" if type(exc).__name__ not in text else text[:300]


_SURROGATE = re.compile("[\ud800-\udfff]")
STRING_FIELDS = ("id", "text", "url", "meta", "origin", "code_path", "license")


def valid_text(value: str) -> str:
    """`value` with every lone surrogate (JSON's `"\\ud800"`, a Parquet string from a buggy writer)
    replaced by U+FFFD, as ftfy's normalisation would; Arrow and Parquet accept only valid UTF-8, and a
    document rejected before normalisation is written as it was read."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", value)
    return value


def valid_strings(record: dict[str, Any]) -> dict[str, Any]:
    """A document whose string fields are all valid UTF-8 (see `valid_text`)."""
    if record.get("kind") != "doc":
        return record
    for key in STRING_FIELDS:
        value = record.get(key)
        if isinstance(value, str):
            record[key] = valid_text(value)
    return record


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
        except (RecursionError, ValueError, MemoryError) as exc:  # nested too deep, a number too long
            yield quarantine(spec, path, line_no, raw, f"unparseable JSON: {_describe(exc)}")
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


CSV_FIELD_LIMIT = 1 << 30
"""Characters a CSV field may hold. Python's default (131,072) is below the document length cap (1M
characters by default), and a field over the limit ends the file; 1 G characters leaves the cap to the
length stage, where a long document is rejected with its reason instead of ending the file."""

_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def _csv_encoding(fh: IO[bytes]) -> tuple[IO[bytes], str]:
    """(stream, encoding) of a CSV: UTF-8 unless a byte-order mark says UTF-16 (as Excel writes it) or
    UTF-8 with a mark; the mark is peeked at, not consumed, so the decoder sees it and drops it."""
    stream = fh if hasattr(fh, "peek") else io.BufferedReader(fh)  # type: ignore[arg-type]
    head = stream.peek(3)[:3]  # type: ignore[attr-defined]
    return stream, next((enc for bom, enc in _BOMS if head.startswith(bom)), "utf-8")


def read_csv(spec: ReaderSpec, path: str, fh: IO[bytes]) -> Iterator[dict[str, Any]]:
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    raw_stream, encoding = _csv_encoding(fh)
    # surrogateescape keeps going past bad bytes; the affected rows are quarantined one by one.
    stream = io.TextIOWrapper(raw_stream, encoding=encoding, errors="surrogateescape", newline="")
    reader = csv.DictReader(stream, delimiter=spec.csv_delimiter)
    try:
        header = reader.fieldnames or []
    except (csv.Error, UnicodeError) as exc:
        yield quarantine(spec, path, 1, b"", f"unreadable CSV header: {_describe(exc)}; nothing read")
        return
    bad_header = [name for name in header if isinstance(name, str) and _has_surrogates(name)]
    while True:
        before = reader.line_num
        try:
            row = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeError) as exc:
            yield quarantine(spec, path, before + 1, b"", f"CSV parse error: {_describe(exc)}")
            if reader.line_num == before:  # no progress: the stream itself is stuck, stop here
                return
            continue
        line_no = reader.line_num
        if bad_header:
            yield quarantine(spec, path, line_no, _dump({str(k): v for k, v in row.items()}),
                             f"undecodable bytes (not {encoding}) in the header column(s) "
                             f"{', '.join(map(repr, bad_header))}")
            continue
        if None in row:
            yield quarantine(spec, path, line_no, _dump({str(k): v for k, v in row.items()}),
                             "more cells than header columns")
            continue
        bad = next((k for k, v in row.items() if isinstance(v, str) and _has_surrogates(v)), None)
        if bad is not None:
            yield quarantine(spec, path, line_no, row[bad],
                             f"undecodable bytes (not {encoding}) in column {bad!r}")
            continue
        yield _document(spec, path, line_no, dict(row))


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
    rel = valid_text(relative_path(spec.code_root, path))  # a file name that is not UTF-8 included
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


def link_problem(spec: ReaderSpec, path: str) -> str | None:
    """Why a matched local file is not read, or None: a dangling symlink, or one that leads out of the
    data folder while the card does not allow following it (a glob over `d/` must not read
    `/etc/passwd` through `d/link.txt`). A symlink that stays inside the folder is an ordinary file."""
    if "://" in path or spec.data_root is None:
        return None
    if os.path.islink(path) and not os.path.exists(path):
        return f"dangling symlink (points to {os.readlink(path)!r}, which does not exist)"
    if spec.follow_symlinks:
        return None
    real, root = os.path.realpath(path), os.path.realpath(spec.data_root)
    if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
        return None
    return (f"symlink leading out of the data folder {spec.data_root} (to {real}); not read. Set "
            "`data.follow_symlinks: true` in the card to read files that symlinks lead to")


def _is_local_file(location: str) -> bool:
    return "://" not in location and os.path.isfile(location)


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def read_parquet(spec: ReaderSpec, path: str, fh: IO[bytes]) -> Iterator[dict[str, Any]]:
    """Row group by row group: a row group whose pages cannot be read or decoded (a valid footer over a
    damaged body) quarantines each of its rows that was not read, by row number, and the next row group
    is read as usual; the footer says how many rows each holds, so every row is counted."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(fh)
        groups = [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a corrupt file
        yield quarantine(spec, path, 0, b"", f"not a readable Parquet file: {exc}")
        return
    first = 0
    for index, n_rows in enumerate(groups):
        done = 0
        try:
            for batch in pf.iter_batches(batch_size=1024, row_groups=[index]):
                rows = batch.to_pylist()
                for record in rows:
                    done += 1
                    yield _document(spec, path, first + done, record)
        except Exception as exc:  # noqa: BLE001 - corrupt pages raise OSError, ArrowInvalid, and more
            why = (f"row group {index} (rows {first + 1}-{first + n_rows}) is damaged: {_describe(exc)}; "
                   f"{done} of its rows were read")
            for row in range(first + done + 1, first + n_rows + 1):
                yield quarantine(spec, path, row, b"", why)
        first += n_rows


def read_arrow_stream(spec: ReaderSpec, path: str, fh: IO[bytes]) -> Iterator[dict[str, Any]]:
    """`datasets` save_to_disk folders hold Arrow IPC *stream* files (`data-0000x-of-0000n.arrow`).

    A stream cut short (a truncated copy) keeps the record batches before the cut; one quarantine entry
    says where the stream broke (a stream has no footer, so the rows after the cut cannot be counted)."""
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
    else:
        batches = iter(reader)
    row_no = 0
    try:
        for batch in batches:
            for record in batch.to_pylist():
                row_no += 1
                yield _document(spec, path, row_no, record)
    except Exception as exc:  # noqa: BLE001 - a truncated or damaged stream: ArrowInvalid, OSError...
        yield quarantine(spec, path, row_no + 1, b"",
                         f"damaged Arrow stream after row {row_no}: {_describe(exc)}; the rows before "
                         "it were read, the rest of the file is lost: copy or save it again")


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
    """The glob Beam should match: a save_to_disk folder is read through its Arrow files, a directory (a
    code tree, or a folder of text/JSONL/CSV/Parquet files) through every file below it."""
    if fmt == "hf":
        return location.rstrip("/") + "/*.arrow"
    if fmt == "html" and not re.search(r"[*?\[]", location) and not _is_local_file(location):
        return location.rstrip("/") + "/**.html"  # a folder of pages, at any depth
    if not re.search(r"[*?\[]", location) and _is_directory(location, code and fmt == "text"):
        return location.rstrip("/") + "/**"
    return location


def input_root(fmt: str, location: str) -> str | None:
    """The directory a text source's origins are relative to, when its location is a directory or a glob
    (None for a single file: its origins keep the file's base name)."""
    if file_pattern(fmt, location) == location and not re.search(r"[*?\[]", location):
        return None
    return code_root(location)


def _is_directory(location: str, code: bool) -> bool:
    """A local directory, or a remote location written with a trailing slash (or any remote location of a
    code tree, which is always a tree)."""
    if "://" not in location:
        return os.path.isdir(location) or (code and not os.path.isfile(location))
    return location.endswith("/") or code
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
    stream = fh if codec is None else compressed.open_stream(fh, codec)
    corrupt = compressed.CORRUPT if codec is not None else ()  # a plain file's OSError is no bad record
    line = 0
    try:
        for record in READERS[spec.fmt](spec, path, stream):
            line = max(line, _line_of(record))
            yield record
        if sizes is not None and codec is not None:
            out_at, _ = compressed.position(stream, fh)
            if out_at is not None:
                sizes["text_bytes"] = out_at
    except corrupt as exc:
        out_at, in_at = compressed.position(stream, fh)
        where = (f"after {out_at:,} decompressed bytes" if out_at is not None else "part way")
        where += f" (compressed byte {in_at:,})" if in_at is not None else ""
        yield quarantine(spec, path, line + 1, b"",
                         f"corrupt {codec} stream: {str(exc) or type(exc).__name__}; "
                         f"reading stopped {where}. "
                         f"The {line:,} line(s) before it were read; the rest of the file is lost: fetch or "
                         "compress it again")
    except OSError:
        raise  # the environment (a read error, a vanished file) fails the run; it is not a bad record
    except Exception as exc:  # noqa: BLE001 - whatever a format library raises, the file's reading stops
        yield quarantine(spec, path, line + 1, b"",
                         f"reading stopped: {_describe(exc)}. The {line:,} record(s) before it were read; "
                         "the rest of the file is lost")


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
