"""What a failed job tells its operator: the cause in one line, the details in a log file.

Why: a full disk during a run ended in a 120-line Beam traceback. Beam wraps a worker's exception in a
`RuntimeError` whose message holds the original text (`OSError: [Errno 28] No space left on device:
'...' [while running 'Process']`) and logs the traceback itself. `roots.core.errors.os_error_of` digs the
operating system's error out of that (the exception chain, else the message), `os_failure` turns it into a
`JobError` that says what ran out and where, and `capture_log` sends the job's log records (Beam's
tracebacks included) to a log file instead of the terminal, so the operator reads one line and knows
where the rest is.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from roots.core.errors import JobError, os_error_of

_ADVICE = {
    errno.ENOSPC: "free space on that filesystem (or point the output elsewhere) and run again",
    errno.EDQUOT: "free space within your quota (or point the output elsewhere) and run again",
    errno.EFBIG: "a file grew past the size this process may write (ulimit -f); raise the limit, run again",
    errno.EACCES: "make the output directory writable for this user and run again",
    errno.EPERM: "make the output directory writable for this user and run again",
    errno.EROFS: "the filesystem is read-only; point the output at a writable one and run again",
    errno.ENOTDIR: "a part of the output path is a file, not a directory; choose another output path",
    errno.EEXIST: "a part of the output path is a file, not a directory; choose another output path",
}


def os_failure(exc: BaseException, what: str, where: Path, log: Path | None = None) -> JobError | None:
    """A JobError saying which system resource failed while `what` wrote under `where`, or None when the
    failure was not the operating system's (the caller re-raises it as it is)."""
    err = os_error_of(exc)
    if err is None or err.errno is None:
        return None
    name = errno.errorcode.get(err.errno, str(err.errno))
    text = err.strerror or os.strerror(err.errno)
    at = f" at {err.filename}" if err.filename else ""
    advice = _ADVICE.get(err.errno, "fix the cause and run again")
    see = f" Details: {log}." if log is not None and log.exists() else ""
    return JobError(f"{what} failed: {text} ({name}){at}, writing under {where}. Nothing was published; "
                    f"an earlier finished result there is still in place. To fix: {advice}.{see}")


class _Quiet(logging.Filter):
    """On the terminal, Beam's own error records (a worker's traceback) are left out: the job reports the
    failure itself, and the log file has the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("apache_beam") and record.levelno >= logging.ERROR)


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


class _LogFile(logging.FileHandler):
    def handleError(self, record: logging.LogRecord) -> None:
        """A log that cannot be written (a full disk) goes silent instead of printing a traceback."""
        self.close()
        logging.getLogger().removeHandler(self)


@contextmanager
def capture_log(path: Path) -> Iterator[Path]:
    """While the block runs, log records of WARNING and up also go to `path` (created with the first one),
    tracebacks included, and the terminal does not show Beam's error records (the job reports its failure
    itself, in one line)."""
    root = logging.getLogger()
    quiet = _Quiet()
    existing = list(root.handlers)
    added: list[logging.Handler] = []
    try:
        path.unlink(missing_ok=True)  # a log left by an earlier run must not pass for this one's
        path.parent.mkdir(parents=True, exist_ok=True)
        log = _LogFile(path, mode="w", encoding="utf-8", delay=True)
        log.setLevel(logging.WARNING)
        log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        added.append(log)
    except OSError:
        pass
    if not existing:  # what logging's last resort would do (warnings to stderr), in one line each
        console = logging.StreamHandler()
        console.setLevel(logging.WARNING)
        console.setFormatter(_OneLine())
        console.addFilter(quiet)
        added.append(console)
    for handler in existing:
        handler.addFilter(quiet)
    for handler in added:
        root.addHandler(handler)
    try:
        yield path
    finally:
        for handler in existing:
            handler.removeFilter(quiet)
        for handler in added:
            root.removeHandler(handler)
            handler.close()
