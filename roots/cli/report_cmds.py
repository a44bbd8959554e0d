"""`roots report` and `roots inspect`: what a run or a release did, as a page or in the terminal.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cmd_report(args: argparse.Namespace) -> int:
    from roots.core import workspace
    from roots.report import page

    ws = workspace.resolve(getattr(args, "workspace", None))
    target = Path(args.dir) if args.dir else ws.path_setting("runs_dir")
    print(f"wrote {page.build_report(target, Path(args.out) if args.out else None)}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from roots.core import workspace
    from roots.governance import catalogue
    from roots.report import inspect

    ws = workspace.resolve(getattr(args, "workspace", None))
    catalogue.load_card(ws, args.name)
    run_dir = ws.path_setting("runs_dir") / args.name
    if not (run_dir / "manifest.json").exists():
        from roots.core.errors import UserError

        raise UserError(f"source {args.name} has no finished run in {run_dir}; "
                        f"run `roots run {args.name}` first.")
    if args.pii:
        from roots.jobs.pii_audit import pii_audit

        print(pii_audit(ws, args.name, args.pii, n=args.n), end="")
        return 0
    print(inspect.inspect_rows(run_dir, reason=args.reason, lang=args.lang, n=args.n), end="")
    return 0


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add(sub, "report", cmd_report,
            "write report.html for a run dir, a runs root or a release (default: runs/)")
    p.add_argument("dir", nargs="?")
    p.add_argument("--out", help="output file (default: DIR/report.html)")
    p = add(sub, "inspect", cmd_inspect,
            "show sample documents of a run with their statistics and thresholds")
    p.add_argument("name")
    p.add_argument("--reason", help="a rejection reason, or kept")
    p.add_argument("--lang")
    p.add_argument("-n", type=int, default=5)
    p.add_argument("--pii", metavar="TAG",
                   help="show this PII tag's replacements in context with the original values "
                        "(terminal only)")
