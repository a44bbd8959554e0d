"""Megatron mmap indexed datasets: exact bytes of the format, round trips, merging, atomicity, and a
cross-check against megatron-core's own reader and writer when it is installed."""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roots.release import megatron
from roots.release.megatron import (
    IndexedDataset,
    IndexedDatasetWriter,
    dtype_for_vocab,
    merge_datasets,
)

# the three documents of the reference's megatron-core check (§8.4), each ending in </s> = 2
DOCS = [[5, 6, 7, 2], [250679, 9, 2], [1, 2]]


def write(prefix: Path, docs: list[list[int]], dtype: type = np.int32) -> IndexedDatasetWriter:
    with IndexedDatasetWriter(prefix, dtype) as w:
        for doc in docs:
            w.add_document(doc)
    return w


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_round_trip(tmp_path: Path) -> None:
    w = write(tmp_path / "ds", DOCS)
    assert len(w) == 3 and w.n_tokens == 9
    ds = IndexedDataset(tmp_path / "ds")
    assert len(ds) == 3 and ds.n_documents == 3
    assert [d.tolist() for d in ds] == DOCS
    assert ds[-1].tolist() == [1, 2] and ds.document(1).tolist() == DOCS[1]
    assert ds[0].dtype == np.int32
    with pytest.raises(IndexError):
        ds[3]
    assert files_in(tmp_path) == ["ds.bin", "ds.idx"]  # no temporaries left behind


def test_idx_bytes_follow_the_spec(tmp_path: Path) -> None:
    """Parse the files with struct/frombuffer only, independently of the module's reader (§8.1)."""
    write(tmp_path / "ds", DOCS)
    idx = (tmp_path / "ds.idx").read_bytes()
    assert len(idx) == 102 == 34 + 3 * 4 + 3 * 8 + 4 * 8  # the size megatron-core's check reported
    assert idx[:9] == b"MMIDIDX\x00\x00"
    assert idx[9:17] == b"\x01" + b"\x00" * 7  # version 1, <Q
    assert idx[17] == 4  # int32
    assert struct.unpack("<QQ", idx[18:34]) == (3, 4)
    sizes = np.frombuffer(idx, dtype="<i4", count=3, offset=34)
    pointers = np.frombuffer(idx, dtype="<i8", count=3, offset=34 + 12)
    doc_idx = np.frombuffer(idx, dtype="<i8", count=4, offset=34 + 12 + 24)
    assert sizes.tolist() == [4, 3, 2]
    assert pointers.tolist() == [0, 16, 28]  # exclusive running sum of sizes * 4 bytes
    assert doc_idx.tolist() == [0, 1, 2, 3]
    assert (tmp_path / "ds.bin").read_bytes() == np.concatenate(DOCS).astype("<i4").tobytes()


def test_uint16_files(tmp_path: Path) -> None:
    docs = [[0, 65535, 7], [300]]
    write(tmp_path / "small", docs, np.uint16)
    idx = (tmp_path / "small.idx").read_bytes()
    assert idx[17] == 8
    assert np.frombuffer(idx, dtype="<i8", count=2, offset=34 + 8).tolist() == [0, 6]  # 2-byte items
    assert (tmp_path / "small.bin").stat().st_size == 8
    ds = IndexedDataset(tmp_path / "small")
    assert ds.dtype == np.uint16 and [d.tolist() for d in ds] == docs


def test_dtype_choice_and_codes() -> None:
    assert dtype_for_vocab(2000) is np.uint16
    assert dtype_for_vocab(65499) is np.uint16
    assert dtype_for_vocab(65500) is np.int32  # Megatron's threshold, not 65,536
    assert dtype_for_vocab(250_680) is np.int32
    expected = {np.uint8: 1, np.int8: 2, np.int16: 3, np.int32: 4, np.int64: 5, np.uint16: 8}
    assert {t: megatron.dtype_code(t) for t in expected} == expected
    assert megatron.DTYPE_CODES[6] == np.float64 and megatron.DTYPE_CODES[7] == np.float64
    for bad in (np.float32, np.float64, np.uint32, np.uint64, np.dtype(">i4")):
        with pytest.raises(ValueError):
            megatron.dtype_code(bad)


def test_ids_are_range_checked(tmp_path: Path) -> None:
    """numpy casts wrap silently; a vocabulary too big for uint16 must fail, not corrupt the data."""
    with IndexedDatasetWriter(tmp_path / "u16", np.uint16) as w:
        with pytest.raises(ValueError):
            w.add_document([1, 65536])
        with pytest.raises(ValueError):
            w.add_document(np.array([-1, 3]))
        with pytest.raises(TypeError):
            w.add_document(np.array([1.0, 2.0]))
        with pytest.raises(ValueError):
            w.add_document([[1, 2]])
        w.add_document(np.array([65535], dtype=np.int64))
    assert [d.tolist() for d in IndexedDataset(tmp_path / "u16")] == [[65535]]


def test_empty_documents_are_skipped(tmp_path: Path) -> None:
    w = write(tmp_path / "ds", [[1, 2], [], [3]])
    assert w.skipped_empty == 1
    ds = IndexedDataset(tmp_path / "ds")
    assert [d.tolist() for d in ds] == [[1, 2], [3]] and ds.doc_idx.tolist() == [0, 1, 2]


def test_empty_dataset(tmp_path: Path) -> None:
    write(tmp_path / "none", [])
    assert (tmp_path / "none.bin").stat().st_size == 0
    ds = IndexedDataset(tmp_path / "none")
    assert len(ds) == 0 and ds.doc_idx.tolist() == [0]


def test_merge_equals_single_write(tmp_path: Path) -> None:
    docs = [[i, i + 1, 2] for i in range(10, 30)] + [[7] * 1000]
    write(tmp_path / "p0", docs[:7])
    write(tmp_path / "p1", [])  # a worker that got no documents
    write(tmp_path / "p2", docs[7:])
    write(tmp_path / "whole", docs)
    merge_datasets([tmp_path / "p0", tmp_path / "p1", tmp_path / "p2"], tmp_path / "merged")
    for ext in ("bin", "idx"):
        assert (tmp_path / f"merged.{ext}").read_bytes() == (tmp_path / f"whole.{ext}").read_bytes()
    assert [d.tolist() for d in IndexedDataset(tmp_path / "merged")] == docs
    assert not [n for n in files_in(tmp_path) if n.endswith(".tmp")]


def test_merge_rejects_mixed_dtypes_and_self(tmp_path: Path) -> None:
    write(tmp_path / "a", [[1]], np.int32)
    write(tmp_path / "b", [[1]], np.uint16)
    with pytest.raises(ValueError, match="dtype"):
        merge_datasets([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    with pytest.raises(ValueError):
        merge_datasets([tmp_path / "a"], tmp_path / "a")
    with pytest.raises(ValueError):
        merge_datasets([], tmp_path / "out")
    assert not (tmp_path / "out.idx").exists() and not (tmp_path / "out.bin").exists()


def test_failure_mid_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), IndexedDatasetWriter(tmp_path / "ds", np.int32) as w:
        w.add_document([1, 2, 3])
        raise RuntimeError("boom")
    assert files_in(tmp_path) == []


def test_failure_while_publishing_leaves_no_final_pair(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Even when the .idx rename itself fails, and even over files from an earlier run, no final .bin or
    .idx is left: a stale .idx paired with a new .bin would silently misread tokens."""
    write(tmp_path / "ds", [[9, 9, 9, 9]])  # an earlier run
    real_replace = os.replace

    def failing_replace(src: os.PathLike[str], dst: os.PathLike[str]) -> None:
        if str(dst).endswith(".idx"):
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(megatron.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write(tmp_path / "ds", DOCS)
    assert files_in(tmp_path) == []


def test_reader_rejects_damaged_files(tmp_path: Path) -> None:
    write(tmp_path / "ds", DOCS)
    bin_bytes, idx_bytes = (tmp_path / "ds.bin").read_bytes(), (tmp_path / "ds.idx").read_bytes()
    (tmp_path / "ds.bin").write_bytes(bin_bytes[:-4])
    with pytest.raises(ValueError, match="bytes"):
        IndexedDataset(tmp_path / "ds")
    (tmp_path / "ds.bin").write_bytes(bin_bytes)
    (tmp_path / "ds.idx").write_bytes(idx_bytes[:-8])
    with pytest.raises(ValueError, match="bytes"):
        IndexedDataset(tmp_path / "ds")
    (tmp_path / "ds.idx").write_bytes(b"TNTIDX\x00\x00" + idx_bytes[8:])
    with pytest.raises(ValueError, match="magic"):
        IndexedDataset(tmp_path / "ds")
    bad_pointers = bytearray(idx_bytes)
    bad_pointers[34 + 12 + 8] = 20  # second pointer 16 -> 20: only a full check sees it
    (tmp_path / "ds.idx").write_bytes(bytes(bad_pointers))
    assert IndexedDataset(tmp_path / "ds")[0].tolist() == DOCS[0]
    with pytest.raises(ValueError, match="pointers"):
        IndexedDataset(tmp_path / "ds", verify=True)
    bad_last = bytearray(idx_bytes)
    bad_last[34 + 12 + 16] = 24  # last pointer 28 -> 24 no longer ends at the end of .bin
    (tmp_path / "ds.idx").write_bytes(bytes(bad_last))
    with pytest.raises(ValueError, match="bytes"):
        IndexedDataset(tmp_path / "ds")
    bad_doc_idx = bytearray(idx_bytes)
    bad_doc_idx[34 + 12 + 24 + 8] = 3  # doc_idx [0, 3, 2, 3]
    (tmp_path / "ds.idx").write_bytes(bytes(bad_doc_idx))
    IndexedDataset(tmp_path / "ds")
    with pytest.raises(ValueError, match="doc_idx"):
        IndexedDataset(tmp_path / "ds", verify=True)


def test_reader_handles_sentence_split_files(tmp_path: Path) -> None:
    """Files from `preprocess_data.py --split-sentences` have several sequences per document."""
    seqs = [[1, 2], [3], [4, 5, 6], [7]]
    sizes = np.array([len(s) for s in seqs], dtype="<i4")
    pointers = np.array([0, 8, 12, 24], dtype="<i8")
    doc_idx = np.array([0, 2, 3, 4], dtype="<i8")  # documents: [1,2,3], [4,5,6], [7]
    header = b"MMIDIDX\x00\x00" + struct.pack("<QBQQ", 1, 4, 4, 4)
    (tmp_path / "s.idx").write_bytes(header + sizes.tobytes() + pointers.tobytes() + doc_idx.tobytes())
    (tmp_path / "s.bin").write_bytes(np.concatenate(seqs).astype("<i4").tobytes())
    ds = IndexedDataset(tmp_path / "s")
    assert len(ds) == 4 and ds.n_documents == 3
    assert [ds.document(d).tolist() for d in range(3)] == [[1, 2, 3], [4, 5, 6], [7]]


doc_lists = st.lists(st.lists(st.integers(0, 250_679), min_size=0, max_size=40), max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=doc_lists, cut=st.integers(0, 25))
def test_property_round_trip_and_merge(tmp_path_factory: pytest.TempPathFactory, docs: list[list[int]],
                                       cut: int) -> None:
    d = tmp_path_factory.mktemp("prop")
    write(d / "whole", docs)
    write(d / "a", docs[:cut])
    write(d / "b", docs[cut:])
    merge_datasets([d / "a", d / "b"], d / "merged")
    kept = [doc for doc in docs if doc]
    assert [x.tolist() for x in IndexedDataset(d / "merged", verify=True)] == kept
    for ext in ("bin", "idx"):
        assert (d / f"merged.{ext}").read_bytes() == (d / f"whole.{ext}").read_bytes()


# --- megatron-core cross-check (optional: it needs torch) ---------------------------------------------


@pytest.fixture(scope="module")
def mcore():  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Transformer Engine and Apex are not installed"
        # ImportError too, not only ModuleNotFoundError: megatron-core fails that way without a usable torch
        return pytest.importorskip("megatron.core.datasets.indexed_dataset", exc_type=ImportError,
                                   reason="megatron-core (and torch) not installed")


def test_megatron_core_reads_our_files(tmp_path: Path, mcore) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path / "ds", DOCS)
    ds = mcore.IndexedDataset(str(tmp_path / "ds"))
    assert len(ds) == 3
    assert [ds[i].tolist() for i in range(3)] == DOCS
    assert ds.document_indices.tolist() == [0, 1, 2, 3]
    assert ds.sequence_lengths.tolist() == [4, 3, 2]
    assert ds.index.dtype == np.int32
    assert mcore.DType.optimal_dtype(65499) == dtype_for_vocab(65499)
    assert mcore.DType.optimal_dtype(65500) == dtype_for_vocab(65500)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch tensor __array__ in mcore
def test_megatron_core_writes_the_same_bytes(tmp_path: Path, mcore) -> None:  # type: ignore[no-untyped-def]
    import torch

    docs = DOCS + [[3, 4], [65000, 1, 1, 2]]
    for dtype in (np.int32, np.uint16):
        clipped = [[min(t, 65535) for t in doc] for doc in docs]
        write(tmp_path / "ours", clipped, dtype)
        builder = mcore.IndexedDatasetBuilder(str(tmp_path / "theirs.bin"), dtype=dtype)
        for doc in clipped:
            builder.add_document(torch.tensor(doc), [len(doc)])
        builder.finalize(str(tmp_path / "theirs.idx"))
        for ext in ("bin", "idx"):
            assert (tmp_path / f"ours.{ext}").read_bytes() == (tmp_path / f"theirs.{ext}").read_bytes()

    # megatron-core's merge (add_index) agrees with ours
    write(tmp_path / "p0", docs[:2])
    write(tmp_path / "p1", docs[2:])
    merge_datasets([tmp_path / "p0", tmp_path / "p1"], tmp_path / "ours_merged")
    builder = mcore.IndexedDatasetBuilder(str(tmp_path / "theirs_merged.bin"), dtype=np.int32)
    builder.add_index(str(tmp_path / "p0"))
    builder.add_index(str(tmp_path / "p1"))
    builder.finalize(str(tmp_path / "theirs_merged.idx"))
    for ext in ("bin", "idx"):
        assert ((tmp_path / f"ours_merged.{ext}").read_bytes()
                == (tmp_path / f"theirs_merged.{ext}").read_bytes())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch tensor __array__ in mcore
def test_we_read_megatron_core_sentence_files(tmp_path: Path, mcore) -> None:  # type: ignore[no-untyped-def]
    import torch

    builder = mcore.IndexedDatasetBuilder(str(tmp_path / "mc.bin"), dtype=np.int32)
    builder.add_document(torch.tensor([1, 2, 3, 4, 5]), [2, 3])
    builder.add_document(torch.tensor([6, 2]), [2])
    builder.finalize(str(tmp_path / "mc.idx"))
    ds = IndexedDataset(tmp_path / "mc")
    assert [s.tolist() for s in ds] == [[1, 2], [3, 4, 5], [6, 2]]
    assert ds.doc_idx.tolist() == [0, 2, 3]
    assert ds.document(0).tolist() == [1, 2, 3, 4, 5]
