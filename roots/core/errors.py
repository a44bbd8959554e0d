"""Error types that the CLI turns into exit codes instead of tracebacks."""

from __future__ import annotations

import errno
import os
import re


class UserError(Exception):
    """Bad usage or invalid input: the CLI prints the message and exits with status 2.

    The message must say which file, line or field is wrong and what to do about it, because the
    person reading it is a steward or an operator, not a developer.
    """

    exit_code = 2


class JobError(Exception):
    """The job itself failed (a stage crashed, a model is unusable): exit status 1."""

    exit_code = 1


_HINTS = {
    "ENOSPC": "the disk is full: free space there (or point runs_dir/release_dir elsewhere) and run it again",
    "EDQUOT": "the disk quota is used up: free space there and run it again",
    "EROFS": "the file system is read-only: make it writable or write elsewhere",
    "EACCES": "permission denied: check the owner and permissions of that path",
    "EPERM": "operation not permitted: check the owner and permissions of that path",
    "ENOENT": "it does not exist (moved or deleted while roots was running?)",
    "EIO": "the device reported an I/O error: check the disk",
}


# `[Errno 28] No space left on device: 'path'` inside the text of an error a runner re-raised
_ERRNO_TEXT = re.compile(r"\[Errno (\d+)\] ([^:'\]\[]+?)(?:: '([^']*)')?(?: \[|'|\"|$)")


def os_error_of(exc: BaseException) -> OSError | None:
    """The operating system's error behind `exc`: itself, one in its cause/context chain, or one written
    into the message of the error a runner re-raised (Beam wraps a worker's OSError in a RuntimeError, and
    some runners keep only its text across processes). None when the machine is not the cause."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno is not None:
            return cause
        cause = cause.__cause__ or cause.__context__
    match = _ERRNO_TEXT.search(str(exc))
    if match is None:
        return None
    number = int(match.group(1))
    text = match.group(2).strip() or errno.errorcode.get(number, "")
    return OSError(number, text, match.group(3)) if match.group(3) else OSError(number, text)


def environment_error(exc: BaseException) -> str | None:
    """What failed and where, when `exc` is (or wraps) an error of the machine rather than of roots: a full
    disk, a read-only or missing path, a permission (`os_error_of`), with the pipeline step Beam names.
    None for anything else (a bug keeps its traceback)."""
    err = os_error_of(exc)
    if err is None or err.errno is None:
        return None
    step = re.search(r"\[while running '([^']+)'\]", str(exc))
    during = f" (in the pipeline step {step.group(1)!r})" if step else ""
    where = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
    return _environment_message(err.errno, err.strerror or os.strerror(err.errno), where, during)


def _environment_message(number: int, text: str, where: str, during: str = "") -> str:
    name = errno.errorcode.get(number, f"errno {number}")
    hint = _HINTS.get(name)
    return (f"{text} ({name})" + (f": {where}" if where else " (the system named no path)") + during
            + (f"; {hint}" if hint else ""))
