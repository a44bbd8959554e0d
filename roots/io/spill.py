"""Spill files: a source's processed rows parked on disk between the per-file passes of the pipeline.

Why: the dedup decisions need every document of the source, but only through small keys. Keeping the
texts in Parquet next to the worker (instead of in the runner's shuffle) is what keeps a run's memory
flat as the source grows: each pass streams one file in batches, and only keys travel. A spill file
appears under its final name only when complete (temporary name, then rename), so a pass that finds it
can reuse it: runners that re-execute a step (Beam's DaskRunner) do not redo the work.

Key spills: the dedup keys (URL keys, template line digests, MinHash band keys, exact hashes) do not go
through the runner's shuffle either (the DirectRunner holds a shuffle in memory: ~4 kB per kept document).
The pass that computes them writes them next to the rows, partitioned by a hash of the key into
`bucket_count(input bytes)` buckets: `_work/keys/<kind>/<bucket>/<file id>.parquet`. A bucket step then
reads one bucket of every input file at a time, so every copy of a key is in the same bucket and a
worker holds 1/buckets of the source's keys (`KEY_BUCKET_INPUT_BYTES`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from roots.core import schema, util
from roots.io import outputs

WORK = outputs.WORK
SCHEMA = pa.schema([
    *outputs.REJECTED_SCHEMA,
    pa.field("status", pa.string()),
    pa.field(schema.NODE, pa.string()),
    pa.field(schema.URL_KEY, pa.string()),
    pa.field(schema.URL_PARENT, pa.string()),
    pa.field(schema.SIG, pa.binary()),
    pa.field(schema.EXACT, pa.string()),
])


def path_for(out_dir: str, step: str, file_id: str) -> str:
    return str(Path(out_dir) / WORK / step / f"{file_id}.parquet")


class Writer:
    """Append batches of rows; `close()` renames the file into place (nothing visible before that)."""

    def __init__(self, path: str, schema: pa.Schema = SCHEMA) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = util.temp_path_for(self.path)
        self.schema = schema
        self.writer = pq.ParquetWriter(self.tmp, schema, compression="lz4")

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.writer.write_table(outputs.table_of(rows, self.schema))

    def write_columns(self, columns: dict[str, list[Any]]) -> None:
        self.writer.write_table(pa.table(columns, schema=self.schema))

    def close(self) -> str:
        self.writer.close()
        util.commit(self.tmp, self.path)
        return str(self.path)

    def abort(self) -> None:
        self.writer.close()
        self.tmp.unlink(missing_ok=True)


def rows(path: str, columns: list[str] | None = None,
         batch_size: int = 1024) -> Iterator[list[dict[str, Any]]]:
    """Batches of rows of a spill file, in the order they were written.

    Without Arrow's pre-buffering and reader threads: with them (the defaults) a pass over a 20,000
    document spill left ~40 MB more resident memory behind, growing with the file (measured)."""
    with pq.ParquetFile(path, pre_buffer=False) as fh:
        for batch in fh.iter_batches(batch_size=batch_size, columns=columns, use_threads=False):
            yield batch.to_pylist()


# ---------------------------------------------------------------------------------------------- key spills

#: Input bytes per key bucket. Uncompressed English web text gives, per MB, ~300 documents: ~4,200 band
#: keys (14 bands), ~300 exact and URL keys and a few thousand template line rows, so a bucket holds at
#: most a few hundred thousand keys (tens of MB in Arrow) whatever the source size. Compressed inputs
#: (.gz) hold ~3x more text per byte; short documents give more keys per byte.
KEY_BUCKET_INPUT_BYTES = 16 << 20
NODE_KEYS = pa.schema([pa.field("key", pa.binary()), pa.field("node", pa.string())])
COUNT_KEYS = pa.schema([pa.field("key", pa.binary()), pa.field("n", pa.int64())])
#: the merge's cross-source band keys (`roots/dedup/crosssource.py`): node numbers, not node texts
NUMBER_KEYS = pa.schema([pa.field("key", pa.binary()), pa.field("node", pa.int64())])
KEY_SCHEMAS = {"url": NODE_KEYS, "lines": COUNT_KEYS, "bands": NODE_KEYS, "exact": NODE_KEYS,
               "cross_source": NUMBER_KEYS}
KEY_FLUSH_ROWS = 16_384


def bucket_count(input_bytes: int) -> int:
    """Key buckets for a source of `input_bytes` (sum of its input file sizes); see KEY_BUCKET_INPUT_BYTES."""
    return max(1, math.ceil(input_bytes / KEY_BUCKET_INPUT_BYTES))


def bucket_of(key: bytes, buckets: int) -> int:
    """The bucket of a key: a stable hash (not Python's per-process `hash`), the same on every worker."""
    if buckets == 1:
        return 0
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") % buckets


def key_path(out_dir: str, kind: str, bucket: int, file_id: str) -> str:
    return str(Path(out_dir) / WORK / "keys" / kind / str(bucket) / f"{file_id}.parquet")


class KeyWriter:
    """(key, value) pairs of one input file, one Parquet file per bucket (every bucket gets a file, empty
    or not, so a finished file set is recognisable); buffers at most KEY_FLUSH_ROWS pairs in all.

    Content depends only on the order of `add` calls, so a re-executed pass rewrites identical files."""

    def __init__(self, out_dir: str, kind: str, file_id: str, buckets: int) -> None:
        self.out_dir, self.kind, self.file_id, self.buckets = out_dir, kind, file_id, buckets
        self.schema = KEY_SCHEMAS[kind]
        self.value = self.schema.names[1]
        self.pending: dict[int, tuple[list[bytes], list[Any]]] = {}
        self.buffered = 0
        self.writers: dict[int, Writer] = {}

    def add(self, key: bytes, value: Any) -> None:
        b = bucket_of(key, self.buckets)
        keys, values = self.pending.setdefault(b, ([], []))
        keys.append(key)
        values.append(value)
        self.buffered += 1
        if self.buffered >= KEY_FLUSH_ROWS:
            self._flush_all()

    def _writer(self, b: int) -> Writer:
        if b not in self.writers:
            self.writers[b] = Writer(key_path(self.out_dir, self.kind, b, self.file_id), self.schema)
        return self.writers[b]

    def _flush(self, b: int) -> None:
        keys, values = self.pending.pop(b)
        self._writer(b).write_columns({"key": keys, self.value: values})

    def _flush_all(self) -> None:
        for b in sorted(self.pending):
            self._flush(b)
        self.buffered = 0

    def close(self) -> None:
        self._flush_all()
        for b in range(self.buckets):
            self._writer(b).close()

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()

    def done(self) -> bool:
        """True when every bucket file of this input file is in place (a re-executed pass can skip)."""
        return all(Path(key_path(self.out_dir, self.kind, b, self.file_id)).exists()
                   for b in range(self.buckets))


def read_bucket(out_dir: str, kind: str, bucket: int, file_ids: Sequence[str]) -> pa.Table:
    """One bucket of one key kind, over the given input files (each counted once)."""
    schema = KEY_SCHEMAS[kind]
    tables = [pq.read_table(key_path(out_dir, kind, bucket, f), schema=schema, use_threads=False,
                            pre_buffer=False)
              for f in sorted(set(file_ids))]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def shared_keys(table: pa.Table) -> Iterator[tuple[bytes, list[Any]]]:
    """(key, nodes) of every key that more than one row of a node-key table carries.

    Counting runs in Arrow's single-threaded hash kernels (`value_counts`, `is_in`; measured: Acero's
    `group_by` took 3-4x the memory, spread over its thread pool's allocator arenas), and only the rows of
    shared keys (documents that have a duplicate) become Python objects."""
    counts = pc.value_counts(table["key"])
    shared = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    if not len(shared):
        return
    rows = table.filter(pc.is_in(table["key"], value_set=shared))
    groups: dict[bytes, list[Any]] = {}
    for key, node in zip(rows["key"].to_pylist(), rows["node"].to_pylist()):
        groups.setdefault(key, []).append(node)
    yield from groups.items()


def frequent_keys(table: pa.Table, min_count: int) -> Iterator[tuple[bytes, int]]:
    """(key, total count) of the keys of a count table whose counts sum to at least `min_count` (hash
    encoding and a weighted bincount, for the same reason as `shared_keys`)."""
    if not table.num_rows:
        return
    encoded = pc.dictionary_encode(table["key"]).combine_chunks()
    sums = np.bincount(encoded.indices.to_numpy(), weights=table["n"].to_numpy(),
                       minlength=len(encoded.dictionary))
    for i in np.flatnonzero(sums >= min_count):
        yield encoded.dictionary[int(i)].as_py(), int(sums[i])
