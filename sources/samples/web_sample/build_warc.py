"""Rebuild `web_sample.warc.gz` from HTML pages of two Debian documentation packages (see README.md).

Only the HTML payloads are real pages; the HTTP and WARC headers around them are written here, with fixed
record ids and dates so the file is the same on every rebuild. Run from the repository root on a Debian
machine with the packages installed: `python sources/samples/web_sample/build_warc.py`.
"""

from __future__ import annotations

import hashlib
import io
import re
import sys
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

HERE = Path(__file__).resolve().parent
NODE = Path("/usr/share/doc/nodejs/api")  # Debian package nodejs-doc 20.x, MIT licence
LIBFFI = Path("/usr/share/doc/libffi8/html")  # Debian package libffi8 (libffi-dev docs), Expat (MIT) licence
NODE_PAGES = ["index", "synopsis", "documentation", "corepack", "embedding", "punycode", "string_decoder",
              "querystring", "debugger", "wasi", "intl", "tty", "tracing", "domain", "path"]
DATE = "2026-12-03T12:00:00Z"


def record_id(key: str) -> str:
    h = hashlib.sha1(key.encode()).hexdigest()
    return f"<urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}>"


def canonical(html: str, fallback: str) -> str:
    m = re.search(r'<link rel="canonical" href="([^"]+)"', html)
    return m.group(1) if m else fallback


def write(w: WARCWriter, kind: str, url: str, body: bytes, status: str = "200 OK",
          headers: list[tuple[str, str]] | None = None) -> None:
    extra = {"WARC-Record-ID": record_id(f"{kind} {url}"), "WARC-Date": DATE}
    if kind == "request":
        http = StatusAndHeaders(f"GET {url.split('/', 3)[-1]} HTTP/1.1", [("Host", url.split("/")[2])],
                                is_http_request=True)
        rec = w.create_warc_record(url, "request", payload=io.BytesIO(b""), http_headers=http,
                                   warc_headers_dict=extra)
    else:
        http = StatusAndHeaders(status, headers or [], protocol="HTTP/1.1")
        rec = w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http,
                                   warc_headers_dict=extra)
    w.write_record(rec)


def main() -> int:
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=True, warc_version="1.1")
    info = w.create_warcinfo_record("web_sample.warc.gz", {"software": "warcio (build_warc.py)",
                                                           "description": "roots web_sample"})
    info.rec_headers.replace_header("WARC-Record-ID", record_id("warcinfo"))
    info.rec_headers.replace_header("WARC-Date", DATE)
    w.write_record(info)
    pages = [(NODE / f"{name}.html", f"https://nodejs.org/api/{name}.html") for name in NODE_PAGES]
    pages += [(p, f"https://libffi.debian-doc.invalid/html/{p.name}") for p in sorted(LIBFFI.glob("*.html"))]
    for path, fallback in pages:
        body = path.read_bytes()
        url = canonical(body.decode("utf-8"), fallback)
        write(w, "request", url, b"")
        write(w, "response", url, body, headers=[("Content-Type", "text/html; charset=utf-8")])
    # records that are not documents, as any crawl has them
    svg = NODE / "assets" / "js-flavor-cjs.svg"
    write(w, "response", "https://nodejs.org/api/assets/js-flavor-cjs.svg", svg.read_bytes(),
          headers=[("Content-Type", "image/svg+xml")])
    css = NODE / "assets" / "style.css"
    write(w, "response", "https://nodejs.org/api/assets/style.css", css.read_bytes(),
          headers=[("Content-Type", "text/css")])
    write(w, "response", "https://nodejs.org/api/", b"", status="301 Moved Permanently",
          headers=[("Location", "https://nodejs.org/api/index.html"), ("Content-Length", "0")])
    write(w, "response", "https://nodejs.org/api/no-such-module.html", b"<html><body>404</body></html>",
          status="404 Not Found", headers=[("Content-Type", "text/html")])
    out = HERE / "web_sample.warc.gz"
    out.write_bytes(buf.getvalue())
    print(f"wrote {out} ({out.stat().st_size:,} bytes, {len(pages)} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
