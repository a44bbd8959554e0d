"""Cross-source near-duplicate removal at merge time, from the signatures each run saved.

Within a source, duplicates were already removed in Beam, so here only collisions between sources
matter. Memory is bounded whatever the release's size, the way datatrove's bucket step works: three
streaming passes over the signature files.

1. Every document with a non-empty signature gets a node number (preference order, then file and row
   order) and its LSH band keys go to key spills (`roots/io/spill.py`) split by a hash of the key (about
   `KEYS_PER_BUCKET` per bucket; the count is sized from the signature files' row counts up front).
2. One bucket at a time, only the keys two or more documents share are grouped; each group's first node
   (the preferred copy) gets a candidate edge to every member from another source.
3. The signatures of the documents on candidate edges are read again; an edge stays when the estimated
   Jaccard similarity reaches the threshold, and union-find over those nodes picks each cluster's keeper.

Held at once: one batch of signatures, one bucket of keys (~40 bytes each in Arrow), and per document that
has a cross-source candidate its signature and name (~1.2 kB at 128 permutations). Key files live in a
temporary directory (`work_dir`, by default the system's) and are removed at the end; they take about
bands x 40 bytes per document (14 bands at 128 permutations: ~560 bytes).

Preference (which copy stays): a source cleared by licence policy beats one cleared by a revocable
permission record; then the source that sorts first by name; then the lowest document id.
"""

from __future__ import annotations

import bisect
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from roots.core import schema
from roots.dedup import minhash, unionfind
from roots.io import spill

#: keys per bucket file: ~2M keys x ~40 bytes = ~80 MB of Arrow data while one bucket is grouped
KEYS_PER_BUCKET = 2_000_000
#: band keys per document assumed when sizing the buckets (14 bands at the 0.7/128 default)
BANDS_ESTIMATE = 16
#: the key kind and the one "input file" of the key spills (`roots/io/spill.py`) in the temporary directory
KIND, FILE = "cross_source", "all"


def _preference(inc: Any) -> tuple[int, str]:
    return (0 if str(inc.basis).startswith("licence policy") else 1, inc.name)


def _signature_files(inc: Any) -> list[Path]:
    return sorted((inc.run_dir / "signatures").glob("*.parquet"))


def _nodes(ordered: list[Any]) -> Iterator[tuple[int, int, str, np.ndarray, int]]:
    """(node, source index, id, signature, seed) for every non-empty signature, streamed batch by batch;
    the numbering is the same on every pass, and each source's nodes are consecutive."""
    n = 0
    for s, inc in enumerate(ordered):
        for path in _signature_files(inc):
            batches = pq.ParquetFile(path, pre_buffer=False).iter_batches(
                batch_size=4096, columns=["id", "signature", "seed"], use_threads=False)
            for batch in batches:
                ids, raws, seeds = (batch.column(c).to_pylist() for c in ("id", "signature", "seed"))
                for doc_id, raw, seed in zip(ids, raws, seeds):
                    sig = minhash.signature_from_bytes(raw)
                    if minhash.is_empty_signature(sig):
                        continue
                    yield n, s, str(doc_id), sig, int(seed)
                    n += 1


def _bucket_count(ordered: list[Any]) -> int:
    rows = sum(pq.ParquetFile(path).metadata.num_rows for inc in ordered for path in _signature_files(inc))
    return max(1, -(-rows * BANDS_ESTIMATE // KEYS_PER_BUCKET))


def _write_keys(ordered: list[Any], threshold: float, work: str, buckets: int) -> tuple[list[int], list[int]]:
    """Pass 1: every document's band keys (signatures are only comparable with the same permutations, so
    the key carries (num_perm, seed) too) into the key spill bucket a hash of the key picks. Returns each
    source's first node and its index, from which a node's source is found (nodes are consecutive)."""
    writer = spill.KeyWriter(work, KIND, FILE, buckets)
    firsts: list[int] = []
    sources: list[int] = []
    try:
        for n, s, _, sig, seed in _nodes(ordered):
            if not sources or sources[-1] != s:
                firsts.append(n)
                sources.append(s)
            family = struct.pack("<Iq", len(sig), seed)
            for band, digest in minhash.band_keys(sig, *minhash.lsh_params(threshold, len(sig))):
                writer.add(family + struct.pack("<I", band) + digest, n)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return firsts, sources


def _candidate_edges(work: str, bucket: int, firsts: list[int],
                     sources: list[int]) -> Iterator[tuple[int, int]]:
    """Pass 2, one bucket: (first node, member) for each key shared across sources."""
    def source(node: int) -> int:
        return sources[bisect.bisect_right(firsts, node) - 1]

    for _, nodes in spill.shared_keys(spill.read_bucket(work, KIND, bucket, [FILE])):
        first = min(nodes)
        yield from ((first, node) for node in nodes if source(node) != source(first))


def duplicates_across(included: list[Any], threshold: float = 0.7,
                      work_dir: Path | None = None) -> dict[str, str]:
    """Document key -> "cross-source duplicate of SOURCE/ID" for every copy that is not kept."""
    ordered = sorted(included, key=_preference)
    buckets = _bucket_count(ordered)
    with tempfile.TemporaryDirectory(prefix="roots-cross-dedup-", dir=work_dir) as tmp:
        firsts, sources = _write_keys(ordered, threshold, tmp, buckets)
        edges = [e for b in range(buckets) for e in _candidate_edges(tmp, b, firsts, sources)]
    need = {n for edge in edges for n in edge}
    names: dict[int, tuple[tuple[int, str], str, str]] = {}  # node -> (preference, source, id)
    sigs: dict[int, np.ndarray] = {}
    if need:
        for n, s, doc_id, sig, _ in _nodes(ordered):
            if n in need:
                names[n] = (_preference(ordered[s]), ordered[s].name, doc_id)
                sigs[n] = sig
    parent: dict[int, int] = {}
    for a, b in sorted(edges):
        if minhash.estimate_jaccard(sigs[a], sigs[b]) < threshold:
            continue  # LSH candidate below the threshold: not a duplicate
        unionfind.union(parent, a, b)
    out: dict[str, str] = {}
    # each component's root is its smallest node number; the keeper is its preferred copy (names order)
    for members in unionfind.components(parent):
        keeper = min(members, key=lambda m: names[m])
        for m in members:
            if m != keeper:
                _, source, doc_id = names[m]
                out[schema.doc_key(source, doc_id)] = ("cross-source duplicate of "
                                                       f"{names[keeper][1]}/{names[keeper][2]}")
    return out
