"""Beam wiring of the per-source pipeline: per-file passes over spill files, small keys through the shuffles.

Why this shape: a runner holds what it shuffles (the DirectRunner in memory), so documents never go
through a shuffle. Each input file, or a pack of small ones (`pipelines.batching.pack_files`), is one
unit of work:

1. `ProcessFiles` streams the unit's files, runs the document stages in batches (models load once per worker)
   and writes every row to a spill file (`roots/io/spill.py`), malformed records to quarantine fragments,
   and the URL keys of its kept rows to key spill files. Without dedup it writes the output fragments
   directly and the run ends there.
2. URL keys -> URL riders (bucket step, below); `CountLines` writes each file's template line digests
   (riders excluded) to key spills -> frequent template lines (bucket step). Both are side inputs of:
3. `PrepareFile` removes template lines, computes signatures and exact keys, writes a second spill and
   the band and exact keys to key spills.
4. Band and exact groups (bucket step) -> `pipelines.dedup.Decisions` -> labels and exact parents (only
   documents that have a duplicate; side inputs).
5. `FinishFile` resolves every row and writes the output fragments, which the driver consolidates into
   shards.

Bucket steps: keys never go through a shuffle either (the DirectRunner holds shuffles in memory, ~4 kB
per kept document). Each pass writes its keys partitioned by a hash of the key into `B` buckets
(`roots/io/spill.py`: B from the source's input size, ~16 MB of input per bucket); a bucket step is
`Create(range(B))` and a function that reads one bucket of every file, finds the keys two or more
documents share in Arrow, and emits only those groups (or the frequent lines). It takes the list of
finished spill files as a side input, which both orders it after them and names the files to read.
Memory per bucket step: one bucket's keys (tens of MB at most), whatever the source size. The key files
live under the run's work directory, which must be on a filesystem all workers share, like the spills.

All logic lives in `roots/`; this module only maps it onto Beam so that any runner can execute it.
Counters per stage, status and reason are Beam metrics, in the spirit of TFDS's C4 pipeline. Spill and
fragment files have final names only when complete, so a step that a runner re-executes (DaskRunner)
reuses or rewrites them identically.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes

from pipelines import dedup as dedup_beam
from pipelines.batching import pack_files
from pipelines.dedup import count, count_all
from roots.core import progress, schema
from roots.core.schema import STAGES
from roots.dedup import minhash, rowkeys
from roots.dedup.minhash import DedupConfig
from roots.io import outputs, readers, spill
from roots.stages.process import DocumentProcessor, ProcessConfig

NAMESPACE = "roots"


class ProcessFiles(beam.DoFn):
    """Read one unit of input files (one file, or small files packed together: `batching.pack_files`)
    through Beam's filesystems and run the document stages on their records in batches."""

    def __init__(self, spec: readers.ReaderSpec, cfg: ProcessConfig, out_dir: str, num_shards: int,
                 batch_size: int, dedup_cfg: DedupConfig | None, buckets: int = 1) -> None:
        self.spec, self.cfg, self.out_dir, self.num_shards = spec, cfg, out_dir, num_shards
        self.batch_size = max(1, int(batch_size))
        self.dedup_cfg, self.buckets = dedup_cfg, buckets
        self.processor: DocumentProcessor | None = None

    def setup(self) -> None:
        outputs.bounded_arrow_memory()
        self.processor = DocumentProcessor(self.cfg)

    def process(self, unit: tuple[str, list[tuple[str, int]]]) -> Iterator[str]:
        from apache_beam.io.filesystems import FileSystems

        assert self.processor is not None
        name, files = unit
        target = spill.path_for(self.out_dir, "processed", name) if self.dedup_cfg is not None else None
        if target is not None and Path(target).exists():  # a re-executed step: the work is done
            yield target
            return
        self.processor.timings.clear()
        fragments = outputs.FragmentWriter(self.out_dir, name, self.num_shards)
        writer = spill.Writer(target) if target is not None else None
        keys = _KeyWriters(self.out_dir, name, self.buckets,
                           ("url",) if writer is not None and self.dedup_cfg.url else ())
        n = 0
        size = raw_done = 0  # text bytes read (decompressed for a compressed file); raw bytes of done files
        batch: list[dict[str, Any]] = []
        due = progress.Throttle(1.0)
        seen: dict[str, int] = {}  # each file's size when its reader opened it (the run checks it)
        try:
            for path, raw_size in files:
                seen[path] = _size_now(path, raw_size)
                sizes: dict[str, int] = {}  # a compressed input's text bytes, so bytes in compare with out
                problem = readers.link_problem(self.spec, path)  # a symlink leaving the data folder: not read
                # the raw bytes: roots.io.readers recognises and decompresses gzip/bzip2/xz/zstd itself
                # (Beam's own decompression hands back a stream that cannot be read line by line)
                with (contextlib.nullcontext() if problem
                      else FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)) as fh:
                    records = ([readers.quarantine(self.spec, path, 0, b"", problem)] if problem
                               else readers.read(self.spec, path, fh, sizes))
                    for record in records:
                        n += 1
                        if record["kind"] == "quarantine":
                            count("quarantined")
                            fragments.add("quarantine", record)
                            continue
                        batch.append(record)
                        if len(batch) >= self.batch_size:
                            self._flush(batch, fragments, writer, keys)
                            batch = []
                            if due():
                                progress.write_report(self.out_dir, "read", name, {
                                    "records": n, "bytes": raw_done + _position(fh, raw_size)})
                size += 0 if problem else sizes.get("text_bytes", raw_size)
                raw_done += raw_size
            self._flush(batch, fragments, writer, keys)
            keys.close()  # before the spill appears: a spill in place means its keys are complete
        except BaseException:
            keys.abort()
            if writer is not None:
                writer.abort()
            raise
        fragments.close()
        count("input_records", n)
        count("bytes_in", size)
        for stage, seconds in self.processor.timings.items():
            count(f"stage_us_{stage}", int(seconds * 1e6))
        progress.write_report(self.out_dir, "read", name, {"records": n, "bytes": raw_done,
                                                            "files": len(files), "done": True})
        # Not every runner reports metrics (DaskRunner does not); the accounting check needs the input
        # count from somewhere independent of the outputs, so each unit leaves a small count record.
        outputs.write_input_count(self.out_dir, name, [path for path, _ in files], n, size, seen)
        if writer is not None:
            yield writer.close()

    def _flush(self, batch: list[dict[str, Any]], fragments: outputs.FragmentWriter,
               writer: spill.Writer | None, keys: _KeyWriters) -> None:
        if not batch:
            return
        assert self.processor is not None
        rows = self.processor.process(batch)
        # One counter update per distinct name and batch: a Beam counter per row was ~15 us of its CPU.
        counts = Counter(f"status_{row['status']}" for row in rows)
        counts.update(f"reason_{row['reason']}" for row in rows if row["status"] == "rejected")
        count_all(counts)
        if writer is None:
            for row in rows:
                fragments.add(outputs.kind_of(row), row)
            return
        for row in rows:
            rowkeys.mark(row, self.dedup_cfg)
        keys.add(rows)
        writer.write(rows)


class _KeyWriters:
    """One `spill.KeyWriter` per key kind of one input file; `add` files every key of a batch of rows."""

    def __init__(self, out_dir: str, file_id: str, buckets: int, kinds: tuple[str, ...],
                 lsh: tuple[int, int] = (0, 0)) -> None:
        self.writers = {kind: spill.KeyWriter(out_dir, kind, file_id, buckets) for kind in kinds}
        self.lsh = lsh

    def add(self, rows: list[dict[str, Any]]) -> None:
        for kind, writer in self.writers.items():
            for row in rows:
                for key in rowkeys.key_bytes(row, kind, *self.lsh):
                    writer.add(key, row[schema.NODE])

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()


class CountLines(beam.DoFn):
    """Template line digests of one processed spill file, counted per batch, into line key spills."""

    def __init__(self, cfg: DedupConfig, out_dir: str, buckets: int) -> None:
        self.cfg, self.out_dir, self.buckets = cfg, out_dir, buckets

    def process(self, path, riders):  # unannotated: Beam would infer type hints
        writer = spill.KeyWriter(self.out_dir, "lines", Path(path).stem, self.buckets)
        if not writer.done():
            try:
                for batch in spill.rows(path, columns=[schema.NODE, "text"]):
                    counts: Counter[bytes] = Counter()
                    for row in batch:
                        counts.update(rowkeys.template_keys(row, riders, self.cfg.template_min_len,
                                                            self.cfg.template_per_domain))
                    for key, n in counts.items():
                        writer.add(key, n)
            except BaseException:
                writer.abort()
                raise
            writer.close()
        progress.write_report(self.out_dir, "lines", Path(path).stem, {"done": True})
        yield path


class PrepareFile(beam.DoFn):
    """URL riders marked, template lines removed, signatures and exact keys added: a second spill file,
    and its band and exact keys in key spills."""

    def __init__(self, cfg: DedupConfig, out_dir: str, buckets: int) -> None:
        self.cfg, self.out_dir, self.buckets = cfg, out_dir, buckets

    def process(self, path, riders, frequent):  # unannotated: Beam would infer type hints
        cfg = self.cfg
        target = spill.path_for(self.out_dir, "prepared", Path(path).stem)
        if not Path(target).exists():
            kinds = ("bands",) * cfg.near + ("exact",) * cfg.exact
            keys = _KeyWriters(self.out_dir, Path(path).stem, self.buckets, kinds,
                               minhash.lsh_params(cfg.threshold, cfg.num_perm))
            writer = spill.Writer(target)
            try:
                for batch in spill.rows(path, batch_size=cfg.signature_batch):
                    rows, counts = rowkeys.prepare(batch, cfg, riders, frequent)
                    count_all(counts)
                    keys.add(rows)
                    writer.write(rows)
                keys.close()
            except BaseException:
                keys.abort()
                writer.abort()
                raise
            writer.close()
        progress.write_report(self.out_dir, "prepare", Path(path).stem, {"done": True})
        yield target


def _shared(bucket, kind, out_dir, done):  # unannotated: Beam would infer type hints
    """(key, nodes) of every key that two or more documents share, in one bucket of one key kind; `done`
    lists the spill files whose keys are complete (a side input, so this runs after all of them)."""
    table = spill.read_bucket(out_dir, kind, bucket, [Path(path).stem for path in done])
    for key, texts in spill.shared_keys(table):
        yield key, [rowkeys.node_of(text) for text in texts]


def _frequent(bucket, out_dir, done, min_count):  # unannotated: Beam would infer type hints
    """(line digest, count) of the template lines of one bucket (see `_shared` for `done`)."""
    table = spill.read_bucket(out_dir, "lines", bucket, [Path(path).stem for path in done])
    yield from spill.frequent_keys(table, min_count)


class FinishFile(beam.DoFn):
    """Resolve every row of a prepared spill file against the source-wide decisions; write fragments."""

    def __init__(self, cfg: DedupConfig, out_dir: str, num_shards: int) -> None:
        self.cfg, self.out_dir, self.num_shards = cfg, out_dir, num_shards

    def process(self, path, labels, parents):  # unannotated: Beam would infer type hints
        fragments = outputs.FragmentWriter(self.out_dir, Path(path).stem, self.num_shards)
        for batch in spill.rows(path, batch_size=256):
            counts: Counter[str] = Counter()
            for row in batch:
                out, sig_row, counter = rowkeys.resolve(row, labels, parents, self.cfg)
                if counter:
                    counts[counter] += 1
                fragments.add(outputs.kind_of(out), out)
                if sig_row is not None:
                    fragments.add("signatures", sig_row)
            count_all(counts)
        fragments.close()
        progress.write_report(self.out_dir, "finish", Path(path).stem, {"done": True})
        yield path


def _size_now(path: str, listed: int) -> int:
    """A local file's size as its reader opens it; the listed size for a remote one (Beam's match gave it).
    The unit lists the sizes the run fingerprinted, so only a fresh look can show a file that changed."""
    import os

    try:
        return os.stat(path).st_size if "://" not in path else listed
    except OSError:
        return listed


def _position(fh: Any, default: int) -> int:
    """How far into its raw bytes an open input file is (for progress); `default` if it cannot say."""
    try:
        return int(fh.tell())
    except (OSError, ValueError, AttributeError):
        return default


def build(p: beam.Pipeline, pattern: str, spec: readers.ReaderSpec, cfg: ProcessConfig, out_dir: str,
          num_shards: int, batch_size: int, dedup_cfg: DedupConfig | None = None,
          key_buckets: int | None = None, files: list[tuple[str, int]] | None = None,
          previous: list[str] | None = None) -> None:
    """The source pipeline over `files` ((path, size); default: what `pattern` matches now); `key_buckets`
    overrides the key spill bucket count planned from the input size (decisions do not depend on it).

    `previous`: processed spill files of an earlier run of the source, already under `out_dir` with their
    URL key files (an incremental run: `roots.jobs.run.incremental_base`). Their documents are not read or
    processed again, but every dedup pass sees them beside the new files' documents, so the decisions are
    the ones a full run over all the files makes."""
    files = match_files(pattern) if files is None else files
    d = dedup_cfg
    buckets = key_buckets or (spill.bucket_count(sum(size for _, size in files)) if d else 1)
    units = (p
             | "Units" >> beam.Create(pack_files(files))
             | "Spread" >> beam.Reshuffle())
    processed = units | "Process" >> beam.ParDo(ProcessFiles(spec, cfg, out_dir, num_shards, batch_size, d,
                                                             buckets))
    if previous:
        earlier = p | "Previous" >> beam.Create(sorted(previous))
        processed = (processed, earlier) | "AllSpills" >> beam.Flatten()
    if d is None:
        return
    # spread the bucket ids: Create alone would hand every bucket step to the worker that runs the Create
    bucket_ids = p | "KeyBuckets" >> beam.Create(list(range(buckets))) | "SpreadBuckets" >> beam.Reshuffle()
    empty = p | "Nothing" >> beam.Create([])
    riders = None
    if d.url:
        riders = (bucket_ids
                  | "UrlGroups" >> beam.FlatMap(_shared, "url", out_dir, beam.pvalue.AsList(processed))
                  | "UrlRiders" >> beam.FlatMap(rowkeys.url_riders))
    rider_side = beam.pvalue.AsDict(riders if riders is not None else empty)
    frequent = empty
    if d.template:
        counted = processed | "CountLines" >> beam.ParDo(CountLines(d, out_dir, buckets), rider_side)
        frequent = bucket_ids | "FrequentLines" >> beam.FlatMap(
            _frequent, out_dir, beam.pvalue.AsList(counted), d.template_min_count)
    prepare = PrepareFile(d, out_dir, buckets)
    prepared = processed | "Prepare" >> beam.ParDo(prepare, rider_side, beam.pvalue.AsDict(frequent))
    done = beam.pvalue.AsList(prepared)
    bands = bucket_ids | "BandGroups" >> beam.FlatMap(_shared, "bands", out_dir, done) if d.near else None
    exact = bucket_ids | "ExactGroups" >> beam.FlatMap(_shared, "exact", out_dir, done) if d.exact else None
    labels, parents = p | "Dedup" >> dedup_beam.Decisions(d, bands, exact, riders)
    _ = prepared | "Finish" >> beam.ParDo(FinishFile(d, out_dir, num_shards), beam.pvalue.AsDict(labels),
                                          beam.pvalue.AsDict(parents))


def stage_seconds(metrics: dict[str, int]) -> dict[str, float]:
    return {stage: metrics.get(f"stage_us_{stage}", 0) / 1e6 for stage in (*STAGES, "decide")}


def query_counters(result: Any) -> dict[str, int]:
    """Committed (or attempted) counter values; empty if the runner reports none."""
    try:
        res = result.metrics().query()
    except Exception:  # noqa: BLE001 - some runners do not implement metric queries
        return {}
    out: dict[str, int] = {}
    for c in res.get("counters", []):
        if c.key.metric.namespace != NAMESPACE:
            continue
        value = c.committed if c.committed is not None else c.attempted
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(value or 0)
    return out


def match_files(pattern: str) -> list[tuple[str, int]]:
    """(path, size) of every file the pattern matches, through Beam's filesystems (local, gs://, s3://...)."""
    from apache_beam.io.filesystems import FileSystems

    try:
        result = FileSystems.match([pattern])[0]
    except Exception:  # noqa: BLE001 - Beam raises BeamIOError or ValueError for no match or an unknown scheme
        return []
    return sorted((m.path, m.size_in_bytes) for m in result.metadata_list)


def dangling_links(pattern: str) -> list[str]:
    """Local symlinks the pattern would match whose target does not exist. Beam's match drops them
    without a word, so the run finds them here (with Beam's own pattern rules) and quarantines each."""
    import os
    import re

    from apache_beam.io.filesystem import FileSystem

    if "://" in pattern:
        return []
    pattern = pattern + "*" if pattern.endswith(("/", "\\")) else pattern
    prefix = re.match(r"^[^[*?]*", pattern).group(0)  # type: ignore[union-attr]
    if prefix == pattern:
        return [pattern] if os.path.islink(pattern) and not os.path.exists(pattern) else []
    root = prefix if prefix.endswith("/") else os.path.dirname(prefix)
    regex = re.compile(FileSystem.translate_pattern(pattern))
    found = []
    for dirpath, _, names in os.walk(root or "."):
        for name in names:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) and not os.path.exists(path) and regex.match(path):
                found.append(path)
    return sorted(found)


def run_pipeline(pattern: str, spec: readers.ReaderSpec, cfg: ProcessConfig, out_dir: str, num_shards: int,
                 batch_size: int, beam_args: list[str], dedup_cfg: DedupConfig | None = None,
                 files: list[tuple[str, int]] | None = None, previous: list[str] | None = None,
                 key_buckets: int | None = None) -> dict[str, int]:
    from pipelines.runner import make_pipeline

    with make_pipeline(beam_args) as p:  # runs on leaving the block, and waits for the result
        build(p, pattern, spec, cfg, out_dir, num_shards, batch_size, dedup_cfg, key_buckets, files=files,
              previous=previous)
    return query_counters(p.result)
