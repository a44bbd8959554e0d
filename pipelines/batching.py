"""Batching that every runner executes the same way.

`beam.BatchElements` emits its last partial batch from `finish_bundle`; Beam's DaskRunner drops
outputs emitted there, so documents silently disappeared on Dask. Here elements are keyed by a stable
hash, grouped, and cut into batches inside each group: no bundle lifecycle is involved, and the
shuffle also spreads the work over workers (it replaces a Reshuffle).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam


def _key(n_keys: int, key_of: Callable[[Any], str]) -> Callable[[Any], tuple[int, Any]]:
    def keyed(element: Any) -> tuple[int, Any]:
        digest = hashlib.blake2b(key_of(element).encode("utf-8", "surrogatepass"), digest_size=8).digest()
        return int.from_bytes(digest, "big") % n_keys, element

    return keyed


def _chunks(item: tuple[int, Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for element in item[1]:
        batch.append(element)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class BatchByKey(beam.PTransform):
    """Lists of at most `batch_size` elements; `n_keys` groups bound the memory of one group."""

    def __init__(self, batch_size: int, n_keys: int, key_of: Callable[[Any], str]) -> None:
        super().__init__()
        self.batch_size = max(1, int(batch_size))
        self.n_keys = max(1, int(n_keys))
        self.key_of = key_of

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        return (pcoll
                | "Key" >> beam.Map(_key(self.n_keys, self.key_of))
                | "Group" >> beam.GroupByKey()
                | "Chunk" >> beam.FlatMap(_chunks, self.batch_size))

