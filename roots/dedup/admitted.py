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
    keys = {i: document_keys(r, cfg, signatures.get(i)) for i, r in rows.items()}
    return duplicates_by_keys(keys, {str(r["id"]) for r in admitted}, cfg)


def document_keys(row: Mapping[str, Any], cfg: DedupConfig, signature: bytes | None) -> dict[str, Any]:
    """What the comparison needs of one document, without its text: its node key (keep policy), its exact
    key and its LSH band keys. Lets `--rethreshold` stream a source and hold only these."""
    keys: dict[str, Any] = {"node": minhash.node_key(row, cfg.keep), "exact": None, "bands": []}
    if cfg.exact:
        keys["exact"] = minhash.exact_key(str(row["text"]), row.get("lang"))
    if cfg.near and signature is not None:
        keys["bands"] = signature_bands(signature, cfg)
    return keys


def signature_bands(signature: bytes, cfg: DedupConfig) -> list[Any]:
    """The LSH band keys of a stored signature (none for the empty signature of a text too short)."""
    sig = minhash.signature_from_bytes(signature)
    if minhash.is_empty_signature(sig):
        return []
    return minhash.band_keys(sig, *minhash.lsh_params(cfg.threshold, cfg.num_perm))


def duplicates_by_keys(keys: Mapping[str, Mapping[str, Any]], new: set[str], cfg: DedupConfig,
                       ) -> dict[str, tuple[str, str]]:
    """`duplicates_among_admitted` on `document_keys` of every document; documents sharing no key with a
    new one may be left out (they cannot change the answer)."""
    groups: dict[Any, list[str]] = defaultdict(list)
    for i, k in keys.items():
        if cfg.exact and k["exact"] is not None:
            groups["exact", k["exact"]].append(i)
        if cfg.near:
            for band in k["bands"]:
                groups["near", band].append(i)
    parent: dict[str, str] = {}
    for members in groups.values():
        if len(members) > 1 and any(m in new for m in members):
            for m in members[1:]:
                unionfind.union(parent, members[0], m)
    out: dict[str, tuple[str, str]] = {}
    for component in unionfind.components(parent):
        old = [i for i in component if i not in new]
        keeper = min(old or component, key=lambda i: keys[i]["node"])
        for i in component:
            if i in new and i != keeper:
                exact = keys[i]["exact"]
                same = cfg.exact and exact is not None and keys[keeper]["exact"] == exact
                out[i] = (keeper, "exact" if same else "near")
    return out
