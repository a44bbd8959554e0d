"""Governed changes: the edits a steward makes, each written atomically with an audit entry naming who and
why, so that `roots governance verify` keeps meaning "nothing changed behind roots' back" (issue 17).

Before, clearing a licence, killing a source or changing a threshold was a hand edit that `verify` then
reported as tampering forever, among which a real tampering hid. Now each has a command (`roots policy
allow|deny`, `roots source kill|revive`, `roots config set`), a hand edit that is legitimate is recorded
with `roots governance accept FILE --reason`, and `merge` and `publish` refuse to run while `verify`
fails (`require_intact`), unless forced, which is itself an audit entry.

A change is written over a file only when the chain vouches for the file's current content, so a command
never launders a hand edit into an audited change; and if its audit entry cannot be written (disk full),
the file is put back as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roots.core import workspace
from roots.core.errors import JobError, UserError
from roots.core.util import sha256_file
from roots.core.workspace import Workspace
from roots.core.yamlio import atomic_write_text, dump_yaml, load_yaml
from roots.governance import audit, catalogue, clearance, permissions, takedowns
from roots.governance.permissions import SCOPES


def init_workspace(path: str | os.PathLike[str], by: str | None = None) -> Workspace:
    """`roots init`: the workspace, with its roots.yaml and policy recorded in the audit trail (the files
    it creates; an existing workspace keeps its own)."""
    ws = workspace.init(path)
    recorded = audit.vouched(ws)
    fresh = [p for p in (ws.config_path, ws.policy_path) if _rel(ws, p) not in recorded]
    if fresh:
        audit.append(ws, "workspace.init", str(ws.root), files=fresh, by=by)
    return ws


def require_reason(reason: str | None, what: str = "--reason") -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise UserError(f"{what} must say why (it goes into the audit trail with who made the change).")
    return reason.strip()


def _rel(ws: Workspace, path: Path) -> str:
    return str(path.relative_to(ws.root))


def require_unchanged(ws: Workspace, path: Path) -> None:
    """Refuse to change a file whose content the chain does not vouch for (edited by hand since its last
    recorded change): the command would otherwise make the hand edit look audited."""
    table = audit.vouched(ws)
    rel = _rel(ws, path)
    if path.exists() and not audit.is_vouched(ws, path, table):
        raise UserError(f"{path} was changed outside roots since the audit trail last recorded it; "
                        f"record that edit first (`roots governance accept {rel} --reason ...`) or restore "
                        "the file, then run this command again.")


def write_governed(ws: Workspace, path: Path, text: str, action: str, target: str, details: dict[str, Any],
                   by: str | None) -> dict[str, Any]:
    """Replace `path` with `text` atomically, then append its audit entry; if the entry cannot be
    written, the old content is put back, so the change is recorded whole or not made."""
    with audit.locked(ws):
        old = path.read_bytes() if path.exists() else None
        try:
            atomic_write_text(path, text)
        except OSError as exc:
            raise audit.write_failed(path, exc, "The file is unchanged.") from None
        try:
            return audit.append(ws, action, target, details, files=[path], by=by)
        except JobError:
            if old is None:
                path.unlink(missing_ok=True)
            else:
                try:
                    atomic_write_text(path, old.decode("utf-8"))
                except OSError:
                    pass
            raise


# ------------------------------------------------------------------------------------- licence policy

def policy_change(ws: Workspace, licence: str, scopes: list[str], allow: bool, reason: str,
                  by: str | None = None) -> dict[str, Any]:
    """`roots policy allow|deny LICENCE --scope S`: the licence clears (or stops clearing) scopes S.

    Allowing a licence listed under `always_require_permission` removes it from that list (otherwise the
    allowance would have no effect); denying every scope removes the licence from `clears`."""
    reason = require_reason(reason)
    if not isinstance(licence, str) or not licence.strip() or licence != licence.strip() or any(
            ord(c) < 32 for c in licence):
        raise UserError(f"licence {licence!r}: give an SPDX licence id (e.g. CC-BY-4.0 or LicenseRef-x).")
    with audit.locked(ws):  # read, change, write and record as one step against concurrent changes
        return _policy_change(ws, licence, scopes, allow, reason, by)


def _policy_change(ws: Workspace, licence: str, scopes: list[str], allow: bool, reason: str,
                   by: str | None) -> dict[str, Any]:
    require_unchanged(ws, ws.policy_path)
    policy = clearance.load_policy(ws)
    clears: dict[str, list[str]] = {k: list(v) for k, v in (policy.get("clears") or {}).items()}
    always = list(policy.get("always_require_permission") or [])
    before = list(clears.get(licence, []))
    if allow:
        after = sorted(set(before) | set(scopes), key=SCOPES.index)
        clears[licence] = after
        if licence in always:
            always.remove(licence)
    else:
        after = [s for s in before if s not in scopes]
        if after:
            clears[licence] = after
        else:
            clears.pop(licence, None)
    if after == before and not (allow and licence in (policy.get("always_require_permission") or [])):
        raise UserError(f"the policy already {'clears' if allow else 'does not clear'} {licence} for "
                        f"{', '.join(scopes)}; nothing to change.")
    policy = {**policy, "clears": clears, "always_require_permission": always}
    write_governed(ws, ws.policy_path, dump_yaml(policy), f"policy.{'allow' if allow else 'deny'}",
                   licence, {"scopes": scopes, "before": before, "after": after, "reason": reason}, by)
    return {"licence": licence, "before": before, "after": after}


# ---------------------------------------------------------------------------------------- source state

def source_state(ws: Workspace, name: str, kill: bool, reason: str, by: str | None = None) -> catalogue.Card:
    """`roots source kill|revive NAME --reason`: the card's `status`, changed and audited."""
    reason = require_reason(reason)
    with audit.locked(ws):
        return _source_state(ws, name, kill, reason, by)


def _source_state(ws: Workspace, name: str, kill: bool, reason: str, by: str | None) -> catalogue.Card:
    card = catalogue.load_card(ws, name)
    require_unchanged(ws, card.path)
    if kill == (not card.active):
        raise UserError(f"source {name} is already {'killed' if kill else 'active'}.")
    data = dict(card.data)
    data["status"] = {"state": "killed", "reason": reason} if kill else {"state": "active"}
    problems = catalogue.check_card(card.path, data, ws)
    if problems:
        raise UserError("the card would not be valid:\n  " + "\n  ".join(map(str, problems)))
    write_governed(ws, card.path, dump_yaml(data), f"source.{'kill' if kill else 'revive'}", name,
                   {"reason": reason}, by)
    return catalogue.Card(card.path, data)


# ------------------------------------------------------------------------------------------ hand edits

def _kind_of(ws: Workspace, path: Path) -> str:
    """Which kind of governed file `path` is (for checking it before it is accepted)."""
    parent = path.parent
    if parent == ws.sources_dir and path.suffix in (".yaml", ".yml"):
        return "card"
    if path == ws.policy_path:
        return "policy"
    if path == ws.config_path:
        return "config"
    if parent.parent == ws.permissions_dir:
        return "permission"
    if parent == ws.takedowns_dir:
        return "takedown"
    if path.is_relative_to(ws.evidence_dir):
        return "evidence"
    return ""


def _check_content(ws: Workspace, path: Path, kind: str, check_config: Callable[[Path], None] | None) -> None:
    if kind == "card":
        problems = catalogue.check_card(path, load_yaml(path), ws)
        if problems:
            raise UserError("the card is not valid, so it is not accepted:\n  "
                            + "\n  ".join(map(str, problems)))
        others = [p.stem for p in catalogue.card_files(ws) if p != path]
        twins = catalogue.lookalikes(str(load_yaml(path)["name"]), others)
        if twins:
            raise UserError(f"{path}: name looks like {', '.join(twins)}; rename it before accepting it.")
    elif kind == "policy":
        clearance.load_policy(ws)
    elif kind == "config" and check_config is not None:
        check_config(path)
    elif kind == "permission":
        data = load_yaml(path)
        permissions.check_record(path, data, path.parent.name)
    elif kind == "takedown":
        data = load_yaml(path)
        if not isinstance(data, dict) or not isinstance(data.get("match"), dict):
            raise UserError(f"{path}: not a takedown record (needs `source` and `match`).")
        takedowns.check_record(path, data)


def accept(ws: Workspace, file: str, reason: str, by: str | None = None,
           check_config: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """`roots governance accept FILE --reason`: record a hand edit (or a hand deletion) of a governed file
    as legitimate. The file must be one roots governs, and its content must be valid for its kind (an
    invalid card, policy or record is refused: accepting it would only move the failure elsewhere)."""
    reason = require_reason(reason)
    raw = Path(file).expanduser()
    # a relative FILE is taken from the current directory when that lands inside the workspace, else
    # from the workspace root (`governance/policy.yaml` works from anywhere)
    candidates = [raw] if raw.is_absolute() else [Path.cwd() / raw, ws.root / raw]
    inside = [p.resolve() for p in candidates if p.resolve().is_relative_to(ws.root)]
    path = inside[0] if inside else candidates[0].resolve()
    if not path.is_relative_to(ws.root):
        raise UserError(f"{file}: not inside the workspace {ws.root}; only its governed files are accepted.")
    rel = _rel(ws, path)
    chain = audit.replay(ws)
    kind = _kind_of(ws, path)
    if not kind:
        raise UserError(f"{rel}: not a file roots governs (cards in sources/, governance/policy.yaml, "
                        "roots.yaml, records under governance/permissions/ and governance/takedowns/, "
                        "governance/evidence/).")
    previous = chain.latest.get(rel, (0, None))[1]
    if not path.exists():
        if previous is None:
            raise UserError(f"{rel}: no such file, and the audit trail does not record it.")
        return audit.append(ws, "governance.accept", rel, {"reason": reason, "previous_sha256": previous,
                                                           "removed_files": [rel]}, by=by)
    if not path.is_file():
        raise UserError(f"{rel}: not a regular file.")
    if previous is not None and previous == sha256_file(path):
        raise UserError(f"{rel}: unchanged since the audit trail last recorded it; nothing to accept.")
    _check_content(ws, path, kind, check_config)
    return audit.append(ws, "governance.accept", rel, {"reason": reason, "previous_sha256": previous},
                        files=[path], by=by)


# ----------------------------------------------------------------------------------- the release gate

def require_intact(ws: Workspace, action: str, force: str | None = None) -> audit.VerifyResult:
    """The gate at the top of `merge` and `publish`: they refuse to run while `governance verify` fails,
    because they would honour files changed behind roots' back. `force` (the reason) runs anyway and
    records that it did, with the findings, as an audit entry."""
    result = audit.verify(ws)
    if result.ok:
        return result
    findings = "\n  ".join(result.problems)
    if force is None:
        raise JobError(f"{action} refused: `roots governance verify` finds {len(result.problems)} "
                       f"problem(s):\n  {findings}\nRecord legitimate hand edits with `roots governance "
                       f"accept FILE --reason ...`, restore the others, or run `roots {action} --force "
                       "REASON` (recorded in the audit trail).")
    reason = require_reason(force, "--force")
    audit.append(ws, f"{action}.force", str(ws.root), {"reason": reason, "problems": result.problems[:50],
                                                      "problem_count": len(result.problems)})
    return result
