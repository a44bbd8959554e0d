"""Beam wiring of the per-source pipeline: read -> process (batched) -> deterministic shard writer.

All logic lives in `roots/`; this module only maps it onto Beam so that any runner can execute it.
Counters per stage, status and reason are Beam metrics, so progress and drops are visible in any
runner's UI, in the spirit of TFDS's C4 pipeline.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.metrics import Metrics

from pipelines.batching import BatchByKey, n_keys_for
from pipelines.dedup import apply_dedup
from roots import outputs, readers
from roots.dedup import DedupConfig
from roots.process import STAGES, DocumentProcessor, ProcessConfig

NAMESPACE = "roots"
PROGRESS_EVERY = 10_000


class ReadRecords(beam.DoFn):
    """Stream one matched file into document and quarantine records (through Beam's filesystems)."""

    def __init__(self, spec: readers.ReaderSpec, out_dir: str) -> None:
        self.spec = spec
        self.out_dir = out_dir
        self.read = Metrics.counter(NAMESPACE, "input_records")
        self.quarantined = Metrics.counter(NAMESPACE, "quarantined")
        self.bytes_in = Metrics.counter(NAMESPACE, "bytes_in")

    def process(self, readable: fileio.ReadableFile) -> Iterator[Any]:
        path = readable.metadata.path
        self.bytes_in.inc(readable.metadata.size_in_bytes)
        n = 0
        with readable.open() as fh:
            for record in readers.read(self.spec, path, fh):
                n += 1
                self.read.inc()
                if n % PROGRESS_EVERY == 0:
                    print(f"  ... {path}: {n} records read", file=sys.stderr, flush=True)
                if record["kind"] == "quarantine":
                    self.quarantined.inc()
                yield record
        print(f"  read {path}: {n} records", file=sys.stderr, flush=True)
        # Not every runner reports metrics (DaskRunner does not); the accounting check needs the input
        # count from somewhere independent of the outputs, so each file leaves a small count record.
        outputs.write_input_count(self.out_dir, path, n, readable.metadata.size_in_bytes)


class ProcessBatch(beam.DoFn):
    """Run the document stages on a batch; models load once per worker in setup()."""

    def __init__(self, cfg: ProcessConfig) -> None:
        self.cfg = cfg
        self.processor: DocumentProcessor | None = None

    def setup(self) -> None:
        self.processor = DocumentProcessor(self.cfg)

    def start_bundle(self) -> None:
        assert self.processor is not None
        self.processor.timings.clear()

    def process(self, batch: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        assert self.processor is not None
        for row in self.processor.process(batch):
            Metrics.counter(NAMESPACE, f"status_{row['status']}").inc()
            if row["status"] == "rejected":
                Metrics.counter(NAMESPACE, f"reason_{row['reason']}").inc()
            yield row

    def finish_bundle(self) -> None:
        assert self.processor is not None
        for stage, seconds in self.processor.timings.items():
            Metrics.counter(NAMESPACE, f"stage_us_{stage}").inc(int(seconds * 1e6))


class WriteShard(beam.DoFn):
    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def process(self, item: tuple[tuple[str, int], Any]) -> Iterator[str]:
        (kind, shard), rows = item
        yield outputs.write_fragment(self.out_dir, kind, shard, rows)


def shard_writer(rows: beam.PCollection, label: str, out_dir: str, num_shards: int) -> beam.PCollection:
    """Group rows by (kind, shard) and write each group once; safe under re-execution."""

    def keyed(row: dict[str, Any]) -> tuple[tuple[str, int], dict[str, Any]]:
        kind = outputs.kind_of(row)
        return (kind, outputs.shard_of(kind, row, num_shards)), row

    return (rows
            | f"Key{label}" >> beam.Map(keyed)
            | f"Group{label}" >> beam.GroupByKey()
            | f"Write{label}" >> beam.ParDo(WriteShard(out_dir)))


def build(p: beam.Pipeline, pattern: str, spec: readers.ReaderSpec, cfg: ProcessConfig, out_dir: str,
          num_shards: int, batch_size: int, dedup_cfg: DedupConfig | None = None, n_keys: int = 1) -> None:
    files = (p
             | "Pattern" >> beam.Create([pattern])
             | "Match" >> fileio.MatchAll()
             | "Open" >> fileio.ReadMatches())
    # Filters, not tagged outputs: Beam's DaskRunner mixes up the outputs of multi-output DoFns.
    records = files | "Read" >> beam.ParDo(ReadRecords(spec, out_dir))
    quarantine = records | "Quarantined" >> beam.Filter(lambda r: r["kind"] == "quarantine")
    processed = (records
                 | "Documents" >> beam.Filter(lambda r: r["kind"] == "doc")
                 | "Batch" >> BatchByKey(batch_size, n_keys, lambda r: f"{r['origin']}\x1f{r['id']}")
                 | "Process" >> beam.ParDo(ProcessBatch(cfg)))
    signatures = None
    if dedup_cfg is not None:  # after the filters: no work is spent on rejected documents
        processed, signatures = apply_dedup(processed, dedup_cfg)
    branches = [processed, quarantine]
    if signatures is not None:
        branches.append(signatures | "TagSignatures" >> beam.Map(lambda row: {**row, "kind": "signatures"}))
    everything = tuple(branches) | "All" >> beam.Flatten()
    shard_writer(everything, "Out", out_dir, num_shards)


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
                 batch_size: int, beam_args: list[str], dedup_cfg: DedupConfig | None = None,
                 input_bytes: int = 0) -> dict[str, int]:
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(beam_args or ["--runner=DirectRunner"])
    p = beam.Pipeline(options=options)
    build(p, pattern, spec, cfg, out_dir, num_shards, batch_size, dedup_cfg, n_keys_for(input_bytes))
    result = p.run()
    result.wait_until_finish()
    return query_counters(result)
