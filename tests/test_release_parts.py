"""The merge's shard writer: per-file partial outputs assembled into shards equal to a reference writer's."""

from __future__ import annotations

import json
import stat
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from roots.core import schema, util
from roots.jobs import merge
from roots.release import megatron, parts
from roots.release import tokenizer as toklib
from tests.conftest import udhr_paragraphs

SEED, VALID = 42, 0.3


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two kept-like files mixing languages, code, an empty document, a null URL and a dropped document."""
    en, fr = udhr_paragraphs("en", 8), udhr_paragraphs("fr", 5)
    tok = toklib.train_tokenizer(en + fr + ["def f(x):\n    return x  # </s>\n"], vocab_size=600)
    root = tmp_path_factory.mktemp("release_parts")
    docs = [[{"id": f"en{i}", "text": t, "url": f"https://e.example/{i}", "lang": "en"}
             for i, t in enumerate(en)]
            + [{"id": "code0", "text": "def f(x):\n    return x  # </s>\n", "url": None,
                "lang": "code-python"},
               {"id": "empty", "text": "", "url": "https://e.example/empty", "lang": "en"}],
            [{"id": f"fr{i}", "text": t, "url": f"https://f.example/{i}", "lang": "fr"}
             for i, t in enumerate(fr)]
            + [{"id": "gone", "text": en[0], "url": "https://e.example/gone", "lang": "en"}]]
    tasks = []
    for i, rows in enumerate(docs):
        path = root / f"kept-{i}.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
        tasks.append({"index": i, "source": "src", "path": str(path), "clearance": "licence policy (CC0-1.0)",
                      "record": None})
    return tok, tasks, docs, {schema.doc_key("src", "gone"): "takedown"}


def build(tok, tasks, drops, root: Path) -> Path:
    for task in tasks:
        parts.tokenize_file(tok, task, drops, str(root / "_parts"), VALID, SEED)
    merge.assemble(root / "_parts", root / "out", len(tasks))
    return root / "out"


def snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_shards_equal_a_document_at_a_time_writer(corpus, tmp_path):
    tok, tasks, docs, drops = corpus
    out = build(tok, tasks, drops, tmp_path)
    expected: dict[str, list[dict]] = defaultdict(list)
    for task, rows in zip(tasks, docs):
        for row in rows:
            ids = toklib.encode_document(tok, row["text"])  # "</s>" in text stays text
            if schema.doc_key("src", row["id"]) in drops or not ids:
                continue
            split = parts.split_of(SEED, "src", row["id"], VALID)
            name = f"{parts.group_of(row['lang'])}_{'text' if split == 'train' else 'valid_text'}_document"
            expected[name].append({**row, "ids": ids, "clearance": task["clearance"]})
    assert {"en_text_document", "fr_text_document", "code_text_document"} <= set(expected)
    assert sorted(p.stem for p in (out / "lineage").glob("*.parquet")) == sorted(expected)
    for name, rows in expected.items():
        ref = tmp_path / "ref" / name
        with megatron.IndexedDatasetWriter(ref, megatron.dtype_for_vocab(tok.get_vocab_size())) as w:
            w.add_documents(r["ids"] for r in rows)
        for suffix in (".bin", ".idx"):
            assert ((out / "shards" / f"{name}{suffix}").read_bytes()
                    == Path(f"{ref}{suffix}").read_bytes()), name
        lineage = pq.read_table(out / "lineage" / f"{name}.parquet")
        assert lineage.schema.names == ["document_index", *parts.LINEAGE_SCHEMA.names]
        assert lineage.to_pylist() == [
            {"document_index": i, "source": "src", "id": r["id"], "url": r["url"], "lang": r["lang"],
             "tokens": len(r["ids"]), "clearance": r["clearance"], "permission_record": None}
            for i, r in enumerate(rows)]


def test_segments_and_batches_do_not_change_the_release(corpus, tmp_path, monkeypatch):
    tok, tasks, _, drops = corpus
    whole = snapshot(build(tok, tasks, drops, tmp_path / "whole"))
    monkeypatch.setattr(parts, "BATCH", 2)
    monkeypatch.setattr(parts, "SEGMENT_TOKENS", 1)  # a segment per batch
    split = build(tok, tasks, drops, tmp_path / "split")
    done = json.loads((tmp_path / "split" / "_parts" / "_done" / "000000.json").read_text())
    assert len(done["segments"]) > 2 and done["cpu_s"] >= 0
    assert snapshot(split) == whole
    timings = merge.shard_writing_timings(tmp_path / "split" / "_parts", 0.5)
    assert timings["shard_writing_cpu_s"] == pytest.approx(timings["shard_tokenize_cpu_s"] + 0.5, abs=1e-3)


def test_streamed_lineage_and_index_equal_whole_table_writes(corpus, tmp_path, monkeypatch):
    """Lineage streamed in row groups equals `pq.write_table` of the whole table with those row groups,
    and an `.idx` written piece by piece equals one written from all sizes at once."""
    tok, tasks, _, drops = corpus
    monkeypatch.setattr(merge, "LINEAGE_ROW_GROUP", 3)
    monkeypatch.setattr(merge, "COPY_BLOCK", 5)  # token ranges copied in several reads
    monkeypatch.setattr(parts, "BATCH", 2)
    monkeypatch.setattr(parts, "SEGMENT_TOKENS", 1)  # a segment per two documents: many pieces per shard
    out = build(tok, tasks, drops, tmp_path / "streamed")
    for path in sorted((out / "lineage").glob("*.parquet")):
        table = pq.read_table(path)
        assert pq.ParquetFile(path).metadata.num_row_groups == -(-table.num_rows // 3)
        pq.write_table(table, tmp_path / "ref.parquet", compression="zstd", write_statistics=True,
                       row_group_size=3)
        assert path.read_bytes() == (tmp_path / "ref.parquet").read_bytes(), path.name
        prefix = out / "shards" / path.stem
        whole = megatron.IndexedDataset(prefix, verify=True)
        sizes = table.column("tokens").to_numpy()
        megatron.write_concatenated(tmp_path / "ref", [Path(f"{prefix}.bin").read_bytes()], sizes,
                                    whole.dtype)
        assert Path(f"{prefix}.idx").read_bytes() == (tmp_path / "ref.idx").read_bytes(), path.name


def test_write_pieces_checks_the_announced_count(tmp_path):
    raw = memoryview(np.arange(1, 8, dtype="<u2")).cast("B")
    megatron.write_pieces(tmp_path / "a", [([raw[:6]], np.array([3])), ([raw[6:]], np.array([4]))], 2,
                          np.uint16)
    megatron.write_concatenated(tmp_path / "b", [raw], np.array([3, 4]), np.uint16)
    assert (tmp_path / "a.idx").read_bytes() == (tmp_path / "b.idx").read_bytes()
    with pytest.raises(ValueError, match="3 were announced"):
        megatron.write_pieces(tmp_path / "c", [([raw], np.array([3, 4]))], 3, np.uint16)
    with pytest.raises(ValueError, match="more than the 1 sequences"):
        megatron.write_pieces(tmp_path / "d", [([raw], np.array([3, 4]))], 1, np.uint16)
    assert (not list(tmp_path.glob("c*")) and not list(tmp_path.glob("d*"))
            and not list(tmp_path.glob(".[cd]*")))


def test_word_cache_copy_encodes_identically(corpus):
    tok, _, docs, _ = corpus
    cached = toklib.with_word_cache(tok, 50_000)
    assert cached is not tok and cached.to_str() == tok.to_str()
    texts = [r["text"] for rows in docs for r in rows] + ["<s> literal </s> markers", "ünïcödé ✓ 表"]
    arrays = toklib.encode_arrays(cached, texts, np.uint16)
    assert [a.tolist() for a in arrays] == toklib.encode_documents(tok, texts)
    assert all(a.dtype == np.uint16 for a in arrays) and arrays[texts.index("")].size == 0


def test_write_concatenated_checks_sizes(tmp_path):
    data = np.arange(1, 8, dtype="<u2")
    raw = memoryview(data).cast("B")
    megatron.write_concatenated(tmp_path / "a", [raw[:6], raw[6:]], np.array([3, 4]), np.uint16)
    ds = megatron.IndexedDataset(tmp_path / "a", verify=True)
    assert [x.tolist() for x in ds] == [[1, 2, 3], [4, 5, 6, 7]]
    with pytest.raises(ValueError, match="chunks hold"):
        megatron.write_concatenated(tmp_path / "b", [raw], np.array([3, 3]), np.uint16)
    assert not list(tmp_path.glob("b*")) and not list(tmp_path.glob(".b*"))
    with pytest.raises(ValueError, match="chunks hold"):
        megatron.write_concatenated(tmp_path / "c", [raw], np.array([3, 3]), np.uint16, atomic=False)
    assert not list(tmp_path.glob("c*"))


@pytest.mark.parametrize("fsync", [False, True])
def test_atomic_path_leaves_nothing_behind_when_the_write_raises(tmp_path, fsync):
    """A failed write (after creating and half-filling the temporary, or before creating it) leaves no file
    beside the target and an earlier target untouched; a successful one leaves only the target, with the
    ordinary permissions of any other file (not mkstemp's private 0600)."""
    target = tmp_path / "sub" / "shard.bin"
    with pytest.raises(RuntimeError, match="half-written"), util.atomic_path(target, fsync=fsync) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("half-written")
    assert list(tmp_path.rglob("*")) == [tmp_path / "sub"]

    def fail(tmp: Path) -> None:
        raise OSError("disk full")  # before the temporary exists

    target.write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"):
        util.write_atomically(target, fail, fsync=fsync)
    assert sorted(p.name for p in target.parent.iterdir()) == ["shard.bin"] and target.read_bytes() == b"old"

    util.write_atomically(target, lambda tmp: tmp.write_bytes(b"new"), fsync=fsync)
    assert sorted(p.name for p in target.parent.iterdir()) == ["shard.bin"] and target.read_bytes() == b"new"
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_temporary_names_are_unique_dot_files_beside_the_target(tmp_path):
    names = {util.temp_path_for(tmp_path / "a.parquet") for _ in range(1000)}
    assert len(names) == 1000
    assert all(n.parent == tmp_path and n.name.startswith(".a.parquet.") and n.suffix == ".tmp"
               for n in names)
    assert not list(tmp_path.iterdir())  # names only: nothing is created
