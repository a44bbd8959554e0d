"""Text normalisation applied before any statistic is computed (ROOTS §2.1 steps 1-2, plus NFC and ftfy).

Scoring must see the same text whatever the input's encoding accidents were, so this runs first;
the length cap runs before it, because ftfy and the regexes downstream are linear but a 50 MB
"document" (a dumped log, a base64 blob) still costs seconds and memory on every stage.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

try:  # the stdlib's own regex parser, to read ftfy's badness regex
    from re import _constants as sre_constants
    from re import _parser as sre_parser
except ImportError:  # Python 3.10
    import sre_constants  # type: ignore[no-redef]
    import sre_parse as sre_parser  # type: ignore[no-redef]

import ftfy
from ftfy import badness, chardata

from roots.core.config import NormaliseConfig

# The exotic spaces mapped to a plain space. Not ROOTS's list: ROOTS's `uniform_whitespace` (filtering.py)
# maps 12 characters (NBSP, U+3000, U+FFFC and some of the U+2000-U+200A spaces among them); this set is
# our own, every Unicode space separator we met plus U+FFFC and the zero-width space U+200B (which splits
# words glued by web pages), so it maps some characters ROOTS left alone. It differs from ROOTS only in
# which invisible characters become a space, before any statistic; no setting reverts it (see README,
# "Deviations from ROOTS").
WHITESPACE = frozenset(
    [" ", "\u00a0", "\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005", "\u2006", "\u2007", "\u2008",
     "\u2009", "\u200a", "\u202f", "\u205f", "\u3000", "\ufffc", "\u200b"]
)
# One regex substitution, not `str.translate` with a dict: translate looks every character up in the dict,
# which costs more than the rest of the normalisation on non-ASCII text.
_EXOTIC_WS = re.compile("[" + "".join(re.escape(c) for c in sorted(WHITESPACE - {" "})) + "]")
_SPACES = re.compile(r"[ ]{2,}")
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING = re.compile(r"[ \t]+\n")
# A character that can make ftfy change a line: anything but printable ASCII and tab (see `fix_text`).
_FTFY_SENSITIVE = re.compile(r"[^\t\n\x20-\x7e]")
_FTFY_CONFIG = ftfy.TextFixerConfig(unescape_html=False, uncurl_quotes=False, fix_latin_ligatures=False,
                                    fix_character_width=False, normalization="NFC", explain=False)


def _explicit_chars(item: tuple[Any, Any]) -> set[str] | None:
    """The characters one element of a parsed regex matches, when it lists them (a literal, or a class of
    literals and ranges); None for anything else (categories, negated classes, repeats)."""
    op, arg = item
    if op == sre_constants.LITERAL:
        return {chr(arg)}
    if op != sre_constants.IN:
        return None
    chars: set[str] = set()
    for kind, value in arg:
        if kind == sre_constants.LITERAL:
            chars.add(chr(value))
        elif kind == sre_constants.RANGE:
            chars.update(map(chr, range(value[0], value[1] + 1)))
        else:
            return None
    return chars


def _char_class(chars: frozenset[str]) -> re.Pattern[str]:
    """A regex matching any one of `chars`, written as ranges (C-speed search, unlike a set per char)."""
    codes, ranges = sorted(map(ord, chars)), []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return re.compile("[" + "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in ranges) + "]")


def _badness_shape() -> tuple[re.Pattern[str], int] | None:
    """What every match of ftfy's badness regex needs, read off that regex: (a regex for the characters
    one of which it holds, the longest it can be).

    Each alternative of `ftfy.badness.BADNESS_RE` has a one-character element listing only non-ASCII
    characters (accented capitals, C1 controls, box drawing, currency signs...), and none repeats, so a
    match is short and holds one of those characters. None when the regex is not shaped like that
    (another ftfy version): then `_is_bad` runs ftfy's test as it is, and no text skips it.
    """
    pattern = badness.BADNESS_RE
    tree = sre_parser.parse(pattern.pattern, pattern.flags)
    width = tree.getwidth()[1]
    if (pattern.flags & re.IGNORECASE or width > 64 or len(tree.data) != 1
            or tree.data[0][0] != sre_constants.BRANCH):
        return None
    chars: set[str] = set()
    for branch in tree.data[0][1][1]:
        classes = [c for c in map(_explicit_chars, branch.data) if c and not any(ch.isascii() for ch in c)]
        if not classes:
            return None
        chars |= min(classes, key=len)
    return _char_class(frozenset(chars)), width


_BADNESS_SHAPE = _badness_shape()
# Every character the other steps of our ftfy configuration act on: C1 controls, line breaks other than
# "\n", surrogates, terminal escapes, and the control characters ftfy removes.
_FTFY_ACTS_ON = _char_class(
    frozenset(map(chr, chardata.CONTROL_CHARS)) | frozenset(map(chr, range(0x80, 0xA0)))
    | frozenset("\r\u2028\u2029\x1b") | frozenset(map(chr, range(0xD800, 0xE000))))


def _is_bad(line: str) -> bool:
    """`ftfy.badness.is_bad(line)`, with its regex run only around the characters a match needs.

    Its ~30 alternatives are tried at every position, which made it most of the cost of normalising text
    with accents; a match lies within `width` characters of one of the needed ones, so the regex only
    searches those stretches (a match found there is a match in the whole line: it has no lookaround, and
    its `^` only matches at position 0 either way).
    """
    if _BADNESS_SHAPE is None:
        return badness.is_bad(line)
    needed, width = _BADNESS_SHAPE
    search = badness.BADNESS_RE.search
    lo, hi = 0, -1  # the stretch still to search; none yet
    for m in needed.finditer(line):
        start = max(0, m.start() - width + 1)
        if start > hi:
            if hi >= 0 and search(line, lo, hi):
                return True
            lo = start
        hi = min(len(line), m.start() + width)
    return hi >= 0 and search(line, lo, hi) is not None


def _ftfy_leaves(text: str, *, one_line: bool) -> bool:
    """True when ftfy (our configuration) provably returns `text` as it is: no step has a character to act
    on, the text is NFC already, and no line is "bad". A multi-line text must not hold a character a bad
    match needs: ftfy tests each line alone, and on several lines the regex's `^` would miss a line start."""
    if len(text) > _FTFY_CONFIG.max_decode_length or _FTFY_ACTS_ON.search(text):
        return False
    if not unicodedata.is_normalized("NFC", text):
        return False
    if one_line:
        return not _is_bad(text)
    return _BADNESS_SHAPE is not None and _BADNESS_SHAPE[0].search(text) is None


# the one default lives with the rest of roots.yaml's (`normalise.max_chars`)
DEFAULT_MAX_CHARS = NormaliseConfig().max_chars


def uniform_whitespace(text: str) -> str:
    """Map exotic spaces to ' ', collapse runs of spaces and blank lines, keep the line structure.

    Each regex runs only when a substring it needs is present (a C-speed scan): most documents have no
    exotic space, trailing blank or blank-line run, and a substitution that finds nothing still costs a
    full regex pass.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isascii():
        text = _EXOTIC_WS.sub(" ", text)
    if " \n" in text or "\t\n" in text:
        text = _TRAILING.sub("\n", text)
    if "  " in text:
        text = _SPACES.sub(" ", text)
    if "\n\n\n" in text:
        text = _BLANK_LINES.sub("\n\n", text)
    return text


def _fix_line(line: str) -> str:
    """`ftfy.fix_text(line)` for one line. When the line's only fault is not being NFC, ftfy's first round
    only normalises it, and its second, finding nothing to do, returns that: so does this, without ftfy's
    machinery (most lines ftfy changes in multilingual text are decomposed accents)."""
    if len(line) <= _FTFY_CONFIG.max_decode_length and not _FTFY_ACTS_ON.search(line) and not _is_bad(line):
        composed = unicodedata.normalize("NFC", line)
        if _ftfy_leaves(composed, one_line=True):
            return composed
    return ftfy.fix_text(line, _FTFY_CONFIG)


def fix_text(text: str) -> str:
    """`ftfy.fix_text` with our configuration, run only on the lines that can need it; same result.

    ftfy fixes each "\n"-terminated line on its own (a segment, in its words) and leaves a line as it is
    when no step has anything to act on (a line of printable ASCII and tabs, or see `_ftfy_leaves`). Most
    lines of web text, in any script, are such lines, and ftfy's per-line machinery costs ~0.1 ms, so only
    the others go through it. tests/test_normalise.py checks the equality.
    """
    if _ftfy_leaves(text, one_line=False):
        return text
    out: list[str] = []
    pos = done = 0  # text[:done] is in `out`
    while (m := _FTFY_SENSITIVE.search(text, pos)) is not None:
        start = text.rfind("\n", pos, m.start()) + 1 or pos
        pos = text.find("\n", m.start()) + 1 or len(text)
        line = text[start:pos]
        if not _ftfy_leaves(line, one_line=True):
            out += [text[done:start], _fix_line(line)]
            done = pos
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def normalise(text: str, unicode: bool = True) -> str:
    """Repair mojibake (ftfy), NFC, uniform whitespace, strip. Idempotent.

    An all-ASCII text skips ftfy and NFC altogether (so its control characters stay, as they always have).
    `unicode=False` (roots.yaml `normalise.unicode: false`) skips ftfy and NFC for every text, as ROOTS did
    (it had no Unicode normalisation, so decomposed Vietnamese matched no stop word); only the whitespace
    is made uniform and the text stripped.
    """
    if unicode and not text.isascii():
        # Line ends first: ftfy repairs line by line on "\n" only, so a lone "\r" that uniform_whitespace
        # later turns into "\n" would change what ftfy sees on a second pass ("\x83µ\r\x80" became
        # "ƒµ\n€", then "ĵ\n€"): normalising must be idempotent.
        text = unicodedata.normalize("NFC", fix_text(text.replace("\r\n", "\n").replace("\r", "\n")))
    return uniform_whitespace(text).strip()


def over_length(text: str, max_chars: int) -> bool:
    """True for documents too long to process; they are rejected (`too_long`), not truncated and kept."""
    return max_chars > 0 and len(text) > max_chars
