"""`roots thresholds`: per-language quality thresholds calibrated from clean reference text."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roots.cli.output import table


def _fmt(value: float | None) -> str:
    if value is None:
        return "off"
    return f"{value:g}"


def cmd_thresholds_calibrate(args: argparse.Namespace) -> int:
    from roots.core import workspace
    from roots.jobs.thresholds import calibrate_workspace

    ws = workspace.resolve(getattr(args, "workspace", None))
    cal, record = calibrate_workspace(ws, args.lang, Path(args.corpus), args.keep, write=not args.dry_run,
                                      by=args.by)
    print(f"{args.lang}: {cal.lines} reference lines (sha256 {record['corpus_sha256'][:12]}), keep "
          f"{cal.keep:g}: each bound may reject {cal.tail:.3%} of them")
    rows = [(b.field, b.side, _fmt(b.base), _fmt(b.value), f"p{record['percentile'][b.field]:g}", b.rejected)
            for b in cal.bounds]
    table(("threshold", "side", "before", "calibrated", "percentile", "lines rejected"), rows)
    for name, why in cal.skipped.items():
        print(f"  {name}: not calibrated ({why})")
    print(f"kept {cal.kept} of {cal.lines} reference lines ({cal.kept / cal.lines:.1%}), all bounds together")
    if args.dry_run:
        print("dry run: roots.yaml not changed")
    else:
        print(f"written to {ws.config_path} (thresholds.{args.lang}, provenance in calibration.{args.lang}); "
              "recorded in the audit trail")
    return 0


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("thresholds", help="per-language quality thresholds")
    tsub = parser.add_subparsers(dest="subcommand", metavar="ACTION", required=True)
    p = add(tsub, "calibrate", cmd_thresholds_calibrate,
            "set a language's thresholds from clean reference text, keeping the requested share of it")
    p.add_argument("--lang", required=True, help="language code, e.g. ha")
    p.add_argument("--corpus", required=True, help="clean reference text, one paragraph per line (UTF-8)")
    p.add_argument("--keep", type=float, default=0.98,
                   help="share of reference lines the thresholds must keep (default 0.98)")
    p.add_argument("--dry-run", action="store_true", help="print the thresholds; do not change roots.yaml")
    p.add_argument("--by", help="who calibrates, for the audit trail (default: $ROOTS_ACTOR, else the login "
                                "name)")
