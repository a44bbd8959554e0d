"""Benchmark decontamination: does a document share an n-gram with a registered evaluation set?

As GPT-3's 13-gram overlap check and datatrove's n-gram decontamination: the text of every item of an
evaluation set (`roots decontam add`) and of every document is cut into units, the units are normalised,
and a document that contains any n consecutive units of an item is contaminated by that set.

- Units are the quality stage's words (`roots.stages.quality.get_words`): split on whitespace, special
  characters (punctuation, digits, symbols) stripped from both ends, and one unit per character in
  scripts written without spaces (Han, kana, Thai...), so a Chinese question is matched on 13 characters.
  Units are case-folded. Changed whitespace, case or surrounding punctuation therefore match; digits,
  being special characters in ROOTS's set, are not part of a unit's identity at its ends.
- An n-gram is a 64-bit polynomial hash of its units' 64-bit hashes (`unit_hashes`), computed for a whole
  batch of documents with n vectorised numpy steps.
- A set's index is the sorted array of its distinct n-gram hashes, written once at registration as a
  `.npy` file and opened memory-mapped: every worker process maps the same file pages (the operating
  system's page cache), so the index is not copied per worker, and a lookup is a binary search
  (`np.searchsorted`) that touches only the pages it needs (`np.isin` would sort, i.e. copy, the index).
- An item shorter than n units is not indexed (its count is recorded at registration): an n-gram shorter
  than the check would match ordinary phrases.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from roots.stages import normalise as norm
from roots.stages import quality

DEFAULT_N = 13
INDEX_FILE, REGISTRATION_FILE = "ngrams.npy", "registration.json"
_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd: the map acc -> acc * M + h is a bijection of 64-bit words
_BYTE_MULT = 0x100000001B3  # FNV-1's 64-bit prime (odd, so it has an inverse modulo 2**64)
_BYTE_INV = pow(_BYTE_MULT, -1, 1 << 64)


def units(text: str, *, normalised: bool = True) -> list[str]:
    """A text's units as the check compares them; `normalised=False` first applies the pipeline's
    normalisation (`roots.stages.normalise`), which documents already had when they reach this stage."""
    if not normalised:
        text = norm.normalise(text)
    return quality.get_words(text.lower() if text.isascii() else text.casefold(), "und")


def _powers(base: int, count: int) -> np.ndarray:
    out = np.empty(count + 1, dtype=np.uint64)
    out[0] = 1
    np.cumprod(np.full(count, base, dtype=np.uint64), out=out[1:])  # wraps modulo 2**64
    return out


def unit_hashes(words: Sequence[str]) -> np.ndarray:
    """A 64-bit hash of each unit, all computed in numpy: no Python call per word (a dict of cached word
    hashes cost more than language ID did per document).

    The units are joined by spaces (no unit holds one) and encoded once; a unit's hash is the polynomial
    sum of its bytes, b * P^k, read off prefix sums scaled by P's inverse, then mixed by MurmurHash3's 64-bit
    finaliser so that similar words spread over the whole range."""
    if not words:
        return np.zeros(0, dtype=np.uint64)
    data = np.frombuffer(" ".join(words).encode("utf-8", "surrogatepass"), dtype=np.uint8)
    size = len(data)
    sep = np.flatnonzero(data == 32)
    starts = np.concatenate(([0], sep + 1))
    ends = np.concatenate((sep, [size]))
    values = data.astype(np.uint64) + np.uint64(1)
    prefix = np.zeros(size + 1, dtype=np.uint64)
    np.cumsum(values * _powers(_BYTE_INV, size - 1)[:size], out=prefix[1:])
    h = _powers(_BYTE_MULT, size)[ends - 1] * (prefix[ends] - prefix[starts])
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


def ngram_hashes(words: Sequence[str], n: int) -> np.ndarray:
    """The 64-bit hash of every run of `n` consecutive units, in order (empty when there are fewer)."""
    return ngram_hashes_many([words], n)[0]


def ngram_hashes_many(
    word_lists: Sequence[Sequence[str]], n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`ngram_hashes` of many texts in one set of n vectorised steps (per text, numpy's per-call overhead
    would cost more than the hashing): (hashes, which text each is from, its position in that text)."""
    lengths = np.fromiter(map(len, word_lists), dtype=np.int64, count=len(word_lists))
    total = int(lengths.sum())
    m = total - n + 1
    empty = np.zeros(0, dtype=np.int64)
    if m <= 0:
        return np.zeros(0, dtype=np.uint64), empty, empty
    flat = unit_hashes(list(itertools.chain.from_iterable(word_lists)))
    acc = flat[:m].copy()
    for i in range(1, n):
        acc *= _MULT
        acc += flat[i : i + m]
    starts = np.cumsum(lengths) - lengths
    owner = np.repeat(np.arange(len(word_lists)), lengths)[:m]
    pos = np.arange(m) - starts[owner]
    valid = pos + n <= lengths[owner]  # n-grams inside one text, not across two
    return acc[valid], owner[valid], pos[valid]


def build_index(texts: Iterable[str], n: int, chunk: int = 4096) -> tuple[np.ndarray, dict[str, int]]:
    """(sorted distinct n-gram hashes of the items, counts: items, items too short, n-grams)."""
    parts, items, short = [], 0, 0
    it = iter(texts)
    while batch := [units(t, normalised=False) for t in itertools.islice(it, chunk)]:
        items += len(batch)
        short += sum(1 for words in batch if len(words) < n)
        hashes = ngram_hashes_many(batch, n)[0]
        parts.append(np.unique(hashes))
    index = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.uint64)
    return index, {"items": items, "items_too_short": short, "ngrams": len(index)}


@dataclass(frozen=True)
class EvalSet:
    """A registered evaluation set, as a run's configuration records it (its index file by path + hash)."""

    name: str
    index: str  # path of ngrams.npy
    n: int
    sha256: str  # of the evaluation file as registered

    @property
    def key(self) -> tuple[str, str, int]:
        """What makes two registrations the same check: the name, the file's content, n."""
        return (self.name, self.sha256, self.n)


def registered_sets(root: Path) -> tuple[EvalSet, ...]:
    """Every evaluation set registered under `root` (a workspace's `decontam/`), by name."""
    sets = []
    for path in sorted(root.glob(f"*/{REGISTRATION_FILE}")) if root.is_dir() else []:
        reg = json.loads(path.read_text(encoding="utf-8"))
        sets.append(EvalSet(reg["name"], str(path.parent / INDEX_FILE), int(reg["n"]), reg["sha256"]))
    return tuple(sets)


@lru_cache(maxsize=64)
def open_index(path: str) -> np.ndarray:
    """The index, memory-mapped read-only (shared between processes through the page cache)."""
    return np.load(path, mmap_mode="r")


def matches_many(texts: Sequence[str], sets: Sequence[EvalSet]) -> list[dict[str, str]]:
    """For each text, {set name: the first n-gram of the text (normalised units) the set also contains}.

    One batch: the n-grams of all texts are hashed together and looked up with one binary search per set
    (`np.searchsorted` on the memory-mapped index, which reads only the pages it visits)."""
    out: list[dict[str, str]] = [{} for _ in texts]
    if not sets or not texts:
        return out
    words = [units(t) for t in texts]
    for n in sorted({s.n for s in sets}):
        hashes, owner, pos = ngram_hashes_many(words, n)
        if not len(hashes):
            continue
        for s in sets:
            if s.n != n:
                continue
            index = open_index(s.index)
            if not len(index):
                continue
            # sorted needles: each search starts where the last ended, so the index is read in one sweep
            order = np.argsort(hashes, kind="stable")
            at = np.searchsorted(index, hashes[order])
            np.minimum(at, len(index) - 1, out=at)
            for k in np.sort(order[index[at] == hashes[order]]):  # text order, then position: first wins
                doc = int(owner[k])
                if s.name not in out[doc]:
                    p = int(pos[k])
                    out[doc][s.name] = join_units(words[doc][p : p + n])
    return out


def matches(text: str, sets: Sequence[EvalSet]) -> dict[str, str]:
    """`matches_many` of one text."""
    return matches_many([text], sets)[0]


def join_units(words: Sequence[str]) -> str:
    """Units as readable text: a space between words, none between characters of a space-less script."""
    out: list[str] = []
    for i, word in enumerate(words):
        glued = i > 0 and quality.is_nospace_char(word) and quality.is_nospace_char(words[i - 1])
        out.append(word if i == 0 or glued else f" {word}")
    return "".join(out)


def detail(hits: Mapping[str, str]) -> str:
    """The rejection detail: the first set (by name) and its matching n-gram, then how many others."""
    first = min(hits)
    more = f" (and {len(hits) - 1} more set(s): {', '.join(sorted(hits)[1:])})" if len(hits) > 1 else ""
    return f'shares an n-gram with evaluation set {first}: "{hits[first]}"{more}'


def as_config(sets: Sequence[EvalSet]) -> list[dict[str, Any]]:
    return [{"name": s.name, "n": s.n, "sha256": s.sha256} for s in sets]
