"""The README's steward walkthrough, run as written on a fresh workspace (issue 17): every command in its
code block, in order, with `roots governance verify` checked after each one. It passes at every step
except between the hand edit and its `governance accept`, where the README says what fails (`exit 1`).

The block is read from README.md, so the README cannot drift from what roots does. Placeholders are
filled the way a steward would: the record id printed by `permission file`, a real evidence file."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from tests.conftest import REPO

RECORD_PLACEHOLDER = re.compile(r"\d{4}\.\.\.-[0-9a-f]{8}")


def walkthrough() -> list[str]:
    """The shell lines of the README's steward walkthrough block, continuations joined."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## A steward's walkthrough", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    lines, current = [], ""
    for raw in block.splitlines():
        current += raw.rstrip().removesuffix("\\") + (" " if raw.rstrip().endswith("\\") else "")
        if raw.rstrip().endswith("\\"):
            continue
        if current.strip() and not current.lstrip().startswith("#"):
            lines.append(current.strip())
        current = ""
    return lines


def split_comment(line: str) -> tuple[list[str], str]:
    """(argv, the comment after `#`): shlex keeps quoted text, and a `#` inside quotes stays text."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=False)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    argv = list(lexer)
    comment = line.split("  #", 1)[1] if "  #" in line else ""
    return argv, comment


def test_readme_walkthrough_keeps_verify_passing(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROOTS_WORKSPACE", raising=False)
    (tmp_path / "agreement.pdf").write_bytes(b"%PDF-1.4 signed agreement\n")
    record = None
    transcript: list[str] = []
    lines = walkthrough()
    assert sum(line.startswith("roots ") for line in lines) >= 20, lines
    hand_edited = False
    for line in lines:
        argv, comment = split_comment(line)
        if argv[0] == ".":
            continue
        if argv[0] == "export":
            name, _, value = argv[1].partition("=")
            monkeypatch.setenv(name, value)
            continue
        if argv[0] == "echo":  # the README's hand edit: echo TEXT >> FILE
            assert argv[2] == ">>", line
            with Path(argv[3]).open("a", encoding="utf-8") as fh:
                fh.write(argv[1] + "\n")
            hand_edited = True
            continue
        assert argv[0] == "roots", line
        args = [RECORD_PLACEHOLDER.sub(record, a) if record else a for a in argv[1:]]
        rc, out, err = run_cli(*args)
        expected = 1 if "exit 1" in comment else 0
        assert rc == expected, (line, rc, out, err)
        transcript.append(f"$ {' '.join(argv)}\n{(out + err).strip()}")
        if args[:2] == ["permission", "file"]:
            record = out.split()[2]
            assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{8}", record), out
        if args[:2] == ["governance", "accept"]:
            hand_edited = False
        if args[0] == "init":
            continue
        rc, out, err = run_cli("governance", "verify")
        assert (rc == 1) == hand_edited, (line, out, err)
        transcript.append(f"  verify: {(out + err).strip().splitlines()[0]}")
    assert record is not None and not hand_edited
    rc, out, _ = run_cli("clearance", "press_fr", "--json")
    assert rc == 0 and '"cleared": false' in out and "revoked by" in out  # the revocation holds
    rc, out, _ = run_cli("governance", "head")
    assert rc == 0 and re.fullmatch(r"\d+:[0-9a-f]{64}", out.strip())
    out_path = os.environ.get("ROOTS_WALKTHROUGH_TRANSCRIPT")  # commands and verify, for a closing note
    if out_path:
        Path(out_path).write_text("\n".join(transcript) + "\n", encoding="utf-8")
