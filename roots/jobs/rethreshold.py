"""`roots run NAME --rethreshold`: re-apply changed thresholds to a finished run's stored statistics.

Every statistic was computed and stored for every scored document (score, then decide), so new
thresholds need no model and no recomputation: the stored language prediction, quality statistics and
perplexity are decided again with the current configuration. Documents removed for other reasons
(recipe operations, the length cap, duplicates) keep their outcome: duplicates stay decided by the dedup
stage. Documents the new thresholds admit were never seen by dedup (a filter removed them first), so
they are deduplicated here against the documents still kept and among themselves, with the source's own
dedup settings (`roots.dedup.admitted`): of a page and its mirror copy both admitted, one stays. An
admitted document that stays gets its own cluster and a fresh MinHash signature (so the merge's
cross-source dedup still sees it).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from roots.core.errors import UserError
from roots.core.schema import REDECIDED_REASONS
from roots.core.workspace import Workspace
from roots.core.yamlio import write_json
from roots.io import outputs, web
from roots.jobs.run import RunResult, compute_stats, finished_manifest, plan, publish
from roots.stages.process import DocumentProcessor


def redecide(proc: DocumentProcessor, row: dict[str, Any]) -> dict[str, Any]:
    """The row's outcome under the processor's thresholds; rows outside the threshold filters are
    unchanged."""
    if row.get("status") != "kept" and row.get("reason") not in REDECIDED_REASONS:
        return row
    out = {**row, "status": "pending", "reason": None, "detail": None}
    if out.get("lang_backend") not in (None, "declared") and out.get("lang_score") is not None:
        proc.language_verdict(out, uncovered=())
    if out["status"] == "pending":
        proc.decide(out)
    if out["status"] == "kept":
        out["cluster"] = row.get("cluster") or str(row["id"])
    else:
        out["cluster"] = None
    return out


def rethreshold(ws: Workspace, name: str, num_shards: int | None = None) -> RunResult:
    p = plan(ws, name, num_shards=num_shards)
    old = finished_manifest(p.final)
    if old is None:
        raise UserError(f"source {name} has no finished run in {p.final} to re-threshold; "
                        f"run `roots run {name}` first.")
    if old.get("input", {}).get("fingerprint") != p.fingerprint:
        raise UserError(f"the input of {name} changed since its last run; re-thresholding would "
                        f"describe data that is no longer there. Run `roots run {name}` instead.")
    t0 = time.perf_counter()
    proc = DocumentProcessor(p.cfg)
    shards = int(old.get("shards", p.shards))
    rows = ([{**r, "status": "kept", "reason": None, "detail": None}
             for r in outputs.read_kind(p.final, "kept").to_pylist()]
            + [{**r, "status": "rejected"} for r in outputs.read_kind(p.final, "rejected").to_pylist()])
    decided = [redecide(proc, row) for row in rows]
    stored = {r["id"]: r for r in outputs.read_kind(p.final, "signatures").to_pylist()}
    fresh = sign_unsigned(p, decided, stored)
    dedup_admitted(p, rows, decided, {**{i: r["signature"] for i, r in stored.items()}, **fresh})
    tmp = p.final.parent / f".{p.final.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for kind in ("kept", "rejected"):
            mine = [r for r in decided if outputs.kind_of(r) == kind]
            by_shard: dict[int, list[dict[str, Any]]] = {}
            for r in mine:
                by_shard.setdefault(outputs.shard_of(kind, r, shards), []).append(r)
            for shard, group in sorted(by_shard.items()):
                outputs.write_shard(str(tmp), kind, shard, shards, group)
        shutil.copytree(p.final / "quarantine", tmp / "quarantine")
        write_signatures(p, tmp, decided, shards, stored, fresh)
        outputs.ensure_dirs(tmp)
        old_stats = json.loads((p.final / "stats.json").read_text())
        counters = {"input_records": old_stats["documents"]["input"], "bytes_in": old_stats["bytes"]["in"]}
        unknown = [n.split(":")[0] for n in old_stats["notes"].get("langid_not_filtered", [])]
        stats = compute_stats(tmp, counters, p.cfg, unknown, time.perf_counter() - t0,
                              web_source=p.card.fmt in web.FORMATS)
        stats["rethreshold"] = {"of_run_finished": old.get("finished"), "changed": sum(
            1 for a, b in zip(rows, decided)
            if (a["status"], a.get("reason")) != (b["status"], b.get("reason")))}
        manifest = {**old, "config": _config(p), "config_hash": p.config_hash,
                    "rethreshold_of": {"finished": old.get("finished"),
                                       "config_hash": old.get("config_hash")},
                    "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "documents": stats["documents"]}
        write_json(tmp / "stats.json", stats)
        write_json(tmp / "manifest.json", manifest)
        from roots.report import datacard

        datacard.write_data_card(tmp, p.card.data)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish(tmp, p.final)
    return RunResult(name, p.final, stats)


def sign_unsigned(p: Any, decided: list[dict[str, Any]], stored: dict[str, Any]) -> dict[str, bytes]:
    """MinHash signatures of the kept documents the run has none for (those the new thresholds admit),
    computed once for both the admitted documents' dedup and the signatures table; {} without near dedup."""
    if p.dedup is None or not p.dedup.near:
        return {}
    from roots.dedup import minhash

    new = [r for r in decided if r["status"] == "kept" and r["id"] not in stored]
    if not new:
        return {}
    sigs = minhash.minhash_signatures([r["text"] for r in new], [r["lang"] for r in new],
                                      p.dedup.num_perm, p.dedup.seed, p.dedup.ngram)
    return {r["id"]: minhash.signature_to_bytes(sig) for r, sig in zip(new, sigs, strict=True)}


def dedup_admitted(p: Any, before: list[dict[str, Any]], decided: list[dict[str, Any]],
                   signatures: dict[str, bytes]) -> int:
    """Reject, as duplicates, the newly admitted documents that copy a kept document or each other;
    returns how many. Rows of `decided` are updated in place; `signatures` holds every kept document's
    signature by id (stored and freshly computed)."""
    if p.dedup is None:
        return 0
    from roots.dedup import admitted as adm

    new = [r for r, old in zip(decided, before, strict=True)
           if r["status"] == "kept" and old["status"] != "kept"]
    if not new:
        return 0
    kept = [r for r, old in zip(decided, before, strict=True)
            if r["status"] == "kept" and old["status"] == "kept"]
    dups = adm.duplicates_among_admitted(kept, new, signatures, p.dedup)
    for row in new:
        if row["id"] in dups:
            keeper, kind = dups[row["id"]]
            # the detail reads as the pipeline's (`minhash.duplicate_detail`)
            row.update(status="rejected", reason="duplicate", cluster=keeper,
                       detail=f"duplicate of {keeper} ({kind})")
    return len(dups)


def _config(p: Any) -> dict[str, Any]:
    from dataclasses import asdict

    from roots.jobs.run import _jsonable

    return _jsonable(asdict(p.cfg))


def write_signatures(p: Any, tmp: Path, decided: list[dict[str, Any]], shards: int,
                     stored: dict[str, Any], fresh: dict[str, bytes]) -> None:
    """Keep the signatures of documents still kept; add the fresh ones of documents still kept."""
    from roots.dedup import minhash

    kept = [r for r in decided if r["status"] == "kept"]
    kept_ids = {r["id"] for r in kept}
    rows = [r for i, r in stored.items() if i in kept_ids]  # in the stored table's order, as before
    rows += [{"id": r["id"], "source": r["source"], "lang": r["lang"], "cluster": r["cluster"],
              "signature": fresh[r["id"]], "num_perm": p.dedup.num_perm, "seed": p.dedup.seed,
              "ngram": p.dedup.ngram, "scheme": minhash.SCHEME}
             for r in kept if r["id"] in fresh]
    by_shard: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_shard.setdefault(outputs.shard_of("signatures", r, shards), []).append(r)
    for shard, group in sorted(by_shard.items()):
        outputs.write_shard(str(tmp), "signatures", shard, shards, group)
