"""Compressed inputs: gzip, bzip2, xz and zstd, decompressed as they stream, whatever the file is called.

Why here and not in Beam: Beam's `ReadableFile.open()` hands back a `CompressedFile` for `.gz`/`.bz2`,
which cannot be iterated line by line, and it knows nothing of a compressed file without the extension.
Most real corpora arrive compressed (OSCAR and The Pile as `.jsonl.zst`, Common Crawl WET as `.gz`), so
the readers open the raw bytes and this module recognises the codec by its magic bytes (the extension
only names it in messages) and returns a stream the line readers, `csv` and `TextIOWrapper` can use.

A damaged stream (a truncated download, a flipped byte) fails while it is being read; the caller keeps
the records read before the damage and quarantines the rest with the offsets where reading stopped
(`CORRUPT` lists the exceptions each codec raises for that).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from typing import IO

import zstandard

MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
"""The first bytes of each supported codec's stream."""

EXTENSIONS = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bzip2", ".xz": "xz", ".zst": "zstd", ".zstd": "zstd"}
"""File name endings of compressed files, for matching and messages; the bytes decide."""

CORRUPT: tuple[type[BaseException], ...] = (
    EOFError, OSError, zlib.error, lzma.LZMAError, zstandard.ZstdError)
"""What reading a damaged stream raises (gzip.BadGzipFile and bz2's "Invalid data stream" are OSErrors)."""


def sniff(fh: IO[bytes]) -> str | None:
    """The codec of a seekable binary file from its first bytes, or None for an uncompressed one; the file
    is left at its start."""
    head = fh.read(6)
    fh.seek(0)
    return next((codec for magic, codec in MAGIC if head.startswith(magic)), None)


def open_stream(fh: IO[bytes], codec: str) -> IO[bytes]:
    """A buffered, line-iterable stream of the decompressed bytes of `fh`.

    Concatenated members (`cat a.gz b.gz`, multi-frame zstd as written by parallel compressors) are read
    to the end, as the command-line tools do."""
    if codec == "gzip":
        return gzip.GzipFile(fileobj=fh, mode="rb")
    if codec == "bzip2":
        return bz2.BZ2File(fh, mode="rb")
    if codec == "xz":
        return lzma.LZMAFile(fh, mode="rb")
    if codec == "zstd":
        return io.BufferedReader(_ZstdFrames(fh))
    raise ValueError(f"unknown codec {codec!r}")


class _ZstdFrames(io.RawIOBase):
    """zstd frames one after another, failing on a stream that ends inside a frame.

    `ZstdDecompressor.stream_reader` returns a truncated frame's bytes and stops without a word, so a cut
    download would pass for a complete file; decompression objects say whether their frame ended."""

    def __init__(self, fh: IO[bytes]) -> None:
        super().__init__()
        self._fh, self._dctx = fh, zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._fed = False  # the current frame has received input and not ended
        self._pending, self._pos, self._done = b"", 0, False

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._done:
            chunk = self._fh.read(1 << 16)
            if not chunk:
                if self._fed:
                    raise zstandard.ZstdError("the stream ends inside a frame (truncated file)")
                self._done = True
                break
            out = [self._obj.decompress(chunk)]
            self._fed = True
            while self._obj.eof:  # a frame ended; what follows it starts the next one
                rest = self._obj.unused_data
                self._obj, self._fed = self._dctx.decompressobj(), bool(rest)
                if not rest:
                    break
                out.append(self._obj.decompress(rest))
            self._pending = b"".join(out)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self._pos += n
        return n


def position(stream: IO[bytes], fh: IO[bytes]) -> tuple[int | None, int | None]:
    """(decompressed bytes delivered, compressed bytes consumed) where reading stopped, when known."""
    out: list[int | None] = []
    for f in (stream, fh):
        try:
            out.append(int(f.tell()))
        except (OSError, ValueError, AttributeError):
            out.append(None)
    return out[0], out[1]
