"""Beam wiring of the per-source pipeline: per-file passes over spill files, small keys through the shuffles.

Why this shape: a runner holds what it shuffles (the DirectRunner in memory), so documents never go
through a shuffle. Each input file is one unit of work:

1. `ProcessFile` streams the file, runs the document stages in batches (models load once per worker)
   and writes every row to a spill file (`roots/spill.py`), malformed records to quarantine fragments.
   Without dedup it writes the output fragments directly and the run ends there.
2. Dedup keys are read back from the spill files: URL keys -> URL riders; line digests -> frequent
   template lines (both side inputs of the next pass).
3. `PrepareFile` removes template lines, computes signatures and exact keys, and writes a second spill.
4. Band and exact keys -> `pipelines.dedup.Decisions` -> labels and exact parents (only documents that
   have a duplicate; side inputs).
5. `FinishFile` resolves every row and writes the output fragments, which the driver consolidates into
   shards.

All logic lives in `roots/`; this module only maps it onto Beam so that any runner can execute it.
Counters per stage, status and reason are Beam metrics, in the spirit of TFDS's C4 pipeline. Spill and
fragment files have final names only when complete, so a step that a runner re-executes (DaskRunner)
reuses or rewrites them identically.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.io import fileio

from pipelines import dedup as dedup_beam
from pipelines.dedup import count, count_all
from roots import dedup, dedup_rows, outputs, readers, spill
from roots.dedup import DedupConfig
from roots.process import STAGES, DocumentProcessor, ProcessConfig

NAMESPACE = "roots"
PROGRESS_EVERY = 10_000


class ProcessFile(beam.DoFn):
    """Read one matched file (through Beam's filesystems) and run the document stages on it in batches."""

    def __init__(self, spec: readers.ReaderSpec, cfg: ProcessConfig, out_dir: str, num_shards: int,
                 batch_size: int, dedup_cfg: DedupConfig | None) -> None:
        self.spec, self.cfg, self.out_dir, self.num_shards = spec, cfg, out_dir, num_shards
        self.batch_size = max(1, int(batch_size))
        self.dedup_cfg = dedup_cfg
        self.processor: DocumentProcessor | None = None

    def setup(self) -> None:
        outputs.bounded_arrow_memory()
        self.processor = DocumentProcessor(self.cfg)

    def process(self, readable: fileio.ReadableFile) -> Iterator[str]:
        assert self.processor is not None
        path = readable.metadata.path
        name = outputs.file_id(path)
        target = spill.path_for(self.out_dir, "processed", name) if self.dedup_cfg is not None else None
        if target is not None and Path(target).exists():  # a re-executed step: the work is done
            yield target
            return
        self.processor.timings.clear()
        fragments = outputs.FragmentWriter(self.out_dir, name, self.num_shards)
        writer = spill.Writer(target) if target is not None else None
        n = 0
        batch: list[dict[str, Any]] = []
        try:
            with readable.open() as fh:
                for record in readers.read(self.spec, path, fh):
                    n += 1
                    if n % PROGRESS_EVERY == 0:
                        print(f"  ... {path}: {n} records read", file=sys.stderr, flush=True)
                    if record["kind"] == "quarantine":
                        count("quarantined")
                        fragments.add("quarantine", record)
                        continue
                    batch.append(record)
                    if len(batch) >= self.batch_size:
                        self._flush(batch, fragments, writer)
                        batch = []
            self._flush(batch, fragments, writer)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        fragments.close()
        count("input_records", n)
        count("bytes_in", readable.metadata.size_in_bytes)
        for stage, seconds in self.processor.timings.items():
            count(f"stage_us_{stage}", int(seconds * 1e6))
        print(f"  read {path}: {n} records", file=sys.stderr, flush=True)
        # Not every runner reports metrics (DaskRunner does not); the accounting check needs the input
        # count from somewhere independent of the outputs, so each file leaves a small count record.
        outputs.write_input_count(self.out_dir, path, n, readable.metadata.size_in_bytes)
        if writer is not None:
            yield writer.close()

    def _flush(self, batch: list[dict[str, Any]], fragments: outputs.FragmentWriter,
               writer: spill.Writer | None) -> None:
        if not batch:
            return
        assert self.processor is not None
        rows = self.processor.process(batch)
        for row in rows:
            count(f"status_{row['status']}")
            if row["status"] == "rejected":
                count(f"reason_{row['reason']}")
        if writer is None:
            for row in rows:
                fragments.add(outputs.kind_of(row), row)
            return
        for row in rows:
            dedup_rows.mark(row, self.dedup_cfg)
        writer.write(rows)


def _spill_keys(path, columns, fn, *args):  # unannotated: Beam would infer type hints
    """The keys `fn(row, *args)` yields for every row of a spill file, reading only `columns`."""
    for batch in spill.rows(path, columns=columns):
        for row in batch:
            yield from fn(row, *args)


class PrepareFile(beam.DoFn):
    """URL riders marked, template lines removed, signatures and exact keys added: a second spill file."""

    def __init__(self, cfg: DedupConfig, out_dir: str) -> None:
        self.cfg, self.out_dir = cfg, out_dir

    def process(self, path, riders, frequent):  # unannotated: Beam would infer type hints
        target = spill.path_for(self.out_dir, "prepared", Path(path).stem)
        if not Path(target).exists():
            writer = spill.Writer(target)
            try:
                for batch in spill.rows(path, batch_size=self.cfg.signature_batch):
                    rows, counts = dedup_rows.prepare(batch, self.cfg, riders, frequent)
                    count_all(counts)
                    writer.write(rows)
            except BaseException:
                writer.abort()
                raise
            writer.close()
        yield target


class FinishFile(beam.DoFn):
    """Resolve every row of a prepared spill file against the source-wide decisions; write fragments."""

    def __init__(self, cfg: DedupConfig, out_dir: str, num_shards: int) -> None:
        self.cfg, self.out_dir, self.num_shards = cfg, out_dir, num_shards

    def process(self, path, labels, parents):  # unannotated: Beam would infer type hints
        fragments = outputs.FragmentWriter(self.out_dir, Path(path).stem, self.num_shards)
        for batch in spill.rows(path):
            for row in batch:
                out, sig_row, counter = dedup_rows.resolve(row, labels, parents, self.cfg)
                if counter:
                    count(counter)
                fragments.add(outputs.kind_of(out), out)
                if sig_row is not None:
                    fragments.add("signatures", sig_row)
        fragments.close()
        yield path


def build(p: beam.Pipeline, pattern: str, spec: readers.ReaderSpec, cfg: ProcessConfig, out_dir: str,
          num_shards: int, batch_size: int, dedup_cfg: DedupConfig | None = None) -> None:
    files = (p
             | "Pattern" >> beam.Create([pattern])
             | "Match" >> fileio.MatchAll()
             | "Spread" >> beam.Reshuffle()
             | "Open" >> fileio.ReadMatches())
    process = ProcessFile(spec, cfg, out_dir, num_shards, batch_size, dedup_cfg)
    processed = files | "Process" >> beam.ParDo(process)
    if dedup_cfg is None:
        return
    d = dedup_cfg
    empty = p | "Nothing" >> beam.Create([])
    rows_ = dedup_rows
    riders = None
    if d.url:
        url_keys = processed | "UrlKeys" >> beam.FlatMap(_spill_keys, [rows_.NODE, rows_.URL_KEY], rows_.url_keys)
        riders = dedup_beam.url_riders(url_keys)
    rider_side = beam.pvalue.AsDict(riders if riders is not None else empty)
    frequent = empty
    if d.template:
        line_keys = processed | "LineKeys" >> beam.FlatMap(_spill_keys, [rows_.NODE, "text"], rows_.template_keys,
                                                            rider_side, d.template_min_len)
        frequent = dedup_beam.frequent_lines(line_keys, d.template_min_count)
    prepare = PrepareFile(d, out_dir)
    prepared = processed | "Prepare" >> beam.ParDo(prepare, rider_side, beam.pvalue.AsDict(frequent))
    bands = exact = None
    if d.near:
        bands = prepared | "Bands" >> beam.FlatMap(_spill_keys, [rows_.NODE, rows_.SIG], rows_.band_keys,
                                                   *dedup.lsh_params(d.threshold, d.num_perm))
    if d.exact:
        exact = prepared | "ExactKeys" >> beam.FlatMap(_spill_keys, [rows_.NODE, rows_.EXACT], rows_.exact_keys)
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


def run_pipeline(pattern: str, spec: readers.ReaderSpec, cfg: ProcessConfig, out_dir: str, num_shards: int,
                 batch_size: int, beam_args: list[str], dedup_cfg: DedupConfig | None = None) -> dict[str, int]:
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(beam_args or ["--runner=DirectRunner"])
    p = beam.Pipeline(options=options)
    build(p, pattern, spec, cfg, out_dir, num_shards, batch_size, dedup_cfg)
    result = p.run()
    result.wait_until_finish()
    return query_counters(result)
