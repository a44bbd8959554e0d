"""`roots publish NAME --out DIR`: share one source's curated documents where its permission allows.

ROOTS released each source separately, gated, with its card. A source is published only when it is
cleared for the `release` scope (licence policy or a permission record covering release), from its
finished run: the kept documents (PII already scrubbed) as Parquet plus the dataset card, to which the
access conditions (licence, permission record ids and their conditions) are added.

Takedowns are applied here as in the merge (`takedowns.first_hit`): a document taken down after its run
never leaves through a publication, and the published folder records which takedown removed how many
documents (`takedowns.json`, and a line of the card).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from roots.core import publishing
from roots.core.errors import UserError
from roots.core.workspace import Workspace
from roots.core.yamlio import atomic_write_text
from roots.governance import catalogue, changes, clearance, permissions, takedowns
from roots.jobs.run import finished_manifest
from roots.report import datacard


def takedown_note(record: dict[str, object]) -> str:
    """The card's line on takedowns: how many documents left this publication, and by which request."""
    applied = [t for t in record["takedowns"] if t["documents_removed"]]  # type: ignore[attr-defined]
    if not record["takedowns"]:
        return "\n## Takedowns\n\nNo takedown request concerns this source.\n"
    lines = [(f"\n## Takedowns\n\n{record['documents_removed']} document(s) removed before publication "
              f"({TAKEDOWNS_FILE} lists every request for this source):\n")]
    lines += [f"- `{t['id']}` ({t['match']}): {t['documents_removed']} document(s); {t['reason']}"
              for t in applied]
    return "\n".join(lines) + "\n"


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


TAKEDOWNS_FILE = "takedowns.json"


def _kept_batches(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "kept").glob("*.parquet"))


Matched = tuple[pa.RecordBatch, list[int], list[str]]
"""A record batch, the rows no takedown matches, the takedown id of each row one does."""


def _matched_batches(path: Path, source: str, mine: list[takedowns.Takedown],
                    columns: list[str] | None = None) -> Iterator[Matched]:
    """Each record batch of one kept file with (rows no takedown matches, the takedown id of each row
    one does): the one matching loop behind counting (`kept_hits`) and filtering (`copy_kept`)."""
    for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=2048, columns=columns):
        keep: list[int] = []
        hit_ids: list[str] = []
        columns_needed = (batch.column(c).to_pylist() for c in ("id", "url", "text"))
        for i, (doc_id, url, text) in enumerate(zip(*columns_needed, strict=True)):
            hit = takedowns.first_hit(mine, source, doc_id, url, text)
            if hit is None:
                keep.append(i)
            else:
                hit_ids.append(hit.id)
        yield batch, keep, hit_ids


def kept_hits(run_dir: Path, source: str, takedown_list: list[takedowns.Takedown]) -> Counter[str]:
    """{takedown id: kept documents it matches} in a finished run, reading only what matching needs."""
    hits: Counter[str] = Counter()
    mine = [t for t in takedown_list if t.source == source]
    if mine:
        for path in _kept_batches(run_dir):
            for _, _, hit_ids in _matched_batches(path, source, mine, ["id", "url", "text"]):
                hits.update(hit_ids)
    return hits


def copy_kept(run_dir: Path, dest: Path, source: str,
              takedown_list: list[takedowns.Takedown]) -> Counter[str]:
    """Copy a run's kept Parquet files to `dest`, without the documents a takedown matches; returns the
    documents removed per takedown. A source without takedowns is copied byte for byte."""
    removed: Counter[str] = Counter()
    mine = [t for t in takedown_list if t.source == source]
    for path in _kept_batches(run_dir):
        if not mine:
            shutil.copyfile(path, dest / path.name)
            continue
        schema = pq.ParquetFile(path, pre_buffer=False).schema_arrow
        with pq.ParquetWriter(dest / path.name, schema, compression="zstd", write_statistics=True) as writer:
            for batch, keep, hit_ids in _matched_batches(path, source, mine):
                removed.update(hit_ids)
                writer.write_table(pa.Table.from_batches([batch]).take(keep))
    return removed


def _takedown_record(takedown_list: list[takedowns.Takedown], source: str,
                     removed: Counter[str]) -> dict[str, object]:
    applied = [{"id": t.id, "match": takedowns.describe(t), "reason": t.reason,
                "documents_removed": removed.get(t.id, 0)}
               for t in takedown_list if t.source == source]
    return {"source": source, "documents_removed": sum(removed.values()), "takedowns": applied}


def publish_source(ws: Workspace, name: str, out: Path, force: str | None = None) -> Path:
    """`force`: the reason to publish although `governance verify` fails (recorded in the audit trail)."""
    changes.require_intact(ws, "publish", force)
    card = catalogue.load_card(ws, name)
    decision = next(d for d in clearance.clearance(ws, [card]) if d.scope == "release")
    if not decision.cleared:
        raise UserError(f"source {name} is not cleared for release ({decision.basis}). "
                        f"Publishing needs a licence that {ws.policy_path.name} clears for release, "
                        f"or `roots permission file {name} --scope release ...` from the data owner.")
    run_dir = ws.path_setting("runs_dir") / name
    out = Path(out)
    publishing.recover(out)
    # shared with merges, exclusive with a run's swap: the run read here is not replaced while it is read
    with publishing.flock(ws.root / publishing.RUNS_LOCK, exclusive=False, wait_s=None):
        return _publish_locked(ws, card, decision, name, run_dir, out)


def _publish_locked(ws: Workspace, card: catalogue.Card, decision: clearance.Decision, name: str,
                    run_dir: Path, out: Path) -> Path:
    if finished_manifest(run_dir) is None:
        raise UserError(f"source {name} has no finished run in {run_dir}; run `roots run {name}` first.")
    if out.exists() and any(out.iterdir()) and not (out / "README.md").exists():
        raise UserError(f"{out} exists and is not an earlier publication (no README.md); "
                        "choose an empty folder.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = publishing.temp_dir_for(out)
    try:
        (tmp / "kept").mkdir(parents=True)
        takedown_list = takedowns.load_all(ws)
        removed = copy_kept(run_dir, tmp / "kept", name, takedown_list)
        record = _takedown_record(takedown_list, name, removed)
        atomic_write_text(tmp / TAKEDOWNS_FILE, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        card_text = ((run_dir / "README.md").read_text(encoding="utf-8")
                     if (run_dir / "README.md").exists() else "")
        if not card_text:
            datacard.write_data_card(run_dir, card.data)
            card_text = (run_dir / "README.md").read_text(encoding="utf-8")
        atomic_write_text(tmp / "README.md",
                          card_text + access_conditions(ws, card, decision.basis, decision.record)
                          + takedown_note(record))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publishing.swap_into_place(tmp, out)
    return out
