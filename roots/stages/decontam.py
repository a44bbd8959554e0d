"""Benchmark decontamination: does a document share an n-gram with a registered evaluation set?

As GPT-3's 13-gram overlap check and datatrove's n-gram decontamination: the text of every item of an
evaluation set (`roots decontam add`) and of every document is cut into units, the units are normalised,
and a document that contains any n consecutive units of an item is contaminated by that set.

- Units are the quality stage's words (`roots.stages.quality.get_words`): split on whitespace, special
  characters (punctuation, digits, symbols) stripped from both ends, and one unit per character in
  scripts written without spaces (Han, kana, Thai...), so a Chinese question is matched on 13 characters.
  Units are case-folded. Changed whitespace, case or surrounding punctuation therefore match; digits,
  being special characters in ROOTS's set, are not part of a unit's identity at its ends.
- An n-gram is a 64-bit polynomial hash of its units' 64-bit hashes (blake2b, cached per process), computed
  for a whole document with n vectorised numpy steps.
- A set's index is the sorted array of its distinct n-gram hashes, written once at registration as a
  `.npy` file and opened memory-mapped: every worker process maps the same file pages (the operating
  system's page cache), so the index is not copied per worker, and a lookup is a binary search
  (`np.searchsorted`) that touches only the pages it needs (`np.isin` would sort, i.e. copy, the index).
- An item shorter than n units is not indexed (its count is recorded at registration): an n-gram shorter
  than the check would match ordinary phrases.
"""

from __future__ import annotations

import hashlib
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
_CACHE_LIMIT = 1_000_000
_unit_hashes: dict[str, int] = {}


def units(text: str, *, normalised: bool = True) -> list[str]:
    """A text's units as the check compares them; `normalised=False` first applies the pipeline's
    normalisation (`roots.stages.normalise`), which documents already had when they reach this stage."""
    if not normalised:
        text = norm.normalise(text)
    return quality.get_words(text.lower() if text.isascii() else text.casefold(), "und")


def _hash_unit(unit: str) -> int:
    value = _unit_hashes.get(unit)
    if value is None:
        if len(_unit_hashes) >= _CACHE_LIMIT:  # a bounded cache: the frequent words come back at once
            _unit_hashes.clear()
        value = int.from_bytes(hashlib.blake2b(unit.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                               "little")
        _unit_hashes[unit] = value
    return value


def ngram_hashes(words: Sequence[str], n: int) -> np.ndarray:
    """The 64-bit hash of every run of `n` consecutive units, in order (empty when there are fewer)."""
    m = len(words) - n + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint64)
    h = np.fromiter(map(_hash_unit, words), dtype=np.uint64, count=len(words))
    acc = h[:m].copy()
    for i in range(1, n):  # uint64 arithmetic wraps modulo 2**64, which is the hash's definition
        acc *= _MULT
        acc += h[i:i + m]
    return acc


def build_index(texts: Iterable[str], n: int) -> tuple[np.ndarray, dict[str, int]]:
    """(sorted distinct n-gram hashes of the items, counts: items, items too short, n-grams)."""
    chunks, items, short = [], 0, 0
    for text in texts:
        items += 1
        hashes = ngram_hashes(units(text, normalised=False), n)
        if not len(hashes):
            short += 1
            continue
        chunks.append(hashes)
    index = np.unique(np.concatenate(chunks)) if chunks else np.zeros(0, dtype=np.uint64)
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


def _first_hit(index: np.ndarray, hashes: np.ndarray) -> int | None:
    if not len(index) or not len(hashes):
        return None
    pos = np.searchsorted(index, hashes)
    np.minimum(pos, len(index) - 1, out=pos)
    found = np.flatnonzero(index[pos] == hashes)
    return int(found[0]) if len(found) else None


def matches(text: str, sets: Sequence[EvalSet]) -> dict[str, str]:
    """{set name: the first n-gram of `text` (normalised units) that the set also contains}."""
    if not sets:
        return {}
    words = units(text)
    by_n: dict[int, np.ndarray] = {}
    out: dict[str, str] = {}
    for s in sets:
        if s.n not in by_n:
            by_n[s.n] = ngram_hashes(words, s.n)
        at = _first_hit(open_index(s.index), by_n[s.n])
        if at is not None:
            out[s.name] = " ".join(words[at:at + s.n])
    return out


def detail(hits: Mapping[str, str]) -> str:
    """The rejection detail: the first set (by name) and its matching n-gram, then how many others."""
    first = sorted(hits)[0]
    more = f" (and {len(hits) - 1} more set(s): {', '.join(sorted(hits)[1:])})" if len(hits) > 1 else ""
    return f"shares an n-gram with evaluation set {first}: \"{hits[first]}\"{more}"


def as_config(sets: Sequence[EvalSet]) -> list[dict[str, Any]]:
    return [{"name": s.name, "n": s.n, "sha256": s.sha256} for s in sets]
