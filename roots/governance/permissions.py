"""Permission records: who allowed which source to be used, for what, until when.

Records live in `governance/permissions/<source>/<record-id>.yaml` and are never edited or deleted:
a revocation is a new record that points at the one it revokes, so the history stays readable and
the audit trail can vouch for every file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roots.core import util
from roots.core.errors import JobError, UserError
from roots.core.util import sha256_file
from roots.core.workspace import Workspace
from roots.core.yamlio import load_yaml, write_yaml
from roots.governance import audit

SCOPES = ("training", "release")


def parse_date(value: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise UserError(f"{what}: {value!r} is not a valid date; "
                        "write it as YYYY-MM-DD (e.g. 2027-01-31).") from None


def parse_scopes(value: str) -> list[str]:
    scopes = [s.strip() for s in value.split(",") if s.strip()]
    bad = [s for s in scopes if s not in SCOPES]
    if not scopes or bad:
        raise UserError(f"--scope: {', '.join(bad) or 'empty'} is not a scope; use training, release "
                        "or training,release.")
    return sorted(set(scopes), key=SCOPES.index)


@dataclass(frozen=True)
class Record:
    path: Path
    data: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", "grant"))

    @property
    def scopes(self) -> list[str]:
        return list(self.data.get("scope") or [])

    @property
    def expires(self) -> dt.date | None:
        value = self.data.get("expires")
        if value in (None, ""):
            return None
        return (value if isinstance(value, dt.date)
                else parse_date(str(value), f"{self.path}: field `expires`"))


def _record_id(source: str, when: dt.datetime, salt: str) -> str:
    """Time, then 8 hex digits of a hash that includes a random part: two records filed in the same
    second (20 parallel `permission file`) never share an id, so one never replaces the other."""
    digest = hashlib.sha256(f"{source}|{when.isoformat()}|{salt}|{uuid.uuid4().hex}".encode()).hexdigest()[:8]
    return f"{when.strftime('%Y%m%dT%H%M%S')}-{digest}"


RECORD_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def _is_text(value: Any, optional: bool = False) -> bool:
    return (value is None and optional) or isinstance(value, str)


def check_record(path: Path, data: Any, source_dir: str) -> None:
    """A record as read from disk, checked field by field before any of it is used: a hand-edited record
    with a list where a string belongs, or a `source` that names a path (`../../..`), is a UserError
    naming the file and the field, never a traceback or a write outside the workspace."""
    from roots.governance.catalogue import name_problems

    def bad(field_: str, expected: str) -> UserError:
        value = data.get(field_) if isinstance(data, dict) else data
        return UserError(f"{path}: field `{field_}` must be {expected}, got {value!r}. Records are written "
                         "by `roots permission file` and `roots permission revoke`; restore this one from "
                         "version control or the evidence.")

    if not isinstance(data, dict):
        raise bad("(top level)", "a mapping of fields")
    rid = data.get("id")
    if not isinstance(rid, str) or not RECORD_ID_RE.fullmatch(rid) or ".." in rid:
        raise bad("id", "the record id (letters, digits, '-', '_', '.')")
    if rid != path.stem:
        raise bad("id", f"the file's name ({path.stem})")
    source = data.get("source")
    if not isinstance(source, str) or name_problems(source) or source != source_dir:
        raise bad("source", f"the name of the source whose folder holds it ({source_dir!r})")
    kind = data.get("kind", "grant")
    if kind not in ("grant", "revoke"):
        raise bad("kind", "grant or revoke")
    for key in ("recorded_by", "recorded_at"):
        if not _is_text(data.get(key), optional=True) and not isinstance(data.get(key), dt.date):
            raise bad(key, "a string")
    if kind == "revoke":
        if not isinstance(data.get("revokes"), str):
            raise bad("revokes", "the id of the grant it revokes")
        if not _is_text(data.get("reason"), optional=True):
            raise bad("reason", "a string")
        return
    granted_by = data.get("granted_by")
    if not isinstance(granted_by, dict) or not isinstance(granted_by.get("name"), str) or not all(
            isinstance(v, str) for v in granted_by.values()):
        raise bad("granted_by", "a mapping with `name` (and optional `role`, `organisation`, `contact`) "
                  "as strings")
    scope = data.get("scope")
    if not isinstance(scope, list) or not scope or not all(isinstance(s, str) and s in SCOPES for s in scope):
        raise bad("scope", f"a list of scopes ({', '.join(SCOPES)})")
    for key in ("expires", "granted_on"):
        value = data.get(key)
        if value not in (None, "") and not isinstance(value, dt.date):
            if not isinstance(value, str):
                raise bad(key, "a date (YYYY-MM-DD) or empty")
            parse_date(value, f"{path}: field `{key}`")
    if not _is_text(data.get("conditions"), optional=True):
        raise bad("conditions", "a string")
    evidence = data.get("evidence")
    if evidence is not None and (not isinstance(evidence, dict)
                                 or not all(isinstance(v, str) for v in evidence.values())):
        raise bad("evidence", "a mapping of `file` and `sha256` (or `reference`) strings")


def file_permission(ws: Workspace, source: str, *, granted_by: str, scope: str, expires: str | None = None,
                    evidence: str | None = None, evidence_ref: str | None = None, role: str | None = None,
                    organisation: str | None = None, contact: str | None = None,
                    conditions: str | None = None, granted_on: str | None = None,
                    recorded_by: str | None = None) -> Record:
    """Create a grant record (copying the evidence file into governance/evidence with its hash)."""
    from roots.governance.catalogue import (
        load_card,  # local import: catalogue imports nothing from here
    )

    load_card(ws, source)
    recorded_by = audit.actor(recorded_by)
    scopes = parse_scopes(scope)
    exp = parse_date(expires, "--expires") if expires else None
    granted = parse_date(granted_on, "--granted-on") if granted_on else dt.date.today()
    if exp is not None and exp < granted:
        raise UserError(f"--expires {exp} is before the grant date {granted}; check the dates.")
    now = dt.datetime.now(dt.UTC)
    rid = _record_id(source, now, granted_by)
    files: list[Path] = []
    created: list[Path] = []  # what this call wrote, removed again if its audit entry cannot be written
    evidence_map: dict[str, Any] | None = None
    if evidence:
        src = Path(evidence).expanduser()
        if not src.is_file():
            raise UserError(f"--evidence: file {src} not found; give the path of the signed agreement or "
                            "email, or use --evidence-ref for a reference that is not a file.")
        digest = sha256_file(src)
        dest = ws.evidence_dir / f"{digest[:16]}-{src.name}"
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with util.atomic_path(dest, fsync=True) as tmp:
                    shutil.copyfile(src, tmp)
            except OSError as exc:
                raise audit.write_failed(dest, exc, "Nothing was recorded.") from None
            created.append(dest)
        evidence_map = {"file": str(dest.relative_to(ws.root)), "sha256": digest}
        files.append(dest)
    elif evidence_ref:
        evidence_map = {"reference": evidence_ref}
    data: dict[str, Any] = {
        "id": rid,
        "kind": "grant",
        "source": source,
        "granted_by": {k: v for k, v in (("name", granted_by), ("role", role), ("organisation", organisation),
                                          ("contact", contact)) if v},
        "granted_on": granted.isoformat(),
        "scope": scopes,
        "conditions": conditions or "",
        "expires": exp.isoformat() if exp else None,
        "evidence": evidence_map,
        "recorded_by": recorded_by,
        "recorded_at": now.isoformat(timespec="seconds"),
    }
    path = record_path(ws, source, rid)
    if path.exists():
        raise UserError(f"{path} already exists; permission records are never overwritten. Try again.")
    write_recorded(ws, path, data, created, "permission.file", source, {"record": rid, "scope": scopes},
                   files, recorded_by)
    return Record(path, data)


def record_path(ws: Workspace, source: str, rid: str) -> Path:
    """Where a record of `source` lives; both parts are checked names, and the result is checked to be
    inside `governance/permissions/` whatever they say."""
    from roots.governance.catalogue import check_name

    check_name(source, "record field `source`")
    if not RECORD_ID_RE.fullmatch(rid) or ".." in rid:
        raise UserError(f"record id {rid!r} is not a record id.")
    base = ws.permissions_dir.resolve()
    path = (base / source / f"{rid}.yaml").resolve()
    if not path.is_relative_to(base):
        raise UserError(f"record path {path} would be outside {base}; refused.")
    return path


def write_recorded(ws: Workspace, path: Path, data: dict[str, Any], created: list[Path], action: str,
                   target: str, details: dict[str, Any], extra_files: list[Path], by: str | None) -> None:
    """Write a record, then its audit entry; if the entry cannot be written (disk full), remove the record
    (and any evidence this call copied), so a failure leaves the whole change or nothing. A record left
    behind by a crash between the two is not honoured either: clearance counts only records the chain
    vouches for, and `verify` reports it."""
    with audit.locked(ws):  # the record and its entry appear together to other roots processes
        try:
            write_yaml(path, data)
        except OSError as exc:
            for f in created:
                f.unlink(missing_ok=True)
            raise audit.write_failed(path, exc, "Nothing was recorded.") from None
        try:
            audit.append(ws, action, target, details, files=[path, *extra_files], by=by)
        except JobError:
            for f in (path, *created):
                f.unlink(missing_ok=True)
            raise


def list_records(ws: Workspace, source: str | None = None, vouched_only: bool = False) -> list[Record]:
    """Every record (of `source`), each checked field by field (`check_record`). `vouched_only`: what
    clearance counts. Grants only when the audit chain vouches for their content (a grant placed or
    edited by hand, or one whose audit entry was never written, clears nothing); revocations always, and
    also those the chain's own entries record, so editing or deleting a revocation's file does not
    bring its grant back (restrictive records fail safe, as takedowns do)."""
    from roots.governance.catalogue import check_name

    base = ws.permissions_dir
    if source is not None:
        check_name(source)
    dirs = [base / source] if source else sorted(p for p in base.glob("*") if p.is_dir())
    table = audit.vouched(ws) if vouched_only else None
    records = []
    for d in dirs:
        for path in sorted(d.glob("*.yaml")):
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                continue
            data = load_yaml(path)
            if not isinstance(data, dict) or "id" not in data:
                raise UserError(f"{path}: not a permission record (no `id`). Restore it from version "
                                "control; records are only created by `roots permission file`.")
            check_record(path, data, d.name)
            if (table is not None and data.get("kind", "grant") == "grant"
                    and not audit.is_vouched(ws, path, table)):
                continue
            records.append(Record(path, data))
    if vouched_only:
        records += [Record(ws.audit_path, {**r, "kind": "revoke"}) for r in audit.revocations(ws)
                    if source is None or r["source"] == source]
    return records


def find_record(ws: Workspace, record_id: str) -> Record:
    for rec in list_records(ws):
        if rec.id == record_id:
            return rec
    raise UserError(f"no permission record with id {record_id!r}; list them with `roots permission list`.")


def revoke(ws: Workspace, record_id: str, reason: str, by: str | None = None) -> Record:
    """Append a revocation record; the original grant stays untouched."""
    target = find_record(ws, record_id)
    if target.kind != "grant":
        raise UserError(f"{record_id} is a revocation, not a grant; revoke the grant it points at.")
    if any(r.kind == "revoke" and r.data.get("revokes") == record_id
           for r in list_records(ws, target.data["source"])):
        raise UserError(f"{record_id} is already revoked.")
    if not reason.strip():
        raise UserError("--reason must say why the permission is revoked.")
    who = audit.actor(by)
    now = dt.datetime.now(dt.UTC)
    source = str(target.data["source"])
    rid = _record_id(source, now, "revoke:" + record_id)
    data = {
        "id": rid,
        "kind": "revoke",
        "source": source,
        "revokes": record_id,
        "reason": reason,
        "recorded_by": who,
        "recorded_at": now.isoformat(timespec="seconds"),
    }
    path = record_path(ws, source, rid)
    write_recorded(ws, path, data, [], "permission.revoke", source,
                   {"record": rid, "revokes": record_id, "reason": reason}, [], who)
    return Record(path, data)
