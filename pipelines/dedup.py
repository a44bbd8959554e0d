"""Beam wiring of deduplication: URL, template lines, exact and MinHash-LSH near duplicates, global per source.

Only rows whose status is 'kept' take part; every other row passes through untouched. Stages, in order:

1. URL (`cfg.url`): GroupByKey of full rows on `url_key`; the smallest node keeps, the others become
   riders (`duplicate_url`) plus an edge to their keeper. It runs first so that pages crawled twice do not
   double-count their lines in the template count.
2. Template lines (`cfg.template`): CombinePerKey counts every stripped line occurrence (16-byte digest)
   over the source; digests with count >= `template_min_count` become a side input (AsDict) and are
   removed from every document. A document left empty is rejected (`dedup_template_soft`). It runs before
   exact/near dedup because it changes texts.
3. Near (`cfg.near`): MinHash signatures (numpy batch, datasketch's hash family) -> (band, band digest)
   keys -> GroupByKey -> star edges from each bucket's smallest node.
4. Exact (`cfg.exact`): GroupByKey of (ROOTS md5 key, node) -> star edges from each group's smallest node,
   and each other member's exact parent (for the detail text).
5. URL, exact and LSH edges -> connected components (below) -> (node, component minimum).
6. Resolution: one GroupByKey on the node joins each row with its label and exact parent, so every row,
   the rejected copies included, ends with `cluster` = id of the document its cluster keeps, and rejected
   rows say `duplicate of <that id> (exact|near|url ...)`.

Exact duplicates are edges in the same graph rather than a separate stage over full rows: full rows are
shuffled once (resolution) instead of twice, every resolution group holds one row, and the keeper is the
same (the component minimum). The price is that exact copies are signed and banded too.

Connected components: `cfg.max_cc_rounds` rounds of large-star + small-star (Kiveris et al., "Connected
Components in MapReduce and Beyond", 2014) are unrolled in the graph (three shuffles each: large-star
GroupByKey, small-star GroupByKey, Distinct). Rounds after convergence are identities on the star-shaped
edge set. After the last round a CombinePerKey counts nodes that break the converged shape; if there are
any, all remaining edges (at most `cfg.max_uf_edges`, else the run fails) go to one worker for union-find.

Memory per key: GroupByKey consumers make two passes over their re-iterable values (first the minimum,
then the emission) and keep nothing else, so a giant bucket, URL, exact group or hub node needs O(1)
memory beyond what the runner pages in (DirectRunner holds a group in memory; Dataflow pages it); the
URL group holds full rows, the others node keys. The exceptions: the frequent-line side input is held
by every worker (about 100 bytes per frequent line), and the union-find fallback holds its edges on one
worker.

Determinism: every decision is a minimum over a total order (node keys), counts are sums, so bundles,
worker counts and input order do not change keepers or cluster ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import SimpleNamespace
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines.batching import BatchByKey
from roots import dedup
from roots.dedup import DedupConfig, Node

NAMESPACE = "roots"
# private fields carried between stages and removed before rows leave `apply_dedup`
NODE, SIG, KIND, PARENT = "_dedup_node", "_dedup_sig", "_dedup_kind", "_dedup_parent"
PRIVATE = (NODE, SIG, KIND, PARENT)


def _count(name: str, n: int = 1) -> None:
    Metrics.counter(NAMESPACE, name).inc(n)


# ------------------------------------------------------------------------------------------ multi-output
# Beam's DaskRunner mixes up the outputs of multi-output DoFns (`with_outputs`, `Partition`), so every
# multi-output step here tags its outputs as (tag, value) pairs and splits them with filters instead.

def _tag_outputs(element, fn, *args):  # unannotated on purpose: Beam would infer type hints from annotations
    """(tag, value) pairs for every output of `fn`; the main output has tag None."""
    for out in fn(element, *args):
        if isinstance(out, beam.pvalue.TaggedOutput):
            yield out.tag, out.value
        else:
            yield None, out


def _flatmap_outputs(pc: beam.PCollection, label: str, fn: Any, *args: Any, main: str,
                     tags: tuple[str, ...]) -> SimpleNamespace:
    tagged = pc | label >> beam.FlatMap(_tag_outputs, fn, *args)
    outs = {main: tagged | f"{label}.{main}" >> beam.FlatMap(lambda kv: [kv[1]] if kv[0] is None else [])}
    for tag in tags:
        outs[tag] = tagged | f"{label}.{tag}" >> beam.FlatMap(lambda kv, t=tag: [kv[1]] if kv[0] == t else [])
    return SimpleNamespace(**outs)


# ------------------------------------------------------------------------------------------------ keyed dedup

def _keep_min(item: tuple[Any, Iterable[dict[str, Any]]], kind: str) -> Iterator[Any]:
    """Keep the rows carrying the smallest node of the group; the others become riders of that node."""
    _, rows = item
    keeper = min(row[NODE] for row in rows)
    for row in rows:
        if row[NODE] == keeper:
            yield row
        else:
            yield beam.pvalue.TaggedOutput("riders", {**row, KIND: kind, PARENT: keeper})


class _DedupOnKey(beam.PTransform):
    """One keeper per key (None keys pass); returns (survivors, riders)."""

    def __init__(self, key_fn: Any, kind: str) -> None:
        super().__init__()
        self.key_fn = key_fn
        self.kind = kind

    def expand(self, live: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        key_fn = self.key_fn

        def keyed(row: dict[str, Any]) -> Iterator[Any]:
            key = key_fn(row)
            if key is None:
                yield beam.pvalue.TaggedOutput("unkeyed", row)
            else:
                yield (key, row)

        split = _flatmap_outputs(live, "Key", keyed, main="keyed", tags=("unkeyed",))
        grouped = _flatmap_outputs(split.keyed | "Group" >> beam.GroupByKey(), "KeepMin", _keep_min, self.kind,
                                   main="kept", tags=("riders",))
        survivors = (grouped.kept, split.unkeyed) | "Survivors" >> beam.Flatten()
        return survivors, grouped.riders


# ------------------------------------------------------------------------------------------------ template

def _strip_templates(row: dict[str, Any], frequent: dict[bytes, int], min_len: int) -> Iterator[Any]:
    text, removed = dedup.remove_template_lines(row["text"], frequent, min_len)
    if not removed:
        yield row
        return
    _count("dedup_template_lines_removed", removed)
    out = {**row, "text": text, "n_chars": len(text), "n_bytes": len(text.encode("utf-8", "surrogatepass"))}
    if text.strip():
        yield out
        return
    _count("dedup_template_emptied")
    out.update(status="rejected", reason="dedup_template_soft", cluster=str(row["id"]),
               detail=f"empty after removing {removed} template lines")
    yield beam.pvalue.TaggedOutput("emptied", _public(out))


class _Template(beam.PTransform):
    def __init__(self, cfg: DedupConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def expand(self, live: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        cfg = self.cfg
        frequent = (live
                    | "Lines" >> beam.FlatMap(lambda row: [(k, 1) for k in dedup.template_line_keys(
                        row["text"], cfg.template_min_len)])
                    | "Count" >> beam.CombinePerKey(sum)
                    | "Frequent" >> beam.Filter(lambda kv: kv[1] >= cfg.template_min_count))
        out = _flatmap_outputs(live, "Strip", _strip_templates, beam.pvalue.AsDict(frequent),
                               cfg.template_min_len, main="live", tags=("emptied",))
        return out.live, out.emptied


# ------------------------------------------------------------------------------------------------ signatures

class _Sign(beam.DoFn):
    """Attach the MinHash signature (bytes) to a batch of rows; numpy batch path, see roots.dedup."""

    def __init__(self, cfg: DedupConfig) -> None:
        self.cfg = cfg

    def process(self, batch: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        sigs = dedup.minhash_signatures([r["text"] for r in batch], [r.get("lang") for r in batch],
                                        self.cfg.num_perm, self.cfg.seed, self.cfg.ngram)
        for row, sig in zip(batch, sigs):
            # no shingles (no words at all): no signature, never a near duplicate, no signature row
            yield {**row, SIG: None if dedup.is_empty_signature(sig) else dedup.signature_to_bytes(sig)}


def _bands(row: dict[str, Any], b: int, r: int) -> Iterator[tuple[tuple[int, bytes], Node]]:
    if row[SIG] is None:
        return
    for key in dedup.band_keys(dedup.signature_from_bytes(row[SIG]), b, r):
        yield key, row[NODE]


def _bucket_edges(item: tuple[Any, Iterable[Node]]) -> Iterator[tuple[Node, Node]]:
    return dedup.star_edges(item[1])


# ------------------------------------------------------------------------------------------------ components

def _large_star(item: tuple[Node, Iterable[Node]]) -> Iterator[tuple[Node, Node]]:
    return dedup.large_star(item[0], item[1])


def _small_star(item: tuple[Node, Iterable[Node]]) -> Iterator[tuple[Node, Node]]:
    return dedup.small_star(item[0], item[1])


def _both_ways(edge: tuple[Node, Node]) -> list[tuple[Node, Node]]:
    return [edge, (edge[1], edge[0])]


def _roles(edge: tuple[Node, Node]) -> list[tuple[Node, tuple[int, int]]]:
    return [(edge[1], (1, 0)), (edge[0], (0, 1))]  # (times the larger end, times the smaller end)


def _sum_pairs(pairs: Iterable[tuple[int, int]]) -> tuple[int, int]:
    c = p = 0
    for x, y in pairs:
        c += x
        p += y
    return c, p


def _union_find_edges(item: tuple[Any, Iterable[tuple[Node, Node]]], limit: int) -> Iterator[tuple[Node, Node]]:
    edges = list(item[1])
    if len(edges) > limit:
        raise RuntimeError(
            f"near-dedup connected components did not converge and {len(edges)} edges remain, more than "
            f"max_uf_edges={limit} for one worker; raise DedupConfig.max_cc_rounds")
    _count("dedup_cc_fallback_edges", len(edges))
    for node, root in dedup.union_find(edges).items():
        if node != root:
            yield node, root


class ConnectedComponents(beam.PTransform):
    """Edges -> (node, component minimum) for every non-minimum node in an edge (self-loops ignored).

    Unrolled large-star/small-star rounds, a convergence check, and a union-find fallback guarded by a
    size limit (see the module docstring)."""

    def __init__(self, max_rounds: int, max_uf_edges: int) -> None:
        super().__init__()
        self.max_rounds = max_rounds
        self.max_uf_edges = max_uf_edges

    def expand(self, edges: beam.PCollection) -> beam.PCollection:
        edges = (edges
                 | "Orient" >> beam.FlatMap(lambda e: [] if e[0] == e[1] else [(min(e), max(e))])
                 | "Distinct0" >> beam.Distinct())
        for i in range(1, self.max_rounds + 1):
            edges = (edges
                     | f"LargeStarOut{i}" >> beam.FlatMap(_both_ways)
                     | f"LargeStarGroup{i}" >> beam.GroupByKey()
                     | f"LargeStar{i}" >> beam.FlatMap(_large_star)
                     | f"SmallStarOut{i}" >> beam.Map(lambda e: (e[1], e[0]))
                     | f"SmallStarGroup{i}" >> beam.GroupByKey()
                     | f"SmallStar{i}" >> beam.FlatMap(_small_star)
                     | f"Distinct{i}" >> beam.Distinct())
        bad = (edges
               | "Roles" >> beam.FlatMap(_roles)
               | "RoleCounts" >> beam.CombinePerKey(_sum_pairs)
               | "Violations" >> beam.Map(lambda kv: int(kv[1][0] > 1 or (kv[1][0] >= 1 and kv[1][1] >= 1)))
               | "Unconverged" >> beam.CombineGlobally(sum))

        def report(n: int) -> int:
            _count("dedup_cc_unconverged_nodes", n)
            return n

        bad = bad | "Report" >> beam.Map(report)
        flag = beam.pvalue.AsSingleton(bad)
        star = edges | "StarLabels" >> beam.FlatMap(lambda e, n: [] if n else [(e[1], e[0])], flag)
        fallback = (edges
                    | "Leftover" >> beam.FlatMap(lambda e, n: [(0, e)] if n else [], flag)
                    | "OneWorker" >> beam.GroupByKey()
                    | "UnionFind" >> beam.FlatMap(_union_find_edges, self.max_uf_edges))
        return (star, fallback) | "Labels" >> beam.Flatten()


# ------------------------------------------------------------------------------------------------ resolution

def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in PRIVATE}


def _exact_edges(item: tuple[str, Iterable[Node]]) -> Iterator[Any]:
    """Star edges of one exact-hash group, and each non-minimum member's exact parent (side output)."""
    _, nodes = item
    low = min(nodes)
    for node in nodes:
        if node != low:
            yield (low, node)
            yield beam.pvalue.TaggedOutput("parents", (node, ("exact", low)))


def _resolve(item: tuple[Node, Iterable[tuple[str, Any]]], cfg: DedupConfig) -> Iterator[Any]:
    """Write cluster/status on the row of one node, given its component root and exact parent, and emit
    a signature row when it is kept."""
    node, values = item
    root, exact_parent, rows = node, None, []
    for tag, value in values:
        if tag == "label":
            root = value
        elif tag == "exact":
            exact_parent = value
        else:
            rows.append(value)  # one row per node (two only if (id, origin) is not unique)
    for row in rows:
        out = _public(row)
        out["cluster"] = dedup.node_id(root)
        if row.get(KIND) == "url":
            _count("dedup_url_duplicates")
            out.update(status="rejected", reason="duplicate_url",
                       detail=dedup.duplicate_detail(root, "url", row[PARENT]))
        elif exact_parent is not None:
            _count("dedup_exact_duplicates")
            out.update(status="rejected", reason="duplicate",
                       detail=dedup.duplicate_detail(root, "exact", exact_parent))
        elif root != node:
            _count("dedup_near_duplicates")
            out.update(status="rejected", reason="duplicate", detail=dedup.duplicate_detail(root, "near"))
        else:
            _count("dedup_kept")
            if row.get(SIG) is not None:
                yield beam.pvalue.TaggedOutput("signatures", {
                    "id": out["id"], "source": out.get("source"), "lang": out.get("lang"),
                    "cluster": out["cluster"], "signature": row[SIG], "num_perm": cfg.num_perm,
                    "seed": cfg.seed, "ngram": cfg.ngram, "scheme": dedup.SCHEME,
                })
        yield out


class Dedup(beam.PTransform):
    """rows -> (rows with status/reason/detail/cluster updated, signature rows of kept documents)."""

    def __init__(self, cfg: DedupConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def expand(self, rows: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        cfg = self.cfg
        keep = cfg.keep
        # filters rather than Partition: see the multi-output note above
        passing = rows | "NotKept" >> beam.Filter(lambda row: row.get("status") != "kept")
        live = (rows
                | "Kept" >> beam.Filter(lambda row: row.get("status") == "kept")
                | "Node" >> beam.Map(lambda row: {**row, NODE: dedup.node_key(row, keep)}))
        done: list[beam.PCollection] = [passing]
        to_resolve: list[beam.PCollection] = []
        edges: list[beam.PCollection] = []
        tagged: list[beam.PCollection] = []

        if cfg.url:
            live, url_riders = live | "Url" >> _DedupOnKey(lambda row: dedup.url_key(row.get("url")), "url")
            to_resolve.append(url_riders)
            edges.append(url_riders | "UrlEdges" >> beam.Map(lambda row: (row[PARENT], row[NODE])))
        if cfg.template:
            live, emptied = live | "Template" >> _Template(cfg)
            done.append(emptied)
        if cfg.near:
            live = (live
                    | "Batch" >> BatchByKey(cfg.signature_batch, 64, lambda row: repr(row[NODE]))
                    | "Sign" >> beam.ParDo(_Sign(cfg)))
            b, r = dedup.lsh_params(cfg.threshold, cfg.num_perm)
            edges.append(live
                         | "Bands" >> beam.FlatMap(_bands, b, r)
                         | "Buckets" >> beam.GroupByKey()
                         | "BucketEdges" >> beam.FlatMap(_bucket_edges))
        if cfg.exact:
            groups = (live
                      | "ExactKey" >> beam.FlatMap(
                          lambda row: [] if (k := dedup.exact_key(row["text"], row.get("lang"))) is None
                          else [(k, row[NODE])])
                      | "ExactGroup" >> beam.GroupByKey())
            exact = _flatmap_outputs(groups, "ExactEdges", _exact_edges, main="edges", tags=("parents",))
            edges.append(exact.edges)
            tagged.append(exact.parents)
        to_resolve.append(live)

        if edges:
            all_edges = tuple(edges) | "Edges" >> beam.Flatten()
            labels = all_edges | "Components" >> ConnectedComponents(cfg.max_cc_rounds, cfg.max_uf_edges)
            tagged.append(labels | "LabelTag" >> beam.Map(lambda kv: (kv[0], ("label", kv[1]))))
        keyed_rows = [pc | f"RowTag{i}" >> beam.Map(lambda row: (row[NODE], ("row", row)))
                      for i, pc in enumerate(to_resolve)]
        grouped = ((*keyed_rows, *tagged)
                   | "ResolveFlatten" >> beam.Flatten()
                   | "ResolveGroup" >> beam.GroupByKey())
        resolved = _flatmap_outputs(grouped, "Resolve", _resolve, cfg, main="rows", tags=("signatures",))
        out = (*done, resolved.rows) | "All" >> beam.Flatten()
        return out, resolved.signatures


def apply_dedup(rows: beam.PCollection, cfg: DedupConfig, label: str = "Dedup"
                ) -> tuple[beam.PCollection, beam.PCollection]:
    """Deduplicate one source's rows; returns (all rows, signature rows of the kept documents).

    Rows with status != 'kept' pass through untouched. Every row that entered as 'kept' leaves with
    `cluster` set to the id of the document its cluster keeps (its own id when it is a singleton).
    Signature rows: {id, source, lang, cluster, signature (num_perm uint64 little-endian), num_perm, seed,
    ngram, scheme}, one per kept document that has at least one shingle; empty when `cfg.near` is off.
    """
    return rows | label >> Dedup(cfg)
