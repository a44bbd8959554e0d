"""Takedown requests: documents that must leave every future release.

Each request is one file in `governance/takedowns/` (never edited, audited like permission records),
matching a source's document by id, by URL prefix, or by text hash, so a data owner's request can be
honoured even when they only know the URL or the text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from roots.core.errors import UserError
from roots.core.workspace import Workspace
from roots.core.yamlio import load_yaml, write_yaml
from roots.governance import audit


def text_hash(text: str) -> str:
    """SHA-256 of the document text as stored in `kept/` (what `roots inspect` shows)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Takedown:
    id: str
    source: str
    doc_id: str | None
    url_prefix: str | None
    text_hash: str | None
    reason: str

    def matches(self, source: str, doc_id: str, url: str | None, text_sha: str) -> bool:
        if source != self.source:
            return False
        return bool((self.doc_id is not None and doc_id == self.doc_id)
                    or (self.url_prefix is not None and url is not None and url.startswith(self.url_prefix))
                    or (self.text_hash is not None and text_sha == self.text_hash))


def add(ws: Workspace, source: str, *, doc_id: str | None, url_prefix: str | None, text_sha: str | None,
        reason: str) -> Takedown:
    from roots.governance.catalogue import load_card

    load_card(ws, source)
    given = [v for v in (doc_id, url_prefix, text_sha) if v]
    if len(given) != 1:
        raise UserError("give exactly one of --id, --url-prefix or --text-hash.")
    if text_sha is not None and (len(text_sha) != 64 or any(c not in "0123456789abcdef" for c in text_sha)):
        raise UserError(f"--text-hash {text_sha!r} is not a SHA-256 hex digest "
                        "(64 lower-case hex characters).")
    if not reason.strip():
        raise UserError("--reason must say why the documents are taken down.")
    now = dt.datetime.now(dt.UTC)
    key = f"{source}|{doc_id}|{url_prefix}|{text_sha}|{now.isoformat()}"
    tid = f"{now.strftime('%Y%m%dT%H%M%S')}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    data: dict[str, Any] = {"id": tid, "source": source, "match": {}, "reason": reason,
                            "recorded_by": audit.actor(), "recorded_at": now.isoformat(timespec="seconds")}
    if doc_id:
        data["match"]["id"] = doc_id
    if url_prefix:
        data["match"]["url_prefix"] = url_prefix
    if text_sha:
        data["match"]["text_hash"] = text_sha
    path = ws.takedowns_dir / f"{tid}.yaml"
    write_yaml(path, data)
    audit.append(ws, "takedown.add", source, {"takedown": tid, "match": data["match"]}, files=[path])
    return _from(data)


def _from(data: dict[str, Any]) -> Takedown:
    match = data.get("match") or {}
    return Takedown(str(data["id"]), str(data["source"]), match.get("id"), match.get("url_prefix"),
                    match.get("text_hash"), str(data.get("reason", "")))


def load_all(ws: Workspace) -> list[Takedown]:
    out = []
    for path in sorted(ws.takedowns_dir.glob("*.yaml")):
        data = load_yaml(path)
        if not isinstance(data, dict) or "source" not in data or not isinstance(data.get("match"), dict):
            raise UserError(f"{path}: not a takedown record (needs `source` and `match`); file takedowns "
                            "with `roots takedown add`.")
        out.append(_from(data))
    return out
