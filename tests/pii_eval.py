"""Shared by tests/test_pii_real.py and tests/bench/pii_bench.py: the labelled real-text set, per-tag
precision and recall on it and on the web sample, and the hostile 1 MB documents of issue 19."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REAL = REPO / "tests" / "data" / "pii_real" / "pii_real.jsonl"
WEB = REPO / "sources" / "samples" / "web_noisy"

Found = Iterable[tuple[int, int, str]]


def load_real() -> list[dict]:
    return [json.loads(line) for line in REAL.read_text(encoding="utf-8").splitlines() if line.strip()]


def score(records: list[dict], find: Callable[[str], Found]) -> dict[str, dict[str, float]]:
    """Per tag: a found span is a true positive when it overlaps a labelled span of the same tag (span
    conventions differ by a trailing dot or bracket, not by what was found); a labelled span is recalled
    only when found spans of its tag cover every letter and digit of it, so a half-scrubbed address
    (``jean-⏎PI:EMAIL``) is a miss."""
    tp, fp, fn, hit = Counter(), Counter(), Counter(), Counter()
    for rec in records:
        gold = [tuple(s) for s in rec["spans"]]
        found = list(find(rec["text"]))
        for s, e, tag in found:
            if any(tag == g[2] and s < g[1] and g[0] < e for g in gold):
                tp[tag] += 1
            else:
                fp[tag] += 1
        for gs, ge, gtag in gold:
            if all(any(tag == gtag and s <= i < e for s, e, tag in found)
                   for i in range(gs, ge) if rec["text"][i].isalnum()):
                hit[gtag] += 1
            else:
                fn[gtag] += 1
    tags = sorted(set(tp) | set(fp) | set(fn) | set(hit))
    out = {}
    for t in tags:
        found_n, gold_n = tp[t] + fp[t], hit[t] + fn[t]
        out[t] = {"found": found_n, "labelled": gold_n, "false_pos": fp[t], "missed": fn[t],
                  "precision": tp[t] / found_n if found_n else 1.0,
                  "recall": hit[t] / gold_n if gold_n else 1.0}
    return out


def web_recall(scrub: Callable[[str], str]) -> dict[str, float]:
    """Share of the web sample's planted PII values (sources/samples/web_noisy/expected_outcomes.json)
    that scrubbing removes, per kind of value, judged on the raw document text."""
    expected = json.loads((WEB / "expected_outcomes.json").read_text())
    docs = {}
    for line in (WEB / "web.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("text"), str):
            docs[str(rec.get("id"))] = rec["text"]
    got, total = Counter(), Counter()
    for doc_id, exp in expected.items():
        if exp["class"] != "pii":
            continue
        out = scrub(docs[doc_id])
        for value in exp["pii"]:
            kind = kind_of(value)
            total[kind] += 1
            got[kind] += value not in out
    return {k: got[k] / total[k] for k in sorted(total)} | {"all": sum(got.values()) / sum(total.values())}


def kind_of(value: str) -> str:
    if "@" in value and "." in value.split("@")[-1]:
        return "EMAIL"
    if value.startswith("@"):
        return "USER"
    if value.count(".") == 3 or value.count(":") >= 2:
        return "IP_ADDRESS"
    if value[:2].isalpha() and value[2:4].isdigit():
        return "IBAN"
    digits = sum(c.isdigit() for c in value)
    if digits >= 13 and not value.startswith("+"):
        return "CREDIT_CARD"
    if digits >= 7 and sum(c.isalpha() for c in value) == 0:
        return "PHONE"
    return "KEY"


def _luhn_card(rng: random.Random) -> str:
    body = "4" + "".join(str(rng.randrange(10)) for _ in range(14))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def hostile_documents(size: int = 1_000_000) -> dict[str, str]:
    """The 1 MB documents issue 19 timed (distinct digit runs, dashed, with '+', Luhn-valid card-like
    runs, IBAN-like text, x@y@z chains) plus phone-shaped and quad-shaped floods."""
    rng = random.Random(19)

    def fill(make: Callable[[int], str]) -> str:
        parts, n, i = [], 0, 0
        while n < size:
            piece = make(i)
            parts.append(piece)
            n += len(piece)
            i += 1
        return "".join(parts)[:size]

    return {
        "digit-runs": fill(lambda i: f"{1000000 + i * 7919} "),
        "digit-runs-dashed": fill(lambda i: f"{100 + i % 900}-{1000 + i % 9000}-{i:07d} "),
        "digit-runs-plus": fill(lambda i: f"+{10000000 + i * 7919} "),
        "phone-shaped": fill(lambda i: f"020 7946 {i % 10000:04d}, "),
        "luhn-cards": fill(lambda i: _luhn_card(rng) + " "),
        "iban-like": fill(lambda i: f"DE{i % 100:02d} {i % 10000:04d} {(i * 7) % 10000:04d} "),
        "at-chains": fill(lambda i: f"x{i}@y{i}@z{i}."),
        "quads": fill(lambda i: f"{i % 250}.{(i * 3) % 250}.{(i * 7) % 250}.{i % 199} "),
        "hex-keys": fill(lambda i: f"{rng.getrandbits(128):032x} "),
        "handles": fill(lambda i: f"@user{i} "),
        "wrapped-at": fill(lambda i: f"a{i}-\nb@c-\nd."),
    }
