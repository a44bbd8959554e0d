"""Per-file tokenisation for the merge (pure; called from the Beam DoFn and from tests).

Every document that enters the release gets a lineage row next to its tokens: source, id, URL and the
clearance basis (licence policy or permission record), so any token range in a shard can be traced to
the document and the permission that let it in.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from roots import megatron, outputs
from roots import tokenizer as toklib

LINEAGE_SCHEMA = pa.schema([
    pa.field("source", pa.string()),
    pa.field("id", pa.string()),
    pa.field("url", pa.string()),
    pa.field("lang", pa.string()),
    pa.field("tokens", pa.int64()),
    pa.field("clearance", pa.string()),
    pa.field("permission_record", pa.string()),
])
BATCH = 256


def doc_key(source: str, doc_id: str) -> str:
    return f"{source}\x1f{doc_id}"


def unit_hash(seed: int, source: str, doc_id: str) -> float:
    """A stable number in [0, 1) per document: sampling and hold-out decisions must not depend on order."""
    digest = hashlib.blake2b(f"{seed}\x1f{source}\x1f{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def split_of(seed: int, source: str, doc_id: str, valid_fraction: float) -> str:
    return "valid" if unit_hash(seed + 1, source, doc_id) < valid_fraction else "train"


def group_of(lang: str) -> str:
    """Shard group of a language (code is one group, as in BLOOM's mix)."""
    return "code" if lang == "code" or lang.startswith("code-") else lang


def part_prefix(parts_dir: str, group: str, split: str, index: int) -> Path:
    return Path(parts_dir) / group / split / f"part-{index:06d}"


class _Part:
    def __init__(self, prefix: Path, dtype: Any) -> None:
        self.writer = megatron.IndexedDatasetWriter(prefix, dtype)
        self.prefix = prefix
        self.lineage: list[dict[str, Any]] = []
        self.tokens = 0


def tokenize_file(tok: Any, task: dict[str, Any], drops: dict[str, str], parts_dir: str, valid_fraction: float,
                  seed: int) -> dict[str, int]:
    """Tokenize one kept file into partial datasets; returns document and token counts."""
    dtype = megatron.dtype_for_vocab(tok.get_vocab_size())
    parts: dict[tuple[str, str], _Part] = {}
    source, index = task["source"], int(task["index"])
    n_docs = n_tokens = 0
    pf = pq.ParquetFile(task["path"])
    try:
        for batch in pf.iter_batches(batch_size=BATCH, columns=["id", "text", "url", "lang"]):
            rows = [r for r in batch.to_pylist() if doc_key(source, r["id"]) not in drops]
            if not rows:
                continue
            ids = toklib.encode_documents(tok, [r["text"] for r in rows], append_eod=True)
            for row, tokens in zip(rows, ids):
                key = (group_of(row["lang"]), split_of(seed, source, row["id"], valid_fraction))
                part = parts.get(key)
                if part is None:
                    part = parts[key] = _Part(part_prefix(parts_dir, *key, index), dtype)
                if not part.writer.add_document(np.asarray(tokens, dtype=dtype)):
                    continue
                part.lineage.append({"source": source, "id": row["id"], "url": row["url"], "lang": row["lang"],
                                     "tokens": len(tokens), "clearance": task["clearance"],
                                     "permission_record": task.get("record")})
                part.tokens += len(tokens)
                n_docs += 1
                n_tokens += len(tokens)
        for part in parts.values():
            part.writer.finalize()
            outputs.write_table(part.prefix.with_suffix(".lineage.parquet"),
                                pa.Table.from_pylist(part.lineage, schema=LINEAGE_SCHEMA))
    except BaseException:
        for part in parts.values():
            part.writer.abort()
        raise
    done = Path(parts_dir) / "_done" / f"{index:06d}.json"
    done.parent.mkdir(parents=True, exist_ok=True)
    tmp = done.with_name(f".{done.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"path": task["path"], "documents": n_docs, "tokens": n_tokens}))
    os.replace(tmp, done)
    return {"documents": n_docs, "tokens": n_tokens}
