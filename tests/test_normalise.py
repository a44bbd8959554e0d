from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from roots.normalise import normalise, over_length, uniform_whitespace


def test_mojibake_repaired_and_nfc():
    assert normalise("CafÃ© Ã©tÃ©") == "Café été"
    decomposed = "e\u0301t\u00e9"
    assert normalise(decomposed) == unicodedata.normalize("NFC", decomposed)


def test_exotic_whitespace_uniform_and_lines_kept():
    text = "a\u00a0b\u3000c\u2009d  e\r\nline two\n\n\n\nline three \n"
    assert normalise(text) == "a b c d e\nline two\n\nline three"


def test_length_cap():
    assert over_length("x" * 11, 10) and not over_length("x" * 10, 10) and not over_length("x" * 99, 0)


@given(st.text())
def test_normalise_idempotent(text):
    once = normalise(text)
    assert normalise(once) == once


@given(st.text())
def test_uniform_whitespace_never_grows(text):
    assert len(uniform_whitespace(text)) <= len(text.replace("\r\n", "\n")) + 0
