"""Putting finished directories in place so that nothing finished ever disappears, and the locks that keep
a merge from reading runs while they are replaced.

Why a module of its own: a run, a re-threshold, a publication and a merge all end by swapping a complete
temporary directory onto its final name, which takes two renames (the old output aside, the new one in).
A process killed between them used to leave the final name missing for good, the old output under a
hidden `.NAME.old-*` and the new one under a complete `.NAME.tmp-*`. Here the two hidden names share a
token (and the old one carries the swapping process's id), so the next command that looks at the output
(`recover`) knows which temporary directory was about to go in and either finishes the swap (the
temporary directory was complete: it only exists beside an `.old` once it is) or, failing that, puts the
old output back; leftovers are removed.

Locks: `fcntl.flock` on a file in the workspace, so the kernel releases a lock whose process died (no
stale lock to clean by hand); the holder writes its pid into the file, for the message others print.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from roots.core.errors import UserError

TMP_MARK = ".tmp-"
OLD_MARK = ".old-"


def temp_dir_for(final: Path) -> Path:
    """A fresh hidden name beside `final` for the output being built: `.NAME.tmp-TOKEN`."""
    final = Path(final)
    return final.parent / f".{final.name}{TMP_MARK}{uuid.uuid4().hex[:8]}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def swap_into_place(tmp: Path, final: Path) -> None:
    """Move the complete directory `tmp` (named by `temp_dir_for`) onto `final`; an existing `final` is set
    aside first and removed only once the new one is in place. Killed at any point, `recover(final)` finds
    either the new output or the old one in place, never neither."""
    tmp, final = Path(tmp), Path(final)
    token = tmp.name.rpartition(TMP_MARK)[2] or uuid.uuid4().hex[:8]
    old = final.parent / f".{final.name}{OLD_MARK}{token}.{os.getpid()}"
    if final.exists() or final.is_symlink():
        os.replace(final, old)
    os.replace(tmp, final)
    _remove(old)


def recover(final: Path) -> list[str]:
    """Repair a swap of `final` that a killed process left half done; returns what was done (for logs).

    - `final` missing, an `.old` and its complete `.tmp` beside it: the swap is finished (roll forward);
    - `final` missing, an `.old` without its `.tmp`: the old output is put back (roll back);
    - `final` present: any `.old` beside it is a leftover and is removed.
    An `.old` whose process is still alive belongs to a swap in progress and is left alone."""
    final = Path(final)
    done: list[str] = []
    if not final.parent.is_dir():
        return done
    for old in sorted(final.parent.glob(f".{final.name}{OLD_MARK}*")):
        token, _, pid_text = old.name[len(f".{final.name}{OLD_MARK}"):].partition(".")
        pid = int(pid_text) if pid_text.isdigit() else None
        if pid is not None and pid != os.getpid() and pid_alive(pid):
            continue
        if not (final.exists() or final.is_symlink()):
            tmp = final.parent / f".{final.name}{TMP_MARK}{token}"
            if tmp.is_dir():
                os.replace(tmp, final)
                done.append(f"finished the interrupted publication of {final} (from {tmp.name})")
            else:
                os.replace(old, final)
                done.append(f"restored {final} from {old.name} (its replacement was incomplete)")
                continue
        _remove(old)
        done.append(f"removed the leftover {old.name}")
    for line in done:
        print(f"roots: {line}", file=sys.stderr, flush=True)
    return done


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


MERGE_LOCK = ".roots-merge.lock"
"""Held (exclusive) by a merge for its whole length: a second merge is refused."""
RUNS_LOCK = ".roots-runs.lock"
"""Held shared by whatever reads finished runs (a merge, a publication) and exclusively, for the moment of
its swap, by whatever replaces one (a run, a re-threshold): a run is never swapped under a reader."""


def holder(path: Path) -> int | None:
    """The pid the last holder of a lock file wrote, if any."""
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@contextmanager
def flock(path: Path, exclusive: bool, wait_s: float | None = 0.0, what: str = "",
          waiting: str | None = None) -> Iterator[None]:
    """Hold `flock` on `path` for the block; `wait_s` None waits as long as it takes (printing `waiting`
    once), 0 refuses at once (UserError naming the holder's pid and `what`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        deadline = None if wait_s is None else time.monotonic() + wait_s
        said = False
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    pid = holder(path)
                    raise UserError(f"{what} (process {pid if pid is not None else '?'} holds {path}); "
                                    "wait for it to finish or stop it first.") from None
                if waiting and not said:
                    pid = holder(path)
                    print(waiting.format(pid=pid if pid is not None else "?"), file=sys.stderr, flush=True)
                    said = True
                time.sleep(0.05)
        if exclusive:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
