"""`roots inspect NAME --pii TAG`: the replacements of one PII tag in context, with the original value,
on the steward's terminal only (issue 19).

A run keeps only scrubbed text and per-document counts; original values are stored nowhere, so nothing
in a run directory (or anything published from it) can leak them. They are re-derived here instead: the
kept documents with the tag are read again from the source's input, taken through the same stages up to
PII scrubbing (same card, same settings), and scrubbed with the same rules, which reports each replaced
span with its value. The re-scrubbed text is compared with the stored one, so a changed input, card or
scrubber shows as "not verified" instead of as a wrong value.
"""

from __future__ import annotations

import dataclasses
import json

from roots.core.errors import UserError
from roots.core.workspace import Workspace
from roots.io import outputs, readers
from roots.jobs.run import plan
from roots.report.inspect import terminal_safe
from roots.stages.pii import TAGS, PiiScrubber
from roots.stages.process import DocumentProcessor

CONTEXT = 50


def pii_audit(ws: Workspace, name: str, tag: str, n: int = 20) -> str:
    """The first `n` kept documents (by id) with a `tag` replacement, each replacement in context."""
    tag = tag.upper()
    if tag not in TAGS:
        raise UserError(f"--pii {tag}: unknown PII tag; valid tags are: {', '.join(TAGS)}")
    p = plan(ws, name)
    if not (p.final / "manifest.json").exists():
        raise UserError(f"source {name} has no finished run in {p.final}; run `roots run {name}` first.")
    if p.cfg.code:
        raise UserError(f"source {name} is a code source: it scrubs secrets, not the PII tags; "
                        "use `roots inspect NAME --reason kept` to read its documents.")
    hits = sorted(str(r["id"]) for r in outputs.iter_kind(p.final, "kept", ["id", "pii"])
                  if r["pii"] and tag in json.loads(r["pii"]))
    want = set(hits[:max(0, n)])
    stored = {str(r["id"]): r["text"] for r in outputs.iter_kind(p.final, "kept", ["id", "text"])
              if str(r["id"]) in want}
    manifest = json.loads((p.final / "manifest.json").read_text())
    same_input = (manifest.get("input") or {}).get("fingerprint") == p.fingerprint
    processor = DocumentProcessor(dataclasses.replace(p.cfg, skip=p.cfg.skip | {"pii"}))
    scrubber = PiiScrubber(tags=frozenset(p.cfg.pii_tags), **dict(p.cfg.pii_rules))
    blocks: dict[str, list[str]] = {}
    for path, _ in p.files:
        if len(blocks) == len(want):
            break
        with open(path, "rb") as fh:
            for record in readers.read(p.spec, path, fh):
                doc_id = str(record.get("id"))
                if record.get("kind") != "doc" or doc_id not in want or doc_id in blocks:
                    continue
                text = processor.process([record])[0]["text"]
                out, _, reps = scrubber.replacements(text)
                verified = out == stored.get(doc_id)
                lines = [f"id {terminal_safe(doc_id)}" + ("" if verified else
                         "  (not verified: re-scrubbing the input no longer gives the stored text)")]
                for r in reps:
                    if r.tag != tag:
                        continue
                    before = text[max(0, r.start - CONTEXT):r.start]
                    after = text[r.end:r.end + CONTEXT]
                    lines.append(f"  …{terminal_safe(before)}[{terminal_safe(r.value)} → PI:{tag}]"
                                 f"{terminal_safe(after)}…")
                blocks[doc_id] = lines
    head = [(f"{name}: {len(hits)} kept document(s) with {tag} replacements; showing the first "
             f"{len(want)} by id, with the original values re-derived from the input "
             "(terminal only: never written to the run or the report).")]
    if not same_input:
        head.append("warning: the input files changed since the run; values may differ from what was "
                    "scrubbed.")
    body = [line for doc_id in sorted(blocks) for line in (*blocks[doc_id], "")]
    missing = sorted(want - set(blocks))
    if missing:
        body.append(f"{len(missing)} document(s) no longer found in the input: {', '.join(missing[:5])}")
    return "\n".join([*head, "", *body]).rstrip() + "\n"
