"""PII redaction in the spirit of ROOTS section 5.1: matched spans become the literal ``PI:<TAG>``.

ROOTS shipped EMAIL, USER, IP_ADDRESS and KEY and switched phone/ID regexes off because they hit dates,
versions and prices. We keep the ROOTS tags, and bring phones, IBANs and card numbers back only behind
validators (libphonenumber metadata, IBAN mod-97, Luhn), which is what makes them affordable.

Every regex is a *candidate* finder with bounded, possessive quantifiers and lookaround boundaries, so
each text position is tried in bounded time; the judgement calls live in small Python validators. That
keeps adversarial documents (``a@a@a@...``, endless digit runs) linear instead of catastrophic.

Precision on real technical text (issue 19, measured on tests/data/pii_real/): the rules that are data
(address ranges, context words, markup names) live in roots/data/pii_rules.yaml; a dotted quad is an IP
only in a network-like context or when it cannot be a version or section number; a phone number must
validate *and* not be a date, year span, table cell, ZIP+4 code or digit class; a card number must be
Luhn-valid, issuer-plausible, grouped as cards are, and outside hex dumps; hex digests, UUIDs and code
identifiers are not KEYs unless a secret word stands before them; Texinfo and decorator ``@words`` are not
USERs.

Wrapped addresses: an address broken across a line (at '@', after a hyphen, after the dot of an
unfinished domain) is found on a joined view of the text and replaced whole. The kept text keeps its
lines: the placeholder takes the place of the address and the line break with its indentation that was
inside the address follows the placeholder (``PI:EMAIL⏎``), so no line is joined to another.
"""

from __future__ import annotations

import bisect
import importlib.resources as importlib_resources
import ipaddress
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, NamedTuple

import phonenumbers
import regex
import yaml
from stdnum import iban as _iban

from roots.core.errors import UserError

TAGS: tuple[str, ...] = ("EMAIL", "USER", "IP_ADDRESS", "KEY", "PHONE", "IBAN", "CREDIT_CARD")
DEFAULT_PHONE_REGIONS: tuple[str, ...] = ("US", "GB", "FR", "DE", "IN", "CN", "BR", "ES")
RULES_FILE = "data/pii_rules.yaml"
# The rule switches a card can set under `recipe.pii_rules` (PiiScrubber fields of the same name).
RULE_SETTINGS: tuple[str, ...] = ("private_ips", "documentation_ips")

Span = tuple[int, int]


class Replacement(NamedTuple):
    """One replaced span of the *original* text, with the value it held (kept only in memory: the run
    stores counts, `roots inspect --pii` re-derives the values on the steward's terminal)."""

    start: int
    end: int
    tag: str
    value: str


@lru_cache(maxsize=1)
def rules() -> dict[str, Any]:
    """roots/data/pii_rules.yaml, read once per process."""
    text = importlib_resources.files("roots").joinpath(RULES_FILE).read_text("utf-8")
    return dict(yaml.safe_load(text))


@cache
def _words(key: str, field: str) -> frozenset[str]:
    words = frozenset(str(w).lower() for w in rules()[key][field])
    bare = sorted(w for w in words if not _LISTED_WORD_CHAR_RE.search(w))
    if bare:  # `_words_near` skips windows without a letter: such a word would never be seen
        raise UserError(f"{RULES_FILE}: {key}.{field}: every word needs a letter or '§'; not {bare}")
    return words


_WORD_RE = regex.compile(r"[\p{L}\p{N}_§]+")


# Every word of the word lists (context, veto, version, secret words) holds a letter or '§'. A window
# without one holds no such word, whatever its digits, so the lowercased word list need not be built:
# hostile floods of numbers are mostly such windows (issue 19: linear time with a small constant).
_LISTED_WORD_CHAR_RE = regex.compile(r"[\p{L}§]")


def _words_near(text: str, lo: int, hi: int) -> list[str]:
    """The lowercased words in text[lo:hi]; [] when none can be a listed word (see above)."""
    lo, hi = max(0, lo), min(len(text), hi)
    if not _LISTED_WORD_CHAR_RE.search(text, lo, hi):
        return []
    return [w.lower() for w in _WORD_RE.findall(text, lo, hi)]


# --- EMAIL / USER ------------------------------------------------------------------------------------
_LOCAL = r"[\p{L}\p{M}\p{N}._%+\-]"
_LABEL = r"[\p{L}\p{M}\p{N}\-]{1,63}+"
_DOMAIN_CHAR_RE = regex.compile(r"[\p{L}\p{M}\p{N}.\-]")
# Only the local part and '@' are consumed; the dotted domain is peeked at in a lookahead so that a
# failed domain (``x@y@z.com``) does not swallow the next address's local part.
_EMAIL_RE = regex.compile(rf"(?<!{_LOCAL}){_LOCAL}{{1,64}}+@(?=({_LABEL}(?:\.{_LABEL}){{1,8}}+\.?))")
_TLD_RE = regex.compile(r"\p{L}[\p{L}\p{M}]++|xn--[a-z0-9\-]{2,59}+", regex.IGNORECASE)
# ``icon@2x.png`` is an asset name, not an address; these "TLDs" are file extensions, not domains.
_FILE_EXT_TLDS = frozenset(
    ("png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", "pdf", "htm", "html", "css",
     "js")
)
# ``scheme://user:password@host``: the credentials are a secret whatever the host is.
_URL_CRED_RE = regex.compile(r"(?<=://)[^\s/@:?#]{1,64}+:[^\s/@?#]{1,128}+@(?=[\p{L}\p{N}\[])")
# A line break inside an address: after '@', after a hyphen ('-' kept, groff's inserted U+2010 dropped),
# or after the dot of a domain with one label so far (``johnsonm@redhat.⏎ com``).
_BREAK_RE = regex.compile(r"(?<=[\p{L}\p{N}._%+\-@])([\-\u2010@.])\n[ \t]{0,40}+(?=[\p{L}\p{N}])")
_OPEN_DOMAIN_RE = regex.compile(r"@[\p{L}\p{M}\p{N}\-]{1,63}+\.$")

_LETTER_RE = regex.compile(r"\p{L}")
_USER_RE = regex.compile(
    r"(?<![\p{L}\p{M}\p{N}_.+\-@/])@([\p{L}\p{M}\p{N}_.\-]{3,64}+)(?![\p{L}\p{M}\p{N}_.\-@])"
)
_CODE_BEFORE_AT = frozenset("\\[]*$%!{}<=()\"'\u00ab")
_CODE_AFTER_NAME_RE = regex.compile(r"[ \t]*[=;)\[{(]|->|::")
_RESPONSE_FILE_RE = regex.compile(r"(?:arg|opt)?files?\d*|options?\d*", regex.IGNORECASE)

# --- IP_ADDRESS --------------------------------------------------------------------------------------
_IPV4_RE = regex.compile(r"(?<![\p{L}\p{N}_.])(?:\d{1,3}\.){3}\d{1,3}(?![\p{L}\p{N}_]|\.\p{N})")
_IPV6_RE = regex.compile(r"(?<![\p{L}\p{N}_:.])(?=[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:.]{3,45}+(?![\p{L}\p{N}_:])")
# The characters of an IPv6 candidate, and the rest of a run of them.
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")
_IPV6_RUN_END_RE = re.compile(r"[0-9A-Fa-f:.]*")
_CIDR_OR_PORT_RE = regex.compile(r"/\d{1,2}(?!\d)|:\d{2,5}(?!\d)")
_HOSTNAME_RE = regex.compile(r"(?<![\w.@-])[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63}){1,5}\.(?:com|org|net|edu|gov|"
                          r"io|de|fr|uk|example|local|lan|internal|localdomain)(?![\w.-])")
_HEADING_AFTER_RE = regex.compile(r"\.?[ \t]+\p{Lu}")

# --- KEY ---------------------------------------------------------------------------------------------
# '/' is deliberately not a key character: URL paths (``/2023/05/some-title``) are far more common in web
# text than base64 secrets containing '/', which are therefore redacted segment by segment.
# '=' only as base64 padding, so ``token=<secret>`` redacts the secret, not the parameter name.
_KEY_RE = regex.compile(r"(?<![\p{L}\p{N}_+\-])[A-Za-z0-9_+\-]{16,256}+={0,2}(?![\p{L}\p{N}_+=\-])")
_KEY_PREFIX_RE = regex.compile(
    r"(?:sk|pk|rk)[-_](?:live_|test_|proj-)?[A-Za-z0-9_\-]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}|AIza[0-9A-Za-z_\-]{35}|glpat-[A-Za-z0-9_\-]{20}"
)
# Digests and UUIDs are checksums and constants far more often than secrets: keys only after a secret word.
_DIGEST_RE = regex.compile(
    r"(?:0x)?[0-9a-fA-F]{16,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_MACRO_RE = regex.compile(r"[A-Z0-9_]*_[A-Z0-9_]*")  # C macros: ``__USE_XOPEN2K8XSI``, ``SQLITE_OMIT_X``
_ASCII_DIGIT_RE, _ASCII_LETTER_RE = regex.compile(r"[0-9]"), regex.compile(r"[A-Za-z]")
_LETTER_DIGIT_FLIP_RE = regex.compile(r"[A-Za-z](?=\d)|\d(?=[A-Za-z])")

# --- IBAN / CREDIT_CARD / PHONE ----------------------------------------------------------------------
_IBAN_RE = regex.compile(r"(?<![\p{L}\p{N}])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![\p{L}\p{N}])")
# A run of digit groups joined by single spaces or dashes; cards are cut out of it group by group, so a
# list of numbers does not make one number run into the next.
_CARD_RUN_RE = regex.compile(r"(?<![\p{N}\-+.,/:_])\d{1,19}+(?:[ \-]\d{1,19}+)*+")
_CARD_GROUP_RE = regex.compile(r"\d+")
_HEXDUMP_LINE_RE = regex.compile(r"[ \t]*+[0-9a-fA-F]{4,16}+:")  # matched at a line start
_HEX_LETTER_RE = regex.compile(r"\b(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{2,8}\b")
# A maximal run of phone-ish characters; starts inside a run are excluded so long runs cost one try.
_PHONE_RUN_RE = regex.compile(
    r"(?:\+\(?|(?<![\p{N}+(\-./)]|[\p{N})][ \u00a0])\(?)\d[\d \u00a0\-.()/]{4,48}+"
    r"(?![\p{N}\-.()/]|[ \u00a0][\p{N}(])"
)
_PHONE_GROUP_RE = regex.compile(r"\d+")
# libphonenumber accepts ``2023-01-15 10`` as a number when it cannot see the ``:30`` after it.
_YEAR, _MONTH, _DAY = r"(?:1[89]|20)\d\d", r"(?:0?[1-9]|1[0-2])", r"(?:0?[1-9]|[12]\d|3[01])"
_DATE_RE = regex.compile(
    rf"(?<![\d.\-/]){_YEAR}([-/.]){_MONTH}\1{_DAY}(?![-/.]?\d)"
    rf"|(?<![\d.\-/])(?:{_DAY}([-/.]){_MONTH}|{_MONTH}([-/.]){_DAY})(?:\2|\3)(?:{_YEAR}|\d\d)(?![-/.]?\d)"
)
_YEAR_SPAN_RE = regex.compile(r"\(?(1\d\d\d|20\d\d)\)?[\-\u2013/]\(?(1\d\d\d|20\d\d)\)?")
_IBAN_HEAD_RE = regex.compile(r"\b[A-Z]{2}\d{2}(?: ?[0-9A-Z]{4}){0,7}+ ?$")
_ZIP4_RE = regex.compile(r"\d{5}-\d{4}")
_ISO_DATE_RE = regex.compile(r"(?<!\d)\d{4}-[01]\d-[0-3]\d(?!\d)")
_TABLE_BEFORE_RE = regex.compile(r"\d[ \t]{2,}+$|\d\t$")
_TABLE_AFTER_RE = regex.compile(r"[ \t]{2,}+\d|\t\d")
_PLAIN_DIGITS_RE = regex.compile(r"\d+")
_NON_SPACE_RE = regex.compile(r"\S+")


def _line_start(text: str, pos: int, limit: int = 200) -> int:
    """Where the line holding `pos` starts, looking back at most `limit` characters: every look at the
    surrounding line is bounded, or a document without newlines would make each look cost its length."""
    lo = max(0, pos - limit)
    nl = text.rfind("\n", lo, pos)
    return nl + 1 if nl >= 0 else lo


# --- EMAIL ---------------------------------------------------------------------------------------------
def _email(text: str) -> Iterator[Span]:
    for m in _EMAIL_RE.finditer(text):
        domain = m.group(1)
        end = m.end() + len(domain)
        if _DOMAIN_CHAR_RE.match(text, end):
            continue  # longer than any real domain: refuse rather than redact half of it
        stripped = domain.rstrip(".")
        labels = stripped.split(".")
        if len(labels) < 2 or any(not lab or lab[0] == "-" or lab[-1] == "-" for lab in labels):
            continue
        tld = labels[-1]
        if not _TLD_RE.fullmatch(tld) or tld.lower() in _FILE_EXT_TLDS:
            continue
        if text[m.start() - 3:m.start()] == "PI:" and text[m.start():m.end() - 1] in TAGS:
            continue  # ``scheme://PI:KEY@host``: the credentials were scrubbed, the host is no address
        yield m.start(), m.end() + len(stripped)


_PLACEHOLDERS = frozenset(f"PI:{t}" for t in TAGS)


def _url_credentials(text: str) -> Iterator[Span]:
    for m in _URL_CRED_RE.finditer(text):
        if m.group()[:-1] not in _PLACEHOLDERS:  # ``PI:KEY@host`` is already scrubbed
            yield m.start(), m.end() - 1  # ``user:password``; the '@' and the host stay


def _joined(text: str) -> tuple[str, list[int], list[int]] | None:
    """The text with the line breaks inside possible addresses removed, and the segment starts (joined,
    original) that map a joined position back; None when there is no such break (the common case)."""
    if "\n" not in text:
        return None
    pieces: list[str] = []
    j_starts, o_starts = [0], [0]
    pos = jpos = 0
    for m in _BREAK_RE.finditer(text):
        mark = m.group(1)
        if mark == ".":  # only an unfinished domain continues after a dot at the end of a line
            line_start = _line_start(text, m.start(), 80)
            if not _OPEN_DOMAIN_RE.search(text, max(line_start, m.start() - 80), m.start() + 1):
                continue
        keep = "" if mark == "\u2010" else mark
        pieces.append(text[pos:m.start()] + keep)
        jpos += m.start() - pos + len(keep)
        pos = m.end()
        j_starts.append(jpos)
        o_starts.append(pos)
    if not pieces:
        return None
    pieces.append(text[pos:])
    return "".join(pieces), j_starts, o_starts


def _wrapped(find: Callable[[str], Iterable[Span]]) -> Callable[[str], Iterator[Span]]:
    """`find` on the text and on its joined view; a span of the joined view that crossed a removed break
    is mapped back to the original, where it covers the break."""

    def found(text: str) -> Iterator[Span]:
        yield from find(text)
        view = _joined(text)
        if view is None:
            return
        joined, j_starts, o_starts = view

        def orig(p: int) -> int:
            i = bisect.bisect_right(j_starts, p) - 1
            return o_starts[i] + p - j_starts[i]

        for s, e in find(joined):
            if bisect.bisect_right(j_starts, s) != bisect.bisect_right(j_starts, e - 1):
                yield orig(s), orig(e - 1) + 1

    return found


# --- USER ----------------------------------------------------------------------------------------------
def _user(text: str) -> Iterator[Span]:
    stop = _words("user", "stoplist")
    for m in _USER_RE.finditer(text):
        name = m.group(1).rstrip(".-")
        start = m.start()
        if len(name) < 3 or name.lower() in stop or not _LETTER_RE.search(name):
            continue
        end = start + 1 + len(name)
        if text.startswith("{", end) or _RESPONSE_FILE_RE.fullmatch(name):
            continue  # Texinfo ``@command{ls}``; response files ``[@file]``, ``@file1``
        if text[start - 1:start] in _CODE_BEFORE_AT or _CODE_AFTER_NAME_RE.match(text, end):
            continue  # code: Perl ``my @files = ...``, ``(@path)``, symbol versions ``)@Base``
        if not any(c.islower() for c in name):
            continue  # ``@INC``, ``@ARGV``, ``@STRENGTH``: variables and keywords, not people
        if (text.startswith("(", end) or text[end:end + 1] in ("\n", "\r", "")) \
                and not text[_line_start(text, start):start].strip():
            continue  # a decorator or annotation on a line of its own
        yield start, end


# --- IP_ADDRESS ----------------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _ip_excluded(private: bool, documentation: bool) -> tuple[Any, ...]:
    ip = rules()["ip"]
    groups = ["never"] + ([] if private else ["private"]) + ([] if documentation else ["documentation"])
    return tuple(ipaddress.ip_network(str(n)) for g in groups for n in ip[g])


_PLACEHOLDER_WORDS = frozenset({"pi", *(t.lower() for t in TAGS)})


def _is_netmask(value: int) -> bool:
    inverse = ~value & 0xFFFFFFFF
    return value != 0 and inverse & (inverse + 1) == 0


def _ip_finder(private: bool, documentation: bool) -> Callable[[str], Iterator[Span]]:
    excluded = _ip_excluded(private, documentation)
    excluded4 = [(int(n.network_address), int(n.netmask)) for n in excluded if n.version == 4]
    cfg = rules()["ip"]
    window, small = int(cfg["window"]), int(cfg["max_small_octet"])
    network, version = _words("ip", "network_words"), _words("ip", "version_words")

    def networked(text: str, s: int, e: int) -> bool:
        if _CIDR_OR_PORT_RE.match(text, e):
            return True
        if not _LISTED_WORD_CHAR_RE.search(text, max(0, s - window), min(len(text), e + window)):
            return False  # no letter near: neither a host name nor a network word
        if _HOSTNAME_RE.search(text, max(0, s - window), min(len(text), e + window)):
            return True  # ``mirrors.kernel.org: 139.178.88.99``, hosts files
        near = _words_near(text, s - window, s) + _words_near(text, e, e + window // 2)
        return any(w in network or any(p in network for p in w.split("_")) for w in near
                   if w not in _PLACEHOLDER_WORDS)  # an earlier replacement is no evidence

    def find(text: str) -> Iterator[Span]:
        # Written for a flood of quads (issue 19: 66,000 in a megabyte): the independent reasons to skip
        # are tested cheapest first, which does not change what is found.
        for m in _IPV4_RE.finditer(text):
            a, b, c, d = parts = m.group().split(".")
            if (len(a) > 1 and a[0] == "0") or (len(b) > 1 and b[0] == "0") \
                    or (len(c) > 1 and c[0] == "0") or (len(d) > 1 and d[0] == "0"):
                continue  # leading zeros: dates, versions, thousands (``1.073.741.824``)
            octets = [int(o) for o in parts]
            if max(octets) > 255:
                continue
            value = (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]
            if _is_netmask(value):
                continue
            for net, mask in excluded4:
                if value & mask == net:
                    break
            else:
                s, e = m.span()
                before = _words_near(text, s - 24, s)[-1:]
                if before and before[0] in version:
                    continue  # ``since dpkg 1.15.5.4``, ``Abschnitt 8.1.2.2``
                if _HEADING_AFTER_RE.match(text, e) and not text[_line_start(text, s):s].strip():
                    continue  # a section heading: ``6.2.4.1. Hostname resolution``
                bigs = (octets[0] > small) + (octets[1] > small) + (octets[2] > small) + (octets[3] > small)
                if bigs >= 2 or networked(text, s, e):
                    yield s, e
        for m in _ipv6_candidates(text):
            cand = m.group().rstrip(".")
            # ``x[1::2]`` and ``::1`` are valid IPv6 but not personal; real addresses have 3+ hextets.
            hextets = sum(2 if "." in part else 1 for part in cand.split(":") if part)  # a.b.c.d is two
            if hextets < 3 or not any(c.isdigit() for c in cand):
                continue
            try:
                addr6 = ipaddress.IPv6Address(cand)
            except ValueError:
                continue
            if any(addr6 in n for n in excluded if n.version == 6):
                continue
            yield m.start(), m.start() + len(cand)

    return find


def _ipv6_candidates(text: str) -> Iterator[regex.Match[str]]:
    """The matches of `_IPV6_RE` in `text`, with spans in `text`, at a fraction of the cost.

    The Unicode lookarounds of `_IPV6_RE` are tried at every position and made IPv6 the dearest PII scan,
    though most texts have no run of hex digits and colons at all. A match is made of `_IPV6_CHARS` and
    holds a ':', so it lies inside a maximal run of them holding a ':'; its lookarounds read one character
    on either side, so the run with one character of context matches exactly as the whole text does.
    The runs are found from their colons, which are few, and a run shorter than a match (the "e:" of
    "Note:") is skipped. tests/test_pii.py checks the equality.
    """
    pos = 0  # text[:pos] is done; the next run starts at pos or later
    while (colon := text.find(":", pos)) >= 0:
        start = colon
        while start > pos and text[start - 1] in _IPV6_CHARS:
            start -= 1
        pos = _IPV6_RUN_END_RE.match(text, colon).end()  # type: ignore[union-attr]  # `*` always matches
        if pos - start >= 3:
            yield from _IPV6_RE.finditer(text, max(0, start - 1), pos + 1)


# --- KEY -----------------------------------------------------------------------------------------------
def _looks_like_key(token: str) -> bool:
    # Long pure-digit runs are numbers (digits of pi, counters); pure-letter runs are words.
    if not (_ASCII_DIGIT_RE.search(token) and _ASCII_LETTER_RE.search(token)):
        return False
    if _KEY_PREFIX_RE.fullmatch(token):
        return True
    if token.startswith("_") or _MACRO_RE.fullmatch(token) or _mangled(token):
        return False  # code identifiers: mangled C++ ``_ZN3foo3barEv``, macros ``__USE_XOPEN2K8XSI``
    if len(set(token)) < 8:
        return False  # a placeholder such as ``AAAA0000FFFF...``: no secret has so few distinct characters
    # Product names (``RTX4090-Ti-16GB``) flip between letters and digits a few times per dash-separated
    # part; random secrets flip many times within one part.
    for part in regex.split(r"[-_]", token):
        if len(part) >= 10 and len(_LETTER_DIGIT_FLIP_RE.findall(part)) >= 4:
            return True
    return False


_MANGLED_PART_RE = regex.compile(r"(\d{1,3})")


def _mangled(token: str) -> bool:
    """An Itanium C++ mangled name: two or more length-prefixed identifiers (``N3NSA6ClassA7Private``)."""
    i, names, covered = 0, 0, 0
    while i < len(token):
        m = _MANGLED_PART_RE.match(token, i)
        if m is None:
            i += 1
            continue
        n = int(m.group(1))
        word = token[m.end():m.end() + n]
        if n >= 3 and len(word) == n and word[0].isalpha() and word.replace("_", "a").isalnum():
            names += 1
            covered += m.end() - i + n
            i = m.end() + n
        else:
            i = m.end()
    return names >= 3 or (names >= 2 and covered >= 0.75 * len(token))


def _key(text: str) -> Iterator[Span]:
    secret = _words("key", "secret_words")
    window = int(rules()["key"]["window"])
    for m in _KEY_RE.finditer(text):
        token = m.group()
        if _DIGEST_RE.fullmatch(token.rstrip("=")):
            if len(set(token)) >= 8 and any(w in secret or any(p in secret for p in w.split("_"))
                   for w in _words_near(text, m.start() - window, m.start())):
                yield m.span()  # ``api_key: 9f86d0...``: a digest-shaped secret
            continue  # a checksum, a GUID, a UUID constant
        if _looks_like_key(token):
            yield m.span()


# --- IBAN ----------------------------------------------------------------------------------------------
_IBAN_LETTERS = {ord(c): str(ord(c) - ord("A") + 10) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


def _mod97(compact: str) -> int:
    """Cheap checksum pre-filter: stdnum's full validation is ~20x slower and most candidates fail."""
    return int((compact[4:] + compact[:4]).translate(_IBAN_LETTERS)) % 97


def _iban_spans(text: str) -> Iterator[Span]:
    for m in _IBAN_RE.finditer(text):
        # The candidate may have run into a following uppercase word; retry with fewer groups.
        groups = list(_NON_SPACE_RE.finditer(m.group()))
        for k in range(len(groups), 0, -1):
            compact = "".join(g.group() for g in groups[:k])
            if len(compact) < 15:
                break
            if _mod97(compact) == 1 and _iban.is_valid(compact):
                yield m.start(), m.start() + groups[k - 1].end()
                break


# --- CREDIT_CARD ---------------------------------------------------------------------------------------
def _plausible_iin(digits: str) -> bool:
    """Issuer prefixes and lengths of the major schemes; Luhn alone passes 1 in 10 random numbers."""
    n, p2, p4 = len(digits), int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16
    if p2 in (34, 37):
        return n == 15
    if p2 in (36, 38, 39) or 300 <= p4 <= 305 or 3528 <= p4 <= 3589:
        return 14 <= n <= 19
    if p2 in (50, 56, 57, 58) or digits[0] == "6":
        return 13 <= n <= 19
    return False


_LUHN_DOUBLE = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        total += _LUHN_DOUBLE[d] if i % 2 else d
    return total % 10 == 0


def _card_grouping(lengths: list[int]) -> bool:
    """How card numbers are written: one run, groups of four (the last 1-4), or Amex/Diners 4-6-5/4-6-4."""
    if len(lengths) == 1:
        return True
    if all(n == 4 for n in lengths[:-1]) and 1 <= lengths[-1] <= 4:
        return True
    return lengths in ([4, 6, 5], [4, 6, 4])


def _card(text: str) -> Iterator[Span]:
    hexdump_lines: dict[int, bool] = {}
    newlines: list[int] | None = None
    for m in _CARD_RUN_RE.finditer(text):
        run = m.group()
        if len(run) < 13:
            continue  # fewer than 13 digits: no card (hex dumps and keys are floods of such short runs)
        if text[m.end():m.end() + 1] in (".", ",") and text[m.end() + 1:m.end() + 2].isdigit():
            continue  # a decimal number
        groups = [(g.start(), g.end()) for g in _CARD_GROUP_RE.finditer(run)]
        base, i = m.start(), 0
        while i < len(groups):
            digits, found = "", -1
            for j in range(i, min(len(groups), i + 5)):
                digits += run[groups[j][0]:groups[j][1]]
                if len(digits) > 19:
                    break
                if (len(digits) >= 13 and _card_grouping([e - s for s, e in groups[i:j + 1]])
                        and _plausible_iin(digits) and _luhn_ok(digits)):
                    found = j
                    break
            if found < 0:
                i += 1
                continue
            s, e = base + groups[i][0], base + groups[found][1]
            if newlines is None:
                newlines = [nl.start() for nl in re.finditer("\n", text)]
            k = bisect.bisect_left(newlines, s)
            line = newlines[k - 1] + 1 if k else 0  # the real line start: one hex-dump check per line
            if line not in hexdump_lines:
                end = text.find("\n", s)
                row = text[line:end if end >= 0 else len(text)][:400]
                hexdump_lines[line] = bool(_HEXDUMP_LINE_RE.match(row)
                                           or len(_HEX_LETTER_RE.findall(row)) >= 2)
            if not hexdump_lines[line]:
                yield s, e
            i = found + 1


# --- PHONE ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _phone_words() -> tuple[frozenset[str], frozenset[str], int]:
    return _words("phone", "cue_words"), _words("phone", "veto_words"), int(rules()["phone"]["window"])


@lru_cache(maxsize=65536)
def _phone_valid(number: str, region: str | None) -> tuple[bool, bool]:
    """(valid, possible) for one candidate in one region; cached across documents (directories repeat)."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return False, False
    return phonenumbers.is_valid_number(parsed), phonenumbers.is_possible_number(parsed)


def _phone_veto(text: str, s: int, e: int, groups: list[str],
                numeric_row: Callable[[int, int], bool] | None = None) -> bool:
    """Numbers that validate but are something else: dates, year spans, ZIP+4, digit classes, table
    cells, numbers in brackets, and numbers after a word that names them (ISBN, inode...)."""
    # Issue 19: a megabyte of phone-shaped numbers reaches this 200,000 times, so context checks that
    # cannot fire (no letter near: no IBAN head) are skipped and the cue words are read once.
    window = text[s:e]
    if _YEAR_SPAN_RE.fullmatch(window) or _ZIP4_RE.fullmatch(window):
        return True
    if _LISTED_WORD_CHAR_RE.search(text, max(0, s - 48), s) and _IBAN_HEAD_RE.search(text, max(0, s - 48), s):
        return True  # the tail of an IBAN whose checksum failed (its head holds letters)
    years = [g for g in groups if len(g) == 4 and 1900 <= int(g) <= 2099]
    if years and len(groups) >= 3 and all(len(g) <= 2 for g in groups if g not in years):
        return True  # ``2003 08 30 36``: a date and a time
    before, after = text[s - 1:s], text[e:e + 1]
    if before in ("[", "{", ":") or after in ("]", "}", ":") or before.isalnum() or after.isalnum():
        return True  # ``[4026531837]``, ``08:01:7864448``, ``rsa3072 2016``, hex ``7567 656e``
    if "  " in window or "\t" in window:
        return True  # columns of a table (``043   35    23``): a number is written with single separators
    seps = set(window) - set("0123456789")
    if "." in seps and text[s] != "+" and any(len(g) != 2 for g in groups[1:]):
        return True  # dotted quads, versions, thousands (``1.073.741.824``); French ``01.23.45.67.89`` stays
    if seps == {"-"} and len(groups) == 2 and groups[0][0] != "0" and len(groups[0]) >= 4:
        return True  # a range: ``1024-65535``
    if text[s] != "+" and len(groups) >= 3 and len({len(g) for g in groups}) == 1 and len(groups[0]) >= 4 \
            and not any(g[0] == "0" for g in groups):
        return True  # a row of counts: ``3500 3000 2500``
    if any(len(g) == 1 for g in groups[2 if text[s] == "+" else 1:]):
        return True  # ``46828483 16683 0``, ``0-201-89683-4``: counts and check digits, not phone groups
    cued: bool | None = None  # read at most once
    if text[s] not in "+(" and len(groups) == 2 and groups[0][0] != "0" and not (cued := _cued(text, s)):
        return True  # two bare groups (``2748 1000``) are numbers unless a trunk 0 or a cue says phone
    if text[s] != "+" and len(groups) == 2 and len(groups[0]) <= 2 and len(groups[1]) >= 6 and seps == {" "}:
        return True  # ``sched-entry S 02 300000``: a small number, then a big one
    if cued is None:
        cued = _cued(text, s)
    if not cued and (numeric_row(s, e) if numeric_row else _numeric_row(text, s, e)):
        return True
    if any(a == b and len(a) >= 3 for a, b in itertools.pairwise(groups)):
        return True  # ``1000 1000``: repeated cells of a table
    if _ISO_DATE_RE.search(text, max(0, s - 2), min(len(text), e + 8)):
        return True
    line_start = _line_start(text, s)
    if _HEXDUMP_LINE_RE.match(text, line_start):
        return True
    if _TABLE_BEFORE_RE.search(text, line_start, s) or _TABLE_AFTER_RE.match(text, e):
        return True
    lo, hi = max(0, s - 3), min(len(text), e + 3)
    if any(d_s < e - lo and s - lo < d_e for d_s, d_e in (m.span() for m in _DATE_RE.finditer(text[lo:hi]))):
        return True
    _, veto, _ = _phone_words()
    return any(w in veto for w in _words_near(text, s - 16, s)[-3:])


_NUMBER_WORD_RE, _WORD_SPLIT_RE = regex.compile(r"(?<!\S)\d++(?!\S)"), regex.compile(r"\S++")


def _numeric_row(text: str, s: int, e: int) -> bool:
    """A row of a numeric table (``/proc/stat``, ``ps`` output): most words on the line are numbers."""
    lo = _line_start(text, s, 120)
    hi = text.find("\n", e, e + 120)
    line = text[lo:hi if hi >= 0 else min(len(text), e + 120)]
    numbers = len(_NUMBER_WORD_RE.findall(line))
    return numbers >= 6 and numbers >= 0.6 * len(_WORD_SPLIT_RE.findall(line))


class _NumericRows:
    """`_numeric_row` answered from one index of the document's space-separated words, built on first use.

    `_numeric_row` counts the words and the all-digit words of a bounded line around each candidate: with
    tens of thousands of phone-shaped candidates in one document that re-reads every line many times (8 s
    for a megabyte). The words of a window of the text are the document's words that overlap it, the two
    at its edges clipped; the counts are differences of positions in sorted lists. The answers are the
    same (tests/test_pii.py compares them on random text)."""

    def __init__(self, text: str) -> None:
        self.text = text
        spans = [m.span() for m in _WORD_SPLIT_RE.finditer(text)]
        self.starts = [a for a, _ in spans]
        self.ends = [b for _, b in spans]
        numbers = [m.span() for m in _NUMBER_WORD_RE.finditer(text)]
        self.n_starts = [a for a, _ in numbers]
        self.n_ends = [b for _, b in numbers]

    def __call__(self, s: int, e: int) -> bool:
        text = self.text
        lo = _line_start(text, s, 120)
        hi = text.find("\n", e, e + 120)
        hi = hi if hi >= 0 else min(len(text), e + 120)
        if hi <= lo:
            return False
        words = bisect.bisect_left(self.starts, hi) - bisect.bisect_right(self.ends, lo)
        numbers = max(0, bisect.bisect_right(self.n_ends, hi) - bisect.bisect_left(self.n_starts, lo))
        k = bisect.bisect_right(self.starts, lo) - 1
        if k >= 0 and self.starts[k] < lo < self.ends[k]:  # a word cut by the window's start
            numbers += bool(_PLAIN_DIGITS_RE.fullmatch(text, lo, min(self.ends[k], hi)))
        k2 = bisect.bisect_left(self.starts, hi) - 1
        if k2 >= 0 and self.starts[k2] >= lo and hi < self.ends[k2]:  # a word cut by its end
            numbers += bool(_PLAIN_DIGITS_RE.fullmatch(text, self.starts[k2], hi))
        return numbers >= 6 and numbers >= 0.6 * words


def _cued(text: str, s: int) -> bool:
    cue, _, window = _phone_words()
    return any(w in cue for w in _words_near(text, s - window, s))


def _phone_finder(regions: tuple[str, ...]) -> Callable[[str], Iterator[Span]]:
    def find(text: str) -> Iterator[Span]:
        """Candidates pass cheap shape checks and vetoes before libphonenumber (~0.3 ms a call) sees
        them. A document gets a budget of calls proportional to its length, so a flood of phone-shaped
        digits costs linear time; past the budget a candidate counts only when a number of the same
        shape (leading digits and grouping) validated earlier in the document."""
        cue, _, window = _phone_words()
        budget = 100 + len(text) // 10000
        shapes: dict[tuple[str, tuple[int, ...]], bool] = {}
        order = regions
        rows: _NumericRows | None = None

        def numeric_row(s: int, e: int) -> bool:
            nonlocal rows
            if rows is None:
                rows = _NumericRows(text)
            return rows(s, e)

        for m in _PHONE_RUN_RE.finditer(text):
            run = m.group().rstrip(" \u00a0-./(")
            groups = [(g.start(), g.end()) for g in _PHONE_GROUP_RE.finditer(run)]
            glen = [b - a for a, b in groups]
            cum = [0, *itertools.accumulate(glen)]  # digits in groups[i:j + 1]: cum[j + 1] - cum[i]
            i = 0
            while i < len(groups):
                # The longest window of whole groups from group i with 7-15 digits, shrinking from the right.
                best = None
                for j in range(min(len(groups), i + 6) - 1, i - 1, -1):
                    if not 7 <= cum[j + 1] - cum[i] <= 15 or (j > i + 1 and 1 in glen[i + 2:j + 1]):
                        continue  # the 1-digit-group veto, checked before any string is built
                    lengths = glen[i:j + 1]
                    if sum(n >= 6 for n in lengths) > 1:
                        continue
                    s_rel = groups[i][0]
                    if i == 0 and run[:1] in "+(":
                        s_rel = 0  # keep the '+' or '(' that opens the number
                    s, e = m.start() + s_rel, m.start() + groups[j][1]
                    plus = text[s] == "+"
                    if j == i and not plus:
                        continue  # a bare digit string is as likely an ID, count or timestamp
                    if text[e:e + 1] == ")" and "(" in text[s:e] and ")" not in text[s:e]:
                        e += 1
                    gs = [run[a:b] for a, b in groups[i:j + 1]]
                    shape = (("+" if plus else "") + "".join(gs)[:4], tuple(lengths))
                    ok = shapes.get(shape)
                    if (ok is None and budget <= 0) or ok is False \
                            or _phone_veto(text, s, e, gs, numeric_row):
                        continue
                    if ok is None:
                        if budget <= 0:
                            continue
                        ok = False
                        for region in ((None,) if plus else order):
                            budget -= 1
                            valid, possible = _phone_valid(text[s:e], region)
                            cued = plus and possible and any(
                                w in cue for w in _words_near(text, s - window, s))
                            if valid or cued or (plus and possible and len(gs) >= 3):
                                ok = True
                                if region is not None and region != order[0]:
                                    order = (region, *(r for r in order if r != region))
                                break
                        shapes[shape] = ok
                    if ok:
                        best = (s, e, j)
                        break
                if best is None:
                    i += 1
                    continue
                yield best[0], best[1]
                i = best[2] + 1

    return find


def non_overlapping(candidates: Iterable[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """(start, end, tag) spans sorted by start; a candidate overlapping an earlier-chosen one is dropped, so
    the order of the candidates is the detectors' priority."""
    starts: list[int] = []
    chosen: list[tuple[int, int, str]] = []
    for s, e, tag in candidates:
        i = bisect.bisect_left(starts, s)
        if (i > 0 and chosen[i - 1][1] > s) or (i < len(chosen) and chosen[i][0] < e):
            continue
        starts.insert(i, s)
        chosen.insert(i, (s, e, tag))
    return chosen


_LINE_BREAKS_RE = regex.compile(r"[ \t]*+(?:\r?\n|\r)[ \t]*+")


def placeholder(original: str, tag: str) -> str:
    """``PI:<TAG>``, followed by the line breaks that were inside the replaced value (their indentation
    went with the value), so a wrapped address leaves as many lines as it found instead of joining them."""
    return f"PI:{tag}" + "".join(_LINE_BREAKS_RE.findall(original)).replace(" ", "").replace("\t", "") \
        if "\n" in original or "\r" in original else f"PI:{tag}"


@dataclass(frozen=True)
class PiiScrubber:
    """Replaces PII spans with ``PI:<TAG>``; construct once and reuse, it is immutable and thread-safe.

    `private_ips`: addresses of private networks (10/8, 192.168/16...) count as IP_ADDRESS (the ROOTS
    behaviour); `documentation_ips`: so do the documentation ranges (192.0.2.0/24...), which real text
    only uses in examples but synthetic samples use as stand-ins for real addresses."""

    tags: frozenset[str] = frozenset(TAGS)
    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS
    private_ips: bool = True
    documentation_ips: bool = False

    def __post_init__(self) -> None:
        tags = frozenset((self.tags,) if isinstance(self.tags, str) else self.tags)
        unknown = sorted(tags - set(TAGS))
        if unknown:
            raise UserError(f"unknown PII tag(s) {unknown}; valid tags are: {', '.join(TAGS)}")
        regions = tuple(r.upper() for r in self.phone_regions)
        bad = sorted(set(regions) - phonenumbers.SUPPORTED_REGIONS)
        if bad:
            raise UserError(f"unknown phone region(s) {bad}; use ISO 3166-1 alpha-2 codes such as US, FR")
        object.__setattr__(self, "tags", tags)
        object.__setattr__(self, "phone_regions", regions)

    def _detectors(self) -> list[tuple[str, Callable[[str], Iterable[Span]]]]:
        # Order is overlap priority: structured, checksummed matches beat the looser heuristics, and an
        # address beats the ``@name`` inside it.
        every = [
            ("KEY", _wrapped(_url_credentials)),
            ("EMAIL", _wrapped(_email)),
            ("IBAN", _iban_spans),
            ("CREDIT_CARD", _card),
            ("IP_ADDRESS", _ip_finder(self.private_ips, self.documentation_ips)),
            ("USER", _user),
            ("PHONE", _phone_finder(self.phone_regions or ("ZZ",))),
            ("KEY", _key),
        ]
        return [(tag, fn) for tag, fn in every if tag in self.tags]

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """The spans one pass replaces: (start, end, tag), sorted, not overlapping."""
        return non_overlapping((s, e, tag) for tag, fn in self._detectors()
                               for s, e in sorted(fn(text), key=lambda sp: (sp[0], -sp[1])))

    _find = find

    def replacements(self, text: str) -> tuple[str, dict[str, int], list[Replacement]]:
        """Scrubbed text, count per tag, and the replaced spans of the *original* text with their values.

        A replacement can create a new match (``x@y.<key>`` becomes ``x@y.PI:KEY``, an address), so we
        repeat until nothing matches; that is what makes ``scrub`` idempotent. It terminates because every
        match contains a digit or '@' and no placeholder does, so each pass strictly removes some; the
        pass cap only bounds cost on pathological input (real text settles in one or two passes). A span
        of a later pass is mapped back to the original text, swallowing the earlier spans it covers.
        """
        original = text
        counts: dict[str, int] = {}
        # current text = segments; a replaced one remembers its original span
        done: list[tuple[int, int, int, int, str]] = []  # (cur_start, cur_end, orig_start, orig_end, tag)
        for _ in range(16):
            spans = self.find(text)
            if not spans:
                break
            pieces, pos, shift = [], 0, 0
            new: list[tuple[int, int, int, int, str]] = []
            old = iter(done)
            pending = next(old, None)
            for s, e, tag in spans:
                if done:
                    s, e = _widen(done, s, e)  # a span reaching into an earlier placeholder takes all of it
                    os_, oe = _to_original(done, s, e)
                else:
                    os_, oe = s, e  # the first pass: current text is the original
                while pending is not None and pending[1] <= s:
                    new.append((pending[0] + shift, pending[1] + shift, *pending[2:]))
                    pending = next(old, None)
                while pending is not None and pending[0] < e:
                    pending = next(old, None)  # swallowed by the new span
                token = placeholder(text[s:e], tag)
                pieces += [text[pos:s], token]
                new.append((s + shift, s + shift + len(token), os_, oe, tag))
                shift += len(token) - (e - s)
                pos = e
                counts[tag] = counts.get(tag, 0) + 1
            while pending is not None:
                new.append((pending[0] + shift, pending[1] + shift, *pending[2:]))
                pending = next(old, None)
            pieces.append(text[pos:])
            text = "".join(pieces)
            done = sorted(new)
        return text, counts, [Replacement(os_, oe, tag, original[os_:oe]) for _, _, os_, oe, tag in done]

    def scrub(self, text: str) -> tuple[str, dict[str, int]]:
        """Return scrubbed text and count of replacements per tag (only tags with >0)."""
        out, counts, _ = self.replacements(text)
        return out, counts


def _widen(done: list[tuple[int, int, int, int, str]], s: int, e: int) -> tuple[int, int]:
    i = bisect.bisect_right(done, (s, float("inf"))) - 1
    if i >= 0 and done[i][0] < s < done[i][1]:
        s = done[i][0]
    j = bisect.bisect_left(done, (e, -1)) - 1
    if j >= 0 and done[j][0] < e < done[j][1]:
        e = done[j][1]
    return s, e


def _to_original(done: list[tuple[int, int, int, int, str]], s: int, e: int) -> tuple[int, int]:
    """The original span of current-text span [s, e), given the replacements made so far (sorted)."""

    def at(p: int, end: bool) -> int:
        # the last replacement starting before p (at or before, for a start) decides
        i = (bisect.bisect_left(done, (p, -1)) if end else bisect.bisect_right(done, (p, float("inf")))) - 1
        if i < 0:
            return p
        cs, ce, os_, oe, _ = done[i]
        if cs <= p < ce or (end and cs < p <= ce):
            return oe if end else os_
        return p + oe - ce

    return at(s, False), at(e, True)


def pii_settings(values: Any, where: str) -> dict[str, bool]:
    """A card's `recipe.pii_rules` mapping checked against `RULE_SETTINGS` (UserError naming `where`)."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise UserError(f"{where}: expected a mapping of {', '.join(RULE_SETTINGS)} to true/false")
    bad = sorted(str(k) for k in values if k not in RULE_SETTINGS)
    if bad:
        raise UserError(f"{where}: unknown PII rule setting(s) {', '.join(bad)}; "
                        f"valid: {', '.join(RULE_SETTINGS)}")
    wrong = sorted(str(k) for k, v in values.items() if not isinstance(v, bool))
    if wrong:
        raise UserError(f"{where}: {', '.join(wrong)} must be true or false")
    return {str(k): bool(v) for k, v in values.items()}


@lru_cache(maxsize=64)
def _scrubber(tags: frozenset[str]) -> PiiScrubber:
    return PiiScrubber(tags=tags)


def scrub(text: str, tags: Iterable[str] | None = None) -> tuple[str, dict[str, int]]:
    """Convenience wrapper with default phone regions; ``tags=None`` means every tag."""
    chosen = frozenset(TAGS) if tags is None else frozenset((tags,) if isinstance(tags, str) else tags)
    return _scrubber(chosen).scrub(text)
