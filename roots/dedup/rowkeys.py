"""The per-row halves of deduplication: what each document contributes to the shuffles, and how a row
is rewritten once the source-wide decisions are known (pure; no Beam).

Why it is split this way: the shuffles only need small keys (node, URL key, line digests, band digests,
exact hashes), so the texts can stay in files next to the worker that produced them while the keys go
through the runner (or, in the source pipeline, through key spill files: `roots/io/spill.py`).
`pipelines/source_pipeline.py` runs these functions over a source's spill files;
`pipelines/dedup.py` runs the same functions over an in-memory PCollection of rows.

A node is the keeper order of `roots.dedup.node_key`; in spill files it is stored as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Container, Iterator, Mapping, Sequence
from typing import Any

from roots.core.schema import EXACT, NODE, PRIVATE, SIG, URL_KEY, URL_PARENT
from roots.dedup import minhash
from roots.dedup.minhash import DedupConfig, Node
from roots.io.urlrules import domain_of
from roots.stages import code


def node_text(node: Node) -> str:
    return json.dumps(list(node), ensure_ascii=False)


def node_of(text: str) -> Node:
    return tuple(json.loads(text))


def public(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in PRIVATE}


def mark(row: dict[str, Any], cfg: DedupConfig) -> None:
    """Give a kept row its node (before any text change, as the keeper order must see the original) and
    URL key; other rows take no part in dedup."""
    if row.get("status") != "kept":
        return
    row[NODE] = node_text(minhash.node_key(row, cfg.keep))
    row[URL_KEY] = minhash.url_key(row.get("url"), cfg.url_normalise) if cfg.url else None


def url_keys(row: Mapping[str, Any]) -> Iterator[tuple[str, Node]]:
    """(URL key, node) of a kept row that has a usable URL."""
    if row.get(NODE) is not None and row.get(URL_KEY) is not None:
        yield row[URL_KEY], node_of(row[NODE])


def url_riders(group: tuple[str, Sequence[Node]]) -> Iterator[tuple[Node, Node]]:
    """(rider, keeper) for every page of one URL key but the smallest node."""
    _, nodes = group
    keeper = min(nodes)
    for node in nodes:
        if node != keeper:
            yield node, keeper


def template_scope(row: Mapping[str, Any], per_domain: bool) -> str:
    """What a row's template lines are counted within: its site (per-domain templates) or the source."""
    if not per_domain:
        return ""
    return domain_of(row.get("url")) or "\x00no-domain"


def template_keys(row: Mapping[str, Any], riders: Container[Node], min_len: int,
                  per_domain: bool = False) -> list[bytes]:
    """Line digests a live row adds to the template count (URL riders do not count twice)."""
    if row.get(NODE) is None or node_of(row[NODE]) in riders:
        return []
    return minhash.template_line_keys(row["text"], min_len, template_scope(row, per_domain))


def signature_text(row: Mapping[str, Any]) -> str:
    """The text a document's MinHash signature is computed from: a code file without its leading comment
    block (a shared licence header would dominate the shingles of a short file and make unrelated files
    near duplicates); any other document's text as it is."""
    text, lang = row["text"], row.get("lang")
    if isinstance(lang, str) and lang.startswith(code.LANG_PREFIX):
        return code.without_leading_comments(text, lang)
    return text


def prepare(rows: Sequence[dict[str, Any]], cfg: DedupConfig, riders: Mapping[Node, Node],
            frequent: Container[bytes]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """URL riders marked, template lines removed, then signature and exact key of the rows still live.

    Returns the rows (same order) and counters: lines removed, documents emptied by the removal (they
    become `dedup_template_soft` rejections with themselves as cluster).
    """
    counts = {"dedup_template_lines_removed": 0, "dedup_template_emptied": 0}
    live: list[dict[str, Any]] = []
    for row in rows:
        if row.get(NODE) is None:
            continue
        node = node_of(row[NODE])
        if node in riders:
            row[URL_PARENT] = node_text(riders[node])
            continue
        if cfg.template and frequent:
            text, removed = minhash.remove_template_lines(row["text"], frequent, cfg.template_min_len,
                                                          template_scope(row, cfg.template_per_domain))
            if removed:
                counts["dedup_template_lines_removed"] += removed
                row.update(text=text, n_chars=len(text), n_bytes=len(text.encode("utf-8", "surrogatepass")))
                if not text.strip():
                    counts["dedup_template_emptied"] += 1
                    row.update(status="rejected", reason="dedup_template_soft", cluster=str(row["id"]),
                               detail=f"empty after removing {removed} template lines")
                    row[NODE] = None
                    continue
        live.append(row)
    if cfg.near and live:
        sigs = minhash.minhash_signatures([signature_text(r) for r in live], [r.get("lang") for r in live],
                                          cfg.num_perm, cfg.seed, cfg.ngram)
        for row, sig in zip(live, sigs):
            # no shingles (no words at all): no signature, never a near duplicate, no signature row
            row[SIG] = None if minhash.is_empty_signature(sig) else minhash.signature_to_bytes(sig)
    if cfg.exact:
        for row in live:
            row[EXACT] = minhash.exact_key(row["text"], row.get("lang"))
    return rows, counts


def band_keys(row: Mapping[str, Any], b: int, r: int) -> Iterator[tuple[tuple[int, bytes], Node]]:
    if row.get(NODE) is None or row.get(SIG) is None:
        return
    node = node_of(row[NODE])
    for key in minhash.band_keys(minhash.signature_from_bytes(row[SIG]), b, r):
        yield key, node


def key_bytes(row: Mapping[str, Any], kind: str, b: int = 0, r: int = 0) -> list[bytes]:
    """The keys a live row adds to one key spill ('url', 'bands' with LSH shape b x r, or 'exact'), as
    bytes: a band key is its 2-byte band index and then its digest, so equal bands of different index
    never meet."""
    if row.get(NODE) is None:
        return []
    if kind == "url":
        return [] if row.get(URL_KEY) is None else [row[URL_KEY].encode("utf-8", "surrogatepass")]
    if kind == "exact":
        return [] if row.get(EXACT) is None else [row[EXACT].encode("ascii")]
    if row.get(SIG) is None:
        return []
    sig = minhash.signature_from_bytes(row[SIG])
    return [band.to_bytes(2, "big") + digest for band, digest in minhash.band_keys(sig, b, r)]


def exact_keys(row: Mapping[str, Any]) -> Iterator[tuple[str, Node]]:
    if row.get(NODE) is not None and row.get(EXACT) is not None:
        yield row[EXACT], node_of(row[NODE])


def resolve(row: Mapping[str, Any], labels: Mapping[Node, Node], parents: Mapping[Node, Node],
            cfg: DedupConfig) -> tuple[dict[str, Any], dict[str, Any] | None, str]:
    """The output row of one document given the source's decisions (component root and exact parent of
    every node that has a duplicate), its signature row when it is kept, and the counter to increment.

    Every row that entered dedup as kept leaves with `cluster` = the id of the document its cluster keeps.
    """
    out = public(row)
    if row.get(NODE) is None:
        return out, None, ""
    node = node_of(row[NODE])
    root = labels.get(node, node)
    exact_parent = parents.get(node)
    out["cluster"] = minhash.node_id(root)
    if row.get(URL_PARENT) is not None:
        out.update(status="rejected", reason="duplicate_url",
                   detail=minhash.duplicate_detail(root, "url", node_of(row[URL_PARENT])))
        return out, None, "dedup_url_duplicates"
    if exact_parent is not None:
        out.update(status="rejected", reason="duplicate",
                   detail=minhash.duplicate_detail(root, "exact", exact_parent))
        return out, None, "dedup_exact_duplicates"
    if root != node:
        out.update(status="rejected", reason="duplicate", detail=minhash.duplicate_detail(root, "near"))
        return out, None, "dedup_near_duplicates"
    sig_row = None
    if row.get(SIG) is not None:
        sig_row = {"id": out["id"], "source": out.get("source"), "lang": out.get("lang"),
                   "cluster": out["cluster"], "signature": row[SIG], "num_perm": cfg.num_perm,
                   "seed": cfg.seed, "ngram": cfg.ngram, "scheme": minhash.SCHEME}
    return out, sig_row, "dedup_kept"
