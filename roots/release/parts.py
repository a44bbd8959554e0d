"""Per-file tokenisation for the merge (pure; called from the Beam DoFn and from tests).

Every document that enters the release gets a lineage row next to its tokens: source, id, URL and the
clearance basis (licence policy or permission record), so any token range in a shard can be traced to
the document and the permission that let it in.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from roots.core import schema, util
from roots.release import fertility, megatron
from roots.release import tokenizer as toklib

LINEAGE_SCHEMA = pa.schema([
    pa.field("source", pa.string()),
    pa.field("id", pa.string()),
    pa.field("url", pa.string()),
    pa.field("lang", pa.string()),
    pa.field("tokens", pa.int64()),
    pa.field("clearance", pa.string()),
    pa.field("permission_record", pa.string()),
])
BATCH = 1024


def read_batches(path: str | os.PathLike[str], columns: list[str],
                 batch_size: int = BATCH) -> Iterator[pa.RecordBatch]:
    """Record batches of a kept Parquet file, holding about one row group of the requested columns.

    Not pyarrow's default `pre_buffer=True`: reading a whole file that way first loads every requested
    column chunk of every row group (coalesced reads) and keeps them until the reader is done, so memory
    followed the size of the kept file (about +130 MB of RSS for a 60 MB file's text).
    """
    yield from pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=batch_size, columns=columns)


def unit_hash(seed: int, source: str, doc_id: str) -> float:
    """A stable number in [0, 1) per document: sampling and hold-out decisions must not depend on order."""
    digest = hashlib.blake2b(f"{seed}\x1f{source}\x1f{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def split_of(seed: int, source: str, doc_id: str, valid_fraction: float) -> str:
    return "valid" if unit_hash(seed + 1, source, doc_id) < valid_fraction else "train"


def group_of(lang: str) -> str:
    """Shard group of a language (code is one group, as in BLOOM's mix)."""
    return "code" if lang == "code" or lang.startswith("code-") else lang


# A segment is written (and its buffers freed) once it holds this many tokens (16-32 MB of ids), so memory
# per worker stays bounded whatever the size of a kept file; a 64 MB kept file is about two segments.
SEGMENT_TOKENS = 1 << 23
# Columns of a segment's lineage; source, clearance and permission record are constant per file and are
# added when the shards are assembled.
SEGMENT_LINEAGE_SCHEMA = pa.schema([LINEAGE_SCHEMA.field(name) for name in ("id", "url", "lang", "tokens")])


def segment_paths(parts_dir: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
    """(`.bin`, lineage `.arrow`) of one segment of a kept file's partial output."""
    base = Path(parts_dir) / name
    return base.with_suffix(".bin"), base.with_suffix(".arrow")


class _Segment:
    """Documents of one file in input order, written grouped by (group, split) when flushed."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []
        self.keys: list[tuple[str, str]] = []
        self.lineage: list[pa.RecordBatch] = []
        self.tokens = 0

    def add(self, arrays: list[np.ndarray], keys: list[tuple[str, str]], lineage: pa.RecordBatch) -> None:
        self.arrays += arrays
        self.keys += keys
        self.lineage.append(lineage)
        self.tokens += sum(a.size for a in arrays)

    def flush(self, parts_dir: str, name: str, dtype: np.dtype) -> dict[str, Any]:
        """Write `.bin` (each key's documents contiguous, in input order) and the lineage, one record batch
        per key in the same order; returns what the assembly needs to find each key's range."""
        order = sorted(range(len(self.keys)), key=self.keys.__getitem__)  # stable: input order within a key
        lineage = pa.Table.from_batches(self.lineage, SEGMENT_LINEAGE_SCHEMA).take(
            pa.array(order, pa.int64()))
        keys: list[list[Any]] = []
        bounds = [0] + [i for i in range(1, len(order)) if self.keys[order[i]] != self.keys[order[i - 1]]] \
            + [len(order)]
        bin_path, arrow_path = segment_paths(parts_dir, name)
        bin_path.parent.mkdir(parents=True, exist_ok=True)

        def write_bin(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                for lo, hi in itertools.pairwise(bounds):
                    tokens = np.concatenate([self.arrays[i] for i in order[lo:hi]]).astype(dtype, copy=False)
                    fh.write(memoryview(tokens).cast("B"))
                    keys.append([*self.keys[order[lo]], hi - lo, int(tokens.size)])

        def write_lineage(tmp: Path) -> None:
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, SEGMENT_LINEAGE_SCHEMA) as writer:
                for lo, hi in itertools.pairwise(bounds):
                    writer.write_batch(lineage.slice(lo, hi - lo).combine_chunks().to_batches()[0])

        util.write_atomically(bin_path, write_bin)
        util.write_atomically(arrow_path, write_lineage)
        return {"name": name, "keys": keys}


def tokenize_file(tok: Any, task: dict[str, Any], drops: dict[str, str], parts_dir: str,
                  valid_fraction: float, seed: int) -> dict[str, Any]:
    """Tokenize one kept file into its partial output; returns document and token counts and CPU time.

    The output is one or more segments (`<index>-<segment>.bin` + `.arrow`) plus `_done/<index>.json`,
    written last, which lists each segment's (group, split) ranges; the release's shard for a (group,
    split) is those ranges concatenated in file and segment order (`merge.assemble`). Few files per input
    file, whatever the number of languages, so a corpus of many small languages costs no per-language
    file overhead. `cpu_s` is the process CPU time spent here, the tokenizer's threads included.
    """
    c0, t0 = time.process_time(), time.perf_counter()
    dtype = np.dtype(megatron.dtype_for_vocab(tok.get_vocab_size())).newbyteorder("<")
    source, index = task["source"], int(task["index"])
    groups: dict[str, str] = {}
    n_docs = n_tokens = 0
    segments: list[dict[str, Any]] = []
    held_out: fertility.Sums = {}
    seg = _Segment()
    for batch in read_batches(task["path"], ["id", "text", "url", "lang"], BATCH):
        doc_ids = batch.column("id").to_pylist()
        if drops:
            keep = [schema.doc_key(source, d) not in drops for d in doc_ids]
            if not all(keep):
                batch = batch.filter(pa.array(keep, pa.bool_()))
                doc_ids = [d for d, k in zip(doc_ids, keep) if k]
        if not batch.num_rows:
            continue
        texts = batch.column("text").to_pylist()
        arrays = toklib.encode_arrays(tok, texts, dtype)
        sizes = np.fromiter((a.size for a in arrays), np.int64, count=len(arrays))
        langs = batch.column("lang").to_pylist()
        nonempty = sizes > 0
        if not nonempty.all():  # empty documents are skipped, as Megatron's preprocessing does
            batch, sizes = batch.filter(pa.array(nonempty)), sizes[nonempty]
            arrays = [a for a in arrays if a.size]
            doc_ids = [d for d, k in zip(doc_ids, nonempty) if k]
            langs = [x for x, k in zip(langs, nonempty) if k]
            texts = [t for t, k in zip(texts, nonempty) if k]
        keys = []
        for d, lang, text, array in zip(doc_ids, langs, texts, arrays):
            group = groups.get(lang)
            if group is None:
                group = groups[lang] = group_of(lang)
            split = split_of(seed, source, d, valid_fraction)
            keys.append((group, split))
            if split == "valid":  # fertility is measured on the held-out split; the EOD is not a word's
                fertility.add_document(held_out, lang, text, int(array.size) - 1)
        columns = [batch.column(name).cast(SEGMENT_LINEAGE_SCHEMA.field(name).type)
                   for name in ("id", "url", "lang")]
        seg.add(arrays, keys, pa.RecordBatch.from_arrays([*columns, pa.array(sizes, pa.int64())],
                                                          schema=SEGMENT_LINEAGE_SCHEMA))
        n_docs += len(arrays)
        n_tokens += int(sizes.sum())
        if seg.tokens >= SEGMENT_TOKENS:
            segments.append(seg.flush(parts_dir, f"{index:06d}-{len(segments):04d}", dtype))
            seg = _Segment()
    if seg.keys:
        segments.append(seg.flush(parts_dir, f"{index:06d}-{len(segments):04d}", dtype))
    cpu_s, wall_s = time.process_time() - c0, time.perf_counter() - t0
    done = Path(parts_dir) / "_done" / f"{index:06d}.json"
    done.parent.mkdir(parents=True, exist_ok=True)
    record = {"path": task["path"], "source": source, "clearance": task["clearance"],
              "permission_record": task.get("record"), "dtype": dtype.str, "documents": n_docs,
              "tokens": n_tokens, "cpu_s": cpu_s, "wall_s": wall_s, "segments": segments,
              "fertility": held_out}
    util.write_atomically(done, lambda tmp: tmp.write_text(json.dumps(record)))
    return {"documents": n_docs, "tokens": n_tokens, "cpu_s": cpu_s}
