"""What an operator sees while a long job runs: one live line on a terminal, periodic plain lines in a log.

Why a line per run and not per file: a source of 5,000 files printed 5,000 lines, none of which said how
far the run was. Here a job describes where it stands as a `Snapshot` (phase, documents, bytes, units of
work done/total) and a `Progress` renders it:

- on a terminal: one line rewritten in place (carriage return), at most a few times a second, ended by a
  newline when the job closes it;
- otherwise (a log file, CI, a pipe): a plain line when the phase changes and every `PLAIN_EVERY` seconds
  within a phase, so a log shows the run is alive without flooding it;
- `--quiet` (`configure(quiet=True)`): nothing.

A watcher thread (`Progress.watch`) polls a snapshot function, so the elapsed time keeps ticking during a
phase that reports nothing itself (tokenizer training, a bucket step). Workers that run in other processes
(Beam's runners) report through small files under the job's temporary directory (`write_report`,
`read_reports`): any runner whose workers share that directory reports the same way.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

PLAIN_EVERY = 30.0  # seconds between plain lines within one phase (not a terminal)
REDRAW_EVERY = 0.25  # seconds between redraws of the live line
POLL_EVERY = 0.5  # seconds between two polls of a watched snapshot function
_QUIET = False


def configure(quiet: bool) -> None:
    """Set by the command line (`--quiet`): every `Progress` made afterwards prints nothing."""
    global _QUIET
    _QUIET = bool(quiet)


def quiet() -> bool:
    return _QUIET


@dataclass
class Snapshot:
    """Where a job stands. Any field may be None when the job does not know it."""

    phase: str
    docs: int | None = None
    docs_total: int | None = None
    bytes: int | None = None
    bytes_total: int | None = None
    units: int | None = None  # e.g. input files done
    units_total: int | None = None
    unit_name: str = "files"


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Renders snapshots of one job (see the module docstring for the three modes)."""

    def __init__(self, label: str, stream: IO[str] | None = None, quiet: bool | None = None,
                 plain_every: float | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = _QUIET if quiet is None else quiet
        self.live = not self.quiet and _isatty(self.stream)
        self.plain_every = PLAIN_EVERY if plain_every is None else plain_every
        self.started = time.monotonic()
        self.phase_started = self.started
        self.last: Snapshot | None = None
        self.last_drawn = 0.0
        self.width = 0
        self.lock = threading.Lock()
        self.closed = False
        self.poll: Callable[[], Snapshot | None] | None = None

    def show(self, snap: Snapshot, force: bool = False) -> None:
        """Render `snap` if it is time to (a new phase always is)."""
        if self.quiet or self.closed:
            return
        with self.lock:
            now = time.monotonic()
            new_phase = self.last is None or snap.phase != self.last.phase
            if new_phase:
                self.phase_started = now
            self.last = snap
            due = now - self.last_drawn >= (REDRAW_EVERY if self.live else self.plain_every)
            if not (force or new_phase or due):
                return
            self.last_drawn = now
            self._draw(self.render(snap, now))

    def phase(self, name: str, **fields: Any) -> None:
        """Enter a phase that has nothing to count (the elapsed time still ticks when watched). The job
        says so itself, so polling stops: a poll of the previous phase must not overwrite it."""
        self.poll = None
        self.show(Snapshot(name, **fields))

    def render(self, snap: Snapshot, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        elapsed = now - self.started
        parts = [f"{self.label}: {snap.phase}"]
        if snap.units_total:
            parts.append(f"{snap.units or 0:,}/{snap.units_total:,} {snap.unit_name}")
        if snap.docs is not None:
            total = f"/{snap.docs_total:,}" if snap.docs_total else ""
            parts.append(f"{snap.docs:,}{total} docs")
        if snap.bytes is not None:
            share = (f" of {human_bytes(snap.bytes_total)} ({100 * snap.bytes / snap.bytes_total:.0f}%)"
                     if snap.bytes_total else "")
            parts.append(f"{human_bytes(snap.bytes)}{share}")
        if snap.docs and elapsed > 0:
            parts.append(f"{snap.docs / elapsed:,.0f} docs/s")
        eta = self._eta(snap, now)
        if eta is not None:
            parts.append(f"ETA {clock(eta)}")
        parts.append(f"{clock(elapsed)} elapsed")
        return " · ".join(parts)

    def _eta(self, snap: Snapshot, now: float) -> float | None:
        """Remaining time of the current phase, from its rate so far (documents if their total is known,
        else bytes, else units)."""
        spent = now - self.phase_started
        for done, total in ((snap.docs, snap.docs_total), (snap.bytes, snap.bytes_total),
                            (snap.units, snap.units_total)):
            if done and total and spent > 1 and done < total:
                return (total - done) * spent / done
        return None

    def _draw(self, line: str) -> None:
        try:
            if self.live:
                pad = max(0, self.width - len(line))
                self.stream.write("\r" + line + " " * pad)
                self.width = len(line)
            else:
                self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not fail the job
            self.quiet = True

    def close(self, final: str | None = None) -> None:
        """Stop polling and end the live line (with `final` in its place, if given)."""
        self.stop()
        if self.quiet or self.closed:
            self.closed = True
            return
        with self.lock:
            self.closed = True
            if final is not None:
                line = f"{self.label}: {final} ({clock(time.monotonic() - self.started)})"
                if self.live:
                    self._draw(line)
                else:
                    self.stream.write(line + "\n")
            if self.live and self.width:
                self.stream.write("\n")
            try:
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def start(self, poll: Callable[[], Snapshot | None] | None = None) -> None:
        """Poll `poll()` (default: none; `self.poll` may be changed per phase) in a background thread until
        `close`; a None snapshot re-shows the last one, so its elapsed time and ETA keep moving."""
        self.poll = poll
        self._stop = threading.Event()
        if self.quiet:
            return

        def loop() -> None:
            while not self._stop.wait(POLL_EVERY):
                poll = self.poll
                try:
                    snap = poll() if poll is not None else None
                except Exception:  # noqa: BLE001 - a report must never fail the job it reports on
                    snap = None
                if self.poll is not poll:  # the job moved on to another phase meanwhile
                    continue
                if snap is not None or self.last is not None:
                    self.show(snap or self.last)

        self._thread = threading.Thread(target=loop, name="roots-progress", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling (the line stays open until `close`)."""
        stop, thread = getattr(self, "_stop", None), getattr(self, "_thread", None)
        if stop is not None:
            stop.set()
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=5)

    @contextmanager
    def watch(self, poll: Callable[[], Snapshot | None]) -> Iterator[None]:
        """`start(poll)` for the duration of the block."""
        self.start(poll)
        try:
            yield
        finally:
            self.stop()


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


REPORTS = "_progress"


def write_report(out_dir: str, step: str, name: str, record: dict[str, Any]) -> None:
    """A worker's report on one unit of work (`out_dir/_progress/<step>/<name>.json`), replaced in one
    rename so a reader never sees half of it."""
    path = Path(out_dir) / REPORTS / step / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)


def read_reports(out_dir: str | Path, step: str) -> list[dict[str, Any]]:
    """Every report of one step so far (a report being replaced is simply read next time)."""
    root = Path(out_dir) / REPORTS / step
    found = []
    try:
        paths = list(root.glob("*.json"))
    except OSError:
        return []
    for path in paths:
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return found


class Throttle:
    """True at most once every `seconds` (workers report their progress this often, not per record)."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds, self.last = seconds, 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self.last >= self.seconds:
            self.last = now
            return True
        return False
