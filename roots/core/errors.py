"""Error types that the CLI turns into exit codes instead of tracebacks."""

from __future__ import annotations


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


def environment_error(exc: BaseException) -> str | None:
    """What failed and where, when `exc` is (or wraps) an error of the machine rather than of roots: a full
    disk, a read-only or missing path, a permission. Beam wraps a worker's OSError in a RuntimeError whose
    cause is the original, and some runners keep only its text (`[Errno 28] ...: 'path'`), so both the
    cause chain and the message are looked at. None for anything else (a bug keeps its traceback)."""
    import errno as errno_mod
    import os
    import re

    step = re.search(r"\[while running '([^']+)'\]", str(exc))
    during = f" (in the pipeline step {step.group(1)!r})" if step else ""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno is not None:
            where = " -> ".join(str(f) for f in (cause.filename, cause.filename2) if f is not None)
            return _environment_message(cause.errno, cause.strerror or os.strerror(cause.errno),
                                        where, during)
        cause = cause.__cause__ or cause.__context__
    match = re.search(r"\[Errno (\d+)\] ([^:'\]\[]+?)(?:: '([^']*)')?(?: \[while|'|\"|$)", str(exc))
    if match is None:
        return None
    number = int(match.group(1))
    return _environment_message(number, match.group(2).strip() or errno_mod.errorcode.get(number, ""),
                                match.group(3) or "", during)


def _environment_message(number: int, text: str, where: str, during: str = "") -> str:
    import errno as errno_mod

    name = errno_mod.errorcode.get(number, f"errno {number}")
    hint = _HINTS.get(name)
    return (f"{text} ({name})" + (f": {where}" if where else " (the system named no path)") + during
            + (f"; {hint}" if hint else ""))
