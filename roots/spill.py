"""Spill files: a source's processed rows parked on disk between the per-file passes of the pipeline.

Why: the dedup decisions need every document of the source, but only through small keys. Keeping the
texts in Parquet next to the worker (instead of in the runner's shuffle) is what keeps a run's memory
flat as the source grows: each pass streams one file in batches, and only keys travel. A spill file
appears under its final name only when complete (temporary name, then rename), so a pass that finds it
can reuse it: runners that re-execute a step (Beam's DaskRunner) do not redo the work.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from roots import dedup_rows, outputs

WORK = outputs.WORK
SCHEMA = pa.schema([
    *outputs.REJECTED_SCHEMA,
    pa.field("status", pa.string()),
    pa.field(dedup_rows.NODE, pa.string()),
    pa.field(dedup_rows.URL_KEY, pa.string()),
    pa.field(dedup_rows.URL_PARENT, pa.string()),
    pa.field(dedup_rows.SIG, pa.binary()),
    pa.field(dedup_rows.EXACT, pa.string()),
])


def path_for(out_dir: str, step: str, file_id: str) -> str:
    return str(Path(out_dir) / WORK / step / f"{file_id}.parquet")


class Writer:
    """Append batches of rows; `close()` renames the file into place (nothing visible before that)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        self.writer = pq.ParquetWriter(self.tmp, SCHEMA, compression="lz4")

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.writer.write_table(outputs.table_of(rows, SCHEMA))

    def close(self) -> str:
        self.writer.close()
        os.replace(self.tmp, self.path)
        return str(self.path)

    def abort(self) -> None:
        self.writer.close()
        self.tmp.unlink(missing_ok=True)


def rows(path: str, columns: list[str] | None = None, batch_size: int = 1024) -> Iterator[list[dict[str, Any]]]:
    """Batches of rows of a spill file, in the order they were written."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=columns):
        yield batch.to_pylist()
