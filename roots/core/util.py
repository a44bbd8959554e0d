"""Small helpers every layer uses: content hashes, atomic file replacement, library versions.

Why here: before, the perplexity stage and two jobs imported the audit trail for its hashing helper,
five modules wrote their own temporary-name-then-rename (now `atomic_path`, or `temp_path_for` + `commit`
for a streaming writer), and three collected library versions their own way. One copy each, at the
bottom of the house, keeps their semantics the same everywhere.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import os
import platform
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from roots import __version__


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def temp_path_for(path: Path) -> Path:
    """A fresh temporary name beside `path`: `.<name>.<pid>.<random>.tmp`, a dot-file that no reader's glob
    matches, unique per call (concurrent writers of the same target never share one). It is not created:
    the writer creates it, with the ordinary permissions any other file of the run gets."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")


def commit(tmp: Path, path: Path, fsync: bool = False) -> None:
    """Move a complete temporary file onto `path` in one rename (readers see the old file or the new one);
    `fsync` first flushes its bytes to disk, for records that must survive a power cut."""
    if fsync:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(tmp, path)


@contextmanager
def atomic_path(path: Path, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary name beside `path` (`temp_path_for`, not yet created); when the block ends
    normally the file written there replaces `path` (`commit`), on any failure it is removed.

    Readers see the old file or the complete new one, never a half-written file, and a killed or failed
    write (disk full included) leaves only a dot-file that no reader looks for. `fsync` flushes the
    bytes to disk before the rename, for records that must survive a power cut (governance, configs).
    Streaming writers that hold the temporary open across calls use `temp_path_for` and `commit`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        yield tmp
        commit(tmp, path, fsync)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomically(path: Path, write: Callable[[Path], object], fsync: bool = False) -> None:
    """Call `write(temporary path)` and move the result into place (see `atomic_path`)."""
    with atomic_path(path, fsync=fsync) as tmp:
        write(tmp)


def library_versions(modules: Iterable[str]) -> dict[str, str | None]:
    """{module: version} of `modules` plus roots and Python: the module's `__version__`, "unknown" for one
    without, None for one that cannot be imported.

    The run manifest, the merge manifest and the LM calibration record the same string for the same library.
    The run's string is part of its configuration hash (`roots.jobs.run.plan`), so this is deliberately the
    rule runs were hashed with: taking the installed distribution's version instead would name fasttext and
    kenlm (which have no `__version__`) and so mark every finished run stale without any library changing.
    """
    out: dict[str, str | None] = {"roots": __version__, "python": platform.python_version()}
    for mod in modules:
        try:
            module = importlib.import_module(mod)
        except ImportError:
            out[mod] = None
            continue
        version = getattr(module, "__version__", None)
        out[mod] = "unknown" if version is None else str(version)
    return out


def interpolate_percentile(table: Mapping[str, Any], pct: float) -> float | None:
    """The value at percentile `pct` of a stored table {"p30": value, ...} (an LM's calibration, a
    classifier's held-out scores), interpolated linearly between the stored points and clamped to the
    outermost ones; None when the table has none. Stored models keep a few points, not every score."""
    points = sorted((float(k[1:]), float(v)) for k, v in table.items() if k.startswith("p"))
    if not points:
        return None
    if pct <= points[0][0]:
        return points[0][1]
    for (p0, v0), (p1, v1) in itertools.pairwise(points):
        if pct <= p1:
            return v0 + (v1 - v0) * (pct - p0) / (p1 - p0)
    return points[-1][1]
