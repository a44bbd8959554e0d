"""Cross-source dedup at merge time: bounded-memory passes give what a plain in-memory LSH + union-find
gives."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from roots.core import schema
from roots.dedup import crosssource, minhash


@dataclass
class Included:
    name: str
    basis: str
    run_dir: Path


def reference(included: list[Included], threshold: float = 0.7) -> dict[str, str]:
    """Everything in memory: the plain algorithm the streaming passes must reproduce."""
    ordered = sorted(included, key=lambda inc: (0 if inc.basis.startswith("licence policy") else 1, inc.name))
    nodes, sigs, first_of, edges = [], [], {}, []
    for inc in ordered:
        pref = (0 if inc.basis.startswith("licence policy") else 1, inc.name)
        for path in sorted((inc.run_dir / "signatures").glob("*.parquet")):
            for row in pq.read_table(path).to_pylist():
                sig = minhash.signature_from_bytes(row["signature"])
                if minhash.is_empty_signature(sig):
                    continue
                n = len(nodes)
                nodes.append((pref, inc.name, str(row["id"])))
                sigs.append(sig)
                for band, digest in minhash.band_keys(sig, *minhash.lsh_params(threshold, len(sig))):
                    first = first_of.setdefault((len(sig), row["seed"], band, digest), n)
                    if first != n and nodes[first][1] != inc.name:
                        edges.append((first, n))
    parent = list(range(len(nodes)))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in edges:
        if minhash.estimate_jaccard(sigs[a], sigs[b]) >= threshold:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb, key=lambda m: nodes[m])] = min(ra, rb, key=lambda m: nodes[m])
    groups = defaultdict(list)
    for n in range(len(nodes)):
        groups[find(n)].append(n)
    out = {}
    for members in groups.values():
        keeper = min(members, key=lambda m: nodes[m])
        for m in members:
            if m != keeper:
                out[schema.doc_key(nodes[m][1], nodes[m][2])] = (
                    f"cross-source duplicate of {nodes[keeper][1]}/{nodes[keeper][2]}")
    return out


def write_source(root: Path, name: str, docs: list[tuple[str, str]], files: int = 2) -> Path:
    run_dir = root / name
    (run_dir / "signatures").mkdir(parents=True)
    sigs = minhash.minhash_signatures([t for _, t in docs], ["en"] * len(docs))
    rows = [{"id": doc_id, "signature": minhash.signature_to_bytes(sig), "num_perm": 128, "seed": 1}
            for (doc_id, _), sig in zip(docs, sigs)]
    for f in range(files):
        pq.write_table(pa.Table.from_pylist(rows[f::files]), run_dir / "signatures" / f"part-{f}.parquet")
    return run_dir


def corpus(seed: int) -> list[Included]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(400)]
    base = [" ".join(rng.choice(words) for _ in range(60)) for _ in range(40)]

    def variant(text: str) -> str:
        toks = text.split()
        toks[rng.randrange(len(toks))] = rng.choice(words)
        return " ".join(toks)

    return [("a", "licence policy (CC0-1.0)"), ("b", "permission record 7"),
            ("c", "licence policy (CC-BY-4.0)")], [
        [(f"a{i}", base[i]) for i in range(30)] + [("a-dup", base[0])],
        [(f"b{i}", variant(base[i])) for i in range(10, 40)] + [("b-empty", "")],
        [(f"c{i}", base[i]) for i in range(20, 25)]
        + [(f"c-new{i}", variant(variant(base[i]))) for i in range(5)],
    ]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("keys_per_bucket", [crosssource.KEYS_PER_BUCKET, 7])
def test_streaming_passes_equal_the_in_memory_reference(tmp_path, monkeypatch, seed, keys_per_bucket):
    monkeypatch.setattr(crosssource, "KEYS_PER_BUCKET", keys_per_bucket)
    meta, sources = corpus(seed)
    included = [Included(name, basis, write_source(tmp_path, name, docs))
                for (name, basis), docs in zip(meta, sources)]
    want = reference(included)
    got = crosssource.duplicates_across(included, work_dir=tmp_path)
    assert got == want
    assert len(got) >= 20  # the corpus does hold cross-source copies
    # the preferred copy stays: a licence-policy source beats a permission record, then the name
    assert got[schema.doc_key("b", "b10")] == "cross-source duplicate of a/a10"
    assert schema.doc_key("a", "a20") not in got and schema.doc_key("c", "c20") in got
    # same-source copies are left to the source's own dedup
    assert schema.doc_key("a", "a-dup") not in got
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("roots-cross-dedup-")]  # key files removed
