"""Takedown requests: documents that must leave every future release.

Each request is one file in `governance/takedowns/` (never edited, audited like permission records),
matching a source's document by id, by URL prefix, or by text hash, so a data owner's request can be
honoured even when they only know the URL or the text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from roots.core.errors import JobError, UserError
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


def build(ws: Workspace, source: str, *, doc_id: str | None, url_prefix: str | None, text_sha: str | None,
          reason: str) -> dict[str, Any]:
    """A validated takedown record, not yet filed (what `add` writes, and what `--dry-run` measures)."""
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
    return data


def add(ws: Workspace, source: str, *, doc_id: str | None, url_prefix: str | None, text_sha: str | None,
        reason: str) -> Takedown:
    """File a takedown: one record in `governance/takedowns/` and its audit entry."""
    data = build(ws, source, doc_id=doc_id, url_prefix=url_prefix, text_sha=text_sha, reason=reason)
    path = ws.takedowns_dir / f"{data['id']}.yaml"
    with audit.locked(ws):  # the record and its entry appear together; a failed entry removes the record
        try:
            write_yaml(path, data)
        except OSError as exc:
            raise audit.write_failed(path, exc, "Nothing was recorded.") from None
        try:
            audit.append(ws, "takedown.add", source, {"takedown": data["id"], "match": data["match"]},
                         files=[path])
        except JobError:
            path.unlink(missing_ok=True)
            raise
    return from_record(data)


def first_hit(takedown_list: Sequence[Takedown], source: str, doc_id: str, url: str | None,
              text: str) -> Takedown | None:
    """The first takedown of `takedown_list` that matches a document (its text is hashed only when a
    takedown matches by text hash). Every place text leaves a run (merge, publish) decides with this."""
    mine = [t for t in takedown_list if t.source == source]
    if not mine:
        return None
    sha = text_hash(text) if any(t.text_hash is not None for t in mine) else ""
    return next((t for t in mine if t.matches(source, doc_id, url, sha)), None)


def describe(t: Takedown) -> str:
    """How a takedown matches, as the steward filed it."""
    if t.doc_id is not None:
        return f"id {t.doc_id}"
    if t.url_prefix is not None:
        return f"url prefix {t.url_prefix}"
    return f"text hash {t.text_hash}"


def from_record(data: dict[str, Any]) -> Takedown:
    match = data.get("match") or {}
    return Takedown(str(data["id"]), str(data["source"]), match.get("id"), match.get("url_prefix"),
                    match.get("text_hash"), str(data.get("reason", "")))


def check_record(path: Any, data: dict[str, Any]) -> None:
    """A takedown read from disk, checked field by field: a wrong type is a UserError naming the file and
    the field (a hand-edited record must not end in a traceback, nor silently match nothing)."""
    from roots.governance.catalogue import name_problems

    def bad(field_: str, expected: str, value: Any) -> UserError:
        return UserError(f"{path}: field `{field_}` must be {expected}, got {value!r}. Takedowns are filed "
                         "with `roots takedown add`; restore this one from version control.")

    for key in ("id", "source"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise bad(key, "a non-empty string", data.get(key))
    if name_problems(data["source"]):
        raise bad("source", "a source name", data["source"])
    match = data["match"]
    given = {k: v for k, v in match.items() if v is not None}
    if len(given) != 1 or not set(given) <= {"id", "url_prefix", "text_hash"}:
        raise bad("match", "a mapping with exactly one of `id`, `url_prefix`, `text_hash`", match)
    for key, value in given.items():
        if not isinstance(value, str) or not value:
            raise bad(f"match.{key}", "a non-empty string", value)
    if not isinstance(data.get("reason", ""), str):
        raise bad("reason", "a string", data.get("reason"))


def load_all(ws: Workspace) -> list[Takedown]:
    out = []
    for path in sorted(ws.takedowns_dir.glob("*.yaml")):
        data = load_yaml(path)
        if not isinstance(data, dict) or "source" not in data or not isinstance(data.get("match"), dict):
            raise UserError(f"{path}: not a takedown record (needs `source` and `match`); file takedowns "
                            "with `roots takedown add`.")
        check_record(path, data)
        out.append(from_record(data))
    return out
