from __future__ import annotations

import re
import unicodedata

import ftfy
from ftfy import badness
from hypothesis import example, given, settings
from hypothesis import strategies as st

from roots.stages import normalise as norm
from roots.stages.normalise import (
    WHITESPACE,
    fix_text,
    normalise,
    over_length,
    uniform_whitespace,
)


def test_mojibake_repaired_and_nfc():
    assert normalise("CafÃ© Ã©tÃ©") == "Café été"
    decomposed = "e\u0301t\u00e9"
    assert normalise(decomposed) == unicodedata.normalize("NFC", decomposed)


def test_exotic_whitespace_uniform_and_lines_kept():
    text = "a\u00a0b\u3000c\u2009d  e\r\nline two\n\n\n\nline three \n"
    assert normalise(text) == "a b c d e\nline two\n\nline three"


def test_length_cap():
    assert over_length("x" * 11, 10) and not over_length("x" * 10, 10) and not over_length("x" * 99, 0)


@example("\x83µ\r\x80")  # a lone CR between mojibake once made the second pass repair it differently
@given(st.text())
def test_normalise_idempotent(text):
    once = normalise(text)
    assert normalise(once) == once


@given(st.text())
def test_uniform_whitespace_never_grows(text):
    assert len(uniform_whitespace(text)) <= len(text.replace("\r\n", "\n")) + 0


# ------------------------------------------------------------------ fast paths == the plain implementation
def _reference_uniform_whitespace(text: str) -> str:
    """The unconditional `uniform_whitespace`, kept to prove that its skipped steps change nothing."""
    table = {ord(c): " " for c in WHITESPACE if c != " "}
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(table)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"[ ]{2,}", " ", text)
    return re.sub(r"\n{3,}", "\n\n", text)


# Lines of plain ASCII mixed with mojibake, control characters, "\r", escapes and exotic spaces: the cases
# where skipping ftfy on a line or a regex on a text could differ.
_TRICKY = ["CafÃ©", "Ã©tÃ©", "â€™", "â€œquotedâ€\x9d", "\x1b[31mred\x1b[0m", "\x00", "\x07", "\x7f", "\x85",
           "\r", "\r\n", "\u2028", "\u00a0", "\u3000", "\u200b", "\ufeff", "\ufffc", "e\u0301", "\ud800",
           "\t",
           "  ", " \n", "\n\n\n", "ï¬", "\u206a", "Â ", "sÃ³", "voilÃ le", "OK\nÃ bc", "\nÂ ", "Ã", "é",
           "ñ", "“", "€", "à²", "ΓΞ", "ВЂ", "\u0301", "Ω", "ο\u0301", "Ж", "中文", "ك"]
_MIXED = st.lists(st.one_of(st.sampled_from(_TRICKY), st.text(st.characters(max_codepoint=127)), st.text()),
                  max_size=12).map("".join)


@settings(max_examples=1500)
@given(_MIXED)
def test_fix_text_line_skipping_matches_ftfy(text):
    assert fix_text(text) == ftfy.fix_text(text, norm._FTFY_CONFIG)


def test_fix_text_sees_a_bad_line_start_as_ftfy_does():
    # ftfy's `^[ÃÂ][ ]` matches at the start of each line it fixes, not only at the start of the text.
    assert fix_text("OK\nÃ bc") == ftfy.fix_text("OK\nÃ bc", norm._FTFY_CONFIG) == "OK\nà bc"


def test_badness_shape_is_read_off_the_pinned_ftfy():
    assert norm._BADNESS_SHAPE is not None
    needed, width = norm._BADNESS_SHAPE
    assert needed.fullmatch("Ã") and not needed.search("".join(map(chr, range(128)))) and 3 <= width <= 8


@settings(max_examples=1500)
@given(_MIXED)
def test_windowed_badness_matches_ftfy(text):
    for line in text.split("\n"):
        assert norm._is_bad(line) == badness.is_bad(line)


@settings(max_examples=400)
@given(_MIXED)
def test_uniform_whitespace_matches_reference(text):
    assert uniform_whitespace(text) == _reference_uniform_whitespace(text)


def test_unicode_false_skips_ftfy_and_nfc_as_roots() -> None:
    # decomposed Vietnamese ("người" with combining marks) and mojibake: ROOTS left both as they were
    decomposed = unicodedata.normalize("NFD", "người ta")
    assert normalise(decomposed) == "người ta" and normalise(decomposed) != decomposed
    assert normalise(decomposed, unicode=False) == decomposed
    assert normalise("\u00a0caf\u00c3\u00a9 ", unicode=False) == "caf\u00c3\u00a9"  # whitespace still uniform
