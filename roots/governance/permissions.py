"""Permission records: who allowed which source to be used, for what, until when.

Records live in `governance/permissions/<source>/<record-id>.yaml` and are never edited or deleted:
a revocation is a new record that points at the one it revokes, so the history stays readable and
the audit trail can vouch for every file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roots.core.errors import UserError
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
    digest = hashlib.sha256(f"{source}|{when.isoformat()}|{salt}".encode()).hexdigest()[:8]
    return f"{when.strftime('%Y%m%dT%H%M%S')}-{digest}"


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
    scopes = parse_scopes(scope)
    exp = parse_date(expires, "--expires") if expires else None
    granted = parse_date(granted_on, "--granted-on") if granted_on else dt.date.today()
    if exp is not None and exp < granted:
        raise UserError(f"--expires {exp} is before the grant date {granted}; check the dates.")
    now = dt.datetime.now(dt.UTC)
    rid = _record_id(source, now, granted_by)
    files: list[Path] = []
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
            shutil.copyfile(src, dest)
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
        "recorded_by": recorded_by or audit.actor(),
        "recorded_at": now.isoformat(timespec="seconds"),
    }
    path = ws.permissions_dir / source / f"{rid}.yaml"
    if path.exists():
        raise UserError(f"{path} already exists; permission records are never overwritten. Try again.")
    write_yaml(path, data)
    audit.append(ws, "permission.file", source, {"record": rid, "scope": scopes}, files=[path, *files])
    return Record(path, data)


def list_records(ws: Workspace, source: str | None = None) -> list[Record]:
    base = ws.permissions_dir
    dirs = [base / source] if source else sorted(p for p in base.glob("*") if p.is_dir())
    records = []
    for d in dirs:
        for path in sorted(d.glob("*.yaml")):
            data = load_yaml(path)
            if not isinstance(data, dict) or "id" not in data:
                raise UserError(f"{path}: not a permission record (no `id`). Restore it from version "
                                "control; records are only created by `roots permission file`.")
            records.append(Record(path, data))
    return records


def find_record(ws: Workspace, record_id: str) -> Record:
    for rec in list_records(ws):
        if rec.id == record_id:
            return rec
    raise UserError(f"no permission record with id {record_id!r}; list them with `roots permission list`.")


def revoke(ws: Workspace, record_id: str, reason: str) -> Record:
    """Append a revocation record; the original grant stays untouched."""
    target = find_record(ws, record_id)
    if target.kind != "grant":
        raise UserError(f"{record_id} is a revocation, not a grant; revoke the grant it points at.")
    if any(r.kind == "revoke" and r.data.get("revokes") == record_id
           for r in list_records(ws, target.data["source"])):
        raise UserError(f"{record_id} is already revoked.")
    if not reason.strip():
        raise UserError("--reason must say why the permission is revoked.")
    now = dt.datetime.now(dt.UTC)
    source = str(target.data["source"])
    rid = _record_id(source, now, "revoke:" + record_id)
    data = {
        "id": rid,
        "kind": "revoke",
        "source": source,
        "revokes": record_id,
        "reason": reason,
        "recorded_by": audit.actor(),
        "recorded_at": now.isoformat(timespec="seconds"),
    }
    path = ws.permissions_dir / source / f"{rid}.yaml"
    write_yaml(path, data)
    audit.append(ws, "permission.revoke", source, {"record": rid, "revokes": record_id, "reason": reason},
                 files=[path])
    return Record(path, data)
