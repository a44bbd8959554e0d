"""CLI commands about language identification (`langid coverage`); kept apart so other commands start fast.

`roots langid coverage` answers the question a steward asks before adding a language: which backend
decides it, and how well, measured on real labelled text rather than taken from a model card.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

DEFAULT_CORPUS = Path(str(resources.files("roots") / "data" / "langid_labelled.jsonl"))
"""230 real UDHR paragraphs in 46 languages, labelled, shipped with the package (see roots/data)."""


def _pct(hits: int, n: int) -> str:
    return f"{100 * hits / n:.0f}%" if n else "-"


def cmd_langid_coverage(args: argparse.Namespace) -> int:
    from roots.stages import routing

    router = routing.Router(routing.load_table(args.routing), model=args.model)
    corpus = Path(args.corpus) if args.corpus else DEFAULT_CORPUS
    labelled = routing.read_labelled(corpus)
    extra: list[str] = []
    if args.all:
        extra = sorted({lang for name in router.order for lang in router.backend(name).labels})
    rows = routing.coverage(router, labelled, extra)
    backends = {name: (str(getattr(router.backend(name), "path", "")) or "built-in model")
                for name in router.order}
    if args.json:
        print(json.dumps({"routing": router.table.source, "backends": backends,
                          "corpus": str(corpus) if corpus else None, "documents": len(labelled),
                          "languages": rows}, indent=2, ensure_ascii=False))
        return 0
    print(f"routing table: {router.table.source}")
    for name, where in backends.items():
        print(f"  {name}: {where}")
    if corpus:
        n_langs = len({lang for lang, _ in labelled})
        print(f"labelled corpus: {corpus} ({len(labelled)} texts, {n_langs} languages)")
    else:
        print("no labelled corpus (give --corpus FILE, JSONL with `lang` and `text`): coverage only")
    print()
    _print_rows(rows, router.order, bool(labelled))
    if labelled:
        cols = [*router.order, "routed"]
        total = {c: sum(r["accuracy"][c] for r in rows) for c in cols}
        print()
        print("overall accuracy: " + ", ".join(f"{c} {_pct(total[c], len(labelled))}" for c in cols))
    print("acc: top-1 right. kept: right and score >= lid_min (what a `multi` source keeps under that "
          "label). intr: other languages' texts kept as this one.")
    if labelled:
        first = router.order[0]
        worse = [r["lang"] for r in rows if r["accuracy"]["routed"] < r["accuracy"][first]
                 or r["kept"]["routed"] < r["kept"][first]]
        if worse:  # a failing exit status, so the table can gate a threshold change in CI
            print(f"roots: routing is less accurate than {first} alone for {', '.join(worse)}; check the "
                  f"thresholds in {router.table.source}.", file=sys.stderr)
            return 1
    return 0


def _print_rows(rows: list[dict[str, Any]], order: tuple[str, ...], measured: bool) -> None:
    cols = [*order, "routed"]
    width = max(8, *(len(c) + 1 for c in cols))
    group_width = width * len(cols)
    left = f"{'lang':<8} {'group':<11} {'known by':<16} {'route':<30}"
    if measured:
        groups = "".join(f" {g:<{group_width}}" for g in ("accuracy", "kept", "intruders"))
        print((" " * (len(left) + 5) + groups).rstrip())
        left += f" {'n':>4} " + " ".join("".join(f"{c:>{width}}" for c in cols) for _ in range(3))
    print(left)
    for r in rows:
        line = f"{r['lang']:<8} {r['group']:<11} {','.join(r['known_by']) or '-':<16} {r['route']:<30}"
        if measured:
            n = r["n"]
            line += f" {n:>4} " + "".join(f"{_pct(r['accuracy'][c], n):>{width}}" for c in cols)
            line += " " + "".join(f"{_pct(r['kept'][c], n):>{width}}" for c in cols)
            line += " " + "".join(f"{r['intruders'][c]:>{width}}" for c in cols)
        print(line)


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    lid = sub.add_parser("langid", help="language identification: backends, routing, measured coverage")
    lsub = lid.add_subparsers(dest="subcommand", metavar="ACTION", required=True)
    p = add(lsub, "coverage", cmd_langid_coverage,
            "per language: which backend decides it and, on a labelled corpus, accuracy per backend and "
            "routed")
    p.add_argument("--corpus", help="JSONL with `lang` and `text` per line (default: the bundled UDHR "
                                    "paragraphs shipped as roots/data/langid_labelled.jsonl)")
    p.add_argument("--model", help="fastText model file (lid.176.bin, GlotLID); default lid.176.ftz")
    p.add_argument("--routing", help="routing table YAML (default: roots/data/langid_routing.yaml)")
    p.add_argument("--all", action="store_true", help="also list every language any backend knows")
    p.add_argument("--json", action="store_true", help="machine-readable output")
