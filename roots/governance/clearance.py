"""The governance gate: may this source go into a training run or a public release?

A source is cleared for a scope by the licence policy or by a valid permission record. Anything else
is not cleared, and the reason is spelled out, because the release manifest has to justify each
source that went in and each one that was left out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from roots.core.errors import UserError
from roots.core.workspace import Workspace
from roots.core.yamlio import load_yaml
from roots.governance.catalogue import Card
from roots.governance.permissions import SCOPES, Record, list_records


@dataclass(frozen=True)
class Decision:
    source: str
    scope: str
    cleared: bool
    basis: str  # "licence policy (CC0-1.0)" / "permission <id>" when cleared, else the reason
    record: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "scope": self.scope, "cleared": self.cleared, "basis": self.basis,
                "record": self.record}


def load_policy(ws: Workspace) -> dict[str, Any]:
    if not ws.policy_path.exists():
        raise UserError(f"{ws.policy_path} is missing; recreate it with `roots init {ws.root}`.")
    policy = load_yaml(ws.policy_path) or {}
    clears = policy.get("clears", {}) if isinstance(policy, dict) else None
    if not isinstance(clears, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(s, str) for s in v)
            and set(v) <= set(SCOPES) for k, v in clears.items()):
        raise UserError(f"{ws.policy_path}: field `clears` must map licence ids to lists of scopes "
                        f"({', '.join(SCOPES)}).")
    always = policy.get("always_require_permission")
    if always is not None and (not isinstance(always, list) or not all(isinstance(x, str) for x in always)):
        raise UserError(f"{ws.policy_path}: field `always_require_permission` must be a list of licence ids, "
                        f"got {always!r}.")
    return policy


def decide(card: Card, scope: str, policy: dict[str, Any], records: list[Record],
           today: dt.date | None = None) -> Decision:
    today = today or dt.date.today()
    name = card.name
    if not card.active:
        return Decision(name, scope, False, f"source killed: {card.killed_reason}")
    lic = card.license
    always = set(policy.get("always_require_permission") or [])
    if lic not in always and scope in (policy.get("clears", {}).get(lic) or []):
        return Decision(name, scope, True, f"licence policy ({lic})")
    revoked = {str(r.data.get("revokes")): r for r in records if r.kind == "revoke"}
    grants = [r for r in records if r.kind == "grant" and scope in r.scopes]
    reasons = []
    for rec in sorted(grants, key=lambda r: r.id, reverse=True):
        if rec.id in revoked:
            reasons.append(f"permission {rec.id} revoked by {revoked[rec.id].id}: "
                           f"{revoked[rec.id].data.get('reason')}")
            continue
        if rec.expires is not None and rec.expires < today:
            reasons.append(f"permission {rec.id} expired on {rec.expires.isoformat()}")
            continue
        return Decision(name, scope, True, f"permission {rec.id} granted by "
                        f"{rec.data.get('granted_by', {}).get('name', '?')}", rec.id)
    if reasons:
        return Decision(name, scope, False, "; ".join(reasons))
    known = lic in (policy.get("clears") or {}) or lic in always
    if not known:
        return Decision(name, scope, False, f"licence {lic} unknown to the policy and no permission record "
                                            f"for {scope}")
    return Decision(name, scope, False, f"licence {lic} does not clear {scope} and no permission record")


def clearance(ws: Workspace, cards: list[Card], today: dt.date | None = None) -> list[Decision]:
    policy = load_policy(ws)
    out = []
    for card in cards:
        # only records the audit chain vouches for count (issue 17): a hand-placed or hand-edited record,
        # or one whose audit entry failed, clears nothing
        records = list_records(ws, card.name, vouched_only=True)
        for scope in SCOPES:
            out.append(decide(card, scope, policy, records, today))
    return out
