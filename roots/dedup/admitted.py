"""Dedup for documents admitted after a source's dedup ran (`roots run --rethreshold`).

Why: dedup pairs only documents that reach it, so a page and its mirror copy that a quality filter both
rejected were never compared; when relaxed thresholds admit both, nothing would stop two copies entering
the kept set. This compares the newly admitted documents with the documents already kept and with each
other, with the same keys the source pipeline uses (exact hashes, MinHash LSH band keys), and says which
admitted documents are duplicates and of what.

Documents that were already kept are never rejected here (they were deduplicated among themselves by the
run); a cluster holding a kept document keeps its best kept document, a cluster of admitted documents
only keeps its best one by the source's keep policy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from roots.dedup import minhash, unionfind
from roots.dedup.minhash import DedupConfig


def duplicates_among_admitted(kept: Sequence[Mapping[str, Any]], admitted: Sequence[Mapping[str, Any]],
                              signatures: Mapping[str, bytes], cfg: DedupConfig,
                              ) -> dict[str, tuple[str, str]]:
    """{admitted document id: (id of the document it duplicates, "exact" or "near")}.

    `kept` and `admitted` are rows with id, text, lang (and origin); `signatures` the MinHash signatures
    of both by id, as the run stores them (a document without one is compared by exact hash only)."""
    if not admitted or not (cfg.exact or cfg.near):
        return {}
    rows = {**{str(r["id"]): r for r in kept}, **{str(r["id"]): r for r in admitted}}
    new = {str(r["id"]) for r in admitted}
    nodes = {i: minhash.node_key(r, cfg.keep) for i, r in rows.items()}
    groups: dict[Any, list[str]] = defaultdict(list)
    exact = {}
    if cfg.exact:
        for i, r in rows.items():
            key = minhash.exact_key(str(r["text"]), r.get("lang"))
            if key is not None:
                exact[i] = key
                groups["exact", key].append(i)
    if cfg.near:
        b, r = minhash.lsh_params(cfg.threshold, cfg.num_perm)
        for i in rows:
            if i not in signatures:
                continue
            sig = minhash.signature_from_bytes(signatures[i])
            if minhash.is_empty_signature(sig):
                continue
            for band in minhash.band_keys(sig, b, r):
                groups["near", band].append(i)
    parent: dict[str, str] = {}
    for members in groups.values():
        if len(members) > 1 and any(m in new for m in members):
            for m in members[1:]:
                unionfind.union(parent, members[0], m)
    out: dict[str, tuple[str, str]] = {}
    for component in unionfind.components(parent):
        old = [i for i in component if i not in new]
        keeper = min(old or component, key=nodes.__getitem__)
        for i in component:
            if i in new and i != keeper:
                same = cfg.exact and i in exact and exact.get(keeper) == exact[i]
                out[i] = (keeper, "exact" if same else "near")
    return out
