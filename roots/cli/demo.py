"""`make run`: the main job end to end on the bundled sample sources in this repository's workspace."""

from __future__ import annotations

import sys
from pathlib import Path

from roots.cli import app

REPO = Path(__file__).resolve().parents[2]
LM_REFERENCE = REPO / "roots" / "data" / "lm_reference"
LM_LANGS = ("en", "fr", "es", "zh", "ar", "hi")  # the sample sources' main languages


def main() -> int:
    ws = str(REPO)
    steps = [
        ["--workspace", ws, "source", "validate"],
        ["--workspace", ws, "clearance"],
        ["--workspace", ws, "governance", "verify"],
        *[["--workspace", ws, "lm", "train", "--lang", lang, "--corpus", str(LM_REFERENCE / f"{lang}.txt")]
          for lang in LM_LANGS],
        ["--workspace", ws, "run", "--all"],
        ["--workspace", ws, "merge"],
    ]
    for argv in steps:
        print(f"\n$ roots {' '.join(argv[2:])}", flush=True)
        rc = app.main(argv)
        if rc != 0:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
