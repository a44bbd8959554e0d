"""Hash-chained audit trail (`governance/audit.jsonl`).

Each entry carries the SHA-256 of the previous entry, so editing or deleting any line breaks the chain.
Entries that record a file write also carry the file's SHA-256, so a permission record or card edited
behind the tool's back is detected too: records are append-only by policy, and this makes it checkable.

What makes the evidence hold (issue 17):
- every governed file (cards, the licence policy, roots.yaml, permission and takedown records, evidence)
  must be vouched for by the chain: a file nobody recorded is a `verify` failure, and clearance honours
  only permission records whose content the chain vouches for (`vouched`);
- the chain's head (entry count and last hash, `head`) is written into every run and release manifest,
  and `verify` fails when the chain no longer contains a head recorded there, so cutting entries off the
  end, or rewriting the chain consistently from some point, is detected. Before the first run or merge
  nothing inside the workspace anchors the head: publish `roots governance head` elsewhere and check it
  with `roots governance verify --head N:HASH`;
- appends hold an exclusive `flock` from reading the last entry to writing the new one, so concurrent
  writers never fork the chain, and a failed write (disk full) is truncated away: the trail holds the
  whole entry or nothing.

The chain is not signed: whoever can write the workspace can append a well-formed entry. It makes
changes to history evident and attributable to the actor an entry names, not impossible.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import getpass
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roots.core.errors import JobError, UserError
from roots.core.util import sha256_file
from roots.core.workspace import Workspace

GENESIS = "0" * 64
LOCK_NAME = ".audit.lock"
GOVERNED_DIRS = ("permissions", "takedowns", "evidence")
"""Folders of governance/ whose every file must be vouched for by the chain."""
IGNORED_NAMES = (".gitkeep",)


def _entry_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def check_actor(name: str, what: str = "--by") -> str:
    """Who made a change, as it goes into the trail: a non-empty name without control characters."""
    if not isinstance(name, str) or not name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise UserError(f"{what}: {name!r} is not a usable name; give the person's name (no line breaks "
                        "or control characters).")
    return name.strip()


def actor(by: str | None = None) -> str:
    """`by` if given, else $ROOTS_ACTOR, else the login name: who a change is recorded as made by."""
    return check_actor(by or os.environ.get("ROOTS_ACTOR") or getpass.getuser(),
                       "--by" if by else "$ROOTS_ACTOR")


def _read_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not valid UTF-8 at byte {exc.start}; the audit trail was damaged "
                        "outside roots. Restore it from a backup.") from None
    return [line for line in text.splitlines() if line.strip()]


def _line_hash(line: str) -> str:
    """The hash an entry carries; for a damaged line, the hash of its text (so appending still chains)."""
    try:
        value = json.loads(line).get("hash")
        if isinstance(value, str):
            return value
    except (ValueError, AttributeError):
        pass
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


_HELD: set[Path] = set()  # workspaces whose lock this process holds (the lock is re-entrant)


@contextmanager
def locked(ws: Workspace) -> Iterator[None]:
    """An exclusive lock on the trail (`governance/.audit.lock`), for read-last-entry-then-append, and
    for a whole governed change (read the file, check it, write it, append its entry), so two concurrent
    changes never lose one another. Re-entrant within a process (a change holds it while it appends)."""
    key = ws.governance_dir.resolve()
    if key in _HELD:
        yield
        return
    ws.governance_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(ws.governance_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _HELD.add(key)
        yield
    finally:
        _HELD.discard(key)
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def reading(ws: Workspace) -> Iterator[None]:
    """A shared lock for reading the trail and the files together (`verify`), so a change half-way
    through (record written, entry not yet) is never seen. Without write access to the lock file (an
    auditor's read-only copy) it reads without one."""
    path = ws.governance_dir / LOCK_NAME
    if ws.governance_dir.resolve() in _HELD or not path.exists():
        yield
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def write_failed(path: Path, exc: OSError, undone: str) -> JobError:
    """The message for a governance write that failed (disk full, read-only...): what is left."""
    why = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    return JobError(f"could not write {path}: {why}. {undone} Free space (or fix the cause) and run the "
                    "command again.")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def append(ws: Workspace, action: str, target: str, details: dict[str, Any] | None = None,
           files: list[Path] | None = None, by: str | None = None) -> dict[str, Any]:
    """Append one chained entry; `files` are hashed so later edits to them can be detected.

    Under the trail's lock; the line is written with one O_APPEND write and fsynced, and on any failure
    the file is truncated back to its old length, so the trail holds the whole entry or nothing."""
    who = actor(by)
    with locked(ws):
        lines = _read_lines(ws.audit_path)
        entry: dict[str, Any] = {
            "seq": len(lines) + 1,
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "actor": who,
            "action": action,
            "target": target,
            "details": details or {},
            "files": {str(f.relative_to(ws.root)): sha256_file(f) for f in (files or [])},
            "prev": _line_hash(lines[-1]) if lines else GENESIS,
        }
        entry["hash"] = _entry_hash(entry)
        data = (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        fd = os.open(ws.audit_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            try:
                _write_all(fd, data)
                os.fsync(fd)
            except OSError as exc:
                try:
                    os.ftruncate(fd, size)
                    os.fsync(fd)
                except OSError:
                    pass
                raise write_failed(ws.audit_path, exc, "The audit entry was not recorded (the trail is as "
                                   "it was) and the change it described was undone.") from None
        finally:
            os.close(fd)
    return entry


def head(ws: Workspace) -> dict[str, Any]:
    """The chain's head: how many entries, and the hash of the last (GENESIS for an empty trail). Every
    run and release manifest records it (`audit_head`), and `verify` checks the chain still contains it."""
    lines = _read_lines(ws.audit_path)
    return {"entries": len(lines), "hash": _line_hash(lines[-1]) if lines else GENESIS}


def parse_head(text: str) -> dict[str, Any]:
    """`N:HASH` (as `roots governance head` prints it) as a head mapping."""
    count, _, digest = text.partition(":")
    if not count.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise UserError(f"--head {text!r}: write it as ENTRIES:HASH, as `roots governance head` prints it "
                        "(e.g. 12:3f5a...; the hash has 64 hex characters).")
    return {"entries": int(count), "hash": digest}


def governed_files(ws: Workspace) -> list[Path]:
    """Every file the chain must vouch for: cards, the policy, roots.yaml, records and evidence."""
    out: list[Path] = []
    for pattern in ("*.yaml", "*.yml"):
        out += [p for p in ws.sources_dir.glob(pattern) if p.is_file()]
    out += [p for p in (ws.policy_path, ws.config_path) if p.is_file()]
    for name in GOVERNED_DIRS:
        base = ws.governance_dir / name
        out += [p for p in base.rglob("*") if p.is_file() and p.name not in IGNORED_NAMES
                and not (p.name.startswith(".") and p.name.endswith(".tmp"))]
    return sorted(set(out))


@dataclass
class Chain:
    """The trail replayed: its entry hashes and, per file, the last entry that recorded it."""

    hashes: list[str] = field(default_factory=list)
    latest: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def replay(ws: Workspace) -> Chain:
    chain = Chain()
    lines = _read_lines(ws.audit_path)
    prev: str | None = GENESIS
    for n, line in enumerate(lines, start=1):
        where = f"{ws.audit_path}:{n}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            entry = None
        if not isinstance(entry, dict):
            chain.problems.append(f"{where}: not a JSON object; the entry was edited by hand.")
            chain.hashes.append(_line_hash(line))
            prev = None
            continue
        if entry.get("seq") != n:
            chain.problems.append(f"{where}: sequence number {entry.get('seq')} where {n} was expected "
                                  "(an entry was deleted or inserted).")
        if prev is not None and entry.get("prev") != prev:
            chain.problems.append(f"{where}: chain broken (previous-hash mismatch); an earlier entry was "
                                  "edited or deleted.")
        if _entry_hash(entry) != entry.get("hash"):
            chain.problems.append(f"{where}: entry content does not match its hash; this entry was edited.")
        prev = entry.get("hash") if isinstance(entry.get("hash"), str) else None
        chain.hashes.append(str(entry.get("hash")))
        files, details = entry.get("files"), entry.get("details")
        if not isinstance(files, dict) or not isinstance(details, dict):
            chain.problems.append(f"{where}: fields `files` and `details` must be mappings; the entry was "
                                  "edited by hand.")
            continue
        for rel, digest in files.items():
            chain.latest[str(rel)] = (n, str(digest))
        removed = details.get("removed_files") or []
        for rel in removed if isinstance(removed, list) else []:
            chain.latest[str(rel)] = (n, None)
    return chain


def revocations(ws: Workspace) -> list[dict[str, Any]]:
    """Every revocation the chain records ({"id", "source", "revokes", "reason"}), from the entries
    themselves: a revocation counts even when its record file was edited or deleted."""
    out = []
    for line in _read_lines(ws.audit_path):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        details = entry.get("details")
        if entry.get("action") == "permission.revoke" and isinstance(details, dict) and isinstance(
                details.get("revokes"), str):
            out.append({"id": str(details.get("record")), "source": str(entry.get("target")),
                        "revokes": details["revokes"], "reason": str(details.get("reason", ""))})
    return out


def vouched(ws: Workspace) -> dict[str, str]:
    """{workspace-relative path: SHA-256} of every file the chain currently vouches for."""
    return {rel: digest for rel, (_, digest) in replay(ws).latest.items() if digest is not None}


def is_vouched(ws: Workspace, path: Path, table: dict[str, str] | None = None) -> bool:
    """Whether the chain vouches for `path` as it is now (its recorded hash is its current hash)."""
    table = vouched(ws) if table is None else table
    try:
        rel = str(Path(path).relative_to(ws.root))
    except ValueError:
        return False
    return rel in table and Path(path).is_file() and sha256_file(Path(path)) == table[rel]


def manifest_heads(ws: Workspace) -> list[tuple[Path, dict[str, Any]]]:
    """(manifest, audit_head) of every run and release manifest in the workspace that records one."""
    from roots.core.config import WorkspaceConfig

    dirs = []
    for key in ("runs_dir", "release_dir"):
        try:
            dirs.append(ws.path_setting(key))
        except UserError:  # a broken roots.yaml is reported as such; look where the defaults put them
            dirs.append(ws.root / str(getattr(WorkspaceConfig(), key)))
    candidates = {*dirs[0].glob("*/manifest.json"), dirs[1] / "manifest.json",
                  *dirs[1].glob("*/manifest.json"), *ws.root.glob("*/manifest.json")}
    out = []
    for path in sorted(p for p in candidates if p.is_file()):
        try:
            recorded = json.loads(path.read_text(encoding="utf-8")).get("audit_head")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(recorded, dict):
            out.append((path, recorded))
    return out


def _head_problem(chain: Chain, recorded: dict[str, Any], where: str) -> str | None:
    count, digest = recorded.get("entries"), recorded.get("hash")
    if not isinstance(count, int) or not isinstance(digest, str):
        return f"{where}: the recorded audit head {recorded!r} is malformed; it was edited by hand."
    if count > len(chain.hashes):
        return (f"{where} recorded the audit trail at {count} entries, but it now has {len(chain.hashes)}: "
                "entries were cut off the end of the trail.")
    actual = chain.hashes[count - 1] if count else GENESIS
    if actual != digest:
        return (f"{where} recorded entry {count} of the audit trail with hash {digest[:16]}..., but that "
                f"entry now hashes to {actual[:16]}...: the trail was rewritten.")
    return None


@dataclass
class VerifyResult:
    entries: int
    problems: list[str]
    heads: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(ws: Workspace, expected_heads: list[dict[str, Any]] | None = None) -> VerifyResult:
    """Check the chain; that every file the trail vouches for still has its recorded hash; that every
    governed file is vouched for; and that the chain contains every head recorded in a manifest (and
    each of `expected_heads`, published elsewhere)."""
    with reading(ws):
        return _verify(ws, expected_heads)


def _verify(ws: Workspace, expected_heads: list[dict[str, Any]] | None) -> VerifyResult:
    chain = replay(ws)
    problems = list(chain.problems)
    for rel, (n, digest) in sorted(chain.latest.items()):
        path = ws.root / rel
        if digest is None:
            if path.exists():
                problems.append(f"{path}: recorded as removed in audit entry {n} but present; it was "
                                "restored outside roots.")
            continue
        if not path.exists():
            problems.append(f"{path}: recorded in audit entry {n} but missing; it was deleted outside roots.")
        elif sha256_file(path) != digest:
            problems.append(f"{path}: content differs from the hash recorded in audit entry {n}; "
                            "it was edited outside roots.")
    for path in governed_files(ws):
        rel = str(path.relative_to(ws.root))
        if rel not in chain.latest:
            problems.append(f"{path}: not recorded in the audit trail; it was placed outside roots and is "
                            "not honoured. If it is legitimate, record it with "
                            f"`roots governance accept {rel} --reason ...`.")
    heads = manifest_heads(ws)
    for path, recorded in heads:
        problem = _head_problem(chain, recorded, str(path))
        if problem:
            problems.append(problem)
    for recorded in expected_heads or []:
        problem = _head_problem(chain, recorded, "the head given with --head")
        if problem:
            problems.append(problem)
    return VerifyResult(entries=len(chain.hashes), problems=problems, heads=len(heads))
