"""Deduplication: pure functions (roots/dedup.py) and the Beam stages (pipelines/dedup.py) on DirectRunner.

The Beam scenarios use real UDHR text (sources/samples/udhr) and run a handful of small pipelines; each
pipeline collects its output through ToList into a pickle file, which works on any runner.
"""

from __future__ import annotations

import json
import pickle
import random
import string
from collections import defaultdict
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.dedup import ConnectedComponents, apply_dedup
from pipelines.runner import make_pipeline
from roots.dedup import minhash as d
from roots.dedup import unionfind as uf
from roots.dedup.minhash import DedupConfig

UDHR = Path(__file__).resolve().parent.parent / "sources" / "samples" / "udhr" / "udhr.jsonl"
PROPS = settings(max_examples=40, deadline=None, derandomize=True)


def _udhr(code: str) -> dict[str, str]:
    """UDHR paragraphs of one translation, by paragraph name (pre01, art01...)."""
    with UDHR.open(encoding="utf-8") as fh:
        recs = [json.loads(line) for line in fh]
    return {r["id"].split("-", 2)[2]: r["text"] for r in recs if r["id"].split("-")[1] == code}


EN = _udhr("eng")
ZH = _udhr("cmn_hans")


def _join(paras: dict[str, str], names: list[str], sep: str = " ") -> str:
    return sep.join(paras[n] for n in names)


def _arts(*nums: int) -> list[str]:
    return [f"art{n:02d}" for n in nums]


# ================================================================================================ pure: exact

def test_exact_hash_is_the_roots_md5_recipe() -> None:
    import hashlib

    assert d.normalise_for_hash(" Article 12: Everyone, has\tthe right!\n") == "ArticleEveryonehastheright"
    assert d.exact_hash("a b") == hashlib.md5(b"ab").hexdigest()
    assert d.exact_hash("Article 1. All human beings") == d.exact_hash("Article 2 -- All  human\nbeings!!")
    assert d.exact_hash("All human beings") != d.exact_hash("All human beinks")
    assert d.exact_hash("Case") != d.exact_hash("case")  # ROOTS does not lower-case
    assert d.exact_key("12:30 !!") is None and d.exact_key("") is None  # never merged
    assert d.exact_key("abc 1") == d.exact_hash("abc")


_NOISE = st.text(alphabet=string.whitespace + string.digits + string.punctuation + "\u00a0\u3000٣",
                 max_size=5)


@PROPS
@given(words=st.lists(st.text(alphabet=st.characters(categories=("L", "M")), min_size=1, max_size=8),
                      min_size=1, max_size=12),
       noise=st.lists(_NOISE, min_size=13, max_size=13))
def test_exact_hash_ignores_whitespace_digits_punctuation(words: list[str], noise: list[str]) -> None:
    plain = "".join(words)
    noisy = "".join(n + w for n, w in zip(noise, words)) + noise[-1]
    assert d.exact_hash(noisy) == d.exact_hash(plain)


# ============================================================================================= pure: shingles

def test_word_shingles() -> None:
    assert d.shingles("The quick brown fox jumps over", "en", 5) == {b"the quick brown fox jumps",
                                                                       b"quick brown fox jumps over"}
    assert d.shingles("Hello, World!", "en", 5) == {b"hello world"}  # shorter than n: one shingle
    assert d.shingles(" ... ", "en", 5) == set()
    assert d.shingles("ÉCOLE été à Paris", "fr", 2) == {"école été".encode(), "été à".encode(),
                                                         "à paris".encode()}


def test_marks_do_not_split_indic_words() -> None:
    hindi = "सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता प्राप्त है"
    assert len(d.shingles(hindi, "hi", 1)) == len(set(hindi.split()))


def test_char_shingles_for_scripts_without_spaces() -> None:
    zh = ZH["art01"]
    assert (d.uses_char_shingles(zh, "zh") and d.uses_char_shingles(zh, "und")
            and d.uses_char_shingles(zh, None))
    assert d.uses_char_shingles("ภาษาไทย", "th") and d.uses_char_shingles(ZH["art03"], "zh-Hans")
    assert not d.uses_char_shingles(EN["art01"], "en") and not d.uses_char_shingles("Привет мир", "und")
    sh = d.shingles("人人生而自由，在尊严", "zh", 5)
    assert sh == {"人人生而自".encode(), "人生而自由".encode(), "生而自由在".encode(), "而自由在尊".encode(),
                  "自由在尊严".encode()}  # punctuation dropped before taking character 5-grams
    assert len(d.shingles(zh, "zh", 5)) > 10 and len(d.shingles(zh, "en-forced-words", 5)) > 10


# ============================================================================================== pure: MinHash

SAMPLES = [(EN["art01"], "en"), (ZH["art02"], "zh"), ("short text", "en"), ("नमस्ते दुनिया", "hi"),
           (_join(EN, _arts(16, 17, 18)), "en")]


@pytest.mark.parametrize(("text", "lang"), SAMPLES)
def test_numpy_signature_equals_datasketch(text: str, lang: str) -> None:
    for num_perm, seed in ((128, 1), (240, 7)):
        ours = d.minhash_signature(text, lang, num_perm, seed)
        plain = MinHash(num_perm=num_perm, seed=seed, scheme="affine64")  # datasketch's own permutations
        plain.update_batch(d.shingles(text, lang, 5))
        assert ours.dtype == np.uint64 and ours.shape == (num_perm,)
        assert np.array_equal(ours, plain.hashvalues)
        assert np.array_equal(ours, d.datasketch_signature(text, lang, num_perm, seed))


@PROPS
@given(texts=st.lists(st.text(max_size=300), min_size=1, max_size=6), pick=st.integers(min_value=0))
def test_identical_texts_identical_signatures_whatever_the_batch(texts: list[str], pick: int) -> None:
    text = texts[pick % len(texts)]
    alone = d.minhash_signature(text, "en")
    batch = d.minhash_signatures([*texts, text], ["en"] * (len(texts) + 1))
    assert np.array_equal(batch[-1], alone) and np.array_equal(batch[pick % len(texts)], alone)
    assert np.array_equal(alone, d.datasketch_signature(text, "en"))
    assert d.is_empty_signature(alone) == (not d.shingles(text, "en", 5))


@PROPS
@given(n_common=st.integers(0, 400), n_a=st.integers(0, 400), n_b=st.integers(0, 400),
       salt=st.integers(0, 10**6))
def test_estimated_jaccard_close_to_true_jaccard(n_common: int, n_a: int, n_b: int, salt: int) -> None:
    if n_common + n_a + n_b == 0:
        n_common = 1
    common = {f"c{salt}-{i}".encode() for i in range(n_common)}
    a = common | {f"a{salt}-{i}".encode() for i in range(n_a)}
    b = common | {f"b{salt}-{i}".encode() for i in range(n_b)}
    true = len(a & b) / len(a | b)
    sig_a, sig_b = d.minhash_of_sets([a, b], num_perm=256, seed=3)
    # standard error sqrt(J(1-J)/256) <= 0.031: 0.16 is more than 5 standard errors
    assert abs(d.estimate_jaccard(sig_a, sig_b) - true) < 0.16


def test_signature_bytes_round_trip_little_endian() -> None:
    sig = d.minhash_signature(EN["art02"], "en", 64)
    raw = d.signature_to_bytes(sig)
    assert len(raw) == 64 * 8 and np.array_equal(d.signature_from_bytes(raw), sig)
    assert (d.signature_to_bytes(np.array([1, 2**64 - 1], dtype=np.uint64))
            == b"\x01" + b"\x00" * 7 + b"\xff" * 8)
    assert d.estimate_jaccard(sig, d.signature_from_bytes(raw)) == 1.0
    with pytest.raises(ValueError):
        d.signature_from_bytes(b"123")


@pytest.mark.parametrize("num_perm", [32, 128, 256])
def test_lsh_params_equal_datasketchs_optimiser(num_perm: int) -> None:
    """roots integrates the band curves with numpy instead of importing datasketch's scipy-based optimiser:
    the chosen (bands, rows) must be the library's for every threshold."""
    from datasketch.lsh import _optimal_param

    for threshold in (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
        d.lsh_params.cache_clear()
        assert d.lsh_params(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


def test_permutations_equal_datasketchs() -> None:
    for num_perm, seed in ((128, 1), (64, 7), (256, 42)):
        a, b = d.permutations(num_perm, seed)
        theirs = MinHash(num_perm=num_perm, seed=seed, scheme="affine64").permutations
        assert np.array_equal(a, np.asarray(theirs[0], dtype=np.uint64))
        assert np.array_equal(b, np.asarray(theirs[1], dtype=np.uint64))


def test_lsh_params_and_band_keys() -> None:
    assert d.lsh_params(0.7, 240) == (24, 10)  # text-dedup's minhash.toml values
    assert d.lsh_params(0.7, 128) == (14, 9)
    sig = d.minhash_signature(EN["art02"], "en")
    keys = d.band_keys(sig, 14, 9)
    assert [i for i, _ in keys] == list(range(14)) and all(len(k) == 16 for _, k in keys)
    assert keys == d.band_keys(sig.copy(), 14, 9)
    other = sig.copy()
    other[20] ^= np.uint64(1)  # row 20 lies in band 2
    changed = [i for (i, k), (_, k2) in zip(keys, d.band_keys(other, 14, 9)) if k != k2]
    assert changed == [2]
    other[127] ^= np.uint64(1)  # 14*9 = 126 rows used: the tail is outside every band
    assert [i for (i, k), (_, k2) in zip(keys, d.band_keys(other, 14, 9)) if k != k2] == [2]


# ======================================================================================== pure: URL, template

def test_url_key() -> None:
    assert d.url_key("https://Example.com/a/b?x=1#top") == "example.com/a/b"
    assert d.url_key("http://example.com/a/b?y=2") == "example.com/a/b"
    assert d.url_key("http://user:pw@example.com:80") == "example.com/"
    assert d.url_key("http://example.com:8080/a") == "example.com:8080/a"
    assert d.url_key("https://example.com/a/") != d.url_key("https://example.com/a")
    assert d.url_key(None) is None and d.url_key("") is None and d.url_key("not a url") is None
    assert d.url_key("http://[::1") is None  # malformed: never merged


def test_template_helpers() -> None:
    text = "Home | About | Contact\n  Home | About | Contact  \nshort\nA real sentence of the article."
    keys = d.template_line_keys(text, 15)
    assert len(keys) == 3 and keys[0] == keys[1] == d.line_digest("Home | About | Contact")
    frequent = {d.line_digest("Home | About | Contact")}
    assert d.remove_template_lines(text, frequent, 15) == ("short\nA real sentence of the article.", 2)
    assert d.remove_template_lines("nothing here", frequent, 15) == ("nothing here", 0)
    assert d.template_line_keys("tiny\n\n", 15) == []


# =============================================================================================== pure: keeper

def test_choose_keeper_and_detail() -> None:
    rows = [{"id": "b", "text": "long text here", "origin": ""}, {"id": "a", "text": "short", "origin": ""},
            {"id": "c", "text": "long text here", "origin": ""}]
    assert d.choose_keeper(rows)["id"] == "a"
    assert d.choose_keeper(rows, keep="longest")["id"] == "b"
    assert d.node_id(d.node_key(rows[0], "longest")) == "b" and d.node_id(d.node_key(rows[0])) == "b"
    root, parent = d.node_key(rows[1]), d.node_key(rows[0])
    assert d.duplicate_detail(root, "near") == "duplicate of a (near)"
    assert d.duplicate_detail(root, "exact", root) == "duplicate of a (exact)"
    assert d.duplicate_detail(root, "exact", parent) == "duplicate of a (exact copy of b)"
    with pytest.raises(ValueError):
        DedupConfig(keep="random")
    with pytest.raises(ValueError):
        DedupConfig(threshold=1.5)


# ================================================================================================ pure: graph

def test_star_edges_span_the_bucket() -> None:
    assert sorted(d.star_edges([5, 3, 9, 3, 7])) == [(3, 5), (3, 7), (3, 9)]
    assert list(d.star_edges([4])) == []


def _brute_force_components(edges: list[tuple[int, int]]) -> dict[int, int]:
    """node -> smallest node it is connected to, by growing each node's reachable set until it stops."""
    nodes = {n for e in edges for n in e}
    adjacent: dict[int, set[int]] = {n: set() for n in nodes}
    for u, v in edges:
        adjacent[u].add(v)
        adjacent[v].add(u)
    out = {}
    for n in nodes:
        seen, frontier = {n}, {n}
        while frontier:
            frontier = {m for f in frontier for m in adjacent[f]} - seen
            seen |= frontier
        out[n] = min(seen)
    return out


@PROPS
@given(edges=st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), max_size=120))
def test_union_find_equals_brute_force_components(edges: list[tuple[int, int]]) -> None:
    """Every node of an edge maps to its component's minimum, self-loops included; `components` lists the
    same components, sorted, in order of their minimum."""
    expected = _brute_force_components(edges)
    assert uf.union_find(edges) == expected
    parent: dict = {}
    for u, v in edges:
        uf.union(parent, u, v)
    groups = uf.components(parent)
    assert [g[0] for g in groups] == sorted(set(expected.values()))
    assert all(g == sorted(n for n, r in expected.items() if r == g[0]) for g in groups)


@PROPS
@given(edges=st.lists(st.tuples(st.text("abc", max_size=2), st.text("abc", max_size=2)), max_size=40))
def test_union_find_roots_are_minima_of_any_ordered_nodes(edges: list[tuple[str, str]]) -> None:
    """Nodes need only be hashable and ordered (the Beam nodes are tuples, cross-source ones ints)."""
    labels = uf.union_find(edges)
    for u, v in edges:
        assert labels[u] == labels[v] and labels[u] <= min(u, v)


@PROPS
@given(edges=st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), max_size=120),
       split=st.integers(0, 120))
def test_merged_parent_maps_equal_union_find(edges: list[tuple[int, int]], split: int) -> None:
    """Partial union-finds merged in any split give the components of all edges, minimum as root."""
    expected = {k: r for k, r in uf.union_find(edges).items() if k != r}
    left: dict = {}
    right: dict = {}
    for u, v in edges[:split]:
        uf.union(left, u, v)
    for u, v in edges[split:]:
        uf.union(right, u, v)
    uf.merge_parents(right, left)
    assert {k: r for k, r in uf.component_minima(right).items() if k != r} == expected
    assert all(r == min(k for k, rr in uf.union_find(edges).items() if rr == r) for r in expected.values())


# =============================================================================================== Beam helpers

def _row(doc_id: str, text: str, lang: str = "en", url: str | None = None,
         status: str = "kept") -> dict[str, Any]:
    return {"id": doc_id, "text": text, "source": "test", "url": url, "origin": "", "lang": lang,
            "n_chars": len(text), "n_bytes": len(text.encode()), "cluster": None, "status": status,
            "reason": None if status == "kept" else "quality", "detail": None if status == "kept" else "x"}


def _run(tmp_path: Path, shards: list[list[dict[str, Any]]], cfg: DedupConfig,
         options: list[str] | None = None) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Run apply_dedup over inputs that arrive as separate PCollections (separate files/bundles)."""
    out_rows, out_sigs = tmp_path / "rows.pkl", tmp_path / "sigs.pkl"
    with make_pipeline(options or []) as p:
        parts = [p | f"Create{i}" >> beam.Create(shard, reshuffle=False) for i, shard in enumerate(shards)]
        rows = tuple(parts) | beam.Flatten() | beam.Reshuffle()
        res, sigs = apply_dedup(rows, cfg)
        _dump(res, out_rows, "Rows")
        _dump(sigs, out_sigs, "Sigs")
    rows = pickle.loads(out_rows.read_bytes())
    by_id = {r["id"]: r for r in rows}
    assert len(by_id) == len(rows) == sum(len(s) for s in shards)
    return by_id, pickle.loads(out_sigs.read_bytes())


def _dump(pcoll: beam.PCollection, path: Path, label: str) -> None:
    target = str(path)

    def write(items: list[Any]) -> None:
        Path(target).write_bytes(pickle.dumps(items))

    _ = pcoll | f"ToList{label}" >> beam.combiners.ToList() | f"Write{label}" >> beam.Map(write)


def _replace_words(text: str, positions: list[int], tag: str) -> str:
    words = text.split()
    for j, pos in enumerate(positions):
        words[pos] = f"{tag}{j}x"
    return " ".join(words)


def _chain() -> tuple[str, str, str]:
    """A~B and B~C share an LSH bucket, A and C share none (checked here with the pure functions, so the
    pipeline can only join A and C through B). Variants are tried in a fixed order: deterministic."""
    base = _join(EN, _arts(23, 25, 26, 29))
    n = len(base.split())
    half, k = n // 2, 8
    b, r = d.lsh_params(0.7, 128)
    for s in range(half // k):
        a = _replace_words(base, [s + (half // k) * j for j in range(k)], "qa")
        c = _replace_words(base, [half + s + (half // k) * j for j in range(k)], "qc")
        ka, kb, kc = (set(d.band_keys(d.minhash_signature(t, "en"), b, r)) for t in (a, base, c))
        if ka & kb and kb & kc and not ka & kc:
            return a, base, c
    raise AssertionError("no chain variant found")


def _scenario() -> tuple[list[list[dict[str, Any]]], dict[str, Any]]:
    distinct_names = [f"pre{i:02d}" for i in range(1, 11)] + _arts(*range(1, 16), 24, 27, 28, 30)
    near_base = _join(EN, _arts(16, 17, 18, 19))
    exact_base = _join(EN, _arts(20, 21, 22))
    chain_a, chain_b, chain_c = _chain()
    zh_base = _join(ZH, _arts(1, 2, 3, 4, 5, 6, 7), sep="")
    zh_copy = zh_base.replace("尊严", "尊重", 1).replace("歧视", "岐视", 1)

    near_b = _replace_words(near_base, [40, 120], "nb")
    first = [
        _row("ex-a", exact_base),
        _row("nr-a", near_base),
        _row("ch-b", chain_b),
        _row("zh-a", zh_base, "zh"),
        _row("rej-1", exact_base, status="rejected"),  # rejected upstream: untouched even if a copy
        *[_row(f"en-{name}", EN[name]) for name in distinct_names[::2]],
    ]
    second = [
        _row("ex-b", "  " + exact_base.replace(",", " ;").replace("Article", "Article 7") + " 2024!!"),
        _row("nr-b", near_b),
        _row("nr-c", _replace_words(near_base, [70, 150], "nc")),
        _row("nr-d", near_b + " 12."),  # exact copy of a near duplicate
        _row("ch-a", chain_a),
        _row("ch-c", chain_c),
        _row("zh-b", zh_copy, "und"),  # no language label: the script decides char shingles
        *[_row(f"en-{name}", EN[name]) for name in distinct_names[1::2]],
    ]
    facts = {"distinct": [f"en-{n}" for n in distinct_names], "first": first, "second": second}
    return [first, second], facts


@pytest.fixture(scope="module")
def main_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[dict[str, Any]], dict]:
    shards, facts = _scenario()
    rows, sigs = _run(tmp_path_factory.mktemp("main"), shards, DedupConfig())
    return rows, sigs, facts


# ============================================================================================ Beam: scenarios

def test_exact_copies_across_bundles(main_run: tuple) -> None:
    rows, _, _ = main_run
    assert rows["ex-a"]["status"] == "kept" and rows["ex-a"]["cluster"] == "ex-a"
    assert (rows["ex-b"]["status"], rows["ex-b"]["reason"], rows["ex-b"]["detail"],
            rows["ex-b"]["cluster"]) == ("rejected", "duplicate", "duplicate of ex-a (exact)", "ex-a")


def test_near_copies_with_changed_words(main_run: tuple) -> None:
    rows, _, _ = main_run
    assert rows["nr-a"]["status"] == "kept" and rows["nr-a"]["cluster"] == "nr-a"
    for doc in ("nr-b", "nr-c"):
        assert (rows[doc]["reason"], rows[doc]["detail"], rows[doc]["cluster"]) == (
            "duplicate", "duplicate of nr-a (near)", "nr-a")
    # an exact copy of a near duplicate ends in the near cluster and says which copy it matched
    assert (rows["nr-d"]["reason"], rows["nr-d"]["detail"], rows["nr-d"]["cluster"]) == (
        "duplicate", "duplicate of nr-a (exact copy of nr-b)", "nr-a")


def test_distinct_udhr_articles_are_not_merged(main_run: tuple) -> None:
    rows, _, facts = main_run
    for doc in facts["distinct"]:
        assert rows[doc]["status"] == "kept" and rows[doc]["cluster"] == doc, doc


def test_chain_is_one_cluster(main_run: tuple) -> None:
    rows, _, _ = main_run
    assert {rows[x]["cluster"] for x in ("ch-a", "ch-b", "ch-c")} == {"ch-a"}
    assert rows["ch-a"]["status"] == "kept"
    assert rows["ch-c"]["detail"] == "duplicate of ch-a (near)"  # joined only through ch-b


def test_zh_near_duplicate_with_char_shingles(main_run: tuple) -> None:
    rows, _, _ = main_run
    assert rows["zh-a"]["status"] == "kept"
    assert (rows["zh-b"]["detail"], rows["zh-b"]["cluster"]) == ("duplicate of zh-a (near)", "zh-a")


def test_one_keeper_per_cluster_and_cluster_everywhere(main_run: tuple) -> None:
    rows, _, facts = main_run
    clusters: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows.values():
        if row["id"] == "rej-1":
            continue
        assert row["cluster"] is not None
        assert not any(k.startswith("_dedup") for k in row)
        clusters[row["cluster"]].append(row)
    for cluster, members in clusters.items():
        kept = [m for m in members if m["status"] == "kept"]
        assert [m["id"] for m in kept] == [cluster]
        for m in members:
            if m["status"] == "rejected":
                assert m["detail"].startswith(f"duplicate of {cluster} (")
    upstream = next(r for r in facts["first"] if r["id"] == "rej-1")
    assert rows["rej-1"] == upstream  # rejected rows pass through untouched


def test_signature_rows_for_kept_documents(main_run: tuple) -> None:
    rows, sigs, _ = main_run
    kept = {i for i, r in rows.items() if r["status"] == "kept"}
    assert {s["id"] for s in sigs} == kept and len(sigs) == len(kept)
    for s in sigs:
        assert s["cluster"] == s["id"] and s["num_perm"] == 128 and s["seed"] == 1 and s["source"] == "test"
        assert len(s["signature"]) == 128 * 8
        row = rows[s["id"]]
        assert s["lang"] == row["lang"]
        assert np.array_equal(d.signature_from_bytes(s["signature"]),
                              d.minhash_signature(row["text"], row["lang"]))


def test_decisions_do_not_depend_on_order_or_bundles(main_run: tuple, tmp_path: Path) -> None:
    rows, sigs, facts = main_run
    everything = facts["first"] + facts["second"]
    random.Random(5).shuffle(everything)
    shards = [everything[i::3] for i in range(3)]
    again, sigs2 = _run(tmp_path, shards, DedupConfig(),
                        ["--direct_num_workers=2", "--direct_running_mode=multi_threading"])

    def decisions(rs: dict[str, Any]) -> dict[str, tuple]:
        return {i: (r["status"], r["reason"], r["detail"], r["cluster"]) for i, r in rs.items()}

    assert decisions(again) == decisions(rows)
    assert sorted((s["id"], s["signature"]) for s in sigs2) == sorted((s["id"], s["signature"]) for s in sigs)


def test_template_lines_then_exact_and_url(tmp_path: Path) -> None:
    header = "Home | News | About us | Contact"
    footer = "Copyright 2023 Example Media. All rights reserved."
    rare = "This line appears on nine pages only."
    bodies = [EN[f"art{i:02d}"] for i in range(1, 13)]
    docs = []
    for i, body in enumerate(bodies):
        lines = [header, body, footer] + ([rare] if i < 9 else []) + ["Menu"]
        docs.append(_row(f"t-{i:02d}", "\n".join(lines), url=f"https://site.org/page{i}?ref=feed"))
    # same article, different template around it: identical once the template lines are gone
    docs.append(_row("t-20", "\n".join([footer, bodies[10], "Menu", header]), url="https://site.org/other"))
    docs.append(_row("t-21", "\n".join([header, footer, "  " + header]), url="https://site.org/empty"))
    # URL copies: same host+path, other scheme/query/case; u-2 is itself an exact copy of u-1
    docs.append(_row("u-1", EN["art20"], url="https://site.org/u1"))
    docs.append(_row("u-2", EN["art20"] + " 1.", url="http://SITE.org/dup?a=1"))
    docs.append(_row("u-3", EN["art21"], url="https://site.org/dup?b=2#x"))
    rows, sigs = _run(tmp_path, [docs[::2], docs[1::2]], DedupConfig(template=True, url=True))

    for i, body in enumerate(bodies):
        row = rows[f"t-{i:02d}"]
        assert row["status"] == "kept" and header not in row["text"] and footer not in row["text"]
        assert body in row["text"] and "Menu" in row["text"]  # short lines are never template lines
        assert (rare in row["text"]) == (i < 9)  # 9 occurrences < 10
        assert row["n_chars"] == len(row["text"])
    assert (rows["t-20"]["reason"], rows["t-20"]["detail"]) == ("duplicate", "duplicate of t-10 (exact)")
    assert (rows["t-21"]["status"], rows["t-21"]["reason"], rows["t-21"]["cluster"]) == (
        "rejected", "dedup_template_soft", "t-21")
    assert rows["u-1"]["status"] == "kept"
    assert (rows["u-2"]["reason"], rows["u-2"]["detail"], rows["u-2"]["cluster"]) == (
        "duplicate", "duplicate of u-1 (exact)", "u-1")
    assert (rows["u-3"]["reason"], rows["u-3"]["detail"], rows["u-3"]["cluster"]) == (
        "duplicate_url", "duplicate of u-1 (url copy of u-2)", "u-1")
    assert {s["id"] for s in sigs} == {i for i, r in rows.items() if r["status"] == "kept"}


def test_exact_only_without_near(tmp_path: Path) -> None:
    docs = [_row("a", EN["art01"]), _row("b", EN["art01"] + " (1)"),
            _row("c", _replace_words(EN["art02"], [3], "z")), _row("d", EN["art02"])]
    rows, sigs = _run(tmp_path, [docs], DedupConfig(near=False))
    assert (rows["b"]["detail"], rows["b"]["cluster"]) == ("duplicate of a (exact)", "a")
    assert rows["c"]["status"] == rows["d"]["status"] == "kept" and sigs == []


# =========================================================================================== Beam: components

def _components(tmp_path: Path, graphs: dict[str, list[tuple[int, int]]],
                limit: int = 1000) -> dict[str, dict[int, int]]:
    """Run ConnectedComponents on several graphs in one pipeline (several bundles each): labels per graph."""
    results: dict[str, Path] = {}
    p = make_pipeline(["--direct_num_workers=2", "--direct_running_mode=multi_threading"])
    for name, edges in graphs.items():
        labels = (p | f"Edges{name}" >> beam.Create(edges, reshuffle=True)
                  | f"CC{name}" >> ConnectedComponents(limit))
        results[name] = tmp_path / f"{name}.pkl"
        _dump(labels, results[name], name)
    p.run().wait_until_finish()
    return {name: dict(pickle.loads(path.read_bytes())) for name, path in results.items()}


def _random_graph(seed: int, n: int, m: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    edges = {(rng.randrange(n), rng.randrange(n)) for _ in range(m)}
    return sorted((min(u, v), max(u, v)) for u, v in edges if u != v)


def test_beam_components_match_union_find(tmp_path: Path) -> None:
    path = [(i, i + 1) for i in range(120)]  # ids in chain order: the worst case for label propagation
    graphs = {"path": path, "reversed": path[::-1], "random": _random_graph(1, 400, 300), "empty": []}
    labels = _components(tmp_path, graphs)
    for name, edges in graphs.items():
        assert labels[name] == {k: r for k, r in uf.union_find(edges).items() if k != r}, name


def test_beam_components_fail_loudly_beyond_the_node_limit(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="max_cc_nodes"):
        _components(tmp_path, {"path": [(i, i + 1) for i in range(50)]}, limit=10)


def test_admitted_documents_are_deduplicated_against_kept_and_each_other():
    """`roots.dedup.admitted`: kept documents are never rejected; an admitted copy of a kept document is
    its duplicate; among admitted copies only, the keep policy picks the one that stays."""
    from roots.dedup import admitted

    base = ("Everyone has the right to freedom of thought, conscience and religion; this right includes "
            "freedom to change his religion or belief, and freedom to manifest it in teaching and worship.")
    other = ("Everyone has the right to rest and leisure, including reasonable limitation of working hours "
             "and periodic holidays with pay, as the declaration says in its twenty-fourth article.")
    kept = [{"id": "k1", "text": base, "lang": "en"}, {"id": "k2", "text": base + " (copy kept earlier)",
                                                        "lang": "en"}]
    new = [{"id": "a1", "text": base, "lang": "en"},                  # exact copy of k1
           {"id": "b2", "text": other, "lang": "en"},                 # admitted twice, exactly
           {"id": "b1", "text": other + " ", "lang": "en"},
           {"id": "c1", "text": "Something else entirely, written for this test alone.", "lang": "en"}]
    cfg = DedupConfig()
    sigs = {r["id"]: d.signature_to_bytes(d.minhash_signature(r["text"], "en")) for r in kept + new}
    out = admitted.duplicates_among_admitted(kept, new, sigs, cfg)
    assert out["a1"] == ("k1", "exact")
    assert out["b2"] == ("b1", "exact") and "b1" not in out  # lowest id of the admitted pair stays
    assert "c1" not in out and "k1" not in out and "k2" not in out
    longest = admitted.duplicates_among_admitted(kept, new, sigs, DedupConfig(keep="longest"))
    assert longest["b2"] == ("b1", "exact")  # b1 is one character longer
    assert admitted.duplicates_among_admitted(kept, new, sigs, DedupConfig(exact=False, near=False)) == {}
