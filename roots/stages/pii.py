"""PII redaction in the spirit of ROOTS section 5.1: matched spans become the literal ``PI:<TAG>``.

ROOTS shipped EMAIL, USER, IP_ADDRESS and KEY and switched phone/ID regexes off because they hit dates,
versions and prices. We keep the ROOTS tags, and bring phones, IBANs and card numbers back only behind
validators (libphonenumber metadata, IBAN mod-97, Luhn), which is what makes them affordable.

Every regex is a *candidate* finder with bounded, possessive quantifiers and lookaround boundaries, so
each text position is tried in bounded time; the judgement calls live in small Python validators. That
keeps adversarial documents (``a@a@a@...``, endless digit runs) linear instead of catastrophic.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
import regex
from phonenumbers import Leniency, PhoneNumberMatcher
from stdnum import iban as _iban
from stdnum import luhn as _luhn

from roots.core.errors import UserError

TAGS: tuple[str, ...] = ("EMAIL", "USER", "IP_ADDRESS", "KEY", "PHONE", "IBAN", "CREDIT_CARD")
DEFAULT_PHONE_REGIONS: tuple[str, ...] = ("US", "GB", "FR", "DE", "IN", "CN", "BR", "ES")

Span = tuple[int, int]

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

_LETTER_RE = regex.compile(r"\p{L}")
_USER_RE = regex.compile(
    r"(?<![\p{L}\p{M}\p{N}_.+\-@/])@([\p{L}\p{M}\p{N}_.\-]{3,64}+)(?![\p{L}\p{M}\p{N}_.\-@])"
)
# Decorators and CSS at-rules are the bulk of USER false positives in code-heavy web text.
_USER_STOPLIST = frozenset(
    (
        "media", "import", "font-face", "keyframes", "charset", "supports", "namespace", "property",
        "staticmethod", "classmethod", "dataclass", "override", "param", "return", "returns", "throws",
        "author", "since", "deprecated", "interface", "implementation", "end", "protocol", "synthesize",
    )
)

# --- IP_ADDRESS --------------------------------------------------------------------------------------
_IPV4_RE = regex.compile(r"(?<![\p{L}\p{N}_.])(?:\d{1,3}\.){3}\d{1,3}(?![\p{L}\p{N}_]|\.\p{N})")
_IPV6_RE = regex.compile(r"(?<![\p{L}\p{N}_:.])(?=[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:.]{3,45}+(?![\p{L}\p{N}_:])")
# The characters of an IPv6 candidate, and the rest of a run of them.
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")
_IPV6_RUN_END_RE = re.compile(r"[0-9A-Fa-f:.]*")

# --- KEY ---------------------------------------------------------------------------------------------
# '/' is deliberately not a key character: URL paths (``/2023/05/some-title``) are far more common in web
# text than base64 secrets containing '/', which are therefore redacted segment by segment.
# '=' only as base64 padding, so ``token=<secret>`` redacts the secret, not the parameter name.
_KEY_RE = regex.compile(r"(?<![\p{L}\p{N}_+\-])[A-Za-z0-9_+\-]{16,256}+={0,2}(?![\p{L}\p{N}_+=\-])")
_KEY_PREFIX_RE = regex.compile(
    r"(?:sk|pk|rk)[-_](?:live_|test_|proj-)?[A-Za-z0-9_\-]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}|AIza[0-9A-Za-z_\-]{35}|glpat-[A-Za-z0-9_\-]{20}"
    r"|[0-9a-f]{32,}|[0-9A-F]{32,}"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_ASCII_DIGIT_RE, _ASCII_LETTER_RE = regex.compile(r"[0-9]"), regex.compile(r"[A-Za-z]")
_LETTER_DIGIT_FLIP_RE = regex.compile(r"[A-Za-z](?=\d)|\d(?=[A-Za-z])")

# --- IBAN / CREDIT_CARD / PHONE ----------------------------------------------------------------------
_IBAN_RE = regex.compile(r"(?<![\p{L}\p{N}])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![\p{L}\p{N}])")
_CARD_RE = regex.compile(r"(?<![\p{N}\-+.,])\d(?:[ \-]?\d){12,18}+(?![ \-]?\p{N}|[.,]\p{N})")
# A maximal run of phone-ish characters; starts inside a run are excluded so long runs cost one try.
_PHONE_RUN_RE = regex.compile(
    r"(?:\+\(?|(?<![\p{N}+(\-./)]|[\p{N})][ \u00a0])\(?)\d[\d \u00a0\-.()/]{4,48}+"
    r"(?![\p{N}\-.()/]|[ \u00a0][\p{N}(])"
)
# libphonenumber accepts ``2023-01-15 10`` as a number when it cannot see the ``:30`` after it.
_YEAR, _MONTH, _DAY = r"(?:1[89]|20)\d\d", r"(?:0?[1-9]|1[0-2])", r"(?:0?[1-9]|[12]\d|3[01])"
_DATE_RE = regex.compile(
    rf"(?<![\d.\-/]){_YEAR}([-/.]){_MONTH}\1{_DAY}(?![-/.]?\d)"
    rf"|(?<![\d.\-/])(?:{_DAY}([-/.]){_MONTH}|{_MONTH}([-/.]){_DAY})(?:\2|\3)(?:{_YEAR}|\d\d)(?![-/.]?\d)"
)
_PLAIN_DIGITS_RE = regex.compile(r"\d+")
_NON_SPACE_RE = regex.compile(r"\S+")


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
        yield m.start(), m.end() + len(stripped)


def _user(text: str) -> Iterator[Span]:
    for m in _USER_RE.finditer(text):
        name = m.group(1).rstrip(".-")
        if len(name) >= 3 and _LETTER_RE.search(name) and name.lower() not in _USER_STOPLIST:
            yield m.start(), m.start() + 1 + len(name)


def _ip(text: str) -> Iterator[Span]:
    for m in _IPV4_RE.finditer(text):
        try:
            ipaddress.IPv4Address(m.group())  # also rejects leading zeros, which are dates/versions
        except ValueError:
            continue
        yield m.span()
    for m in _ipv6_candidates(text):
        cand = m.group().rstrip(".")
        # ``x[1::2]`` and ``::1`` are valid IPv6 but not personal; real addresses have 3+ hextets.
        hextets = sum(2 if "." in part else 1 for part in cand.split(":") if part)  # a.b.c.d is two
        if hextets < 3 or not any(c.isdigit() for c in cand):
            continue
        try:
            ipaddress.IPv6Address(cand)
        except ValueError:
            continue
        yield m.start(), m.start() + len(cand)


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


def _looks_like_key(token: str) -> bool:
    # Long pure-digit runs are numbers (digits of pi, counters); pure-letter runs are words.
    if not (_ASCII_DIGIT_RE.search(token) and _ASCII_LETTER_RE.search(token)):
        return False
    if _KEY_PREFIX_RE.fullmatch(token):
        return True
    # Product names (``RTX4090-Ti-16GB``) flip between letters and digits a few times per dash-separated
    # part; random secrets flip many times within one part.
    for part in regex.split(r"[-_]", token):
        if len(part) >= 10 and len(_LETTER_DIGIT_FLIP_RE.findall(part)) >= 4:
            return True
    return False


def _key(text: str) -> Iterator[Span]:
    for m in _KEY_RE.finditer(text):
        if _looks_like_key(m.group()):
            yield m.span()


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


def _card(text: str) -> Iterator[Span]:
    for m in _CARD_RE.finditer(text):
        digits = "".join(_PLAIN_DIGITS_RE.findall(m.group()))
        if _plausible_iin(digits) and _luhn.is_valid(digits):
            yield m.span()


@lru_cache(maxsize=4096)
def _phones_in(snippet: str, core: Span, regions: tuple[str, ...]) -> tuple[tuple[Span, ...], str | None]:
    """Phone spans in ``snippet``, whose ``core`` is the digit run and the rest context for vetoes.

    Cached because directories repeat the same numbers; regions are tried only until every digit of the
    run is explained, since each libphonenumber pass costs ~0.15 ms. Also returns the region that did so.
    """
    found: set[Span] = set()
    run = snippet[core[0] : core[1]]
    digits = sum(c.isdigit() for c in run)
    dates = [m.span() for m in _DATE_RE.finditer(snippet)]
    for region in regions:
        for m in PhoneNumberMatcher(snippet, region, leniency=Leniency.VALID):
            raw = m.raw_string
            # A bare digit string is as likely an ID, count or timestamp as a phone number.
            if not raw.startswith("+") and _PLAIN_DIGITS_RE.fullmatch(raw):
                continue
            if any(s < m.end and m.start < e for s, e in dates):
                continue
            found.add((m.start, m.end))
        covered = sum(c.isdigit() for s, e in found for c in snippet[max(s, core[0]) : min(e, core[1])])
        if covered >= digits:
            return tuple(sorted(found)), region
        if run.startswith(("+", "(+")):
            break  # +international numbers parse alike in every region: no point trying the others
    return tuple(sorted(found)), None


def _phone_finder(regions: tuple[str, ...]) -> Callable[[str], Iterator[Span]]:
    def find(text: str) -> Iterator[Span]:
        order = regions  # a document's numbers mostly share a country: try the last good region first
        for m in _PHONE_RUN_RE.finditer(text):
            run = m.group().rstrip(" \u00a0-./(")
            if sum(c.isdigit() for c in run) < 7:
                continue
            # A little context lets libphonenumber veto ``$`` before, letters around, ``:30`` after.
            lo, hi = max(0, m.start() - 3), min(len(text), m.start() + len(run) + 3)
            core = (m.start() - lo, m.start() - lo + len(run))
            spans, region = _phones_in(text[lo:hi], core, order)
            if region is not None and region != order[0]:
                order = (region, *(r for r in order if r != region))
            for s, e in spans:
                yield lo + s, lo + e

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


@dataclass(frozen=True)
class PiiScrubber:
    """Replaces PII spans with ``PI:<TAG>``; construct once and reuse, it is immutable and thread-safe."""

    tags: frozenset[str] = frozenset(TAGS)
    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS

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
            ("EMAIL", _email),
            ("IBAN", _iban_spans),
            ("CREDIT_CARD", _card),
            ("IP_ADDRESS", _ip),
            ("USER", _user),
            ("PHONE", _phone_finder(self.phone_regions or ("ZZ",))),
            ("KEY", _key),
        ]
        return [(tag, fn) for tag, fn in every if tag in self.tags]

    def _find(self, text: str) -> list[tuple[int, int, str]]:
        return non_overlapping((s, e, tag) for tag, fn in self._detectors()
                               for s, e in sorted(fn(text), key=lambda sp: (sp[0], -sp[1])))

    def scrub(self, text: str) -> tuple[str, dict[str, int]]:
        """Return scrubbed text and count of replacements per tag (only tags with >0).

        A replacement can create a new match (``x@y.<key>`` becomes ``x@y.PI:KEY``, an address), so we
        repeat until nothing matches; that is what makes ``scrub`` idempotent. It terminates because every
        match contains a digit or '@' and no placeholder does, so each pass strictly removes some; the
        pass cap only bounds cost on pathological input (real text settles in one or two passes).
        """
        counts: dict[str, int] = {}
        for _ in range(16):
            spans = self._find(text)
            if not spans:
                break
            pieces, pos = [], 0
            for s, e, tag in spans:
                pieces += [text[pos:s], "PI:", tag]
                pos = e
                counts[tag] = counts.get(tag, 0) + 1
            pieces.append(text[pos:])
            text = "".join(pieces)
        return text, counts


@lru_cache(maxsize=64)
def _scrubber(tags: frozenset[str]) -> PiiScrubber:
    return PiiScrubber(tags=tags)


def scrub(text: str, tags: Iterable[str] | None = None) -> tuple[str, dict[str, int]]:
    """Convenience wrapper with default phone regions; ``tags=None`` means every tag."""
    chosen = frozenset(TAGS) if tags is None else frozenset((tags,) if isinstance(tags, str) else tags)
    return _scrubber(chosen).scrub(text)
