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
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from roots.core import progress, publishing
from roots.core.errors import UserError
from roots.core.schema import redecided
from roots.core.workspace import Workspace
from roots.core.yamlio import write_json
from roots.governance import audit
from roots.io import outputs, web
from roots.jobs.run import RunResult, compute_stats, finished_manifest, plan, publish_run
from roots.stages.process import DocumentProcessor


def redecide(proc: DocumentProcessor, row: dict[str, Any]) -> dict[str, Any]:
    """The row's outcome under the processor's thresholds; rows outside the threshold filters are
    unchanged."""
    if row.get("status") != "kept" and not redecided(row.get("reason")):
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


def check_new_sets(cfg: Any, old_manifest: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Evaluation sets registered since the run are checked now on the stored text of every document that
    reached the scoring stages (kept, or rejected for a re-decided reason), so the new run's configuration,
    which lists them, is true; the overlaps join each row's `signals` as in a full run."""
    from roots.stages import decontam
    from roots.stages.process import set_signal, signals_of

    done = {(s["name"], s["sha256"], int(s["n"])) for s in (old_manifest.get("config") or {}).get(
        "decontam_sets") or []}
    new = [s for s in cfg.decontam_sets if s.key not in done]
    if not new or "decontam" in cfg.skip:
        return
    scored = [r for r in rows if r["status"] == "kept" or redecided(r.get("reason"))]
    for start in range(0, len(scored), 512):
        part = scored[start:start + 512]
        for row, hits in zip(part, decontam.matches_many([r["text"] for r in part], new), strict=True):
            if hits:
                set_signal(row, "contamination", {**(signals_of(row).get("contamination") or {}), **hits})


def score_new_classifiers(cfg: Any, rows: list[dict[str, Any]]) -> None:
    """Classifiers configured since the run score the documents of their language that reached the scoring
    stages and have no score from them yet (stored scores are never recomputed)."""
    from roots.stages import classifier as clf
    from roots.stages.process import set_signal, signals_of

    if "classifier" in cfg.skip or cfg.code:
        return
    scored = [r for r in rows if r["status"] == "kept" or redecided(r.get("reason"))]
    for spec in cfg.classifiers:
        todo = [r for r in scored if spec.applies(r["lang"]) and spec.column not in signals_of(r)]
        model = clf.load(spec.model_dir) if todo else None
        for start in range(0, len(todo), 512):
            part = todo[start:start + 512]
            for row, score in zip(part, model.scores([r["text"] for r in part]), strict=True):
                set_signal(row, spec.column, score)


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
    shown = progress.Progress(f"rethreshold {name}")
    old_docs = old.get("documents") or {}
    total = int(old_docs.get("kept") or 0) + int(old_docs.get("rejected") or 0)
    rows = augmented_rows(p, old)  # with the signals of evaluation sets and classifiers added since the run
    dropped, admitted, fresh = decide_all(p, proc, counted(shown, "deciding", total), rows)
    shown.phase("dedup of the admitted documents")
    dups = duplicates_of_admitted(p, dropped, admitted)
    tmp = publishing.temp_dir_for(p.final)
    tmp.mkdir()
    (tmp / ".pid").write_text(str(os.getpid()))  # a run started meanwhile sees this one alive
    try:
        changed = write_decided(p, proc, tmp, shards, dropped, fresh, dups, counted(shown, "writing", total),
                                rows)
        shown.phase("writing shards")
        outputs.consolidate(tmp, shards)
        shutil.copytree(p.final / "quarantine", tmp / "quarantine")
        outputs.ensure_dirs(tmp)
        old_stats = json.loads((p.final / "stats.json").read_text())
        counters = {"input_records": old_stats["documents"]["input"], "bytes_in": old_stats["bytes"]["in"]}
        unknown = [n.split(":")[0] for n in old_stats["notes"].get("langid_not_filtered", [])]
        stats = compute_stats(tmp, counters, p.cfg, unknown, time.perf_counter() - t0,
                              web_source=p.card.fmt in web.FORMATS)
        stats["rethreshold"] = {"of_run_finished": old.get("finished"), "changed": changed}
        manifest = {**old, "id": uuid.uuid4().hex, "config": _config(p), "config_hash": p.config_hash,
                    "rethreshold_of": {"finished": old.get("finished"),
                                       "config_hash": old.get("config_hash")},
                    "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "documents": stats["documents"], "audit_head": audit.head(ws)}
        write_json(tmp / "stats.json", stats)
        write_json(tmp / "manifest.json", manifest)
        from roots.report import datacard

        datacard.write_data_card(tmp, p.card.data)
    except BaseException:
        shown.close("failed")
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        publish_run(ws, tmp, p.final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shown.close(f"done: {changed:,} document(s) changed outcome")
    return RunResult(name, p.final, stats)


def stored_rows(final: Path) -> Iterator[dict[str, Any]]:
    """The finished run's kept and rejected rows with their outcome, streamed batch by batch."""
    for row in outputs.iter_kind(final, "kept"):
        yield {**row, "status": "kept", "reason": None, "detail": None}
    for row in outputs.iter_kind(final, "rejected"):
        yield {**row, "status": "rejected"}


def augmented_rows(p: Any, old: dict[str, Any]) -> Callable[[], Iterator[dict[str, Any]]]:
    """A pass over the stored rows, each batch given the signals a full run would now store: overlaps with
    evaluation sets registered since the run and scores of classifiers configured since (both computed
    batch by batch, so the passes stay bounded; every pass computes the same values)."""

    def rows() -> Iterator[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        for row in stored_rows(p.final):
            batch.append(row)
            if len(batch) >= 512:
                check_new_sets(p.cfg, old, batch)
                score_new_classifiers(p.cfg, batch)
                yield from batch
                batch = []
        check_new_sets(p.cfg, old, batch)
        score_new_classifiers(p.cfg, batch)
        yield from batch

    return rows


def counted(shown: progress.Progress, phase: str, total: int) -> Callable[[int], None]:
    """A progress callback for a pass over the stored rows: `done` rows of `total`."""
    return lambda done: shown.show(progress.Snapshot(phase, docs=done, docs_total=total))


def decide_all(p: Any, proc: DocumentProcessor, report: Callable[[int], None] = lambda done: None,
               rows: Callable[[], Iterator[dict[str, Any]]] | None = None,
               ) -> tuple[set[str], dict[str, dict[str, Any]], dict[str, bytes]]:
    """First pass: every stored row decided again, holding no text. Returns the ids of kept documents the
    new thresholds reject, the dedup keys (`admitted.document_keys`) of the documents they admit, and the
    admitted documents' fresh MinHash signatures (computed once, for their dedup and the signatures table;
    with the source's ngram setting; none without near dedup)."""
    from roots.dedup import admitted as adm
    from roots.dedup import minhash, rowkeys

    dropped: set[str] = set()
    keys: dict[str, dict[str, Any]] = {}
    fresh: dict[str, bytes] = {}
    batch: list[dict[str, Any]] = []

    def sign(rows: list[dict[str, Any]]) -> None:
        sigs: list[bytes | None] = [None] * len(rows)
        if p.dedup.near:
            texts = [rowkeys.signature_text(r) for r in rows]  # as the run signed (code: no licence block)
            sigs = [minhash.signature_to_bytes(sig) for sig in minhash.minhash_signatures(
                texts, [r["lang"] for r in rows], p.dedup.num_perm, p.dedup.seed, p.dedup.ngram)]
        for row, sig in zip(rows, sigs, strict=True):
            if sig is not None:
                fresh[str(row["id"])] = sig
            keys[str(row["id"])] = adm.document_keys(row, p.dedup, sig)

    for n, before in enumerate(rows() if rows else stored_rows(p.final), start=1):
        if n == 1 or n % 1024 == 0:
            report(n)
        after = redecide(proc, before)
        if before["status"] == "kept" and after["status"] != "kept":
            dropped.add(str(before["id"]))
        elif before["status"] != "kept" and after["status"] == "kept" and p.dedup is not None:
            batch.append(after)
            if len(batch) >= p.dedup.signature_batch:
                sign(batch)
                batch = []
    if batch:
        sign(batch)
    return dropped, keys, fresh


def duplicates_of_admitted(p: Any, dropped: set[str], admitted: dict[str, dict[str, Any]],
                           ) -> dict[str, tuple[str, str]]:
    """Second pass: which admitted documents copy a document still kept or each other. Only the kept
    documents that share an exact key or an LSH band with an admitted one are held (their keys), found by
    streaming the kept rows and the stored signatures."""
    if p.dedup is None or not admitted:
        return {}
    from roots.dedup import admitted as adm
    from roots.dedup import minhash

    exact = {k["exact"] for k in admitted.values() if k["exact"] is not None}
    bands = {band for k in admitted.values() for band in k["bands"]}
    near: dict[str, bytes] = {}
    if p.dedup.near and bands:
        for row in outputs.iter_kind(p.final, "signatures", ["id", "signature"]):
            i = str(row["id"])
            if i not in dropped and not bands.isdisjoint(adm.signature_bands(row["signature"], p.dedup)):
                near[i] = row["signature"]
    peers: dict[str, dict[str, Any]] = {}
    for row in outputs.iter_kind(p.final, "kept", ["id", "text", "lang", "origin"]):
        i = str(row["id"])
        if i in dropped:
            continue
        key = minhash.exact_key(str(row["text"]), row.get("lang")) if p.dedup.exact else None
        if i in near or (key is not None and key in exact):
            peers[i] = adm.document_keys(row, p.dedup, near.get(i))
    return adm.duplicates_by_keys({**peers, **admitted}, set(admitted), p.dedup)


def write_decided(p: Any, proc: DocumentProcessor, tmp: Path, shards: int, dropped: set[str],
                  fresh: dict[str, bytes], dups: dict[str, tuple[str, str]],
                  report: Callable[[int], None] = lambda done: None,
                  rows: Callable[[], Iterator[dict[str, Any]]] | None = None) -> int:
    """Third pass: every row decided again (the same outcome as the first pass), admitted duplicates
    rejected, written shard by shard as fragments; the signatures of documents still kept, then the
    fresh ones of admitted documents that stay. Returns how many rows changed outcome."""
    from roots.dedup import minhash

    fragments = outputs.FragmentWriter(str(tmp), "rethreshold", shards)
    changed = 0
    signed: list[dict[str, Any]] = []
    for n, before in enumerate(rows() if rows else stored_rows(p.final), start=1):
        if n == 1 or n % 1024 == 0:
            report(n)
        after = redecide(proc, before)
        i = str(after["id"])
        if i in dups and before["status"] != "kept" and after["status"] == "kept":
            keeper, kind = dups[i]
            # the detail reads as the pipeline's (`minhash.duplicate_detail`)
            after.update(status="rejected", reason="duplicate", cluster=keeper,
                         detail=f"duplicate of {keeper} ({kind})")
        if (before["status"], before.get("reason")) != (after["status"], after.get("reason")):
            changed += 1
        fragments.add(outputs.kind_of(after), after)
        if after["status"] == "kept" and before["status"] != "kept" and i in fresh:
            signed.append({"id": after["id"], "source": after["source"], "lang": after["lang"],
                           "cluster": after["cluster"], "signature": fresh[i], "num_perm": p.dedup.num_perm,
                           "seed": p.dedup.seed, "ngram": p.dedup.ngram, "scheme": minhash.SCHEME})
    for row in outputs.iter_kind(p.final, "signatures"):
        if str(row["id"]) not in dropped:
            fragments.add("signatures", row)
    for row in signed:
        fragments.add("signatures", row)
    fragments.close()
    return changed


def _config(p: Any) -> dict[str, Any]:
    from dataclasses import asdict

    from roots.jobs.run import _jsonable

    return _jsonable(asdict(p.cfg))


