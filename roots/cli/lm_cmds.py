"""`roots lm train`: per-language perplexity models (SentencePiece + KenLM, the cc_net recipe).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cmd_lm_train(args: argparse.Namespace) -> int:
    from roots.core import workspace
    from roots.core.errors import UserError
    from roots.jobs import train_lm

    ws = workspace.resolve(getattr(args, "workspace", None))
    if args.order < 2 or args.vocab_size < 10:
        raise UserError("--order must be at least 2 and --vocab-size at least 10.")
    out_dir = ws.path_setting("models_dir") / "lm" / args.lang
    print(f"training a {args.order}-gram KenLM model for {args.lang} from {args.corpus} ...", flush=True)
    cal = train_lm.train_lm(args.lang, Path(args.corpus), out_dir, order=args.order,
                            vocab_size=args.vocab_size, memory=args.memory)
    pct = cal.get("percentiles", {})
    print(f"  -> {out_dir}")
    print(f"  held-out perplexity: p10={pct.get('p10')} p50={pct.get('p50')} p90={pct.get('p90')}; "
          f"cc_net cut-offs {cal.get('cc_net_cutoffs')}")
    return 0


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    lm_parser = sub.add_parser("lm", help="perplexity language models (SentencePiece + KenLM)")
    lsub = lm_parser.add_subparsers(dest="subcommand", metavar="ACTION", required=True)
    p = add(lsub, "train", cmd_lm_train,
            "train a per-language perplexity model from reference text (cc_net recipe)")
    p.add_argument("--lang", required=True, help="language code, e.g. en")
    p.add_argument("--corpus", required=True, help="reference text, one paragraph per line (e.g. Wikipedia)")
    p.add_argument("--order", type=int, default=5, help="n-gram order (ROOTS: 5)")
    p.add_argument("--vocab-size", type=int, default=8000, help="SentencePiece vocabulary (soft limit)")
    p.add_argument("--memory", default="1G", help="lmplz memory cap (-S), e.g. 1G or 20%%")
