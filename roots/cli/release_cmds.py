"""`roots merge` and `roots publish`: the release of cleared sources, and one source as a datasets folder.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cmd_merge(args: argparse.Namespace) -> int:
    from roots.core import progress, workspace
    from roots.jobs.merge import merge

    ws = workspace.resolve(getattr(args, "workspace", None))
    progress.configure(args.quiet)
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


def cmd_publish(args: argparse.Namespace) -> int:
    from roots.core import workspace
    from roots.jobs.publish import publish_source

    ws = workspace.resolve(getattr(args, "workspace", None))
    out = publish_source(ws, args.name, Path(args.out))
    print(f"published {args.name} -> {out} (load it with datasets.load_dataset({str(out)!r}))")
    return 0


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add(sub, "merge", cmd_merge,
            "merge cleared sources into a release (tokenizer, Megatron shards, manifest)")
    p.add_argument("--out", help="release directory (default: release/ in the workspace)")
    p.add_argument("--vocab-size", type=int, help="tokenizer vocabulary (default 250,680 as BLOOM)")
    p.add_argument("--quiet", action="store_true", help="no progress line (the summary is still printed)")
    p = add(sub, "publish", cmd_publish,
            "export a source's kept documents as a datasets folder (needs release clearance)")
    p.add_argument("name")
    p.add_argument("--out", required=True)
