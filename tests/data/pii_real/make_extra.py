# ruff: noqa: SIM115, E501  (a one-off data builder, kept for provenance)
"""Writes extra_sources.json: excerpts of installed headers and Python sources (real negatives the issue
names) and clearly marked synthetic positives, each with its labelled spans given as substrings."""

from __future__ import annotations

import json
import os
import random
import re

HERE = os.path.dirname(__file__)


def lines(path: str, pattern: str, before: int = 2, after: int = 2, limit: int = 2) -> list[str]:
    text = open(path, encoding="utf-8", errors="replace").read().splitlines()
    out = []
    for i, line in enumerate(text):
        if re.search(pattern, line):
            out.append("\n".join(text[max(0, i - before): i + after + 1]))
            if len(out) >= limit:
                break
    return out


def rec(text: str, origin: str, pii: list[tuple[str, str]] = (), synthetic: bool = False, kind: str = "neg"):
    spans, pos = [], 0
    for value, tag in pii:
        s = text.index(value, pos)
        spans.append([s, s + len(value), tag])
        pos = s + len(value)
    return {"text": text, "origin": origin, "lang": "en", "kind": kind, "synthetic": synthetic,
            "spans": spans}


out = []
for t in lines("/usr/include/features.h", r"__USE_XOPEN2K8XSI", limit=3):
    out.append(rec(t, "/usr/include/features.h (libc6-dev)"))
for t in lines("/usr/lib/python3.11/uuid.py", r"NAMESPACE_(DNS|X500) = UUID", before=1, after=1, limit=2):
    out.append(rec(t, "/usr/lib/python3.11/uuid.py (libpython3.11-stdlib)"))
for t in lines("/usr/lib/python3.11/uuid.py", r">>> uuid.UUID\('", before=1, after=1, limit=2):
    out.append(rec(t, "/usr/lib/python3.11/uuid.py (libpython3.11-stdlib)"))
for path, pat in [("/tmp/render/man5__proc.5.txt", r"^\s+cpu \d"), ("/tmp/render/fr__man1__xxd.1.txt", r"^\s+0000000c:"),
                  ("/tmp/render/de__man5__deb-md5sums.5.txt", r"usr/bin/dpkg-deb"),
                  ("/tmp/render/man1__c++filt.1.txt", r"_Z1fv"), ("/tmp/render/man1__addr2line.1.txt", r"@file"),
                  ("/tmp/render/man1__egrep.1.txt", r"\[0123456789\]"),
                  ("/tmp/render/man1__as.1.txt", r"^\s+@file"), ("/tmp/render/man1__java.1.txt", r"@file1")]:
    for t in lines(path, pat, limit=1):
        out.append(rec(t, path.replace("/tmp/render/", "man:").replace("__", "/").removesuffix(".txt")))

# Synthetic positives (marked): numbers from the ranges reserved for fiction/documentation where one
# exists (Ofcom drama numbers, NANP 555-01xx, ARCEP 01 99 00), and formats seen in real contact blocks.
phones = [
    ("Please phone our office on 020 7946 0018 between nine and five.", "020 7946 0018"),
    ("Questions? Call (212) 555-0147 or write to the address below.", "(212) 555-0147"),
    ("Secrétariat : 01 99 00 27 31 (lundi au vendredi).", "01 99 00 27 31"),
    ("Telefon: 030 12345678, Fax: 030 12345679", "030 12345678", "030 12345679"),
    ("Contact: +44 20 7946 0958 (UK office), +1 415 555 0132 (US office).", "+44 20 7946 0958",
     "+1 415 555 0132"),
    ("Prof. J. Smith, Computing Laboratory, Oxford. Tel. +44 865 273838", "+44 865 273838"),
    ("Tél. +33 1 99 00 45 67 — demandez le service technique.", "+33 1 99 00 45 67"),
    ("Llámenos al +34 810 12 34 56 o al 810 12 34 57.", "+34 810 12 34 56", "810 12 34 57"),
    ("Phone: 617-555-0199. Fax: 617-555-0198.", "617-555-0199", "617-555-0198"),
    ("Ring +91 98765 43210 for the Bangalore desk.", "+91 98765 43210"),
    ("Hotline +49 (0)30 901820 rund um die Uhr.", "+49 (0)30 901820"),
    ("Mobile: 07700 900461", "07700 900461"),
    ("Sydney office: +61 2 9876 5432.", "+61 2 9876 5432"),
    ("Customer care 1-800-555-0199 (toll free).", "1-800-555-0199"),
    ("Bureau de Montréal : +1 514 555 0150.", "+1 514 555 0150"),
    ("Tel.: +39 06 6988 1234 (Roma)", "+39 06 6988 1234"),
    ("Atendimento: +55 11 3456-7890", "+55 11 3456-7890"),
    ("For bookings call 0161 496 0123.", "0161 496 0123"),
    ("The old number, +44 865 511245, no longer works.", "+44 865 511245"),
    ("Kontakt: 089 / 12 34 56 78", "089 / 12 34 56 78"),
]
for text, *values in phones:
    out.append(rec(text, "synthetic", [(v, "PHONE") for v in values], synthetic=True, kind="phone"))
ips = [
    ("Our logs show repeated failed logins from 81.2.69.160 last night.", "81.2.69.160"),
    ("The mail server 212.27.48.10 refused the connection.", "212.27.48.10"),
    ("ssh admin@10.20.30.40 -p 2222", "10.20.30.40"),
    ("Set the DNS server to 9.9.9.9 and the gateway to 192.168.1.254.", "9.9.9.9", "192.168.1.254"),
    ("client 2a00:1450:4007:80e::200e connected via IPv6", "2a00:1450:4007:80e::200e"),
]
for text, *values in ips:
    out.append(rec(text, "synthetic", [(v, "IP_ADDRESS") for v in values], synthetic=True, kind="quad"))
wrapped = [
    (("Traduction française par Jean-Pierre Dupont <jean-pierre.dupont@resel.enst-\n"
     "       bretagne.fr>, 2003."), "jean-pierre.dupont@resel.enst-\n       bretagne.fr"),
    ("Relecture : Marie-Claire Lefebvre <marie-\n       claire.lefebvre@example-domain.fr>.",
     "marie-\n       claire.lefebvre@example-domain.fr"),
    ("Report bugs to the maintainer, pkg-\nmaint@lists.example.org, or file a ticket.",
     "pkg-\nmaint@lists.example.org"),
    ("Written by Anna Kowalska (anna.kowalska@\n    poczta.example.pl).", "anna.kowalska@\n    poczta.example.pl"),
]
for text, *values in wrapped:
    out.append(rec(text, "synthetic", [(v, "EMAIL") for v in values], synthetic=True, kind="wrapped"))
rng = random.Random(40)


def luhn_complete(prefix: str, n: int) -> str:
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(n - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


cards = [luhn_complete(rng.choice(["4", "51", "52", "55", "2221"]), 16) for _ in range(40)]
out.append(rec("Test cards: " + " ".join(cards) + ".", "synthetic", [(c, "CREDIT_CARD") for c in cards],
               synthetic=True, kind="card"))
grouped = [" ".join(c[i:i + 4] for i in range(0, 16, 4)) for c in cards[:5]]
out.append(rec("Cards on file: " + "; ".join(grouped) + ".", "synthetic",
               [(c, "CREDIT_CARD") for c in grouped], synthetic=True, kind="card"))
negs = [
    "Voltaire. (1694-1778)", "Shipping to Beverly Hills, CA 90210-4321 takes two days.",
    "Date: Sat 23 Aug 2003 08 30 36 +0200", "See Knuth, ISBN 0-201-89683-4, and ISBN 978-0-201-89683-1.",
]
for t in negs:
    out.append(rec(t, "synthetic", synthetic=True, kind="phone"))
json.dump(out, open(os.path.join(HERE, "extra_sources.json"), "w", encoding="utf-8"), ensure_ascii=False,
          indent=1)
print(len(out))
