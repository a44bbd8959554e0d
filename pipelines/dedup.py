"""Beam wiring of deduplication: URL, template lines, exact and MinHash-LSH near duplicates, global per
source.

Only rows whose status is 'kept' take part; every other row passes through untouched. Only small keys
are grouped: the per-row work lives in `roots/dedup/rowkeys.py`, and the source pipeline keeps the texts in
spill files next to its workers and groups the keys through key spill files (see
`pipelines/source_pipeline.py`). Steps, in order (the grouping is a GroupByKey here, a bucket step there):

1. URL (`cfg.url`): (URL key, node) pairs -> GroupByKey -> every node but the smallest of a key is a
   rider (`duplicate_url`) with an edge to its keeper. First, so that pages crawled twice do not
   double-count their lines in the template count.
2. Template lines (`cfg.template`): CombinePerKey (a bucketed sum there) counts every stripped line
   occurrence (16-byte digest) of the live rows; digests with count >= `template_min_count` become a side
   input (AsDict) and are removed from every document. A document left empty is rejected
   (`dedup_template_soft`). Before exact/near dedup because it changes texts.
3. Near (`cfg.near`): MinHash signatures (numpy batch, datasketch's hash family) -> (band, band digest)
   keys -> GroupByKey -> star edges from each bucket's smallest node.
4. Exact (`cfg.exact`): GroupByKey of (ROOTS md5 key, node) -> star edges from each group's smallest node,
   and each other member's exact parent.
5. URL, exact and LSH edges -> connected components (below) -> (node, component minimum).
6. Resolution: each row looks its node up in the labels, exact parents and riders (side inputs holding
   only documents that have a duplicate) and ends with `cluster` = id of the document its cluster keeps;
   rejected rows say `duplicate of <that id> (exact|near|url ...)`.

Connected components: one `CombineGlobally` whose accumulator is a union-find parent map (the smaller root
wins, so every root is its component's minimum under the node order). Runners lift it into partial combines
per worker and merge the partial maps on one worker; a constant handful of transforms whatever the graph,
where iterative label propagation (large-star/small-star rounds) unrolls a few shuffles per round into the
graph and paid seconds of graph construction per run. datatrove clusters on a single task too. The final
map holds every document that has a duplicate, on one worker (~300 bytes each); beyond
`cfg.max_cc_nodes` such documents the run fails loudly, naming the setting.

Memory bounds: in the source pipeline the keys of steps 1-4 go through key spill files, one hash bucket
at a time (`pipelines/source_pipeline.py`), so no step holds more than one bucket of keys. The in-memory
`Dedup` below shuffles them instead (the DirectRunner holds shuffles in memory; Dataflow, Flink and Spark
spill to disk): per kept document one URL key and node (~150 bytes), its band keys (bands x ~90 bytes:
14 x 90 = 1.3 kB at the 0.7/128 default) and one exact key (~120 bytes); per distinct long line ~60 bytes
while counting templates. Both: the side inputs hold ~200 bytes per document that has a duplicate and ~40
bytes per frequent line, on every worker; the union-find holds the documents that have a duplicate on one
worker (`max_cc_nodes`). GroupByKey consumers make two passes over their re-iterable values (minimum,
then emission) and keep nothing else.

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
from roots.core.errors import UserError
from roots.dedup import minhash, rowkeys, unionfind
from roots.dedup.minhash import DedupConfig, Node

NAMESPACE = "roots"


def count(name: str, n: int = 1) -> None:
    Metrics.counter(NAMESPACE, name).inc(n)


def count_all(counts: dict[str, int]) -> None:
    for name, n in counts.items():
        if n:
            count(name, n)


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


# ------------------------------------------------------------------------------------------------ components

class _UnionFind(beam.CombineFn):
    """Edges -> {node: component minimum} for every node with an edge that is not its component's minimum.

    The accumulator is a union-find parent map over the nodes that have an edge; runners combine partial
    maps per worker before the final merge (`merge_accumulators`), so only parent maps travel, not edges.
    Fails loudly when a map outgrows `limit` nodes (the setting `max_cc_nodes`) instead of exhausting the
    worker's memory."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def _check(self, parent: dict[Node, Node]) -> dict[Node, Node]:
        if len(parent) > self.limit:
            raise UserError(
                f"dedup: more than max_cc_nodes={self.limit} documents of this source have a duplicate, and "
                f"their clusters are found on one worker; raise recipe.dedup.max_cc_nodes (about 300 bytes "
                f"of that worker's memory per document) or split the source")
        return parent

    def create_accumulator(self) -> dict[Node, Node]:
        return {}

    def add_input(self, parent: dict[Node, Node], edge: tuple[Node, Node]) -> dict[Node, Node]:
        if edge[0] != edge[1]:
            unionfind.union(parent, edge[0], edge[1])
        return self._check(parent)

    def merge_accumulators(self, parents: Iterable[dict[Node, Node]]) -> dict[Node, Node]:
        it = iter(parents)
        merged = next(it, {})
        for other in it:
            unionfind.merge_parents(merged, other)
        return self._check(merged)

    def extract_output(self, parent: dict[Node, Node]) -> dict[Node, Node]:
        return unionfind.component_minima(parent)


def _items(labels: dict[Node, Node]) -> Iterable[tuple[Node, Node]]:
    return labels.items()


class ConnectedComponents(beam.PTransform):
    """Edges -> (node, component minimum) for every non-minimum node in an edge (self-loops ignored).

    One global combine: a constant handful of transforms whatever the graph (see the module docstring)."""

    def __init__(self, max_nodes: int) -> None:
        super().__init__()
        self.max_nodes = max_nodes

    def expand(self, edges: beam.PCollection) -> beam.PCollection:
        return (edges
                | "UnionFind" >> beam.CombineGlobally(_UnionFind(self.max_nodes))
                | "Labels" >> beam.FlatMap(_items))


# ------------------------------------------------------------------------------------------------ decisions

def _bucket_edges(item: tuple[Any, Iterable[Node]]) -> Iterator[tuple[Node, Node]]:
    return minhash.star_edges(item[1])


def _exact_edges(item: tuple[str, Iterable[Node]]) -> Iterator[Any]:
    """Star edges of one exact-hash group, and each non-minimum member's exact parent (side output)."""
    _, nodes = item
    low = min(nodes)
    for node in nodes:
        if node != low:
            yield (low, node)
            yield beam.pvalue.TaggedOutput("parents", (node, low))


def url_riders(url_keys: beam.PCollection) -> beam.PCollection:
    """(URL key, node) pairs -> (rider, keeper) for every page but the keeper of its URL."""
    return (url_keys
            | "UrlGroup" >> beam.GroupByKey()
            | "UrlRiders" >> beam.FlatMap(rowkeys.url_riders))


def frequent_lines(line_keys: beam.PCollection, min_count: int) -> beam.PCollection:
    """Line digests -> (digest, count) for the lines seen at least `min_count` times in the source."""
    return (line_keys
            | "LineOnes" >> beam.Map(lambda k: (k, 1))
            | "LineCount" >> beam.CombinePerKey(sum)
            | "Frequent" >> beam.Filter(lambda kv: kv[1] >= min_count))


class Decisions(beam.PTransform):
    """(band groups, exact groups, URL riders) -> (labels: (node, component root), exact parents:
    (node, parent)).

    A group is (key, nodes that carry it); only groups of two or more nodes matter, so a caller may pass
    only those. Only nodes that have a duplicate appear in either output, which is what keeps the side
    inputs of the resolution small."""

    def __init__(self, cfg: DedupConfig, bands: beam.PCollection | None, exact: beam.PCollection | None,
                 riders: beam.PCollection | None) -> None:
        super().__init__()
        self.cfg, self.bands, self.exact, self.riders = cfg, bands, exact, riders

    def expand(self, p: beam.pvalue.PBegin) -> tuple[beam.PCollection, beam.PCollection]:
        edges: list[beam.PCollection] = []
        parents: beam.PCollection | None = None
        if self.riders is not None:
            edges.append(self.riders | "UrlEdges" >> beam.Map(lambda kv: (kv[1], kv[0])))
        if self.bands is not None:
            edges.append(self.bands | "BucketEdges" >> beam.FlatMap(_bucket_edges))
        if self.exact is not None:
            exact = _flatmap_outputs(self.exact, "ExactEdges", _exact_edges, main="edges", tags=("parents",))
            edges.append(exact.edges)
            parents = exact.parents
        if edges:
            all_edges = tuple(edges) | "Edges" >> beam.Flatten()
            labels = all_edges | "Components" >> ConnectedComponents(self.cfg.max_cc_nodes)
        else:
            labels = p | "NoLabels" >> beam.Create([])
        if parents is None:
            parents = p | "NoParents" >> beam.Create([])
        return labels, parents


# ------------------------------------------------------------------------------------------------ rows

class _Resolve(beam.DoFn):
    def __init__(self, cfg: DedupConfig) -> None:
        self.cfg = cfg

    def process(self, row, labels, parents):  # unannotated: Beam would infer type hints
        out, sig_row, counter = rowkeys.resolve(row, labels, parents, self.cfg)
        if counter:
            count(counter)
        yield None, out
        if sig_row is not None:
            yield "signatures", sig_row


def _marked(row, cfg):  # unannotated: Beam would infer type hints
    out = dict(row)
    rowkeys.mark(out, cfg)
    return out


def _prepare_batch(batch, cfg, riders, frequent):  # unannotated: Beam would infer type hints
    rows, counts = rowkeys.prepare(batch, cfg, riders, frequent)
    count_all(counts)
    return rows


class Dedup(beam.PTransform):
    """rows -> (rows with status/reason/detail/cluster updated, signature rows of kept documents).

    The in-memory variant (the rows themselves flow through the runner), for pipelines that hold their
    documents in a PCollection; the source pipeline runs the same steps over spill files instead."""

    def __init__(self, cfg: DedupConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def expand(self, rows: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        cfg = self.cfg
        p = rows.pipeline
        marked = rows | "Mark" >> beam.Map(_marked, cfg)
        riders = None
        if cfg.url:
            riders = url_riders(marked | "UrlKeys" >> beam.FlatMap(rowkeys.url_keys))
        rider_side = beam.pvalue.AsDict(riders if riders is not None else p | "NoRiders" >> beam.Create([]))
        frequent = p | "NoFrequent" >> beam.Create([])
        if cfg.template:
            frequent = frequent_lines(marked | "LineKeys" >> beam.FlatMap(
                rowkeys.template_keys, rider_side, cfg.template_min_len, cfg.template_per_domain),
                cfg.template_min_count)
        prepared = (marked
                    | "Batch" >> BatchByKey(cfg.signature_batch, 64,
                                            lambda row: f"{row['id']}\x1f{row.get('origin')}")
                    | "Prepare" >> beam.FlatMap(_prepare_batch, cfg, rider_side,
                                                beam.pvalue.AsDict(frequent)))
        lsh = minhash.lsh_params(cfg.threshold, cfg.num_perm)
        bands = exact = None
        if cfg.near:
            bands = (prepared | "Bands" >> beam.FlatMap(rowkeys.band_keys, *lsh)
                     | "Buckets" >> beam.GroupByKey())
        if cfg.exact:
            exact = (prepared | "ExactKeys" >> beam.FlatMap(rowkeys.exact_keys)
                     | "ExactGroup" >> beam.GroupByKey())
        labels, parents = p | "Decide" >> Decisions(cfg, bands, exact, riders)
        tagged = prepared | "Resolve" >> beam.ParDo(_Resolve(cfg), beam.pvalue.AsDict(labels),
                                                    beam.pvalue.AsDict(parents))
        out = tagged | "Rows" >> beam.FlatMap(lambda kv: [kv[1]] if kv[0] is None else [])
        sigs = tagged | "Signatures" >> beam.FlatMap(lambda kv: [kv[1]] if kv[0] == "signatures" else [])
        return out, sigs


def apply_dedup(rows: beam.PCollection, cfg: DedupConfig, label: str = "Dedup"
                ) -> tuple[beam.PCollection, beam.PCollection]:
    """Deduplicate one source's rows; returns (all rows, signature rows of the kept documents).

    Rows with status != 'kept' pass through untouched. Every row that entered as 'kept' leaves with
    `cluster` set to the id of the document its cluster keeps (its own id when it is a singleton).
    Signature rows: {id, source, lang, cluster, signature (num_perm uint64 little-endian), num_perm, seed,
    ngram, scheme}, one per kept document that has at least one shingle; empty when `cfg.near` is off.
    """
    return rows | label >> Dedup(cfg)
