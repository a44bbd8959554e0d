"""Hash-chained audit trail (`governance/audit.jsonl`).

Each entry carries the SHA-256 of the previous entry, so editing or deleting any line breaks the chain.
Entries that record a file write also carry the file's SHA-256, so a permission record or card edited
behind the tool's back is detected too: records are append-only by policy, and this makes it checkable.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roots.core.util import sha256_file
from roots.core.workspace import Workspace

GENESIS = "0" * 64


def _entry_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def actor() -> str:
    return os.environ.get("ROOTS_ACTOR") or getpass.getuser()


def _read_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def append(ws: Workspace, action: str, target: str, details: dict[str, Any] | None = None,
           files: list[Path] | None = None) -> dict[str, Any]:
    """Append one chained entry; `files` are hashed so later edits to them can be detected."""
    lines = _read_lines(ws.audit_path)
    prev = json.loads(lines[-1])["hash"] if lines else GENESIS
    entry: dict[str, Any] = {
        "seq": len(lines) + 1,
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "actor": actor(),
        "action": action,
        "target": target,
        "details": details or {},
        "files": {str(f.relative_to(ws.root)): sha256_file(f) for f in (files or [])},
        "prev": prev,
    }
    entry["hash"] = _entry_hash(entry)
    ws.audit_path.parent.mkdir(parents=True, exist_ok=True)
    with ws.audit_path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return entry


@dataclass
class VerifyResult:
    entries: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(ws: Workspace) -> VerifyResult:
    """Check the chain, then that every file the trail vouches for still has its recorded hash."""
    problems: list[str] = []
    lines = _read_lines(ws.audit_path)
    prev = GENESIS
    latest: dict[str, tuple[int, str | None]] = {}
    for n, line in enumerate(lines, start=1):
        where = f"{ws.audit_path}:{n}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            problems.append(f"{where}: not valid JSON; the entry was edited by hand.")
            prev = None  # type: ignore[assignment]
            continue
        if entry.get("seq") != n:
            problems.append(f"{where}: sequence number {entry.get('seq')} where {n} was expected "
                            "(an entry was deleted or inserted).")
        if prev is not None and entry.get("prev") != prev:
            problems.append(f"{where}: chain broken (previous-hash mismatch); an earlier entry was "
                            "edited or deleted.")
        if _entry_hash(entry) != entry.get("hash"):
            problems.append(f"{where}: entry content does not match its hash; this entry was edited.")
        prev = entry.get("hash")
        for rel, digest in (entry.get("files") or {}).items():
            latest[rel] = (n, digest)
        for rel in (entry.get("details") or {}).get("removed_files", []):
            latest[rel] = (n, None)
    for rel, (n, digest) in sorted(latest.items()):
        path = ws.root / rel
        if digest is None:
            continue
        if not path.exists():
            problems.append(f"{path}: recorded in audit entry {n} but missing; it was deleted outside roots.")
        elif sha256_file(path) != digest:
            problems.append(f"{path}: content differs from the hash recorded in audit entry {n}; "
                            "it was edited outside roots.")
    return VerifyResult(entries=len(lines), problems=problems)
