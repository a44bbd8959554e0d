"""URL and domain rules of a source (card `recipe.urls`): an allow-list of seed domains or URL prefixes, and
deny-lists of domains read from blocklist files; plus the URL normalisation the URL dedup can use.

Why here, in `roots.io`: the web readers check a record's URL before they decode and extract its page, so a
pseudo-crawl (ROOTS: keep only the pages of chosen sites out of a large WARC set) does not pay extraction for
the pages it drops. The processor applies the same rules to any other format that has a URL field.

Blocklist formats read (the common ones): one domain per line (UT1's `domains` files, which FineWeb uses),
hosts files (`0.0.0.0 domain`), and UT1's `urls` files (`domain/path`, a URL prefix without scheme). `#`
starts a comment. A deny-list can hold millions of domains (UT1 `adult` has ~4.6M), so a loaded list is a
sorted array of 8-byte hashes (~37 MB for UT1 adult), not a Python set of strings (~400 MB), loaded once per
worker. A hash collision (p ~ 1e-12 per lookup at that size) could block one page wrongly; never the reverse.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np

from roots.core.errors import UserError

_IP = re.compile(r"^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+)$")


def host_of(url: str | None) -> str | None:
    """Lower-cased host without a trailing dot, or None for a URL without one."""
    if not url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    return host.rstrip(".") if host else None


def domain_of(url: str | None) -> str | None:
    """The site a page belongs to: its host without a leading `www.` (what boilerplate is counted per)."""
    host = host_of(url)
    if host is None:
        return None
    return host[4:] if host.startswith("www.") and host.count(".") >= 2 else host


def _suffixes(host: str) -> list[str]:
    """`a.b.example.org` -> [a.b.example.org, b.example.org, example.org, org]."""
    parts = host.split(".")
    return [".".join(parts[i:]) for i in range(len(parts))]


def _prefix_form(entry: str) -> str:
    """A URL prefix without scheme and `www.`, host lower-cased: `https://WWW.x.org/a` -> `x.org/a`."""
    text = entry.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    host = (parts.hostname or "").rstrip(".")
    host = host.removeprefix("www.")
    return f"{host}{parts.path or '/'}"


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class UrlRules:
    """The rules of one source; picklable and small (deny files travel as paths + their sha256).

    - `allow`: seed domains (`example.org`, matching its subdomains too) or URL prefixes (an entry with a
      `/`: `example.org/blog/`); when non-empty, only matching URLs are kept (`url_not_allowed`).
    - `deny`: domains or URL prefixes given inline; `deny_files`: (path, sha256) of blocklist files. A URL
      matching either is rejected (`url_blocked`), even when it is allowed.
    """

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    deny_files: tuple[tuple[str, str], ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.allow or self.deny or self.deny_files)

    def check(self, url: str | None) -> tuple[str, str] | None:
        """(reason, detail naming the rule) when the URL is rejected, else None."""
        if not self.active:
            return None
        host = domain_of(url) if url else None
        if host is None:
            if self.allow:
                return "url_not_allowed", "no URL host; recipe.urls.allow keeps only pages of listed sites"
            return None
        prefix = _prefix_form(url or "")
        suffixes = _suffixes(host)
        for rule in _compiled(self.deny):
            if rule.matches(suffixes, prefix):
                return "url_blocked", f"{rule.entry} (recipe.urls.deny)"
        for path, sha in self.deny_files:
            hit = _blocklist(path, sha).match(suffixes, prefix)
            if hit is not None:
                return "url_blocked", f"{hit} (listed in {path})"
        if self.allow and not any(rule.matches(suffixes, prefix) for rule in _compiled(self.allow)):
            return "url_not_allowed", f"{host} is not under any of recipe.urls.allow ({_summary(self.allow)})"
        return None


def _summary(entries: tuple[str, ...]) -> str:
    return ", ".join(entries[:5]) + (f", ... ({len(entries)} in all)" if len(entries) > 5 else "")


@dataclass(frozen=True)
class _Rule:
    entry: str
    domain: str | None  # a domain rule, or
    prefix: str | None  # a URL prefix rule

    def matches(self, suffixes: list[str], prefix: str) -> bool:
        if self.domain is not None:
            return self.domain in suffixes
        return prefix.startswith(self.prefix or "")


@lru_cache(maxsize=64)
def _compiled(entries: tuple[str, ...]) -> tuple[_Rule, ...]:
    rules = []
    for entry in entries:
        text = entry.strip().lower()
        if "/" in text.split("://", 1)[-1]:
            rules.append(_Rule(entry, None, _prefix_form(text)))
        else:
            domain = text.split("://", 1)[-1].rstrip(".")
            rules.append(_Rule(entry, domain.removeprefix("www."), None))
    return tuple(rules)


class Blocklist:
    """One blocklist file: sorted hashes of its domains and of its URL prefixes (UT1 `urls` style)."""

    def __init__(self, domains: np.ndarray, prefixes: np.ndarray, prefix_lens: frozenset[int]) -> None:
        self.domains, self.prefixes, self.prefix_lens = domains, prefixes, prefix_lens

    @staticmethod
    def _has(table: np.ndarray, value: int) -> bool:
        i = int(np.searchsorted(table, np.uint64(value)))
        return i < len(table) and int(table[i]) == value

    def match(self, suffixes: list[str], prefix: str) -> str | None:
        """The listed domain or prefix a URL falls under, or None."""
        for suffix in suffixes:
            if self._has(self.domains, _hash(suffix)):
                return suffix
        if len(self.prefixes):
            # a prefix entry is compared at each `/` boundary of the URL's path
            for cut in [i for i, ch in enumerate(prefix) if ch == "/"] + [len(prefix)]:
                if cut in self.prefix_lens and self._has(self.prefixes, _hash(prefix[:cut])):
                    return prefix[:cut]
        return None


@lru_cache(maxsize=8)
def _blocklist(path: str, sha256: str) -> Blocklist:
    """Load once per worker (the sha in the key reloads a file that changed between runs)."""
    return load_blocklist(path)


def load_blocklist(path: str) -> Blocklist:
    domains: list[int] = []
    prefixes: list[int] = []
    lens: set[int] = set()
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                entry = line.split("#", 1)[0].strip()
                if not entry:
                    continue
                fields = entry.split()
                if len(fields) >= 2 and _IP.match(fields[0]):  # hosts file: `0.0.0.0 ads.example.com`
                    entry = fields[1]
                else:
                    entry = fields[0]
                entry = entry.lower().split("://", 1)[-1].rstrip(".")
                if "/" in entry:
                    form = _prefix_form(entry).rstrip("/")
                    prefixes.append(_hash(form))
                    lens.add(len(form))
                else:
                    domains.append(_hash(entry.removeprefix("www.")))
    except OSError as exc:
        raise UserError(f"{path}: cannot read the URL blocklist ({exc.strerror}); fix recipe.urls.deny_files")
    return Blocklist(np.unique(np.array(domains, dtype=np.uint64)),
                     np.unique(np.array(prefixes, dtype=np.uint64)), frozenset(lens))


def from_card(value: object, where: str, base: Path) -> tuple[UrlRules | None, bool]:
    """(rules, normalise) from a card's `recipe.urls` mapping; relative blocklist paths are under `base`."""
    if value is None:
        return None, False
    if not isinstance(value, dict):
        raise UserError(f"{where}: `recipe.urls` must be a mapping with allow, deny, deny_files, normalise")
    unknown = sorted(set(value) - {"allow", "deny", "deny_files", "normalise"})
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)} in `recipe.urls`; "
                        "known: allow, deny, deny_files, normalise")

    def strings(key: str) -> tuple[str, ...]:
        items = value.get(key) or []
        if isinstance(items, str):
            items = [items]
        if not isinstance(items, list) or not all(isinstance(x, str) and x.strip() for x in items):
            raise UserError(f"{where}: `recipe.urls.{key}` must be a list of non-empty strings")
        return tuple(x.strip() for x in items)

    files = []
    for name in strings("deny_files"):
        path = Path(name) if Path(name).is_absolute() else base / name
        if not path.is_file():
            raise UserError(f"{where}: `recipe.urls.deny_files`: no file {path}; give a blocklist with one "
                            "domain per line (UT1 style) or a hosts file")
        files.append((str(path), hashlib.sha256(path.read_bytes()).hexdigest()))
    rules = UrlRules(strings("allow"), strings("deny"), tuple(files))
    return (rules if rules.active else None), bool(value.get("normalise", False))


_DEFAULT_PORTS = {"http": 80, "https": 443}
_INDEX = re.compile(r"/(index|default)\.(html?|php|aspx?)$", re.IGNORECASE)
_UNRESERVED = re.compile(r"%([0-9A-Fa-f]{2})")


def normalise_url(url: str | None) -> str | None:
    """A URL dedup key that also merges the usual spellings of one page: host lower-cased without `www.`,
    default port, user info, scheme, query and fragment dropped (as ROOTS's key), percent-escapes of
    unreserved characters decoded, `/index.html` and a trailing `/` dropped. None without a host."""
    host = host_of(url)
    if host is None:
        return None
    parts = urlsplit((url or "").strip())
    try:
        port = parts.port
    except ValueError:
        return None
    host = host.removeprefix("www.")
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    path = _UNRESERVED.sub(_unescape_unreserved, parts.path or "/")
    path = _INDEX.sub("/", path)
    path = re.sub(r"/{2,}", "/", path).rstrip("/") or "/"
    return f"{host}{path}"


def _unescape_unreserved(m: re.Match[str]) -> str:
    ch = unquote(m.group(0))
    return ch if (ch.isalnum() and ch.isascii()) or ch in "-._~" else m.group(0).upper()
