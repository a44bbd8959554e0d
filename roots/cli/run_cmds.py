"""`roots run` and `roots status`: per-source pipeline runs and where each source stands.

Heavy modules (Beam, the stages) are imported inside the commands so that other commands start fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roots.cli.output import table


def cmd_run(args: argparse.Namespace) -> int:
    from roots.core import progress, workspace
    from roots.core.errors import UserError
    from roots.governance import catalogue

    ws = workspace.resolve(getattr(args, "workspace", None))
    progress.configure(args.quiet)
    if args.all == bool(args.name):
        raise UserError("give one source NAME or --all (not both).")
    if args.all:
        names = [c.name for c in catalogue.load_all(ws) if c.active]
        if not names:
            raise UserError(f"no active sources in {ws.sources_dir}; register one with `roots source add`.")
    else:
        names = [args.name]
        catalogue.load_card(ws, args.name)
    ws.settings()  # a bad card or roots.yaml (a YAML bomb...) is refused before the heavy imports below
    from roots.jobs.run import RunResult, default_threshold_warnings, execute, plan, print_summary, up_to_date

    if args.out and len(names) > 1:
        raise UserError("--out names one run directory; use it with a single source, not --all.")
    results = []
    if args.rethreshold:
        from roots.jobs.rethreshold import rethreshold

        if args.out:
            raise UserError("--rethreshold rewrites the source's run in place; it does not take --out.")
        for name in names:
            print(f"re-thresholding {name} from its stored statistics ...", flush=True)
            results.append(rethreshold(ws, name))
            print(f"  {results[-1].stats['rethreshold']['changed']} document(s) changed outcome", flush=True)
        print()
        print_summary(results)
        return 0
    for name in names:
        p = plan(ws, name, out=Path(args.out) if args.out else None)
        for warning in default_threshold_warnings(p.card, p.cfg):
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        if args.all and not args.force and up_to_date(p):
            import json

            print(f"{name}: up to date (same input fingerprint and configuration); skipped. "
                  "--force reruns it.")
            results.append(RunResult(name, p.final, json.loads((p.final / "stats.json").read_text())))
            continue
        print(f"running {name} ...", flush=True)
        result = execute(p, ws, beam_args=list(getattr(args, "beam_args", [])))
        print(f"  -> {result.out_dir}  ({result.stats['timings']['documents_per_second']} documents/s)",
              flush=True)
        results.append(result)
    print()
    print_summary(results)
    return 0


def source_state(ws: Any, card: Any) -> tuple[str, str]:
    """(state, detail) of one source's run, as `roots status` prints it."""
    from roots.core.errors import UserError
    from roots.jobs.run import (
        failure_record,
        finished_manifest,
        in_flight,
        incremental_base,
        plan,
        settings_changed,
        up_to_date,
    )

    if not card.active:
        return "killed", card.killed_reason or ""
    final = ws.path_setting("runs_dir") / card.name
    flights = in_flight(final)
    if any(alive for _, _, alive in flights):
        pid = next(pid for _, pid, alive in flights if alive)
        return "running", f"process {pid}"
    manifest = finished_manifest(final)
    failure = failure_record(final)
    if failure is not None:
        earlier = (f"; the run finished {manifest['finished']} is still in place" if manifest is not None
                   else "")
        log = f"; log: {failure['log']}" if failure.get("log") and Path(failure["log"]).exists() else ""
        return "failed", (f"{failure.get('failed', '?')}: {failure.get('error', 'unknown error')}{earlier}"
                          f"{log}; `roots run {card.name}` runs it again")
    failed = "; an interrupted run left a temporary directory (the next run removes it)" if flights else ""
    if manifest is None:
        return ("failed" if flights else "not run"), failed.lstrip("; ")
    try:
        planned = plan(ws, card.name)
    except UserError as exc:
        return "finished", f"{manifest['finished']}, but the source cannot be planned now: {exc}"
    docs = manifest.get("documents", {})
    detail = (f"{manifest['finished']}, fingerprint {manifest['input']['fingerprint'][:12]}, "
              f"kept {docs.get('kept')}/{docs.get('input')}{failed}")
    if up_to_date(planned):
        return "finished", detail
    why = []
    if manifest["input"].get("fingerprint") != planned.fingerprint:
        why.append("input gained files (the next run reads only those)" if incremental_base(planned)
                   else "input changed")
    if manifest.get("config_hash") != planned.config_hash:
        why.append("configuration changed")
    why += settings_changed(planned, manifest)
    return "stale", f"{detail}; {', '.join(why)}"


def cmd_status(args: argparse.Namespace) -> int:
    from roots.core import workspace
    from roots.governance import catalogue

    ws = workspace.resolve(getattr(args, "workspace", None))
    rows = [(card.name, *source_state(ws, card)) for card in catalogue.load_all(ws)]
    table(("source", "state", "detail"), rows)
    return 0


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add(sub, "run", cmd_run, "run the per-source pipeline (Beam; runner options after --)")
    p.add_argument("name", nargs="?")
    p.add_argument("--all", action="store_true", help="run every active source")
    p.add_argument("--out", help="output directory (default: runs/NAME in the workspace)")
    p.add_argument("--force", action="store_true", help="with --all: rerun sources that are up to date")
    p.add_argument("--quiet", action="store_true",
                   help="no progress line (the summary table is still printed)")
    p.add_argument("--rethreshold", action="store_true",
                   help="re-apply the current thresholds to the stored statistics of the last run "
                        "(no models)")
    p.epilog = ("Beam options follow `--`, e.g. "
                "`roots run web -- --runner=DirectRunner --direct_num_workers=2`.")
    add(sub, "status", cmd_status,
        "each source: killed, not run, running, failed, finished (fingerprint) or stale")
