"""CLI commands that run pipelines (`run`); kept apart so catalogue commands start fast."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cmd_run(args: argparse.Namespace) -> int:
    from roots import catalogue, workspace
    from roots.errors import UserError
    from roots.run import RunResult, execute, plan, print_summary, up_to_date

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
    if args.rethreshold:
        from roots.rethreshold import rethreshold

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
        if args.all and not args.force and up_to_date(p):
            import json

            print(f"{name}: up to date (same input fingerprint and configuration); skipped. --force reruns it.")
            results.append(RunResult(name, p.final, json.loads((p.final / "stats.json").read_text())))
            continue
        print(f"running {name} ...", flush=True)
        result = execute(p, ws, beam_args=list(getattr(args, "beam_args", [])))
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
    p.add_argument("--force", action="store_true", help="with --all: rerun sources that are up to date")
    p.add_argument("--rethreshold", action="store_true",
                   help="re-apply the current thresholds to the stored statistics of the last run (no models)")
    p.epilog = "Beam options follow `--`, e.g. `roots run web -- --runner=DirectRunner --direct_num_workers=2`."
    register_lm(sub, add)
    register_merge(sub, add)
    register_report(sub, add)
    add(sub, "status", cmd_status, "each source: killed, not run, running, failed, finished (fingerprint) or stale")


def cmd_lm_train(args: argparse.Namespace) -> int:
    from roots import lm, workspace
    from roots.errors import UserError

    ws = workspace.resolve(getattr(args, "workspace", None))
    if args.order < 2 or args.vocab_size < 10:
        raise UserError("--order must be at least 2 and --vocab-size at least 10.")
    out_dir = ws.path_setting("models_dir") / "lm" / args.lang
    print(f"training a {args.order}-gram KenLM model for {args.lang} from {args.corpus} ...", flush=True)
    cal = lm.train_lm(args.lang, Path(args.corpus), out_dir, order=args.order, vocab_size=args.vocab_size,
                      memory=args.memory)
    pct = cal.get("percentiles", {})
    print(f"  -> {out_dir}")
    print(f"  held-out perplexity: p10={pct.get('p10')} p50={pct.get('p50')} p90={pct.get('p90')}; "
          f"cc_net cut-offs {cal.get('cc_net_cutoffs')}")
    return 0


def register_lm(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    lm_parser = sub.add_parser("lm", help="perplexity language models (SentencePiece + KenLM)")
    lsub = lm_parser.add_subparsers(dest="subcommand", metavar="ACTION", required=True)
    p = add(lsub, "train", cmd_lm_train, "train a per-language perplexity model from reference text (cc_net recipe)")
    p.add_argument("--lang", required=True, help="language code, e.g. en")
    p.add_argument("--corpus", required=True, help="reference text, one paragraph per line (e.g. Wikipedia)")
    p.add_argument("--order", type=int, default=5, help="n-gram order (ROOTS: 5)")
    p.add_argument("--vocab-size", type=int, default=8000, help="SentencePiece vocabulary (soft limit)")
    p.add_argument("--memory", default="1G", help="lmplz memory cap (-S), e.g. 1G or 20%%")


def source_state(ws: Any, card: Any) -> tuple[str, str]:
    """(state, detail) of one source's run, as `roots status` prints it."""
    from roots.errors import UserError
    from roots.run import finished_manifest, in_flight, plan, up_to_date

    if not card.active:
        return "killed", card.killed_reason or ""
    final = ws.path_setting("runs_dir") / card.name
    flights = in_flight(final)
    if any(alive for _, _, alive in flights):
        pid = next(pid for _, pid, alive in flights if alive)
        return "running", f"process {pid}"
    manifest = finished_manifest(final)
    failed = "; an interrupted run left a temporary directory (the next run removes it)" if flights else ""
    if manifest is None:
        return ("failed" if flights else "not run"), failed.lstrip("; ")
    try:
        current = up_to_date(plan(ws, card.name))
    except UserError as exc:
        return "finished", f"{manifest['finished']}, but the source cannot be planned now: {exc}"
    docs = manifest.get("documents", {})
    detail = (f"{manifest['finished']}, fingerprint {manifest['input']['fingerprint'][:12]}, "
              f"kept {docs.get('kept')}/{docs.get('input')}{failed}")
    return ("finished" if current else "stale"), detail + ("" if current else "; input or configuration changed")


def cmd_status(args: argparse.Namespace) -> int:
    from roots import catalogue, workspace
    from roots.cli import _table

    ws = workspace.resolve(getattr(args, "workspace", None))
    rows = [(card.name, *source_state(ws, card)) for card in catalogue.load_all(ws)]
    _table(("source", "state", "detail"), rows)
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from roots import workspace
    from roots.merge import merge

    ws = workspace.resolve(getattr(args, "workspace", None))
    print("merging cleared sources ...", flush=True)
    result = merge(ws, out=Path(args.out) if args.out else None, vocab_size=args.vocab_size,
                   beam_args=list(getattr(args, "beam_args", [])))
    m = result.manifest
    print(f"  -> {result.out_dir}")
    for s in m["sources_included"]:
        print(f"  included {s['source']:<20} {s['clearance']}")
    for s in m["sources_excluded"]:
        print(f"  EXCLUDED {s['source']:<20} {s['reason']}")
    print(f"  takedowns applied: {m['takedowns_applied']}; tokens: "
          + ", ".join(f"{g}={t['train']}+{t['valid']}" for g, t in sorted(m["tokens"].items())))
    return 0


def cmd_takedown_add(args: argparse.Namespace) -> int:
    from roots import takedowns, workspace

    ws = workspace.resolve(getattr(args, "workspace", None))
    t = takedowns.add(ws, args.source, doc_id=args.id, url_prefix=args.url_prefix, text_sha=args.text_hash,
                      reason=args.reason)
    print(f"filed takedown {t.id} for {args.source}; the next `roots merge` applies it")
    return 0


def register_merge(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add(sub, "merge", cmd_merge, "merge cleared sources into a release (tokenizer, Megatron shards, manifest)")
    p.add_argument("--out", help="release directory (default: release/ in the workspace)")
    p.add_argument("--vocab-size", type=int, help="tokenizer vocabulary (default 250,680 as BLOOM)")
    td = sub.add_parser("takedown", help="takedown requests applied at the next merge")
    tsub = td.add_subparsers(dest="subcommand", metavar="ACTION", required=True)
    p = add(tsub, "add", cmd_takedown_add, "file a takedown (by document id, URL prefix or text hash)")
    p.add_argument("--source", required=True)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--id")
    group.add_argument("--url-prefix")
    group.add_argument("--text-hash", help="SHA-256 of the document text as stored in kept/")
    p.add_argument("--reason", required=True)


def cmd_report(args: argparse.Namespace) -> int:
    from roots import report, workspace

    ws = workspace.resolve(getattr(args, "workspace", None))
    target = Path(args.dir) if args.dir else ws.path_setting("runs_dir")
    print(f"wrote {report.build_report(target, Path(args.out) if args.out else None)}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from roots import catalogue, report, workspace

    ws = workspace.resolve(getattr(args, "workspace", None))
    catalogue.load_card(ws, args.name)
    run_dir = ws.path_setting("runs_dir") / args.name
    if not (run_dir / "manifest.json").exists():
        from roots.errors import UserError

        raise UserError(f"source {args.name} has no finished run in {run_dir}; run `roots run {args.name}` first.")
    print(report.inspect_rows(run_dir, reason=args.reason, lang=args.lang, n=args.n), end="")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from roots import workspace
    from roots.publish import publish_source

    ws = workspace.resolve(getattr(args, "workspace", None))
    out = publish_source(ws, args.name, Path(args.out))
    print(f"published {args.name} -> {out} (load it with datasets.load_dataset({str(out)!r}))")
    return 0


def register_report(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add(sub, "publish", cmd_publish, "export a source's kept documents as a datasets folder (needs release "
            "clearance)")
    p.add_argument("name")
    p.add_argument("--out", required=True)
    p = add(sub, "report", cmd_report, "write report.html for a run dir, a runs root or a release (default: runs/)")
    p.add_argument("dir", nargs="?")
    p.add_argument("--out", help="output file (default: DIR/report.html)")
    p = add(sub, "inspect", cmd_inspect, "show sample documents of a run with their statistics and thresholds")
    p.add_argument("name")
    p.add_argument("--reason", help="a rejection reason, or kept")
    p.add_argument("--lang")
    p.add_argument("-n", type=int, default=5)
