"""`roots merge` and `roots publish`: the release of cleared sources, and one source as a datasets folder.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roots.cli.output import common_options


def cmd_merge(args: argparse.Namespace) -> int:
    from roots.core import progress, workspace
    from roots.jobs.merge import merge

    ws = workspace.resolve(getattr(args, "workspace", None))
    progress.configure(args.quiet)
    print("merging cleared sources ...", flush=True)
    result = merge(ws, out=Path(args.out) if args.out else None, vocab_size=args.vocab_size,
                   beam_args=list(getattr(args, "beam_args", [])), force=args.force)
    m = result.manifest
    print(f"  -> {result.out_dir}" + (f" (release {m['name']}; `latest` points at it)"
                                      if result.out_dir.name == m["name"] else ""))
    for s in m["sources_included"]:
        print(f"  included {s['source']:<20} {s['clearance']}")
    for s in m["sources_excluded"]:
        print(f"  EXCLUDED {s['source']:<20} {s['reason']}")
    print(f"  takedowns applied: {m['takedowns_applied']}; tokens: "
          + ", ".join(f"{g}={t['train']}+{t['valid']}" for g, t in sorted(m["tokens"].items())))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from roots.core import workspace
    from roots.jobs.publish import publish_source

    ws = workspace.resolve(getattr(args, "workspace", None))
    out = publish_source(ws, args.name, Path(args.out), force=args.force)
    print(f"published {args.name} -> {out} (load it with datasets.load_dataset({str(out)!r}))")
    return 0


def cmd_release_list(args: argparse.Namespace) -> int:
    from roots.cli.output import table
    from roots.core import workspace
    from roots.release import versions

    ws = workspace.resolve(getattr(args, "workspace", None))
    root = ws.path_setting("release_dir")
    rows = versions.describe(root)
    table(("id", "latest", "created", "documents", "tokens", "sources"),
          [(r["id"], "*" if r["latest"] else "", r["created"], f"{r['documents']:,}", f"{r['tokens']:,}",
            r["sources"]) for r in rows])
    return 0


def cmd_release_remove(args: argparse.Namespace) -> int:
    from roots.core import publishing, workspace
    from roots.release import versions

    ws = workspace.resolve(getattr(args, "workspace", None))
    root = ws.path_setting("release_dir")
    with publishing.flock(ws.root / publishing.MERGE_LOCK, exclusive=True, wait_s=0,
                          what="a merge is in progress in this workspace; remove releases after it"):
        newest = versions.remove(root, args.id)
    print(f"removed release {args.id}; latest is now {newest or '(none)'}")
    return 0


FORCE = ("run although `roots governance verify` fails; the reason and the findings are recorded in the "
         "audit trail")


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add(sub, "merge", cmd_merge,
            "merge cleared sources into a release (tokenizer, Megatron shards, manifest)")
    p.add_argument("--out", help="write one release to DIR, replacing it (default: a new release/<id>/ "
                                 "in the workspace, with release/latest pointing at it)")
    p.add_argument("--vocab-size", type=int, help="tokenizer vocabulary (default 250,680 as BLOOM)")
    p.add_argument("--force", metavar="REASON", help=FORCE)
    p.add_argument("--quiet", action="store_true", help="no progress line (the summary is still printed)")
    p = add(sub, "publish", cmd_publish,
            "export a source's kept documents as a datasets folder (needs release clearance)")
    p.add_argument("name")
    p.add_argument("--out", required=True)
    p.add_argument("--force", metavar="REASON", help=FORCE)
    rel = sub.add_parser("release", parents=[common_options()],
                         help="list or remove the versioned releases under release/",
                         description="Each merge adds release/<id>/; `latest` points at the newest.")
    rsub = rel.add_subparsers(dest="subcommand", metavar="ACTION", required=True)
    add(rsub, "list", cmd_release_list, "list releases: id, creation time, documents, tokens, sources")
    p = add(rsub, "remove", cmd_release_remove, "remove one release (latest moves to the newest left)")
    p.add_argument("id")
