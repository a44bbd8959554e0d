"""`roots classifier train` (a quality classifier from wanted and unwanted examples) and `roots decontam
add|list` (evaluation sets no release may contain): the model-based signals next to ROOTS's heuristics.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roots.cli.output import table, workspace_of


def cmd_classifier_train(args: argparse.Namespace) -> int:
    from roots.jobs import train_classifier

    ws = workspace_of(args)
    out_dir = ws.path_setting("models_dir") / "classifiers" / args.name
    print(f"training quality classifier {args.name} ...", flush=True)
    meta = train_classifier.train_classifier(
        args.name,
        [Path(p) for p in args.positive],
        [Path(p) for p in args.negative],
        out_dir,
        lang=args.lang,
        holdout=args.holdout,
        seed=args.seed,
        epoch=args.epoch,
        dim=args.dim,
    )
    held, pct = meta["heldout"], meta["percentiles"]["positive"]
    print(f"  -> {out_dir}")
    print(
        f"  {meta['examples']['positive']} positive, {meta['examples']['negative']} negative examples; "
        f"on the {held['measured_on']} share: precision {held['precision']}, recall {held['recall']} "
        f"(score >= 0.5)"
    )
    print(
        f"  positive scores: p10={pct['p10']} p50={pct['p50']} p90={pct['p90']}. Turn it on with "
        f"`classifiers: {{{args.name}: {{min_score: 0.5}}}}` (or {{percentile: 10}}) in roots.yaml or a card."
    )
    return 0


def cmd_decontam_add(args: argparse.Namespace) -> int:
    from roots.jobs import decontam

    ws = workspace_of(args)
    reg = decontam.register(
        ws,
        args.name,
        Path(args.path),
        args.format,
        [f.strip() for f in (args.field or "").split(",")],
        args.ngram,
    )
    print(
        f"registered evaluation set {reg['name']}: {reg['items']} items, {reg['ngrams']} distinct "
        f"{reg['n']}-grams ({reg['items_too_short']} items shorter than {reg['n']} units not indexed); "
        f"index {reg['index_bytes']:,} bytes in {decontam.root_of(ws) / reg['name']}"
    )
    print("  every later run checks it; `roots merge` checks it on runs made before this registration.")
    return 0


def cmd_decontam_list(args: argparse.Namespace) -> int:
    import json

    from roots.jobs import decontam

    ws = workspace_of(args)
    rows = []
    for s in decontam.sets_of(ws):
        reg = json.loads((Path(s.index).parent / "registration.json").read_text(encoding="utf-8"))
        rows.append((s.name, reg["n"], reg["items"], reg["ngrams"], reg["registered"], reg["path"]))
    if not rows:
        print("no evaluation sets registered; add one with `roots decontam add NAME --path FILE ...`.")
        return 0
    table(("set", "n", "items", "n-grams", "registered", "file"), rows)
    return 0


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    c = sub.add_parser(
        "classifier", help="quality classifiers trained on wanted/unwanted examples (fastText)"
    )
    csub = c.add_subparsers(dest="subcommand", metavar="ACTION", required=True)
    p = add(
        csub,
        "train",
        cmd_classifier_train,
        "train a fastText quality classifier; stores it with held-out precision/recall and score "
        "percentiles under models/classifiers/NAME",
    )
    p.add_argument(
        "name", help="the classifier's name (its reason is classifier:NAME, its column NAME_score)"
    )
    p.add_argument(
        "--positive",
        nargs="+",
        required=True,
        metavar="FILE",
        help="text of the kind wanted, one example per line",
    )
    p.add_argument(
        "--negative",
        nargs="+",
        required=True,
        metavar="FILE",
        help="text of the kind unwanted, one example per line",
    )
    p.add_argument("--lang", default=None, help="the language it scores (default: every language)")
    p.add_argument("--holdout", type=float, default=0.1, help="share of each class held out (default 0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epoch", type=int, default=None, help="fastText epochs (default 50)")
    p.add_argument("--dim", type=int, default=None, help="fastText vector size (default 16)")

    d = sub.add_parser("decontam", help="evaluation sets that must not leak into training data")
    dsub = d.add_subparsers(dest="subcommand", metavar="ACTION", required=True)
    p = add(dsub, "add", cmd_decontam_add, "register an evaluation set: build its n-gram index once")
    p.add_argument("name", help="the set's name, e.g. mmlu")
    p.add_argument("--path", required=True, help="the evaluation file")
    p.add_argument(
        "--format", default="jsonl", help="jsonl (one JSON object a line) or text (one item a line)"
    )
    p.add_argument(
        "--field", default="", help="jsonl: the fields making an item's text, e.g. question,answer"
    )
    p.add_argument(
        "--ngram",
        type=int,
        default=13,
        help="n-gram length in words (characters for scripts without spaces); default 13, as GPT-3",
    )
    add(dsub, "list", cmd_decontam_list, "list the registered evaluation sets")
