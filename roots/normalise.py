"""Text normalisation applied before any statistic is computed (ROOTS §2.1 steps 1-2, plus NFC and ftfy).

Scoring must see the same text whatever the input's encoding accidents were, so this runs first;
the length cap runs before it, because ftfy and the regexes downstream are linear but a 50 MB
"document" (a dumped log, a base64 blob) still costs seconds and memory on every stage.
"""

from __future__ import annotations

import re
import unicodedata

import ftfy

# The 12 exotic whitespace characters ROOTS mapped to a plain space (ModifyingDocuments.uniform_whitespace).
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

DEFAULT_MAX_CHARS = 1_000_000


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


def fix_text(text: str) -> str:
    """`ftfy.fix_text` with our configuration, run only on the lines that can need it; same result.

    ftfy fixes each "\n"-terminated line on its own (a segment, in its words) and leaves a line of
    printable ASCII and tabs as it is: ASCII holds no mojibake, and such a line has no control character,
    "\r" or terminal escape for the other fixers to remove. Web text is mostly such lines, and ftfy costs
    ~0.1 ms per line, so only the other lines go through it. tests/test_normalise.py checks the equality.
    """
    out: list[str] = []
    pos = 0
    while (m := _FTFY_SENSITIVE.search(text, pos)) is not None:
        start = text.rfind("\n", pos, m.start()) + 1 or pos
        end = text.find("\n", m.start()) + 1 or len(text)
        out += [text[pos:start], ftfy.fix_text(text[start:end], _FTFY_CONFIG)]
        pos = end
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def normalise(text: str) -> str:
    """Repair mojibake (ftfy), NFC, uniform whitespace, strip. Idempotent.

    An all-ASCII text skips ftfy and NFC altogether (so its control characters stay, as they always have).
    """
    if not text.isascii():
        text = unicodedata.normalize("NFC", fix_text(text))
    return uniform_whitespace(text).strip()


def over_length(text: str, max_chars: int) -> bool:
    """True for documents too long to process; they are rejected (`too_long`), not truncated and kept."""
    return max_chars > 0 and len(text) > max_chars
