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
_WS_TABLE = {ord(c): " " for c in WHITESPACE if c != " "}
_SPACES = re.compile(r"[ ]{2,}")
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING = re.compile(r"[ \t]+\n")
_FTFY_CONFIG = ftfy.TextFixerConfig(unescape_html=False, uncurl_quotes=False, fix_latin_ligatures=False,
                                    fix_character_width=False, normalization="NFC", explain=False)

DEFAULT_MAX_CHARS = 1_000_000


def uniform_whitespace(text: str) -> str:
    """Map exotic spaces to ' ', collapse runs of spaces and blank lines, keep the line structure."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_WS_TABLE)
    text = _TRAILING.sub("\n", text)
    text = _SPACES.sub(" ", text)
    return _BLANK_LINES.sub("\n\n", text)


def normalise(text: str) -> str:
    """Repair mojibake (ftfy), NFC, uniform whitespace, strip. Idempotent."""
    if not text.isascii():
        text = ftfy.fix_text(text, _FTFY_CONFIG)
        text = unicodedata.normalize("NFC", text)
    return uniform_whitespace(text).strip()


def over_length(text: str, max_chars: int) -> bool:
    """True for documents too long to process; they are rejected (`too_long`), not truncated and kept."""
    return max_chars > 0 and len(text) > max_chars
