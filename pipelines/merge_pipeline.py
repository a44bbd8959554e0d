"""Beam wiring of the merge's tokenisation: each kept Parquet file becomes partial Megatron datasets.

One DoFn call streams one input file (so memory does not grow with the corpus), tokenizes its documents
in batches and writes its partial output (token bytes grouped by language and split, plus lineage) under
a name derived from the file's position. The driver assembles the shards from the partials in that order,
so the release is the same whichever runner, worker count or retry produced them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from roots.release import parts


class TokenizeFile(beam.DoFn):
    def __init__(self, tokenizer_path: str, parts_dir: str, valid_fraction: float, seed: int) -> None:
        self.tokenizer_path = tokenizer_path
        self.parts_dir = parts_dir
        self.valid_fraction = valid_fraction
        self.seed = seed
        self.tok: Any = None

    def setup(self) -> None:
        from roots.io import outputs
        from roots.release import tokenizer

        outputs.bounded_arrow_memory()
        self.tok = tokenizer.with_word_cache(tokenizer.load(self.tokenizer_path))

    def process(self, task: dict[str, Any], drops: dict[str, str]) -> Iterator[str]:
        counts = parts.tokenize_file(self.tok, task, drops, self.parts_dir, self.valid_fraction, self.seed)
        Metrics.counter("roots", "merge_documents").inc(counts["documents"])
        Metrics.counter("roots", "merge_tokens").inc(counts["tokens"])
        yield task["path"]

    def teardown(self) -> None:
        # The tokenizer's word cache grows with the distinct words seen (up to `ENCODE_WORD_CACHE`); the
        # DirectRunner may keep this instance after the pipeline, so the cache is let go here, not at exit.
        self.tok = None


def run(tasks: list[dict[str, Any]], drops: dict[str, str], tokenizer_path: str, parts_dir: str,
        valid_fraction: float, seed: int, beam_args: list[str]) -> None:
    from pipelines.runner import make_pipeline

    with make_pipeline(beam_args) as p:
        drop_side = p | "Drops" >> beam.Create(sorted(drops.items()))
        (p
         | "Files" >> beam.Create(tasks)
         | "Spread" >> beam.Reshuffle()
         | "Tokenize" >> beam.ParDo(TokenizeFile(tokenizer_path, parts_dir, valid_fraction, seed),
                                    drops=beam.pvalue.AsDict(drop_side)))
