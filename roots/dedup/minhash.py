"""Deduplication building blocks (no Beam here): hashes, shingles, MinHash, LSH bands, URL keys, template
lines, keeper choice and the LSH star edges of near-duplicate clusters (the clusters themselves come
from `roots/dedup/unionfind.py`).

`pipelines/dedup.py` maps these onto Beam; keeping them pure makes every decision testable in isolation
and lets other code (the cross-source merge) reuse exactly the same hashing.

Recipes, and where they come from:

* Exact: ROOTS `dedup_document` hashes the text with every whitespace character, digit and ASCII
  punctuation mark removed (md5). Two documents that differ only in numbering, spacing or punctuation are
  the same document. A text that normalises to nothing is never an exact duplicate (`exact_key` is None):
  "12:30" and "3.14" are not copies of each other; ROOTS would have merged them.
* Near: MinHash over word 5-grams (character 5-grams for scripts written without spaces), bands and rows
  from datasketch's own optimiser, ROOTS's modern equivalent (text-dedup `minhash.toml`). The hash family
  is datasketch's `affine64` scheme (SHA-1 64-bit of the shingle, MurmurHash3 fmix64, then
  `a*h + b mod 2^64` with odd `a`) so a signature computed here equals
  `datasketch.MinHash(num_perm, seed, scheme="affine64")` fed the same shingles; the numpy batch path
  exists only because it is faster (see `minhash_signatures`).
* Template (`dedup_template_soft`): a stripped line of at least 15 characters that occurs at least 10 times
  across the source (every occurrence counts, as in ROOTS) is deleted from every document.
* URL (`dedup_document_on_url`): one document per host + path; scheme, query string and fragment dropped.

Keeper and cluster id: every document gets a node key, a tuple ordered so that the document to keep is the
smallest; a cluster keeps its smallest node and the cluster id is that document's id. With
`keep="lowest_id"` the node is `(id, origin)`; with `keep="longest"` it is `(-n_chars, id, origin)`, i.e.
the longest text wins and the lowest id breaks ties. Min-label connected components then yield the keeper
directly, so the choice does not depend on bundles, workers or input order.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import (
    Callable,
    Container,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import regex

from roots.io.urlrules import normalise_url

# --------------------------------------------------------------------------------------------------- config

KEEP_POLICIES = ("lowest_id", "longest")


@dataclass(frozen=True)
class DedupConfig:
    """What to deduplicate and how; picklable so every worker gets the same copy.

    `max_cc_nodes` caps the documents that have a duplicate in one source: clusters are found by one
    union-find on one worker (`pipelines/dedup.py`), which holds every such document's node (about 300
    bytes each, so ~1.5 GB at the default). Beyond it the run fails loudly, naming the setting, rather
    than running out of memory.
    """

    exact: bool = True
    near: bool = True
    num_perm: int = 128
    threshold: float = 0.7
    ngram: int = 5
    seed: int = 1
    template: bool = False
    template_min_len: int = 15
    template_min_count: int = 10
    url: bool = False
    # Web sources: the URL key through roots.io.urlrules.normalise_url (www., index pages, trailing slash,
    # percent-escapes), and template lines counted per site (a menu repeated on 10 pages of one site is
    # boilerplate; a sentence quoted on 10 different sites is not), as ROOTS's pseudo-crawl cleaning did.
    url_normalise: bool = False
    template_per_domain: bool = False
    max_cc_nodes: int = 5_000_000
    keep: str = "lowest_id"
    signature_batch: int = 256

    def __post_init__(self) -> None:
        if self.keep not in KEEP_POLICIES:
            raise ValueError(f"keep must be one of {KEEP_POLICIES}, got {self.keep!r}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.num_perm < 2 or self.ngram < 1 or self.max_cc_nodes < 1:
            raise ValueError("num_perm >= 2, ngram >= 1 and max_cc_nodes >= 1 are required")


# --------------------------------------------------------------------------------------------------- exact

_STRIP_FOR_HASH = regex.compile(r"[\s\d" + regex.escape(string.punctuation) + "]+")


def normalise_for_hash(text: str) -> str:
    """ROOTS `dedup_document` normalisation: drop whitespace, digits and ASCII punctuation."""
    return _STRIP_FOR_HASH.sub("", text)


def exact_hash(text: str) -> str:
    """md5 (hex) of the normalised text, the ROOTS exact-duplicate key."""
    return hashlib.md5(normalise_for_hash(text).encode("utf-8", "surrogatepass")).hexdigest()


_WHITESPACE = regex.compile(r"\s+")


def exact_key(text: str, lang: str | None = None) -> str | None:
    """`exact_hash`, or None when nothing is left after normalisation (such texts are never merged).

    Code (`lang` code or code-*) is compared on whitespace-stripped content only, as ROOTS's code branch did:
    digits and punctuation carry meaning there (`a - b` and `a + b` are different programs).
    """
    if lang is not None and (lang == "code" or lang.startswith("code-")):
        normalised = _WHITESPACE.sub("", text)
    else:
        normalised = normalise_for_hash(text)
    if not normalised:
        return None
    return hashlib.md5(normalised.encode("utf-8", "surrogatepass")).hexdigest()


# --------------------------------------------------------------------------------------------------- shingles

# Languages written without spaces between words: word n-grams would be whole sentences there.
NO_SPACE_LANGS = frozenset({
    "zh", "cmn", "yue", "wuu", "gan", "hak", "hsn", "nan", "lzh", "ja", "th", "lo", "km", "my", "bo", "dz",
    "ii", "shn",
})
_NO_SPACE_SCRIPT = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}\p{Yi}]")
_WORD = regex.compile(r"\w+")  # the regex module's \w includes marks (Indic vowel signs), unlike re's
_NOT_CONTENT = regex.compile(r"[\p{P}\p{S}\p{Z}\p{C}\s]+")
SCRIPT_SAMPLE_CHARS = 1000


def uses_char_shingles(text: str, lang: str | None) -> bool:
    """True for languages in NO_SPACE_LANGS, or, whatever the label, when most of the first 1,000
    characters are in a script written without spaces (so `und` or mislabelled Chinese still works).

    The script test is a single regex scan, skipped for pure-ASCII text: it runs on every document."""
    base = (lang or "").replace("_", "-").split("-")[0].lower()
    if base in NO_SPACE_LANGS:
        return True
    sample = text[:SCRIPT_SAMPLE_CHARS]
    if sample.isascii():
        return False
    return 2 * len(_NO_SPACE_SCRIPT.findall(sample)) > len(sample)


def shingles(text: str, lang: str | None, n: int = 5) -> set[bytes]:
    """The set of n-gram shingles (UTF-8 bytes) MinHash is computed on.

    Text is case-folded. Words are `regex` `\\w+` runs: letters, marks, digits (marks included so Indic
    vowel signs do not split words); word n-grams are joined by a space. For no-space scripts, punctuation,
    symbols and whitespace are removed and character n-grams are taken. A text shorter than n units gives
    one shingle (all of it), so short documents still have a signature; a text with no units gives the
    empty set.
    """
    folded = text.casefold()
    if uses_char_shingles(text, lang):
        chars = _NOT_CONTENT.sub("", folded)
        if not chars:
            return set()
        if len(chars) <= n:
            return {chars.encode("utf-8", "surrogatepass")}
        return {chars[i:i + n].encode("utf-8", "surrogatepass") for i in range(len(chars) - n + 1)}
    words = _WORD.findall(folded)
    if not words:
        return set()
    if len(words) <= n:
        return {" ".join(words).encode("utf-8", "surrogatepass")}
    # slice n-grams out of one joined string instead of joining n words per shingle (3x faster)
    joined = " ".join(words)
    starts = [0, *accumulate(len(w) + 1 for w in words)]
    if joined.isascii():
        raw = joined.encode("ascii")
        return {raw[starts[i]:starts[i + n] - 1] for i in range(len(words) - n + 1)}
    return {joined[starts[i]:starts[i + n] - 1].encode("utf-8", "surrogatepass")
            for i in range(len(words) - n + 1)}

# --------------------------------------------------------------------------------------------------- MinHash

SCHEME = "affine64"
EMPTY_HASH = np.uint64(0xFFFFFFFFFFFFFFFF)
_FMIX = (np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
@lru_cache(maxsize=16)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine64 permutation parameters (a odd, b): `MinHash._init_permutations` draws them
    from `numpy.random.RandomState(seed)` exactly so (tests/test_dedup.py pins the equality). Drawn here
    rather than through a MinHash object because importing datasketch imports scipy.integrate (~1 s of
    start-up per worker)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 63, num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = gen.randint(0, 1 << 64, num_perm, dtype=np.uint64)
    a.setflags(write=False)
    b.setflags(write=False)
    return a, b


def _fmix64(h: np.ndarray) -> np.ndarray:
    shift, m1, m2 = _FMIX
    h = h ^ (h >> shift)
    h = h * m1
    h = h ^ (h >> shift)
    h = h * m2
    return h ^ (h >> shift)


def _sha1_64(items: Iterable[bytes]) -> np.ndarray:
    """datasketch `sha1_hash64` (first 8 bytes of SHA-1, little-endian) for many items at once; the
    8-byte prefixes are cut out of the joined 20-byte digests by numpy rather than per item."""
    sha1 = hashlib.sha1
    buf = b"".join([sha1(item).digest() for item in items])
    prefixes = np.frombuffer(buf, dtype=np.uint8).reshape(-1, 20)[:, :8]
    return np.ascontiguousarray(prefixes).view("<u8").ravel().astype(np.uint64)


def minhash_signatures(texts: Sequence[str], langs: Sequence[str | None], num_perm: int = 128, seed: int = 1,
                       ngram: int = 5) -> np.ndarray:
    """Signatures of many documents, shape (len(texts), num_perm), uint64; see `minhash_of_sets`."""
    return minhash_of_sets([shingles(text, lang, ngram) for text, lang in zip(texts, langs)], num_perm, seed)


def minhash_of_sets(sets: Sequence[Iterable[bytes]], num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """MinHash of many sets of byte strings, shape (len(sets), num_perm), uint64.

    Same values as datasketch (affine64), computed without a MinHash object per set: SHA-1 and fmix64 run
    once over every item of the batch, then each set's `a*h + b` matrix is reduced in a reused buffer.
    Per-set reduction is deliberate: one (all items x num_perm) matrix for the whole batch overflows the
    CPU caches and measured 30-40% slower. An empty set gets all-ones (`EMPTY_HASH`), which
    `is_empty_signature` recognises and the pipeline keeps out of LSH.
    """
    a, b = permutations(num_perm, seed)
    items = [list(x) for x in sets]
    out = np.full((len(items), num_perm), EMPTY_HASH, dtype=np.uint64)
    sizes = [len(x) for x in items]
    if not any(sizes):
        return out
    hv = _fmix64(_sha1_64([item for x in items for item in x]))
    buf = np.empty((max(sizes), num_perm), dtype=np.uint64)
    pos = 0
    with np.errstate(over="ignore"):
        for i, k in enumerate(sizes):
            if not k:
                continue
            work = buf[:k]
            np.multiply(hv[pos:pos + k, None], a, out=work)
            np.add(work, b, out=work)
            work.min(axis=0, out=out[i])
            pos += k
    return out


def minhash_signature(text: str, lang: str | None, num_perm: int = 128, seed: int = 1,
                      ngram: int = 5) -> np.ndarray:
    """Signature of one document (uint64, length num_perm); see `minhash_signatures`."""
    return minhash_signatures([text], [lang], num_perm, seed, ngram)[0]


def datasketch_signature(text: str, lang: str | None, num_perm: int = 128, seed: int = 1,
                         ngram: int = 5) -> np.ndarray:
    """The same signature through datasketch's MinHash: the reference the numpy path is tested against."""
    from datasketch import MinHash

    m = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME, permutations=permutations(num_perm, seed))
    m.update_batch(shingles(text, lang, ngram))
    return np.asarray(m.hashvalues, dtype=np.uint64)


def is_empty_signature(sig: np.ndarray) -> bool:
    return bool(np.all(sig == EMPTY_HASH))


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Fraction of equal MinHash values: an unbiased estimate of the Jaccard similarity of the shingle
    sets."""
    if len(sig_a) != len(sig_b):
        raise ValueError(f"signatures of different lengths: {len(sig_a)} and {len(sig_b)}")
    return float(np.count_nonzero(np.asarray(sig_a) == np.asarray(sig_b))) / len(sig_a)


def signature_to_bytes(sig: np.ndarray) -> bytes:
    """num_perm uint64 little-endian: the `signatures/` wire format."""
    return np.asarray(sig, dtype=np.uint64).astype("<u8").tobytes()


def signature_from_bytes(data: bytes) -> np.ndarray:
    if len(data) % 8:
        raise ValueError(f"signature of {len(data)} bytes is not a whole number of uint64")
    return np.frombuffer(data, dtype="<u8").astype(np.uint64)


# --------------------------------------------------------------------------------------------------- LSH

#: 256-point Gauss-Legendre quadrature: exact for the band curves' polynomials up to degree 511 and within
#: ~1e-15 of scipy's adaptive `quad` beyond, so the optimum is datasketch's (pinned by tests/test_dedup.py)
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(256)


def _area(curve: Callable[[np.ndarray], np.ndarray], lo: float, hi: float) -> float:
    s = (hi - lo) / 2 * _GL_NODES + (hi + lo) / 2
    return (hi - lo) / 2 * float(np.dot(_GL_WEIGHTS, curve(s)))


@lru_cache(maxsize=64)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising 0.5*false-positive + 0.5*false-negative area: datasketch's optimiser
    (`datasketch.lsh._optimal_param`, same search order, same areas; 0.7/128 -> 14x9, 0.7/240 -> 24x10 as
    in text-dedup); b*r may be below num_perm. Computed here with numpy quadrature because datasketch's
    module imports scipy.integrate, about a second of start-up in every driver and worker."""
    best, opt = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            false_pos = _area(lambda s: 1 - (1 - s ** float(r)) ** float(b), 0.0, threshold)  # noqa: B023
            false_neg = _area(lambda s: (1 - s ** float(r)) ** float(b), threshold, 1.0)  # noqa: B023
            error = 0.5 * false_pos + 0.5 * false_neg
            if error < best:
                best, opt = error, (b, r)
    return opt


BAND_DIGEST_BYTES = 16


def band_keys(sig: np.ndarray, b: int, r: int) -> list[tuple[int, bytes]]:
    """One (band index, 16-byte BLAKE2b of the band's r values) per band.

    Hashing the band keeps shuffle keys at 16 bytes whatever r is; a chance collision (2^-64 per pair of
    different bands) costs at most one spurious candidate edge.
    """
    if len(sig) < b * r:
        raise ValueError(f"signature of {len(sig)} values is too short for {b} bands of {r} rows")
    raw = np.asarray(sig, dtype=np.uint64).astype("<u8").tobytes()
    width = 8 * r
    return [(i, hashlib.blake2b(raw[i * width:(i + 1) * width], digest_size=BAND_DIGEST_BYTES).digest())
            for i in range(b)]


# --------------------------------------------------------------------------------------------------- URL

_DEFAULT_PORTS = {"http": 80, "https": 443}


def url_key(url: str | None, normalise: bool = False) -> str | None:
    """host + path, the ROOTS `dedup_document_on_url` key (their regex `^(.[^?]*)` drops the query).

    The host is lower-cased, user info and default ports dropped; an empty path is "/". Scheme and fragment
    are dropped too, so http/https copies and in-page anchors count as the same page. None when there is
    no usable host, so such documents are never URL duplicates of each other.
    """
    if not url or not isinstance(url, str):
        return None
    if normalise:
        return normalise_url(url)
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:
        return None
    if not host:
        return None
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    return f"{host}{parts.path or '/'}"


# --------------------------------------------------------------------------------------------------- template

LINE_DIGEST_BYTES = 16


def line_digest(stripped_line: str, scope: str = "") -> bytes:
    """Key of a stripped line in the template count; 16 bytes whatever the line length. A `scope` (a site,
    for per-domain templates) makes the same line on two sites two different keys."""
    key = f"{scope}\x1f{stripped_line}" if scope else stripped_line
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=LINE_DIGEST_BYTES).digest()


def template_line_keys(text: str, min_len: int = 15, scope: str = "") -> list[bytes]:
    """Digest of every line occurrence (stripped, at least `min_len` characters) to count across a source
    (or across one site's pages, with `scope`). Repeats inside one document count, as in ROOTS."""
    out = []
    for line in text.split("\n"):
        stripped = line.strip()
        if len(stripped) >= min_len:
            out.append(line_digest(stripped, scope))
    return out


def remove_template_lines(text: str, frequent: Container[bytes], min_len: int = 15,
                          scope: str = "") -> tuple[str, int]:
    """Drop the lines whose stripped form is long enough and frequent; return (text, lines removed)."""
    kept: list[str] = []
    removed = 0
    for line in text.split("\n"):
        stripped = line.strip()
        if len(stripped) >= min_len and line_digest(stripped, scope) in frequent:
            removed += 1
        else:
            kept.append(line)
    if not removed:
        return text, 0
    return "\n".join(kept), removed


# --------------------------------------------------------------------------------------------------- keeper

Node = tuple  # (id, origin) or (-n_chars, id, origin): smaller is the better keeper


def node_key(row: Mapping[str, Any], keep: str = "lowest_id") -> Node:
    """The total order that picks keepers; unique as long as (id, origin) is unique in the source."""
    ident = (str(row["id"]), str(row.get("origin") or ""))
    if keep == "lowest_id":
        return ident
    if keep == "longest":
        return (-len(row.get("text") or ""), *ident)
    raise ValueError(f"unknown keep policy {keep!r}")


def node_id(node: Node) -> str:
    """The document id inside a node key (second to last field for every policy)."""
    return node[-2]


def choose_keeper(rows: Iterable[Mapping[str, Any]], keep: str = "lowest_id") -> Mapping[str, Any]:
    """The row a cluster keeps: the smallest `node_key` (lowest id, or longest text then lowest id)."""
    return min(rows, key=lambda row: node_key(row, keep))


def duplicate_detail(root: Node, kind: str, parent: Node | None = None) -> str:
    """`duplicate of <kept id> (exact|near|url)`, naming the direct match when it is not the keeper."""
    if parent is None or parent == root:
        return f"duplicate of {node_id(root)} ({kind})"
    return f"duplicate of {node_id(root)} ({kind} copy of {node_id(parent)})"


# --------------------------------------------------------------------------------------------------- graph

Edge = tuple[Hashable, Hashable]  # (smaller, larger)


def star_edges(members: Iterable[Hashable]) -> Iterator[Edge]:
    """Edges from the smallest member of an LSH bucket to every other member: a spanning star, so the
    bucket stays connected with len-1 edges instead of all pairs. Iterates `members` twice (a Beam
    GroupByKey iterable can be re-iterated), so memory does not grow with the bucket."""
    low = min(members)
    for m in members:
        if m != low:
            yield (low, m)
