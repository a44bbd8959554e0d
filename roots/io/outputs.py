"""Output tables of a source run and the deterministic shard writer.

Rows are assigned to shards by a hash of their id. Each unit of work (an input file, or small files
packed together: `pipelines.batching.pack_files`) contributes one fragment per shard, named after it; a
shard is its fragments concatenated in name order, streamed into a temporary name that is renamed into
place. So any runner (including ones that re-execute a step) produces the
same bytes, a re-run with the same input writes identical files, and no step holds a whole shard.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from roots.core import util
from roots.core.schema import CODE_STAT_FIELDS, SIGNALS, STAT_FIELDS

KINDS = ("kept", "rejected", "quarantine", "signatures")

_DOC_FIELDS: list[pa.Field] = [
    pa.field("id", pa.string()),
    pa.field("text", pa.string()),
    pa.field("source", pa.string()),
    pa.field("lang", pa.string()),
    pa.field("lang_score", pa.float64()),
    pa.field("lang_predicted", pa.string()),
    pa.field("lang_backend", pa.string()),
    pa.field("url", pa.string()),
    pa.field("origin", pa.string()),
    pa.field("meta", pa.string()),
    pa.field("n_chars", pa.int64()),
    pa.field("n_bytes", pa.int64()),
    *[pa.field(name, pa.float64()) for name in STAT_FIELDS],
    *[pa.field(name, pa.float64()) for name in CODE_STAT_FIELDS],  # code sources only; null for text
    pa.field("license", pa.string()),  # code sources: the file's licence expression; null for text
    pa.field("perplexity", pa.float64()),
    pa.field("ppl_status", pa.string()),
    pa.field(SIGNALS, pa.string()),  # JSON: classifier scores, evaluation-set overlaps (schema.SIGNALS)
    pa.field("pii", pa.string()),
    pa.field("cluster", pa.string()),
]
KEPT_SCHEMA = pa.schema(_DOC_FIELDS)
REJECTED_SCHEMA = pa.schema([*_DOC_FIELDS, pa.field("reason", pa.string()), pa.field("detail", pa.string())])
QUARANTINE_SCHEMA = pa.schema([
    pa.field("source", pa.string()),
    pa.field("file", pa.string()),
    pa.field("line", pa.int64()),
    pa.field("raw", pa.binary()),
    pa.field("error", pa.string()),
])
SIGNATURES_SCHEMA = pa.schema([
    pa.field("id", pa.string()),
    pa.field("source", pa.string()),
    pa.field("lang", pa.string()),
    pa.field("cluster", pa.string()),
    pa.field("signature", pa.binary()),
    pa.field("num_perm", pa.int64()),
    pa.field("seed", pa.int64()),
    pa.field("ngram", pa.int64()),
    pa.field("scheme", pa.string()),
])
SCHEMAS = {"kept": KEPT_SCHEMA, "rejected": REJECTED_SCHEMA, "quarantine": QUARANTINE_SCHEMA,
           "signatures": SIGNATURES_SCHEMA}


def kind_of(row: dict[str, Any]) -> str:
    if row.get("kind") in ("quarantine", "signatures"):
        return str(row["kind"])
    return "kept" if row["status"] == "kept" else "rejected"


def sort_key(kind: str, row: dict[str, Any]) -> tuple:
    if kind == "quarantine":
        return (row["file"], row["line"], row["error"])
    return (row["id"], row.get("origin") or "")


def shard_of(kind: str, row: dict[str, Any], num_shards: int) -> int:
    key = f"{row['file']}:{row['line']}" if kind == "quarantine" else str(row["id"])
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big") % num_shards


def shard_name(shard: int, num_shards: int) -> str:
    return f"part-{shard:05d}-of-{num_shards:05d}.parquet"


def table_of(rows: Iterable[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows as a table of `schema` (fields a row lacks are null, extra keys are dropped).

    Built column by column: `Table.from_pylist` on per-row dicts cost ~25 us a row (a tenth of a source run's
    CPU beyond the document stages), one list per column costs ~3 us."""
    rows = rows if isinstance(rows, list) else list(rows)
    return pa.Table.from_pydict({name: [r.get(name) for r in rows] for name in schema.names}, schema=schema)


def write_table(path: Path, table: pa.Table) -> None:
    """Write a Parquet file atomically (temporary name, then rename: `util.write_atomically`)."""
    util.write_atomically(path, lambda tmp: pq.write_table(table, tmp, compression="zstd",
                                                           write_statistics=True))


def write_shard(out_dir: str, kind: str, shard: int, num_shards: int, rows: Iterable[dict[str, Any]]) -> str:
    schema = SCHEMAS[kind]
    ordered = sorted(rows, key=lambda r: sort_key(kind, r))
    table = table_of(ordered, schema)
    path = Path(out_dir) / kind / shard_name(shard, num_shards)
    write_table(path, table)
    return str(path)


FRAGMENTS = "_fragments"
WORK = "_work"  # spill files of the per-file passes (roots.io.spill)


def bounded_arrow_memory() -> None:
    """Make Arrow allocate with the system allocator. Its default (mimalloc) keeps freed pages for reuse,
    so after streaming a large file batch by batch a process's RSS still looked like it held the file;
    a run's memory must not follow its input's size."""
    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


def file_id(path: str) -> str:
    """Stable short name of an input file, for the names of everything derived from it."""
    return hashlib.blake2b(path.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


class FragmentWriter:
    """The rows one input file contributes to each (kind, shard), streamed to one fragment per pair.

    Fragments are named after the input file, so a re-executed step rewrites the same names with the same
    rows, and `consolidate` turns each shard's fragments into the one file every runner produces
    identically. Memory: at most `flush_rows` buffered rows in all.
    """

    def __init__(self, out_dir: str, name: str, num_shards: int, flush_rows: int = 1024) -> None:
        self.out_dir, self.name = Path(out_dir), name
        self.num_shards, self.flush_rows = num_shards, flush_rows
        self.buffers: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.buffered = 0
        self.writers: dict[tuple[str, int], tuple[pq.ParquetWriter, Path, Path]] = {}

    def add(self, kind: str, row: dict[str, Any]) -> None:
        key = (kind, shard_of(kind, row, self.num_shards))
        self.buffers.setdefault(key, []).append(row)
        self.buffered += 1
        if self.buffered >= self.flush_rows:
            for k in list(self.buffers):
                self._flush(k)
            self.buffered = 0

    def _flush(self, key: tuple[str, int]) -> None:
        rows = self.buffers.pop(key, [])
        if not rows:
            return
        kind, shard = key
        schema = SCHEMAS[kind]
        if key not in self.writers:
            path = self.out_dir / FRAGMENTS / kind / f"{shard:05d}" / f"{self.name}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = util.temp_path_for(path)
            self.writers[key] = (pq.ParquetWriter(tmp, schema, compression="zstd"), tmp, path)
        self.writers[key][0].write_table(table_of(rows, schema))

    def close(self) -> None:
        for key in list(self.buffers):
            self._flush(key)
        for writer, tmp, path in self.writers.values():
            writer.close()
            util.commit(tmp, path)
        self.writers.clear()


def consolidate(out_dir: Path, num_shards: int) -> None:
    """One Parquet file per (kind, shard) from its fragments, streamed batch by batch (memory: one batch,
    whatever the shard's size). Rows come fragment by fragment in name order (the input file's id), each
    fragment in its file's order, so every runner produces the same bytes. Also removes the run's spill
    files (`roots.io.spill`), which are no use once the shards exist."""
    import shutil

    shutil.rmtree(out_dir / WORK, ignore_errors=True)
    root = out_dir / FRAGMENTS
    if not root.exists():
        return
    for kind in KINDS:
        for shard_dir in sorted((root / kind).glob("*")) if (root / kind).exists() else []:
            path = out_dir / kind / shard_name(int(shard_dir.name), num_shards)
            with util.atomic_path(path) as tmp, \
                    pq.ParquetWriter(tmp, SCHEMAS[kind], compression="zstd", write_statistics=True) as writer:
                for frag in sorted(shard_dir.glob("*.parquet")):
                    fragment = pq.ParquetFile(frag, pre_buffer=False)  # see iter_kind
                    for i in range(fragment.num_row_groups):  # one row group (<= 1024 rows) at a time
                        writer.write_table(fragment.read_row_group(i, use_threads=False))
    shutil.rmtree(root)


COUNTS = "_input_counts"


def write_input_count(out_dir: str, name: str, paths: list[str], records: int, size: int,
                      file_bytes: dict[str, int] | None = None) -> None:
    """The count record of one unit of work (one input file, or several small ones packed together):
    records read, text bytes, and `file_bytes`, each file's size when its reader opened it (the run compares
    it with the size it fingerprinted)."""
    import json

    target = Path(out_dir) / COUNTS / f"{name}.json"
    record = json.dumps({"paths": paths, "files": len(paths), "records": records, "bytes": size,
                         "file_bytes": file_bytes or {}})
    util.write_atomically(target, lambda tmp: tmp.write_text(record))


def read_input_records(out_dir: Path) -> list[dict[str, Any]] | None:
    """The readers' count records, one per unit of work (see `write_input_count`), removing them; None if
    there are none."""
    import json
    import shutil

    root = out_dir / COUNTS
    if not root.exists():
        return None
    entries = [json.loads(p.read_text()) for p in sorted(root.glob("*.json"))]
    shutil.rmtree(root)
    return entries


def ensure_dirs(out_dir: Path) -> None:
    """Every output directory exists and holds at least one (possibly empty) file with the schema."""
    for kind in KINDS:
        d = out_dir / kind
        d.mkdir(parents=True, exist_ok=True)
        if not any(d.glob("*.parquet")):
            write_table(d / "part-00000-of-00000.parquet", SCHEMAS[kind].empty_table())


def iter_kind(out_dir: Path, kind: str, columns: list[str] | None = None,
              batch_size: int = 2048) -> Iterator[dict[str, Any]]:
    """Rows of one output kind, streamed in batches (bounded memory, whatever the source's size)."""
    for path in sorted((out_dir / kind).glob("*.parquet")):
        # no reader threads and no pre-buffering: both read whole row groups (pre-buffering every row group's
        # column chunks before the first batch), and memory would follow the file's size
        for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(
                batch_size=batch_size, columns=columns, use_threads=False):
            yield from batch.to_pylist()


def read_kind(out_dir: Path, kind: str, columns: list[str] | None = None) -> pa.Table:
    files = sorted((out_dir / kind).glob("*.parquet"))
    if not files:
        return SCHEMAS[kind].empty_table() if columns is None else SCHEMAS[kind].empty_table().select(columns)
    return pa.concat_tables([pq.read_table(f, columns=columns) for f in files])
