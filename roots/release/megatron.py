"""Megatron mmap indexed datasets (`.bin` + `.idx`, version 1): writer, merger and reader.

This is the format BLOOM was trained from (`--data-impl mmap`, reference §8.1), and current megatron-core
still reads it unchanged (§8.4), so a corpus built here can be fed to either without conversion.

`.idx` layout, all little-endian:

    0   9       magic b"MMIDIDX\\x00\\x00"
    9   8       version <Q = 1
    17  1       dtype code <B
    18  8       number of sequences <Q
    26  8       len(doc_idx) = documents + 1 <Q
    34  4*len   sizes: int32 tokens per sequence
    ..  8*len   pointers: int64 byte offsets into .bin (exclusive cumulative sum of sizes * itemsize)
    ..  8*docs  doc_idx: int64, 0 first, entry i+1 = first sequence after document i, last = len

`.bin` is the token arrays concatenated with no header. Each document written here is one sequence (no
sentence splitting), so doc_idx is simply 0..n; the reader also accepts sentence-split files.

Both files are written under temporary names and renamed into place, the `.idx` last: a `.idx` at the
final name therefore always describes a complete `.bin`, and a failed or interrupted write leaves neither.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from roots.core import util

if TYPE_CHECKING:  # typing.Self is 3.11+, the package supports 3.10
    from typing import Self

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
HEADER_SIZE = len(MAGIC) + 8 + 1 + 8 + 8  # 34 bytes

# Megatron-DeepSpeed's table (§8.1). Code 7 is `np.double` (float64) there but float32 in megatron-core;
# neither is ever a token dtype, and the writer only accepts the integer codes.
DTYPE_CODES: dict[int, np.dtype] = {
    1: np.dtype(np.uint8),
    2: np.dtype(np.int8),
    3: np.dtype(np.int16),
    4: np.dtype(np.int32),
    5: np.dtype(np.int64),
    6: np.dtype(np.float64),
    7: np.dtype(np.float64),
    8: np.dtype(np.uint16),
}
_INTEGER_CODES: dict[np.dtype, int] = {dt: code for code, dt in DTYPE_CODES.items() if dt.kind in "iu"}

# Larger than the 8 KiB default: shards are written in long sequential runs.
_BUFFER = 1 << 20


def dtype_for_vocab(vocab_size: int) -> type[np.integer]:
    """Megatron's `best_fitting_dtype`: uint16 below 65,500 entries, int32 above (BLOOM: int32, code 4).

    The threshold, not 65,536, is Megatron's; keeping it means our choice matches what its own
    preprocessing would have produced for the same vocabulary.
    """
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    return np.uint16 if vocab_size < 65500 else np.int32


def dtype_code(dtype: np.dtype | type) -> int:
    """The `.idx` code of an integer token dtype; raises for anything a token id cannot be stored as."""
    dt = np.dtype(dtype)
    if dt.str[0] == ">":
        raise ValueError(f"{dt} is big-endian; the format is little-endian")
    try:
        return _INTEGER_CODES[np.dtype(dt.type)]
    except KeyError:
        raise ValueError(f"{dt} is not a Megatron token dtype (one of {sorted(map(str, _INTEGER_CODES))})") \
            from None


def paths(prefix: str | os.PathLike[str]) -> tuple[Path, Path]:
    """`<prefix>.bin` and `<prefix>.idx`; the prefix is what Megatron's `--data-path` takes."""
    p = os.fspath(prefix)
    return Path(p + ".bin"), Path(p + ".idx")


def _index_bytes(code: int, sizes: np.ndarray, doc_idx: np.ndarray, itemsize: int) -> bytes:
    sizes = np.ascontiguousarray(sizes, dtype="<i4")
    pointers = np.zeros(len(sizes), dtype="<i8")
    if len(sizes) > 1:
        # exclusive scan: the bug BigScience PR #68 fixed was an inclusive one here
        np.cumsum(sizes[:-1].astype("<i8") * itemsize, out=pointers[1:])
    doc_idx = np.ascontiguousarray(doc_idx, dtype="<i8")
    header = MAGIC + struct.pack("<Q", VERSION) + struct.pack("<B", code) \
        + struct.pack("<Q", len(sizes)) + struct.pack("<Q", len(doc_idx))
    return header + sizes.tobytes() + pointers.tobytes() + doc_idx.tobytes()


def _publish(bin_tmp: Path, idx_tmp: Path, bin_path: Path, idx_path: Path) -> None:
    """Rename both temporaries into place, `.idx` last, so no final pair is ever inconsistent.

    An old `.idx` is removed first: otherwise a crash between the two renames would pair it with the new
    `.bin`. If the `.idx` rename fails, the freshly renamed `.bin` is removed again. (Two files published
    in this order, so not `util.atomic_path`, which publishes one; the names and renames are util's.)
    """
    idx_path.unlink(missing_ok=True)
    util.commit(bin_tmp, bin_path)
    try:
        util.commit(idx_tmp, idx_path)
    except BaseException:
        bin_path.unlink(missing_ok=True)
        raise


class IndexedDatasetWriter:
    """Write one mmap indexed dataset, one document (one sequence) at a time.

    Use as a context manager: leaving the block normally finalizes, an exception aborts and removes the
    temporaries. Empty documents are skipped, as in Megatron's `preprocess_data.py`: a zero-length sequence
    carries no training signal and some samplers mishandle it.
    """

    def __init__(self, prefix: str | os.PathLike[str], dtype: np.dtype | type = np.int32) -> None:
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.code = dtype_code(self.dtype)
        self._info = np.iinfo(self.dtype)
        self.bin_path, self.idx_path = paths(prefix)
        self.bin_path.parent.mkdir(parents=True, exist_ok=True)
        self._bin_tmp = util.temp_path_for(self.bin_path)
        self._idx_tmp = util.temp_path_for(self.idx_path)
        self._fh: BinaryIO | None = open(self._bin_tmp, "wb", buffering=_BUFFER)  # noqa: SIM115
        self._sizes: list[int] = []
        self.skipped_empty = 0
        self.n_tokens = 0
        self.finalized = False

    def add_document(self, token_ids: Sequence[int] | np.ndarray) -> bool:
        """Append a document; returns False (and writes nothing) for an empty one.

        Ids are range-checked against the dtype because numpy's casts wrap silently, which would turn a
        too-large vocabulary into corrupt training data rather than an error.
        """
        if self._fh is None:
            raise RuntimeError("writer is already finalized or aborted")
        arr = np.asarray(token_ids)
        if arr.ndim != 1:
            raise ValueError(f"a document must be a 1-D sequence of token ids, got shape {arr.shape}")
        if arr.size == 0:
            self.skipped_empty += 1
            return False
        if arr.dtype != self.dtype:
            if arr.dtype.kind not in "iu":
                raise TypeError(f"token ids must be integers, got {arr.dtype}")
            lo, hi = int(arr.min()), int(arr.max())
            if lo < self._info.min or hi > self._info.max:
                raise ValueError(f"token id out of range for {self.dtype}: [{lo}, {hi}]")
            arr = arr.astype(self.dtype)
        if arr.size > np.iinfo(np.int32).max:
            raise ValueError("a sequence longer than 2^31-1 tokens does not fit the int32 sizes field")
        self._fh.write(memoryview(np.ascontiguousarray(arr)).cast("B"))
        self._sizes.append(arr.size)
        self.n_tokens += arr.size
        return True

    def add_documents(self, docs: Iterable[Sequence[int] | np.ndarray]) -> int:
        """Append many documents; returns how many were written (empty ones are skipped)."""
        return sum(self.add_document(doc) for doc in docs)

    def __len__(self) -> int:
        return len(self._sizes)

    def finalize(self) -> tuple[Path, Path]:
        """Write the index and rename both files into place; returns (`.bin`, `.idx`)."""
        if self._fh is None:
            raise RuntimeError("writer is already finalized or aborted")
        try:
            self._fh.close()
            self._fh = None
            sizes = np.asarray(self._sizes, dtype="<i4")
            doc_idx = np.arange(len(sizes) + 1, dtype="<i8")
            with open(self._idx_tmp, "wb") as fh:
                fh.write(_index_bytes(self.code, sizes, doc_idx, self.dtype.itemsize))
            _publish(self._bin_tmp, self._idx_tmp, self.bin_path, self.idx_path)
        except BaseException:
            self.abort()
            raise
        self.finalized = True
        return self.bin_path, self.idx_path

    def abort(self) -> None:
        """Close and delete the temporaries; final files (from an earlier run) are left untouched."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._bin_tmp.unlink(missing_ok=True)
        self._idx_tmp.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.finalize()
        else:
            self.abort()


class IndexedDataset:
    """Read-only view of an mmap indexed dataset, written from the spec independently of the writer.

    `len()` and indexing are over sequences, as in Megatron; with files from `IndexedDatasetWriter` a
    sequence is a document. The header, both file sizes and the index end points are checked on open, so a
    truncated or mismatched pair fails here rather than as garbage tokens during training; `verify=True`
    also checks every pointer and doc_idx entry (a pass over the whole index, in bounded memory).
    """

    def __init__(self, prefix: str | os.PathLike[str], verify: bool = False) -> None:
        self.bin_path, self.idx_path = paths(prefix)
        with open(self.idx_path, "rb") as fh:
            header = fh.read(HEADER_SIZE)
        if len(header) < HEADER_SIZE or header[:9] != MAGIC:
            raise ValueError(f"{self.idx_path}: not an mmap indexed dataset index (bad magic)")
        (version,) = struct.unpack_from("<Q", header, 9)
        if version != VERSION:
            raise ValueError(f"{self.idx_path}: unsupported version {version}")
        (code,) = struct.unpack_from("<B", header, 17)
        if code not in DTYPE_CODES:
            raise ValueError(f"{self.idx_path}: unknown dtype code {code}")
        self.dtype = DTYPE_CODES[code].newbyteorder("<")
        self.dtype_code = code
        n, n_doc = struct.unpack_from("<QQ", header, 18)
        expected = HEADER_SIZE + 4 * n + 8 * n + 8 * n_doc
        actual = self.idx_path.stat().st_size
        if actual != expected:
            raise ValueError(f"{self.idx_path}: {actual} bytes, header implies {expected}")
        self._idx = np.memmap(self.idx_path, dtype=np.uint8, mode="r")
        self.sizes = np.frombuffer(self._idx, dtype="<i4", count=n, offset=HEADER_SIZE)
        self.pointers = np.frombuffer(self._idx, dtype="<i8", count=n, offset=HEADER_SIZE + 4 * n)
        self.doc_idx = np.frombuffer(self._idx, dtype="<i8", count=n_doc, offset=HEADER_SIZE + 12 * n)
        if n_doc < 1 or self.doc_idx[0] != 0 or self.doc_idx[-1] != n:
            raise ValueError(f"{self.idx_path}: doc_idx must run from 0 to the sequence count {n}")
        # O(1) checks, so opening a dataset of hundreds of millions of sequences stays instant
        n_bytes = int(self.pointers[-1]) + int(self.sizes[-1]) * self.dtype.itemsize if n else 0
        if n and self.pointers[0] != 0:
            raise ValueError(f"{self.idx_path}: pointers are not the running sum of sizes")
        bin_size = self.bin_path.stat().st_size
        if bin_size != n_bytes:
            raise ValueError(f"{self.bin_path}: {bin_size} bytes, index describes {n_bytes}")
        if verify:
            self._verify()
        # numpy cannot memory-map an empty file
        self._bin = (np.memmap(self.bin_path, dtype=self.dtype, mode="r") if n_bytes
                     else np.empty(0, self.dtype))

    def _verify(self, chunk: int = 1 << 22) -> None:
        offset = 0
        for lo in range(0, len(self.sizes), chunk):
            sizes = self.sizes[lo:lo + chunk]
            if np.any(sizes < 0):
                raise ValueError(f"{self.idx_path}: negative sequence size")
            starts = (offset
                      + np.concatenate(([0], np.cumsum(sizes[:-1], dtype=np.int64))) * self.dtype.itemsize)
            if not np.array_equal(starts, self.pointers[lo:lo + chunk]):
                raise ValueError(f"{self.idx_path}: pointers are not the running sum of sizes")
            offset = int(starts[-1]) + int(sizes[-1]) * self.dtype.itemsize
        for lo in range(0, len(self.doc_idx), chunk):
            if np.any(np.diff(self.doc_idx[max(lo - 1, 0):lo + chunk]) < 0):
                raise ValueError(f"{self.idx_path}: doc_idx decreases")

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, i: int) -> np.ndarray:
        """Sequence `i` (negative indices count from the end) as a read-only view into `.bin`."""
        n = len(self.sizes)
        if not -n <= i < n:
            raise IndexError(f"sequence {i} out of range for {n} sequences")
        i %= n
        start = int(self.pointers[i]) // self.dtype.itemsize
        return self._bin[start:start + int(self.sizes[i])]

    @property
    def n_documents(self) -> int:
        return len(self.doc_idx) - 1

    def document(self, d: int) -> np.ndarray:
        """All tokens of document `d`: its sequences are contiguous in `.bin`, so this is one view."""
        if not 0 <= d < self.n_documents:
            raise IndexError(f"document {d} out of range for {self.n_documents} documents")
        lo, hi = int(self.doc_idx[d]), int(self.doc_idx[d + 1])
        if hi - lo == 1:
            return self[lo]
        if hi == lo:
            return np.empty(0, self.dtype)
        start = int(self.pointers[lo]) // self.dtype.itemsize
        return self._bin[start:start + int(self.sizes[lo:hi].sum())]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))


def merge_datasets(prefixes: Sequence[str | os.PathLike[str]],
                   out_prefix: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Concatenate partial datasets (e.g. one per worker) in the given order into one dataset.

    Equivalent to Megatron's `tools/merge_preprocessed_data.py`: the `.bin` files are copied as a stream
    and the index is rebuilt, with doc_idx shifted by the sequences before each part (the shift is what
    NVIDIA/Megatron-LM#81 got wrong). The result is byte-identical to writing every document into one
    writer in the same order. All parts must share a dtype.
    """
    if not prefixes:
        raise ValueError("nothing to merge")
    bin_path, idx_path = paths(out_prefix)
    if any(paths(p)[0].resolve() == bin_path.resolve() for p in prefixes):
        raise ValueError("the output prefix must differ from every input prefix")
    parts = [IndexedDataset(p) for p in prefixes]
    dtypes = {part.dtype for part in parts}
    if len(dtypes) != 1:
        raise ValueError(f"cannot merge datasets of different dtypes: {sorted(map(str, dtypes))}")
    dtype = parts[0].dtype
    code = dtype_code(dtype)
    sizes = np.concatenate([part.sizes for part in parts]).astype("<i4")
    doc_idx_parts = [np.zeros(1, dtype="<i8")]
    offset = 0
    for part in parts:
        doc_idx_parts.append(part.doc_idx[1:] + offset)
        offset += len(part)
    doc_idx = np.concatenate(doc_idx_parts)

    bin_path.parent.mkdir(parents=True, exist_ok=True)
    bin_tmp, idx_tmp = util.temp_path_for(bin_path), util.temp_path_for(idx_path)
    try:
        with open(bin_tmp, "wb") as out:
            for part in parts:
                with open(part.bin_path, "rb") as fh:
                    shutil.copyfileobj(fh, out, _BUFFER)
        with open(idx_tmp, "wb") as fh:
            fh.write(_index_bytes(code, sizes, doc_idx, dtype.itemsize))
        _publish(bin_tmp, idx_tmp, bin_path, idx_path)
    finally:
        bin_tmp.unlink(missing_ok=True)
        idx_tmp.unlink(missing_ok=True)
    return bin_path, idx_path



def write_concatenated(out_prefix: str | os.PathLike[str], chunks: Iterable[bytes | memoryview],
                       sizes: np.ndarray, dtype: np.dtype | type, atomic: bool = True) -> tuple[Path, Path]:
    """Write one dataset whose `.bin` is `chunks` (raw little-endian token bytes) in order and whose
    sequences have `sizes` tokens each (one sequence per document).

    The merge's partial outputs hold several languages back to back in one file; this assembles a shard
    from byte ranges of them without an intermediate `.bin/.idx` per part. The result is byte-identical
    to writing the same documents through `IndexedDatasetWriter` in the same order. `atomic=False` writes
    straight to the final names, for a caller that publishes the whole directory atomically itself.
    """
    return write_pieces(out_prefix, [(chunks, sizes)], len(sizes), dtype, atomic)


def write_pieces(out_prefix: str | os.PathLike[str],
                 pieces: Iterable[tuple[Iterable[bytes | memoryview], np.ndarray]],
                 n_sequences: int, dtype: np.dtype | type, atomic: bool = True) -> tuple[Path, Path]:
    """`write_concatenated` from consecutive pieces, each (its token byte chunks, its sequence sizes), with
    the total number of sequences given up front; the same bytes as one call with everything joined.

    Memory is one piece's sizes, not the shard's: knowing the count fixes where each of the `.idx`'s three
    arrays starts, so every piece's sizes, pointers and doc_idx entries are written at their offsets as it
    arrives (a shard of a large language has hundreds of millions of documents).
    """
    dt = np.dtype(dtype).newbyteorder("<")
    code = dtype_code(dt)
    bin_path, idx_path = paths(out_prefix)
    bin_path.parent.mkdir(parents=True, exist_ok=True)
    # atomic=False: no temporaries at all, the caller renames the whole directory into place
    bin_out, idx_out = (util.temp_path_for(bin_path), util.temp_path_for(idx_path)) if atomic \
        else (bin_path, idx_path)
    sizes_at, pointers_at = HEADER_SIZE, HEADER_SIZE + 4 * n_sequences
    doc_idx_at = pointers_at + 8 * n_sequences
    try:
        with open(bin_out, "wb", buffering=_BUFFER) as out, open(idx_out, "wb") as idx:
            idx.write(MAGIC + struct.pack("<QBQQ", VERSION, code, n_sequences, n_sequences + 1))
            idx.flush()
            fd, written, seen, expected = idx.fileno(), 0, 0, 0
            for chunks, piece_sizes in pieces:
                sizes = np.ascontiguousarray(piece_sizes, dtype=np.int64)
                if np.any(sizes <= 0) or np.any(sizes > np.iinfo(np.int32).max):
                    raise ValueError("every sequence must have between 1 and 2^31-1 tokens")
                if seen + len(sizes) > n_sequences:
                    raise ValueError(f"the pieces hold more than the {n_sequences} sequences announced")
                pointers = np.zeros(len(sizes), dtype="<i8")
                np.cumsum(sizes[:-1] * dt.itemsize, out=pointers[1:])  # exclusive scan, as in `_index_bytes`
                os.pwrite(fd, sizes.astype("<i4").tobytes(), sizes_at + 4 * seen)
                os.pwrite(fd, (pointers + expected).tobytes(), pointers_at + 8 * seen)
                os.pwrite(fd, np.arange(seen, seen + len(sizes), dtype="<i8").tobytes(),
                          doc_idx_at + 8 * seen)
                for chunk in chunks:
                    written += out.write(chunk)
                seen += len(sizes)
                expected += int(sizes.sum()) * dt.itemsize
            if written != expected:
                raise ValueError(f"the chunks hold {written} bytes, the sizes describe {expected}")
            if seen != n_sequences:
                raise ValueError(f"the pieces hold {seen} sequences, {n_sequences} were announced")
            os.pwrite(fd, struct.pack("<q", n_sequences), doc_idx_at + 8 * n_sequences)
        if atomic:
            _publish(bin_out, idx_out, bin_path, idx_path)
    except BaseException:
        if not atomic:
            bin_path.unlink(missing_ok=True)
            idx_path.unlink(missing_ok=True)
        raise
    finally:
        if atomic:
            bin_out.unlink(missing_ok=True)
            idx_out.unlink(missing_ok=True)
    return bin_path, idx_path
