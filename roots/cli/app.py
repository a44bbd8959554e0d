"""The `roots` command line. Thin: parse, call the library, print; user errors exit 2 without a traceback.

Each command group lives in its own module (`*_cmds.py`) with a `register(sub, add)` function; heavy
modules (Beam, models) are imported inside the commands, so every command starts fast.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from roots import __version__
from roots.cli import (
    governance_cmds,
    langid_cmds,
    lm_cmds,
    release_cmds,
    report_cmds,
    run_cmds,
    signals_cmds,
    steward_cmds,
    thresholds_cmds,
)
from roots.cli.output import common_options
from roots.core.errors import JobError, UserError, environment_error

Handler = Callable[[argparse.Namespace], int]
GROUPS = (governance_cmds, steward_cmds, run_cmds, lm_cmds, release_cmds, report_cmds, langid_cmds,
          thresholds_cmds, signals_cmds)
"""The command groups, in the order `roots --help` lists them."""


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = argparse.ArgumentParser(prog="roots", parents=[common],
                                     description="Build multilingual pretraining corpora with provenance.")
    parser.add_argument("--version", action="version", version=f"roots {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(subparsers: Any, name: str, handler: Handler, help_: str) -> argparse.ArgumentParser:
        p = subparsers.add_parser(name, parents=[common], help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    for group in GROUPS:
        group.register(sub, add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args: list[str] = []
    if "--" in argv:  # everything after `--` goes to Beam untouched
        cut = argv.index("--")
        argv, beam_args = argv[:cut], argv[cut + 1:]
    parser = build_parser()
    args = parser.parse_args(argv)
    args.beam_args = beam_args
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"roots: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except JobError as exc:
        if getattr(args, "debug", False):  # with the cause that led to it (an OSError Beam wrapped...)
            traceback.print_exc()
        print(f"roots: job failed: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("roots: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an environment error (disk full, read-only...) is a message, not a traceback
        message = environment_error(exc)
        if message is None:
            raise
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"roots: job failed: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
