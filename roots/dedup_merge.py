"""Cross-source near-duplicate removal at merge time, from the signatures each run saved.

Within a source, duplicates were already removed in Beam, so here only collisions between sources
matter. The merge holds one 16-byte digest per (document, band) and one signature per document that
collides with another: about `bands x 24 bytes` per kept document (14 bands at 128 permutations: ~350
bytes), i.e. ~3.5 GB for 10M kept documents. Beyond that, run the Beam connected-components dedup of
`pipelines/dedup.py` over the union of signature files instead.

Preference (which copy stays): a source cleared by licence policy beats one cleared by a revocable
permission record; then the source that sorts first by name; then the lowest document id.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyarrow.parquet as pq

from roots import dedup
from roots import release_parts as parts


def _preference(inc: Any) -> tuple[int, str]:
    return (0 if str(inc.basis).startswith("licence policy") else 1, inc.name)


def load_signatures(inc: Any) -> list[dict[str, Any]]:
    files = sorted((inc.run_dir / "signatures").glob("*.parquet"))
    rows: list[dict[str, Any]] = []
    for path in files:
        rows.extend(pq.read_table(path, columns=["id", "signature", "num_perm", "seed"]).to_pylist())
    return rows


def duplicates_across(included: list[Any], threshold: float = 0.7) -> dict[str, str]:
    """Document key -> "cross-source duplicate of SOURCE/ID" for every copy that is not kept."""
    ordered = sorted(included, key=_preference)
    nodes: list[tuple[tuple[int, str], str, str]] = []  # (preference, source, id), index = node number
    sigs: dict[int, Any] = {}
    # signatures are only comparable with the same permutations: bucket by (num_perm, seed) as well
    buckets: dict[tuple[int, int, int, bytes], int] = {}
    edges: list[tuple[int, int]] = []
    for inc in ordered:
        for row in load_signatures(inc):
            sig = dedup.signature_from_bytes(row["signature"])
            if dedup.is_empty_signature(sig):
                continue
            n = len(nodes)
            nodes.append((_preference(inc), inc.name, str(row["id"])))
            sigs[n] = sig
            family = (len(sig), int(row["seed"]))
            for band, digest in dedup.band_keys(sig, *dedup.lsh_params(threshold, len(sig))):
                first = buckets.setdefault((*family, band, digest), n)
                if first != n and nodes[first][1] != inc.name:
                    edges.append((first, n))
    parent = list(range(len(nodes)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        if dedup.estimate_jaccard(sigs[a], sigs[b]) < threshold:
            continue  # LSH candidate below the threshold: not a duplicate
        ra, rb = find(a), find(b)
        if ra != rb:
            keep, drop = (ra, rb) if nodes[ra] <= nodes[rb] else (rb, ra)
            parent[drop] = keep
    groups: dict[int, list[int]] = defaultdict(list)
    for n in range(len(nodes)):
        groups[find(n)].append(n)
    out: dict[str, str] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        keeper = min(members, key=lambda m: nodes[m])
        for m in members:
            if m != keeper:
                _, source, doc_id = nodes[m]
                out[parts.doc_key(source, doc_id)] = (f"cross-source duplicate of {nodes[keeper][1]}/"
                                                      f"{nodes[keeper][2]}")
    return out
