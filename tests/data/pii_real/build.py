# ruff: noqa: SIM115, PERF402  (a one-off data builder, kept for provenance)
"""Rebuilds pii_real.jsonl from text installed on a Debian machine (see README.md for provenance).

Not run by the tests: the JSONL it wrote is committed. Kept so the selection can be audited and redone.
Man pages are rendered with `groff -k -man -Tutf8 -P-cbou -rLL=66n` into /tmp/render first (the width
makes groff wrap and hyphenate as `man` does, which is what produces wrapped e-mail addresses).

Labels: every candidate span was proposed by the per-category rules in `label()` below (written for the
labelling, independent of roots/stages/pii.py) and the listings were then read by hand; `OVERRIDES`
records the corrections made by hand.
"""

from __future__ import annotations

import glob
import ipaddress
import json
import os
import random
import re
import sys

RENDER = "/tmp/render"
OUT = os.path.join(os.path.dirname(__file__), "pii_real.jsonl")
rng = random.Random(19)

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})*\.[A-Za-z]{2,12}(?![\w-])")
QUAD = re.compile(r"(?<![\w.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\w]|\.\d)")
IPV6 = re.compile(r"(?<![\w:.])(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F:]{1,20}(?![\w:])")
NOT_IP = [ipaddress.ip_network(n) for n in ("0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3", "192.0.2.0/24",
                                            "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "::/127",
                                            "ff00::/8")]
VERSIONISH = re.compile(r"(seit|since|version|versions?|dpkg|rfc|section|sec‐\s*tion|abschnitt|oid|"
                        r"patch_revi|revi‐\s*sion)\W*\s*\S*\s*$", re.IGNORECASE)
# a wrapped address: a line ending in '@', a hyphen or a dot inside an address, continued on the next line
WRAPPED = re.compile(r"[\w.+-]*(?:[\w.+]-|@|@[\w.-]+\.|[\w]‐)\n[ \t]*[\w.+-]*(?:@[\w.-]+)?[\w]")


def netmask(ip: str) -> bool:
    bits = "".join(f"{int(o):08b}" for o in ip.split("."))
    return bits.startswith("1") and "01" not in bits


def label_ips(text: str) -> list[list]:
    spans = []
    for m in QUAD.finditer(text):
        v = m.group()
        try:
            addr = ipaddress.IPv4Address(v)
        except ValueError:
            continue
        if any(addr in n for n in NOT_IP if n.version == 4) or netmask(v) or v == "255.255.255.255":
            continue
        if VERSIONISH.search(text[max(0, m.start() - 30):m.start()]):
            continue
        spans.append([m.start(), m.end(), "IP_ADDRESS"])
    for m in IPV6.finditer(text):
        v = m.group().rstrip(":.")
        try:
            addr6 = ipaddress.IPv6Address(v)
        except ValueError:
            continue
        if any(addr6 in n for n in NOT_IP if n.version == 6) or v.count(":") < 2:
            continue
        spans.append([m.start(), m.start() + len(v), "IP_ADDRESS"])
    return spans


def label_emails(text: str) -> list[list]:
    """Addresses, including those wrapped across a line (joined for matching, spans in the original)."""
    spans = [[m.start(), m.end(), "EMAIL"] for m in EMAIL.finditer(text)]
    joined, where = [], []
    i = 0
    while i < len(text):
        if text[i] == "\n" and i > 0 and (text[i - 1] in "-‐@." ) and "@" in text[max(0, i - 80):i + 80]:
            j = i + 1
            while j < len(text) and text[j] in " \t":
                j += 1
            if text[i - 1] == "‐":  # groff's inserted hyphen is no part of the address
                joined.pop(), where.pop()
            i = j
            continue
        joined.append(text[i])
        where.append(i)
        i += 1
    flat = "".join(joined)
    for m in EMAIL.finditer(flat):
        s, e = where[m.start()], where[m.end() - 1] + 1
        if "\n" in text[s:e]:
            spans = [sp for sp in spans if sp[1] <= s or sp[0] >= e]
            spans.append([s, e, "EMAIL"])
    return spans


def label(text: str) -> list[list]:
    spans = label_emails(text)
    taken = [(s, e) for s, e, _ in spans]
    spans += [sp for sp in label_ips(text) if not any(s < sp[1] and sp[0] < e for s, e in taken)]
    return sorted(spans)


def paragraphs(path: str) -> list[str]:
    text = open(path, encoding="utf-8", errors="replace").read()
    return [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text) if 20 <= len(p) <= 1200]


def pick(paras: list[tuple[str, str]], n: int, gcloud_share: float = 0.3) -> list[tuple[str, str]]:
    g = [p for p in paras if "gcloud" in p[0]]
    o = [p for p in paras if "gcloud" not in p[0]]
    rng.shuffle(g), rng.shuffle(o)
    ng = min(len(g), int(n * gcloud_share))
    return o[: n - ng] + g[:ng]


def main() -> int:
    files = sorted(glob.glob(f"{RENDER}/*.txt"))
    if not files:
        print(f"render the man pages into {RENDER} first (see the docstring)", file=sys.stderr)
        return 2
    cats: dict[str, list[tuple[str, str]]] = {k: [] for k in ("wrapped", "email", "quad", "ipv6", "phone",
                                                             "at", "hex", "card")}
    tests = {
        "wrapped": WRAPPED, "email": EMAIL, "quad": QUAD, "ipv6": IPV6,
        "phone": re.compile(r"\+\d[\d ()./-]{6,}\d|\(?\d{2,4}\)?[ -.]\d{2,4}[ -.]\d{2,5}|\d{4}-\d{4}|"
                            r"\[\d{5,}\]"),
        "at": re.compile(r"(?<![\w.])@\w{3,}"),
        "hex": re.compile(r"\b[0-9a-fA-F]{32,}\b|\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-|_Z\w{4,}"),
        "card": re.compile(r"\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{1,4}|\d{13,19}"),
    }
    seen: set[str] = set()
    for f in files:
        for p in paragraphs(f):
            for k, r in tests.items():
                if r.search(p) and (k != "wrapped" or "@" in p):
                    cats[k].append((os.path.basename(f), p))
    quota = {"wrapped": 40, "email": 110, "quad": 90, "ipv6": 25, "phone": 110, "at": 45, "hex": 40,
             "card": 50}
    records = []
    for k, n in quota.items():
        for name, p in pick(cats[k], n):
            if p in seen:
                continue
            seen.add(p)
            lang, _, page = name.partition("__") if not name.startswith("man") else ("en", "", name)
            records.append({"text": p, "origin": f"man:{page.replace('__', '/').removesuffix('.txt')}",
                            "lang": lang if len(lang) <= 5 else "en", "kind": k})
    extra = json.load(open(os.path.join(os.path.dirname(__file__), "extra_sources.json"), encoding="utf-8"))
    for rec in extra:
        records.append(rec)
    for rec in records:
        if "spans" not in rec:
            rec["spans"] = label(rec["text"])
    overrides = json.load(open(os.path.join(os.path.dirname(__file__), "overrides.json"), encoding="utf-8"))
    for rec in records:
        t = rec["text"]
        for d in overrides["drop"]:
            if d["contains"] in t:
                rec["spans"] = [sp for sp in rec["spans"] if t[sp[0]:sp[1]] != d["value"]]
        for a in overrides["add"]:
            if a["contains"] in t:
                s = t.index(a["value"])
                if [s, s + len(a["value"]), a["tag"]] not in rec["spans"]:
                    rec["spans"] = sorted([*rec["spans"], [s, s + len(a["value"]), a["tag"]]])
    with open(OUT, "w", encoding="utf-8") as fh:
        for i, rec in enumerate(records):
            rec["id"] = f"r{i:04d}"
            fh.write(json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{len(records)} records, {os.path.getsize(OUT)} bytes -> {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
