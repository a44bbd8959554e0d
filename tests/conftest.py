"""Shared fixtures: a fresh workspace per test, and a helper to run the CLI in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from roots.cli import app
from roots.core import workspace
from roots.core.errors import UserError
from roots.governance import changes


@pytest.fixture()
def ws(tmp_path: Path) -> workspace.Workspace:
    """A fresh workspace as `roots init` makes it (its roots.yaml and policy recorded in the audit trail)."""
    return changes.init_workspace(tmp_path / "ws")


def vouch(ws: workspace.Workspace, *paths: Path, reason: str = "test fixture written by hand") -> None:
    """Record files a test wrote by hand (cards, roots.yaml) as `roots governance accept` would, so that
    `governance verify` passes and merge and publish run, as they do for a steward who accepts an edit."""
    for path in paths:
        changes.accept(ws, str(path), reason)


@pytest.fixture()
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    def _run(*argv: str) -> tuple[int, str, str]:
        rc = app.main(list(argv))
        out, err = capsys.readouterr()
        return rc, out, err

    return _run


REPO = Path(__file__).resolve().parent.parent
UDHR = REPO / "sources" / "samples" / "udhr" / "udhr.jsonl"


def udhr_paragraphs(lang: str, n: int, min_words: int = 60) -> list[str]:
    """Real text for tests: consecutive UDHR articles in one language joined to at least `min_words`."""
    import json

    texts = []
    current: list[str] = []
    with UDHR.open(encoding="utf-8") as fh:
        records = [r for r in map(json.loads, fh) if r.get("lang") == lang]
    # several translations share a code (French and Welche, seven Mandarin variants): take the main one,
    # whose UDHR code is plain ISO 639-3 (shortest, no region digits), newest spelling first
    codes = {r["id"].split("-")[1] for r in records}
    main = min(codes, key=lambda c: (c[0].isdigit(), len(c), [-ord(ch) for ch in c])) if codes else ""
    for rec in records:
        if rec["id"].split("-")[1] != main:
            continue
        current.append(rec["text"])
        joined = " ".join(current)
        words = len(joined.split()) if lang not in ("zh", "ja") else len(joined) // 2
        if words >= min_words:
            texts.append(joined)
            current = []
            if len(texts) == n:
                break
    assert len(texts) == n, f"not enough UDHR text for {lang}"
    return texts


def write_card(ws: workspace.Workspace, name: str, path: str, fmt: str = "jsonl", languages: str = "[multi]",
               extra: str = "", data_extra: str = "") -> None:
    """A card written by hand, recorded in the audit trail as `roots source add` would (`vouch`) when it
    is valid."""
    card = ws.sources_dir / f"{name}.yaml"
    card.write_text(
        f"name: {name}\nlanguages: {languages}\nlicense: CC0-1.0\ncustodian: {{name: Tests}}\n"
        f"data: {{path: {path}, format: {fmt}{data_extra}}}\nstatus: {{state: active}}\n{extra}")
    try:
        vouch(ws, card)
    except UserError:  # a deliberately invalid card (a test of its error) cannot be accepted: left as is
        pass
