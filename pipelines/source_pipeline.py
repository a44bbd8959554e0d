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
   sorted shards.

All logic lives in `roots/`; this module only maps it onto Beam so that any runner can execute it.
Counters per stage, status and reason are Beam metrics, in the spirit of TFDS's C4 pipeline. Spill and
fragment files have final names only when complete, so a step that a runner re-executes (DaskRunner)
reuses or rewrites them identically.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.metrics import Metrics

from pipelines import dedup as dedup_beam
from roots import dedup, dedup_rows, outputs, readers, spill
from roots.dedup import DedupConfig
from roots.process import STAGES, DocumentProcessor, ProcessConfig

NAMESPACE = "roots"
PROGRESS_EVERY = 10_000


def _count(name: str, n: int = 1) -> None:
    Metrics.counter(NAMESPACE, name).inc(n)


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
                        _count("quarantined")
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
        _count("input_records", n)
        _count("bytes_in", readable.metadata.size_in_bytes)
        for stage, seconds in self.processor.timings.items():
            _count(f"stage_us_{stage}", int(seconds * 1e6))
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
            _count(f"status_{row['status']}")
            if row["status"] == "rejected":
                _count(f"reason_{row['reason']}")
        if writer is None:
            for row in rows:
                fragments.add(outputs.kind_of(row), row)
            return
        for row in rows:
            dedup_rows.mark(row, self.dedup_cfg)
        writer.write(rows)


def _url_keys(path: str) -> Iterator[tuple[str, dedup.Node]]:
    for batch in spill.rows(path, columns=[dedup_rows.NODE, dedup_rows.URL_KEY]):
        for row in batch:
            if row[dedup_rows.URL_KEY] is not None:
                yield row[dedup_rows.URL_KEY], dedup_rows.node_of(row[dedup_rows.NODE])


def _line_keys(path, riders, min_len):  # unannotated: Beam would infer type hints
    for batch in spill.rows(path, columns=[dedup_rows.NODE, "text"]):
        for row in batch:
            yield from dedup_rows.template_keys(row, riders, min_len)


class PrepareFile(beam.DoFn):
    """URL riders marked, template lines removed, signatures and exact keys added: a second spill file."""

    def __init__(self, cfg: DedupConfig) -> None:
        self.cfg = cfg

    def process(self, path, riders, frequent):  # unannotated: Beam would infer type hints
        target = str(Path(path).parent.parent / "prepared" / Path(path).name)
        if not Path(target).exists():
            writer = spill.Writer(target)
            try:
                for batch in spill.rows(path, batch_size=self.cfg.signature_batch):
                    rows, counts = dedup_rows.prepare(batch, self.cfg, riders, frequent)
                    for name, n in counts.items():
                        if n:
                            _count(name, n)
                    writer.write(rows)
            except BaseException:
                writer.abort()
                raise
            writer.close()
        yield target


def _band_keys(path: str, b: int, r: int) -> Iterator[tuple[tuple[int, bytes], dedup.Node]]:
    for batch in spill.rows(path, columns=[dedup_rows.NODE, dedup_rows.SIG]):
        for row in batch:
            yield from dedup_rows.band_keys(row, b, r)


def _exact_keys(path: str) -> Iterator[tuple[str, dedup.Node]]:
    for batch in spill.rows(path, columns=[dedup_rows.NODE, dedup_rows.EXACT]):
        for row in batch:
            yield from dedup_rows.exact_keys(row)


class FinishFile(beam.DoFn):
    """Resolve every row of a prepared spill file against the source-wide decisions; write fragments."""

    def __init__(self, cfg: DedupConfig, out_dir: str, num_shards: int) -> None:
        self.cfg, self.out_dir, self.num_shards = cfg, out_dir, num_shards

    def process(self, path, labels, parents):  # unannotated: Beam would infer type hints
        fragments = outputs.FragmentWriter(self.out_dir, Path(path).stem, self.num_shards)
        for batch in spill.rows(path):
            for row in batch:
                node = dedup_rows.node_of(row[dedup_rows.NODE]) if row[dedup_rows.NODE] is not None else None
                out, sig_row, counter = dedup_rows.resolve(row, labels.get(node), parents.get(node), self.cfg)
                if counter:
                    _count(counter)
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
    processed = files | "Process" >> beam.ParDo(ProcessFile(spec, cfg, out_dir, num_shards, batch_size, dedup_cfg))
    if dedup_cfg is None:
        return
    d = dedup_cfg
    empty = p | "Nothing" >> beam.Create([])
    riders = None
    if d.url:
        riders = dedup_beam.url_riders(processed | "UrlKeys" >> beam.FlatMap(_url_keys))
    rider_side = beam.pvalue.AsDict(riders if riders is not None else empty)
    frequent = empty
    if d.template:
        frequent = dedup_beam.frequent_lines(
            processed | "LineKeys" >> beam.FlatMap(_line_keys, rider_side, d.template_min_len), d.template_min_count)
    prepared = processed | "Prepare" >> beam.ParDo(PrepareFile(d), rider_side, beam.pvalue.AsDict(frequent))
    bands = prepared | "Bands" >> beam.FlatMap(_band_keys, *dedup.lsh_params(d.threshold, d.num_perm)) \
        if d.near else None
    exact = prepared | "ExactKeys" >> beam.FlatMap(_exact_keys) if d.exact else None
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


def wall(start: float) -> float:
    return round(time.perf_counter() - start, 3)


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
