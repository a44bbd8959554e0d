"""CLI commands that run pipelines (`run`); kept apart so catalogue commands start fast."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cmd_run(args: argparse.Namespace) -> int:
    from roots import catalogue, workspace
    from roots.errors import UserError
    from roots.run import print_summary, run_source

    ws = workspace.resolve(getattr(args, "workspace", None))
    if args.all == bool(args.name):
        raise UserError("give one source NAME or --all (not both).")
    if args.all:
        names = [c.name for c in catalogue.load_all(ws) if c.active]
        if not names:
            raise UserError(f"no active sources in {ws.sources_dir}; register one with `roots source add`.")
    else:
        names = [args.name]
    if args.out and len(names) > 1:
        raise UserError("--out names one run directory; use it with a single source, not --all.")
    results = []
    for name in names:
        print(f"running {name} ...", flush=True)
        result = run_source(ws, name, out=Path(args.out) if args.out else None,
                            beam_args=list(getattr(args, "beam_args", [])))
        print(f"  -> {result.out_dir}  ({result.stats['timings']['documents_per_second']} documents/s)", flush=True)
        results.append(result)
    print()
    print_summary(results)
    return 0


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add(sub, "run", cmd_run, "run the per-source pipeline (Beam; runner options after --)")
    p.add_argument("name", nargs="?")
    p.add_argument("--all", action="store_true", help="run every active source")
    p.add_argument("--out", help="output directory (default: runs/NAME in the workspace)")
    p.epilog = "Beam options follow `--`, e.g. `roots run web -- --runner=DirectRunner --direct_num_workers=2`."
