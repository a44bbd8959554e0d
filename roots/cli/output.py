"""What every command prints the same way: tables, and the workspace a command works in."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from roots.core import workspace


def workspace_of(args: argparse.Namespace) -> workspace.Workspace:
    """`--workspace`, else $ROOTS_WORKSPACE, else the current directory."""
    return workspace.resolve(getattr(args, "workspace", None))


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [list(map(str, header))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    if not rows:
        print("(none)")


def common_options() -> argparse.ArgumentParser:
    """The options every command and sub-command accepts (`--workspace`)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workspace", default=argparse.SUPPRESS, metavar="DIR",
                        help="workspace directory (default: $ROOTS_WORKSPACE or the current directory)")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an environment error (disk full, read-only, ...)")
    return common
