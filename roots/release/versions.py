"""Versioned releases: `release/<id>/` per merge, and `release/latest` pointing at the newest.

Why: a merge used to overwrite `release/`, so the release a model was trained on vanished with the next
merge. Each merge now adds a release under its own id (UTC time of its start, then a random suffix, so
ids sort by age) and moves `latest` (a relative symlink, replaced in one rename) to the newest complete
release; old releases stay until `roots release remove ID`. A release directory appears in one rename
of its complete temporary directory, so there is nothing to repair in it; `latest` is recomputed from
the releases present whenever releases are added or removed (`refresh_latest`), so it never points at a
removed or half-written release.

A release root written before versioning (a `manifest.json` directly in `release/`) is moved under its
own id the first time a versioned merge writes there (`adopt_unversioned`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from roots.core import publishing
from roots.core.errors import UserError

LATEST = "latest"
ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")


def new_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"


def is_release(path: Path) -> bool:
    """A complete release directory (its manifest is the last file a merge writes)."""
    return (Path(path) / "manifest.json").is_file()


def release_ids(root: Path) -> list[str]:
    """Ids of the complete releases under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if ID_PATTERN.match(p.name) and p.is_dir() and not p.is_symlink() and is_release(p))


def latest_id(root: Path) -> str | None:
    link = Path(root) / LATEST
    if not link.is_symlink():
        return None
    target = os.readlink(link)
    return target if ID_PATTERN.match(target) else None


def refresh_latest(root: Path) -> str | None:
    """Point `latest` at the newest complete release (or remove it when there is none); returns its id."""
    root = Path(root)
    ids = release_ids(root)
    link = root / LATEST
    if not ids:
        if link.is_symlink():
            link.unlink()
        return None
    newest = ids[-1]
    if latest_id(root) != newest:
        tmp = root / f".{LATEST}.tmp-{uuid.uuid4().hex[:8]}"
        os.symlink(newest, tmp)
        os.replace(tmp, link)
    return newest


ADOPTING = ".adopt-"


def adopt_unversioned(root: Path) -> str | None:
    """Move a release written straight into `root` (before versioning) under an id of its own, from its
    manifest's creation time; returns that id. Its entries move one rename each into `root/.adopt-<id>`,
    the manifest last, and that folder becomes `root/<id>`: a killed adoption leaves the manifest either
    in `root` or in the folder, and the next call carries on from there."""
    root = Path(root)
    pending = sorted(root.glob(f"{ADOPTING}*")) if root.is_dir() else []
    if not pending and not is_release(root):
        return None
    if pending:
        staging = pending[0]
    else:
        try:
            created = json.loads((root / "manifest.json").read_text(encoding="utf-8")).get("created") or ""
            when = dt.datetime.fromisoformat(created).astimezone(dt.UTC)
        except (OSError, ValueError, TypeError):
            when = dt.datetime.fromtimestamp((root / "manifest.json").stat().st_mtime, dt.UTC)
        staging = root / f"{ADOPTING}{new_id(when)}"
        staging.mkdir()
    for entry in sorted(root.iterdir()):
        if (entry.name.startswith(".") or entry.name in (LATEST, "manifest.json")
                or ID_PATTERN.match(entry.name)):
            continue
        os.replace(entry, staging / entry.name)
    if (root / "manifest.json").exists():
        os.replace(root / "manifest.json", staging / "manifest.json")
    rid = staging.name[len(ADOPTING):]
    os.replace(staging, root / rid)
    refresh_latest(root)
    return rid


def publish_release(tmp: Path, root: Path, rid: str) -> Path:
    """Move the complete release `tmp` (inside `root`) to `root/<rid>` in one rename and update `latest`."""
    final = Path(root) / rid
    if final.exists():
        raise UserError(f"{final} exists already; release ids are unique, so this is another merge's "
                        "release: merge again.")
    os.replace(tmp, final)
    refresh_latest(root)
    return final


def resolve(path: Path) -> Path:
    """The release a path names: a release directory as it is, or a release root through `latest`."""
    path = Path(path)
    if is_release(path):
        return path
    if (path / LATEST).is_symlink() and is_release(path / LATEST):
        return (path / LATEST).resolve()
    return path


def describe(root: Path) -> list[dict[str, Any]]:
    """One row per release under `root`: id, creation time, documents, tokens, sources, whether latest."""
    latest = latest_id(root)
    rows = []
    for rid in release_ids(root):
        try:
            m = json.loads((Path(root) / rid / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            m = {}
        docs = m.get("documents") or {}
        tokens = m.get("tokens") or {}
        rows.append({
            "id": rid, "latest": rid == latest, "created": m.get("created", "?"),
            "documents": sum(int(v.get("train", 0)) + int(v.get("valid", 0)) for v in docs.values()),
            "tokens": sum(int(v.get("train", 0)) + int(v.get("valid", 0)) for v in tokens.values()),
            "sources": ", ".join(s.get("source", "?") for s in m.get("sources_included") or []),
        })
    return rows


def remove(root: Path, rid: str) -> str | None:
    """Remove release `rid` (moved aside in one rename, then deleted) and point `latest` at the newest
    remaining one; returns the new latest id."""
    root = Path(root)
    if not ID_PATTERN.match(rid) or not (root / rid).is_dir():
        known = ", ".join(release_ids(root)) or "none"
        raise UserError(f"no release {rid!r} in {root} (releases: {known}); `roots release list` lists them.")
    doomed = root / f".{rid}.removing-{uuid.uuid4().hex[:8]}"
    os.replace(root / rid, doomed)
    newest = refresh_latest(root)
    shutil.rmtree(doomed, ignore_errors=True)
    return newest


def clean_leftovers(root: Path) -> None:
    """Remove what killed merges and removals left in `root` (hidden temporary directories and links).
    Call it only while holding the merge lock: then no other merge is writing there."""
    root = Path(root)
    if not root.is_dir():
        return
    for p in root.iterdir():
        if p.name.startswith(".") and (publishing.TMP_MARK in p.name or ".removing-" in p.name):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
