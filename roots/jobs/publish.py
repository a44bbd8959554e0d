"""`roots publish NAME --out DIR`: share one source's curated documents where its permission allows.

ROOTS released each source separately, gated, with its card. A source is published only when it is
cleared for the `release` scope (licence policy or a permission record covering release), from its
finished run: the kept documents (PII already scrubbed) as Parquet plus the dataset card, to which the
access conditions (licence, permission record ids and their conditions) are added.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from roots.core.errors import UserError
from roots.core.workspace import Workspace
from roots.core.yamlio import atomic_write_text
from roots.governance import catalogue, clearance, permissions
from roots.jobs.run import finished_manifest, publish
from roots.report import datacard


def access_conditions(ws: Workspace, card: catalogue.Card, basis: str, record: str | None) -> str:
    lines = ["\n## Access conditions\n",
             f"- Licence: `{card.license}`",
             f"- Cleared for release by: {basis}"]
    if record is not None:
        rec = next(r for r in permissions.list_records(ws, card.name) if r.id == record)
        granted = rec.data.get("granted_by") or {}
        lines.append(f"- Permission record `{rec.id}`: granted by {granted.get('name', '?')}"
                     f"{' (' + granted['organisation'] + ')' if granted.get('organisation') else ''} on "
                     f"{rec.data.get('granted_on')}, scope {', '.join(rec.scopes)}, expires "
                     f"{rec.data.get('expires') or 'never'}")
        if rec.data.get("conditions"):
            lines.append(f"- Conditions: {rec.data['conditions']}")
    lines.append("- Personal information was scrubbed before publication (tags replaced by `PI:<TAG>`, "
                 "see the processing steps); do not attempt to re-identify people in this data.")
    lines.append("- By using this dataset you agree to respect the licence and the conditions above, as "
                 "BigScience's gated ROOTS releases asked.")
    return "\n".join(lines) + "\n"


def publish_source(ws: Workspace, name: str, out: Path) -> Path:
    card = catalogue.load_card(ws, name)
    decision = next(d for d in clearance.clearance(ws, [card]) if d.scope == "release")
    if not decision.cleared:
        raise UserError(f"source {name} is not cleared for release ({decision.basis}). "
                        f"Publishing needs a licence that {ws.policy_path.name} clears for release, "
                        f"or `roots permission file {name} --scope release ...` from the data owner.")
    run_dir = ws.path_setting("runs_dir") / name
    if finished_manifest(run_dir) is None:
        raise UserError(f"source {name} has no finished run in {run_dir}; run `roots run {name}` first.")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "README.md").exists():
        raise UserError(f"{out} exists and is not an earlier publication (no README.md); "
                        "choose an empty folder.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        (tmp / "kept").mkdir(parents=True)
        for path in sorted((run_dir / "kept").glob("*.parquet")):
            shutil.copyfile(path, tmp / "kept" / path.name)
        card_text = ((run_dir / "README.md").read_text(encoding="utf-8")
                     if (run_dir / "README.md").exists() else "")
        if not card_text:
            datacard.write_data_card(run_dir, card.data)
            card_text = (run_dir / "README.md").read_text(encoding="utf-8")
        atomic_write_text(tmp / "README.md",
                          card_text + access_conditions(ws, card, decision.basis, decision.record))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish(tmp, out)
    return out
