"""Document quality statistics and per-language filter decisions, after ROOTS's OSCAR filters.

Pure functions, no Beam. The pipeline calls them in this order for each document:

1. `modify_document`: ROOTS's word removals, done before scoring (shared/reference/roots.md §2.1, steps
   4-6; steps 1-3 are in `roots.stages.normalise`).
2. `compute_stats`: every statistic, with no thresholds in sight, so the values can be stored on the
   document and the thresholds re-tuned later without recomputing them (§10).
3. `decide`: apply the thresholds of one `LangParams` in ROOTS's order and name the first failure.

Deliberate differences from ROOTS, each because ROOTS's behaviour was a bug or needs models we do not ship:

- Character repetition uses the fixed `k` (n-grams seen more than once). ROOTS used n-grams seen once,
  which sends `k` to 0 on highly repetitive documents and lets them through. `char_repetition_roots_compat`
  brings the old formula back for comparisons. The thresholds were tuned on the buggy formula.
- Words in scripts written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar, Tibetan) are single
  characters (with their combining marks), where ROOTS used a SentencePiece model for zh. This works with
  no model and treats a Chinese quotation inside an English page the same way.
- The special-character set is ROOTS's without the letters and vowel signs its list held (一 上 ン ツ ा ी
  া ه ı Г ...: it stripped Devanagari and Bengali vowel signs from the ends of words), plus symbols (maths,
  arrows, boxes, currency, fullwidth ASCII forms), never a script's sentence punctuation, which would make
  that language stricter than ROOTS with ROOTS's thresholds. `special_characters_roots_compat` brings
  ROOTS's exact set back; `special_characters_script_punctuation` adds ۔ । ؟ and CJK brackets.
- Stop-word lists come from `stopwordsiso` (stopwords-iso), one of ROOTS's own sources, not from ROOTS's
  hand-edited lists; sizes differ (en 1298 words here, 301 in ROOTS), so stop-word ratios are not
  identical to ROOTS's. A language without a list is never filtered on stop words (`has_stopwords`), and
  `default` has no stop-word threshold: ROOTS filtered on stop words only in its 13 languages.
"""

from __future__ import annotations

import itertools
import math
import re
import string
import sys
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import make_dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from roots.core.errors import UserError
from roots.core.schema import QUALITY_FILTERS, QualityFilter

INCORRECT_SUBSTRINGS = ("http", "www", ".com", "href", "//")
"""A word containing one of these is a URL or markup fragment; ROOTS deleted it (§2.1 step 4)."""

PARAMS_FILE = "data/filter_params.yaml"
FLAGGED_FILE = "data/flagged_words.yaml"


# --------------------------------------------------------------------------------------------- parameters
# field -> (kind, nullable) for the parameters that are not a registered filter's bound or setting: the
# language-ID and perplexity caps and ROOTS's word removals (`modify_document`).
_OTHER_KINDS: dict[str, tuple[str, bool]] = {
    "lid_min": ("float", False),
    "lid_strict_declared": ("bool", False),
    "lid_paragraphs": ("bool", False),
    "lid_after_word_removal": ("bool", False),
    "ppl_max": ("float", True),
    "ppl_percentile": ("percent", True),
    "long_word_max_length": ("n", False),
    "special_characters_roots_compat": ("bool", False),
    "special_characters_script_punctuation": ("bool", False),
    "remove_long_words": ("bool", False),
    "remove_incorrect_substrings": ("bool", False),
    "tokenization": ("bool", False),
    "split_unspaced_scripts": ("bool", False),
    "words_augmentation_join": ("str", True),
    "stopwords_file": ("str", True),
}


def _filter_kinds(filters: Sequence[QualityFilter]) -> dict[str, tuple[str, bool]]:
    kinds: dict[str, tuple[str, bool]] = {}
    for f in filters:
        kinds.update({name: (kind, False) for name, kind in f.settings})
        kinds.update({b.field: (b.kind, b.nullable) for b in f.bounds})
    return kinds


# field -> (kind, nullable). Kept in one place so that the YAML file and recipe overrides are checked the
# same way, with messages a steward can act on; a filter's own fields come from its registry entry.
_KINDS: dict[str, tuple[str, bool]] = {**_filter_kinds(QUALITY_FILTERS), **_OTHER_KINDS}
PARAM_KEYS: tuple[str, ...] = tuple(_KINDS)
"""The keys a recipe may override (every field but `lang`)."""

LangParams = make_dataclass(
    "LangParams", [("lang", str), *[(key, Any) for key in PARAM_KEYS]], frozen=True, slots=True,
    namespace={"__doc__": """The thresholds and switches of the quality filters for one language (one row of
    ROOTS's table), one field per key of `PARAM_KEYS`.

    Built from the filter registry (`roots.core.schema.QUALITY_FILTERS`) so that a new filter's bounds
    and settings become fields without editing this module. A ratio threshold of None disables that
    bound. `tokenization` is recorded for reference (ROOTS used SentencePiece words for zh); `get_words`
    splits space-less scripts into characters whatever its value. `ppl_percentile`, when set, caps
    perplexity at that percentile of the model's held-out calibration (cc_net style) instead of at
    `ppl_max` (`roots.stages.perplexity.ppl_cap`)."""})
LangParams.__module__ = __name__

_KIND_TEXT = {
    "int": "a whole number >= 0",
    "n": "a whole number >= 1",
    "float": "a number >= 0",
    "percent": "a number between 0 and 100",
    "bool": "true or false",
    "str": "a string",
}


def _check_value(key: str, value: Any, where: str) -> Any:
    """Validate and normalise one parameter value (ints become floats for float fields)."""
    kind, nullable = _KINDS[key]
    if value is None:
        if nullable:
            return None
        raise UserError(f"{where}: `{key}` cannot be null; it must be {_KIND_TEXT[kind]}.")
    ok = False
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "str":
        ok = isinstance(value, str)
    elif isinstance(value, bool):
        ok = False
    elif kind in ("int", "n"):
        ok = isinstance(value, int) and value >= (1 if kind == "n" else 0)
    elif isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        ok = kind == "float" or value <= 100
        value = float(value)
    if not ok:
        null = " or null (filter off)" if nullable and kind != "str" else " or null" if nullable else ""
        raise UserError(f"{where}: `{key}` must be {_KIND_TEXT[kind]}{null}, got {value!r}.")
    return value


def _build(lang: str, row: Mapping[str, Any], where: str) -> LangParams:
    values = {key: _check_value(key, row[key], where) for key in PARAM_KEYS}
    if values["number_words_min"] > values["number_words_max"]:
        raise UserError(f"{where}: `number_words_min` ({values['number_words_min']}) is larger than "
                        f"`number_words_max` ({values['number_words_max']}); no document could pass.")
    return LangParams(lang=lang, **values)


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The packaged parameter table as (default row, {lang: row}), checked once per process."""
    text = resources.files("roots").joinpath(PARAMS_FILE).read_text("utf-8")
    data = yaml.safe_load(text)
    where = f"roots/{PARAMS_FILE}"
    default = dict(data.get("default") or {})
    missing = [key for key in PARAM_KEYS if key not in default]
    if missing:
        raise UserError(f"{where}: `default` lacks {', '.join(missing)}; every parameter needs a default.")
    languages: dict[str, dict[str, Any]] = {}
    for lang, row in (data.get("languages") or {}).items():
        row = dict(row or {})
        unknown = sorted(set(row) - set(PARAM_KEYS))
        if unknown:
            raise UserError(f"{where}: languages.{lang}: unknown parameter(s) {', '.join(unknown)}; "
                            f"valid keys: {', '.join(PARAM_KEYS)}.")
        languages[str(lang)] = row
    for key in list(default):
        if key not in PARAM_KEYS:
            raise UserError(f"{where}: default: unknown parameter {key}; "
                            f"valid keys: {', '.join(PARAM_KEYS)}.")
    for lang, row in [("default", {}), *languages.items()]:
        _build(lang, {**default, **row}, f"{where}: {lang}")
    return default, languages


ROOTS_LANGUAGES = ("ar", "bn", "ca", "en", "es", "eu", "fr", "hi", "id", "pt", "ur", "vi", "zh")
"""The languages ROOTS tuned thresholds for by hand (parameters_filtering.py); every other row is ours."""


def threshold_origin(lang: str, calibrated: Iterable[str] = ()) -> str:
    """Where `lang`'s thresholds come from: "roots" (ROOTS's hand-tuned row), "calibrated" (written by
    `roots thresholds calibrate` into the workspace's roots.yaml) or "default" (ROOTS's `default` row,
    with at most a few structural adjustments of our own, such as words of one character for ja or th)."""
    if lang in calibrated:
        return "calibrated"
    return "roots" if lang in ROOTS_LANGUAGES else "default"


def known_languages() -> tuple[str, ...]:
    """Languages with their own row in the table (ROOTS's 13 plus ours); others get `default`."""
    return tuple(_table()[1])


def load_params(lang: str, overrides: Mapping[str, Any] | None = None) -> LangParams:
    """The parameters for `lang`: its table row (or `default` for a language without one), then overrides.

    `overrides` come from a source's recipe (`thresholds:` in the card or workspace config), so a bad key
    is the steward's typo and is reported as a UserError listing the valid keys, never ignored.
    """
    default, languages = _table()
    row = {**default, **languages.get(lang, {})}
    where = f"quality parameters for language '{lang}'"
    if overrides:
        unknown = sorted(str(key) for key in overrides if key not in _KINDS)
        if unknown:
            raise UserError(
                f"{where}: unknown threshold key(s) {', '.join(repr(k) for k in unknown)} in the recipe "
                f"overrides. Valid keys: {', '.join(PARAM_KEYS)}.")
        row.update(overrides)
        where += " (after recipe overrides)"
    return _build(lang, row, where)


def resolve_params(lang: str, thresholds: Mapping[str, Mapping[str, Any]] | None) -> LangParams:
    """The one threshold resolution: `lang`'s table row, then the `default` overrides, then `lang`'s.

    `thresholds` is the run's {language or "default": {key: value}} mapping, workspace `roots.yaml`
    overrides already merged with the card's recipe (`merge_overrides`). The processor, the perplexity
    cap, `--rethreshold`, the report and the data card all call this, so they cannot disagree.
    """
    thresholds = thresholds or {}
    overrides = {**(thresholds.get("default") or {}), **(thresholds.get(lang) or {})}
    return load_params(lang, overrides or None)


def merge_overrides(*layers: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """{lang: overrides} from several layers (workspace config, then the card's recipe), later ones winning
    key by key."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for lang, values in (layer or {}).items():
            merged.setdefault(str(lang), {}).update(values or {})
    return merged


# ------------------------------------------------------------------------------------ character classes
# ROOTS's `other_special_characters` (parameters_filtering.py), as published, in its order. It opens with
# nine space characters and U+FFFC; `normalise` maps every exotic space (its WHITESPACE) to " " before any
# statistic is computed, so they are represented by that set. It also holds letters, vowel signs and a
# Thai digit (ー 一 士 上 ン ッ ツ シ ा া ी ् े ॽ ø ɪ ı π Г ه ๑ ª º ʺ ˈ ˌ ʻ ʼ ː), ROOTS's bug: stripping them
# from word ends cut Devanagari and Bengali words short and counted them as special characters.
_ROOTS_OTHER_SPECIAL = (
    "’“”–ー一▬…✦�£•€«»°·═"
    "×士＾˘⇓↓↑←→（）§″′´¿−±∈¢ø‚„½¼¾¹²³―⁃，ˌ¸‹›ʺˈʻ¦‐⠀‰‑≤≥‖"
    "◆●■►▼▲▴∆▻¡★☆✱ːº。¯˜¥ɪ≈†上ン：∼⁄・♡✓⊕․．⋅÷１‟；،、¨ाাी्े◦˚"
    "゜ʼ≖ʼ¤ッツシ℃√！【】‿∞➤～πه۩☛₨➩☻๑٪♥ıॽ《‘©﴿٬？▷Г♫∟™ª₪®「—❖"
    "」﴾》"
)

# Symbols we count on top of ROOTS's set: spaces and invisible characters, typographic signs, currency,
# maths, arrows, bullets, boxes and fullwidth forms of ASCII symbols. Symbols only, no sentence punctuation
# of any script: ROOTS's thresholds were tuned on text where a full stop was a special character only in
# the scripts its list covers, so adding a script's full stop would make that language alone stricter
# (the Urdu ۔ rejected 22 of 200 good Urdu documents that ROOTS keeps, the danda ।, 4 Hindi ones).
_EXTRA_SPECIAL = (
    # spaces, invisible and replacement characters
    "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u200c\u200d"
    "\u200e\u200f\u2028\u2029\u202f\u205f\u2060\u3000\ufeff\u00ad\ufffc\ufffd\u2800"
    # quotes, dashes, dots, typographic signs
    "‘’‚‛“”„‟‹›«»′″‴´`¨¯˘˜˚¸–—―‐‑‒⁃…‥․‧·•◦‣⁄‖¦§¶†‡‰‱※¿¡"
    # currency
    "€£¥¢¤₹₨₪₩₽₺₫₴₦₱₡₲₵฿"
    # maths, units, fractions, superscripts
    "×÷±−∓≈≠≡≤≥∞∑∏√∫∂∆∇∈∉∩∪⊂⊃⊕⊗∧∨¬∼≖∝∠°℃℉‰½¼¾⅓⅔⅛¹²³⁰⁴⁵⁶⁷⁸⁹₀₁₂₃™®©℠℗"
    # arrows, bullets, shapes, boxes, cards, music
    "←↑→↓↔↕⇐⇑⇒⇓⇔➔➜➝➞➟➡➤➩➪▶▷◀◁►◄▲△▼▽▴▸▾◂◆◇◈○●◎◉■□▪▫▬▭▮▯★☆✦✧✩✪✫✱✲✳✴✵✶✷✸✹✓✔✗✘❖❤❥"
    "♠♣♥♦♡♢♤♧♩♪♫♬☛☞☚☜☻☺☹♀♂⚫⚪░▒▓█▄▀│┃─━┌┐└┘├┤┬┴┼═║╔╗╚╝╠╣╦╩╬"
    # fullwidth forms of ASCII symbols and digits (ROOTS's own CJK punctuation comes with its list)
    "＂＃＄％＆＇＊＋－／＜＝＞＠［＼］＿｀｛｜｝"
    "０１２３４５６７８９"
)

# Sentence punctuation of scripts that ROOTS's list does not hold (Urdu full stop, Devanagari dandas,
# Arabic semicolon and question mark, Georgian and Ethiopic punctuation, CJK brackets, quotes and the
# halfwidth full stop and comma). Counted only with `special_characters_script_punctuation: true`: it
# makes those languages stricter than ROOTS with ROOTS's thresholds (measured in the README).
_SCRIPT_PUNCTUATION = "۔।॥؛؟჻፡።፣፤⁇⁈‼⁉〃〈〉『』〔〕〖〗〘〙〚〛〜〝〞〟〰〽･｡｢｣､"


def _letter_or_mark(char: str) -> bool:
    """A letter, a combining mark or a digit of a script (fullwidth digits are symbols of CJK text)."""
    category = unicodedata.category(char)
    return category[0] in "LM" or (category == "Nd" and not char.isascii() and not "０" <= char <= "９")


CharsetKey = tuple[bool, bool]
"""(ROOTS's exact set, with script punctuation): which special-character set a `LangParams` selects."""


def charset_key(params: Any) -> CharsetKey:
    """The special-character set `params` selects (its two `special_characters_*` switches)."""
    return bool(params.special_characters_roots_compat), bool(params.special_characters_script_punctuation)


@lru_cache(maxsize=4)
def special_characters(key: CharsetKey = (False, False)) -> frozenset[str]:
    """All single characters that count as special (and are stripped from word ends), built once per set.

    Default: ROOTS's set (`string.punctuation + digits + whitespace`, its other list, all emoji of
    `emoji==1.6.1`'s `UNICODE_EMOJI["en"]`) without the letters, vowel signs and script digits its list
    held, plus the symbols of `_EXTRA_SPECIAL`. `key[0]` (`special_characters_roots_compat`): ROOTS's set
    exactly, letters included. `key[1]` (`special_characters_script_punctuation`): also the sentence
    punctuation of `_SCRIPT_PUNCTUATION`. Documents are scanned one code point at a time, so a multi-
    code-point emoji (ZWJ sequences, flags, skin tones, keycaps) only counts if its parts are in the set:
    the default set adds those parts (ZWJ, variation selector 16, tags, regional indicators, the keycap mark).
    """
    import emoji  # pinned to 1.6.1 in setup.cfg: newer versions dropped UNICODE_EMOJI

    from roots.stages.normalise import WHITESPACE

    roots_compat, script_punctuation = key
    base = set(string.punctuation + string.digits + string.whitespace + _ROOTS_OTHER_SPECIAL) | WHITESPACE
    emoji_parts = set(itertools.chain.from_iterable(emoji.UNICODE_EMOJI["en"]))
    if roots_compat:  # ROOTS put whole emoji in its set: only a one-code-point emoji matches a character
        chars = base | {e for e in emoji.UNICODE_EMOJI["en"] if len(e) == 1}
    else:
        bad = [c for c in _EXTRA_SPECIAL + _SCRIPT_PUNCTUATION if _letter_or_mark(c)]
        assert not bad, f"letters or marks in the special-character list: {bad}"
        chars = {c for c in base if not _letter_or_mark(c)} | set(_EXTRA_SPECIAL) | emoji_parts
    if script_punctuation:
        chars |= set(_SCRIPT_PUNCTUATION)
    return frozenset(chars)


def _strip(word: str, special: frozenset[str]) -> str:
    """`word` without special characters at either end (a set lookup per character, not str.strip,
    whose argument would be a several-thousand-character string scanned for every character)."""
    start, end = 0, len(word)
    while start < end and word[start] in special:
        start += 1
    while end > start and word[end - 1] in special:
        end -= 1
    return word[start:end]


# Scripts written without spaces between words, by Unicode block: Thai, Lao, Tibetan, Myanmar (and its
# extensions), Khmer (and Khmer symbols), CJK radicals, ideographic iteration/number marks, Hiragana,
# Katakana (with phonetic extensions and halfwidth forms), CJK ideographs (all extensions, compatibility
# ideographs) and kana supplements. Blocks, not the Script_Extensions property: scx puts common
# punctuation such as the middle dot in Han, which would split Catalan "col·lecció" into two words. The few
# symbols inside these blocks (฿, ・) are special characters and get stripped anyway.
_NOSPACE_BLOCKS = (
    (0x0E00, 0x0E7F), (0x0E80, 0x0EFF), (0x0F00, 0x0FFF), (0x1000, 0x109F), (0x1780, 0x17FF),
    (0x19E0, 0x19FF), (0x2E80, 0x2FDF), (0x3005, 0x3007), (0x3021, 0x302F), (0x3031, 0x3035),
    (0x3038, 0x303C), (0x3041, 0x30FF), (0x31F0, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
    (0xA9E0, 0xA9FF), (0xAA60, 0xAA7F), (0xF900, 0xFAFF), (0xFF66, 0xFF9F), (0x1B000, 0x1B16F),
    (0x20000, 0x323AF),
)
_NOSPACE = "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in _NOSPACE_BLOCKS)
# Combining marks inside those blocks (Thai vowel signs, Myanmar medials, kana voicing marks): they stay
# attached to the character before them, so a "word" is one written character, not a bare code point.
_NOSPACE_MARKS = "".join(re.escape(chr(cp)) for lo, hi in _NOSPACE_BLOCKS if hi < 0x4E00
                         for cp in range(lo, hi + 1) if unicodedata.category(chr(cp)).startswith("M"))
_NOSPACE_RE = re.compile(f"[{_NOSPACE}]")
# One unit = one character of such a script with its marks, or a run of anything else (a Latin word glued
# to Chinese text stays one word).
_UNIT_RE = re.compile(f"[{_NOSPACE}][{_NOSPACE_MARKS}]*|[^{_NOSPACE}]+")
_WS_RE = re.compile(r"[ \n\t]+")
# The characters str.split() splits on besides " ", "\n" and "\t" (U+3000 is the last one).
_OTHER_SPACES = frozenset(c for c in map(chr, range(0x3001)) if c.isspace()) - {" ", "\n", "\t"}
_INCORRECT_RE = re.compile("|".join(re.escape(s) for s in INCORRECT_SUBSTRINGS))


def is_nospace_char(unit: str) -> bool:
    """Whether a unit of `get_words` is one character of a script written without spaces (with its marks)."""
    return bool(unit) and _NOSPACE_RE.match(unit) is not None and _UNIT_RE.fullmatch(unit) is not None and (
        len(unit) == 1 or not _NOSPACE_RE.search(unit[1:]))


def get_words(text: str, lang: str, key: CharsetKey = (False, False),
              split_unspaced: bool = True) -> list[str]:
    """ROOTS's words: split on spaces, newlines and tabs, strip special characters from both ends of each
    word, drop what is left empty. Runs of space-less scripts are split into single characters, so zh,
    ja or th get meaningful counts without a SentencePiece model.

    The split depends on the script, not on `lang`, so a document mixing scripts is split the same way
    whatever language it was assigned; `lang` is kept for a language-specific tokenizer later.
    `split_unspaced=False` (`split_unspaced_scripts: false`) splits on white space only, as ROOTS did for
    every language but zh (for zh it used a SentencePiece model we do not ship).
    """
    del lang  # see docstring
    chars = set(text)
    # str.split() splits on every Unicode space; in a text whose only spaces are " ", "\n" and "\t" (most
    # texts) that is the split above, at three times the speed of the regex.
    tokens: Iterable[str] = text.split() if _OTHER_SPACES.isdisjoint(chars) else _WS_RE.split(text)
    if split_unspaced and not text.isascii() and _NOSPACE_RE.search("".join(chars)):
        tokens = [unit for token in tokens
                  for unit in (_UNIT_RE.findall(token) if _NOSPACE_RE.search(token) else (token,))]
    # str.strip with the special characters that occur in the text strips exactly what the whole set
    # would (no other character can be at a token's end), and a short argument keeps it at C speed.
    present = "".join(special_characters(key).intersection(chars))
    return list(filter(None, map(str.strip, tokens, itertools.repeat(present))))


# ------------------------------------------------------------------------------------ document changes
def modify_document(text: str, params: LangParams) -> str:
    """§2.1 steps 4-6: drop words whose stripped form contains URL/markup substrings, drop words longer than
    the cutoff unless stripping special characters brings them within it (a word that strips to nothing
    goes), and re-join keeping the line and tab structure.

    As in ROOTS, the re-join collapses runs of separators and drops lines left empty, and a language with
    both removals off (zh, default) gets its text back untouched. Idempotent.
    """
    substrings = params.remove_incorrect_substrings and _INCORRECT_RE.search(text) is not None
    long_words = params.remove_long_words
    if not (params.remove_incorrect_substrings or long_words):
        return text
    special = special_characters(charset_key(params))
    cutoff = params.long_word_max_length

    def keep(word: str) -> bool:
        # As ROOTS (`should_keep_word_with_incorrect_substrings`, `should_keep_long_word`): both tests look
        # at the word stripped of special characters, so a bare "//" or ".com" stays, and a long word made
        # only of special characters (a "-----" rule) goes.
        stripped = _strip(word, special)
        if substrings and _INCORRECT_RE.search(stripped):
            return False
        return not (long_words and len(word) > cutoff and (not stripped or len(stripped) > cutoff))

    lines = []
    for line in text.split("\n"):
        parts = []
        for part in line.split("\t"):
            words = list(filter(None, part.split(" ")))
            # Words are judged one by one only in a part that holds a candidate for removal (a URL
            # substring cannot span a space); most parts hold none, and a call per word was the cost here.
            if words and ((substrings and _INCORRECT_RE.search(part))
                          or (long_words and max(map(len, words)) > cutoff)):
                words = [word for word in words if keep(word)]
            if words:
                parts.append(" ".join(words))
        if parts:
            lines.append("\t".join(parts))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- word lists
@cache
def stopwords(lang: str) -> frozenset[str]:
    """Lower-cased, NFC stop words for `lang` from stopwords-iso; empty when it has no list."""
    import stopwordsiso

    if not lang or not stopwordsiso.has_lang(lang):
        return frozenset()
    return frozenset(unicodedata.normalize("NFC", w).lower() for w in stopwordsiso.stopwords(lang))


def has_stopwords(lang: str) -> bool:
    """Whether `lang` has a stop-word list. Without one the stop-word filter is skipped: a ratio against
    an empty list is always 0 and would reject every document."""
    return bool(stopwords(lang))


@lru_cache(maxsize=8)
def _stopwords_file(path: str) -> dict[str, frozenset[str]]:
    """A `stopwords_file`: a YAML or JSON mapping {lang: [word, ...]} (ROOTS's stopwords.py dict is one),
    its words used as written, as ROOTS used its lists (document words are lower-cased, the list is not)."""
    where = f"stopwords_file {path}"
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{where}: cannot read it ({exc.strerror}); set `stopwords_file` to a YAML or JSON "
                        "file mapping each language to its list of stop words.") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{where}: not valid YAML or JSON ({exc}).") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise UserError(f"{where}: expected a mapping of language -> list of words, e.g. {{en: [the, a]}}.")
    return {str(lang): frozenset(str(w) for w in words) for lang, words in data.items()}


def stopword_list(params: LangParams) -> frozenset[str]:
    """The stop words `params` selects: its `stopwords_file`'s list for the language when one is set
    (ROOTS's own lists, for comparisons), else stopwords-iso's."""
    if params.stopwords_file:
        return _stopwords_file(params.stopwords_file).get(params.lang, frozenset())
    return stopwords(params.lang)


@lru_cache(maxsize=1)
def _flagged_table() -> dict[str, frozenset[str]]:
    data = yaml.safe_load(resources.files("roots").joinpath(FLAGGED_FILE).read_text("utf-8")) or {}
    return {str(lang): frozenset(unicodedata.normalize("NFC", str(w)).lower() for w in words or ())
            for lang, words in data.items()}


@cache
def flagged_words(lang: str) -> frozenset[str]:
    """The flagged words for `lang`: the list applied to every language plus the language's own."""
    table = _flagged_table()
    return table.get("all", frozenset()) | table.get(lang, frozenset())


# --------------------------------------------------------------------------------------------- statistics
def char_repetition_ratio(text: str, n: int, *, roots_compat: bool = False) -> float:
    """Share of character n-gram occurrences taken by the k most frequent n-grams, over the raw text.

    k = min(floor(sqrt(#distinct n-grams)), #n-grams occurring more than once). With `roots_compat`, k uses
    the number of n-grams occurring *once* instead (ROOTS's bug, fixed upstream in July 2022), which makes
    the ratio of a highly repetitive document close to 0.
    """
    total = len(text) - n + 1
    if total <= 0:
        return 0.0
    freqs = _char_ngram_counts(text, n)
    distinct = len(freqs)
    once = int(np.count_nonzero(freqs == 1))
    k = min(math.isqrt(distinct), once if roots_compat else distinct - once)
    if k <= 0:
        return 0.0
    freqs.sort()
    return int(freqs[-k:].sum()) / total


def _char_ngram_counts(text: str, n: int) -> np.ndarray:
    """The number of occurrences of each distinct character n-gram of `text` (len(text) >= n), unordered.

    Exact, with no hashing: each character becomes its rank in the text's own alphabet (`bits` bits),
    an n-gram becomes those numbers packed into as many 64-bit keys as needed (one for
    n = 10 and up to 64 distinct characters, which covers most documents), and equal n-grams are equal key
    tuples, counted as runs after a sort. Slicing out one string per position and hashing them in a
    Counter cost half of the quality statistics; tests/test_quality.py checks against that Counter.
    """
    total = len(text) - n + 1
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    size, ranks = _alphabet_ranks(codes)
    bits = max(1, (size - 1).bit_length())
    per_key = 64 // bits
    keys = [_pack(ranks[first:], min(per_key, n - first), bits)[:total] for first in range(0, n, per_key)]
    if len(keys) == 1:
        ordered = [np.sort(keys[0])]
    else:
        order = np.lexsort(keys[::-1])
        ordered = [key[order] for key in keys]
    change = ordered[0][1:] != ordered[0][:-1]
    for key in ordered[1:]:
        change |= key[1:] != key[:-1]
    ends = np.append(np.flatnonzero(change), total - 1)  # the last index of each run of equal n-grams
    counts = ends + 1
    counts[1:] -= ends[:-1] + 1
    return counts


_SCRATCH = threading.local()  # per thread: runners may call the stages from several threads at once


def _alphabet_ranks(codes: np.ndarray) -> tuple[int, np.ndarray]:
    """(alphabet size, each code's rank in the sorted alphabet of `codes`) as uint64.

    Text within the Basic Multilingual Plane (nearly all) marks its code points in a 64K table instead of
    `np.unique(..., return_inverse=True)`, whose argsort was over half the cost of the n-gram count;
    the ranks are the same."""
    if codes.size and int(codes.max()) < 1 << 16:
        present = getattr(_SCRATCH, "present", None)
        if present is None:
            present = _SCRATCH.present = np.zeros(1 << 16, dtype=bool)
            _SCRATCH.rank = np.zeros(1 << 16, dtype=np.uint64)
        present[codes] = True
        alphabet = np.flatnonzero(present)
        present[alphabet] = False
        rank = _SCRATCH.rank
        rank[alphabet] = np.arange(len(alphabet), dtype=np.uint64)
        return len(alphabet), rank[codes]
    alphabet, ranks = np.unique(codes, return_inverse=True)
    return len(alphabet), ranks.astype(np.uint64)


def _pack(ranks: np.ndarray, n: int, bits: int) -> np.ndarray:
    """key[i] = ranks[i], ..., ranks[i + n - 1] packed `bits` apart, the first highest (n * bits <= 64).

    Built by doubling (1, 2, 4, 8... characters), combining the powers of two that sum to n: log n whole-
    array passes instead of n.
    """
    def join(left: np.ndarray, left_n: int, right: np.ndarray, right_n: int) -> np.ndarray:
        size = len(ranks) - left_n - right_n + 1
        return (left[:size] << np.uint64(right_n * bits)) | right[left_n:left_n + size]

    power, power_n = ranks, 1
    key, key_n = None, 0
    while True:
        if n & power_n:
            key = power if key is None else join(key, key_n, power, power_n)
            key_n += power_n
        if power_n * 2 > n:
            assert key is not None and key_n == n
            return key
        power, power_n = join(power, power_n, power, power_n), power_n * 2


def word_repetition_ratio(words: Sequence[str], n: int) -> float:
    """Share of word n-gram occurrences whose n-gram occurs more than once (pass lower-cased words)."""
    total = len(words) - n + 1
    if total <= 0:
        return 0.0
    counts = Counter(zip(*(words[i:] for i in range(n))))
    return sum(f for f in counts.values() if f > 1) / total


def special_characters_ratio(text: str, key: CharsetKey = (False, False)) -> float:
    """Share of the document's code points that are special characters (of the set `key` selects)."""
    if not text:
        return 0.0
    # Counted at C speed, not with a set lookup per character: ASCII text by deleting the special bytes,
    # other text by looking its code points up in a table of all of Unicode.
    if text.isascii():
        return (len(text) - len(text.encode("ascii").translate(None, _ascii_special(key)))) / len(text)
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return int(np.count_nonzero(_special_table(key)[codes])) / len(text)


@lru_cache(maxsize=4)
def _ascii_special(key: CharsetKey) -> bytes:
    """The ASCII special characters as bytes, for `bytes.translate`."""
    return bytes(c for c in range(128) if chr(c) in special_characters(key))


@lru_cache(maxsize=4)
def _special_table(key: CharsetKey) -> np.ndarray:
    """A boolean per code point (1.1 MB): is it a special character."""
    table = np.zeros(sys.maxunicode + 1, dtype=bool)
    table[[ord(c) for c in special_characters(key)]] = True
    return table


def mean_word_length(words: Sequence[str]) -> float:
    """Gopher's mean word length: characters per word, over ROOTS's words (`get_words`), which are already
    stripped of special characters at both ends, so a lone "--" or "..." is not a word (Gopher likewise
    skips words made only of symbols). 0.0 for a document without words."""
    return sum(map(len, words)) / len(words) if words else 0.0


def _list_ratio(words: Sequence[str], vocab: frozenset[str], join: str | None) -> float:
    """ROOTS's closed-list ratio: hits among the words and (if `join` is set) the joined word bigrams,
    divided by the number of words, capped at 1."""
    if not words or not vocab:
        return 0.0
    hits = sum(map(vocab.__contains__, words))
    if join is not None:
        hits += sum(map(vocab.__contains__, map(join.join, itertools.pairwise(words))))
    return min(1.0, hits / len(words))


class _Measured:
    """A (modified) document being measured: its words are split once, for every statistic that needs them."""

    def __init__(self, text: str, lang: str, params: LangParams) -> None:
        self.text, self.lang, self.params = text, lang, params
        self.charset = charset_key(params)
        self.words = get_words(text, lang, self.charset, params.split_unspaced_scripts)
        self.lowered = list(map(str.lower, self.words))


def _char_repetition(d: _Measured) -> float:
    p = d.params
    return char_repetition_ratio(d.text, p.char_repetition_n, roots_compat=p.char_repetition_roots_compat)


STATISTICS: dict[str, Callable[[_Measured], float]] = {
    "number_words": lambda d: float(len(d.words)),
    "char_repetition_ratio": _char_repetition,
    "word_repetition_ratio": lambda d: word_repetition_ratio(d.lowered, d.params.word_repetition_n),
    "special_characters_ratio": lambda d: special_characters_ratio(d.text, d.charset),
    "stopwords_ratio": lambda d: _list_ratio(d.lowered, stopword_list(d.params),
                                             d.params.words_augmentation_join),
    "flagged_words_ratio": lambda d: _list_ratio(d.lowered, flagged_words(d.lang),
                                                 d.params.words_augmentation_join),
    "mean_word_length": lambda d: mean_word_length(d.words),
}
"""How each registered filter's statistic is computed, by column (`roots.core.schema.QUALITY_FILTERS`)."""

REQUIREMENTS: dict[str, Callable[[LangParams], bool]] = {"stopwords": lambda p: bool(stopword_list(p))}
"""Per-language resources a filter may require (`QualityFilter.requires`): without it, the filter is off."""


def registry_gaps(filters: Sequence[QualityFilter]) -> list[str]:
    """The statistics and requirements that registered filters name and this module does not provide."""
    return sorted({f.requires for f in filters if f.requires} - set(REQUIREMENTS)) + sorted(
        {f.column for f in filters} - set(STATISTICS))


if registry_gaps(QUALITY_FILTERS):  # else a registered filter would fail only on the first document
    raise ImportError("roots.stages.quality: no statistic or requirement for "
                      f"{registry_gaps(QUALITY_FILTERS)}")


def compute_stats(text: str, lang: str, params: LangParams) -> dict[str, float]:
    """Every quality statistic of a (modified) document; thresholds are applied later by `decide`.

    `params` only supplies how to measure (n-gram lengths, bigram augmentation, the compat switch).
    """
    doc = _Measured(text, lang, params)
    return {f.column: STATISTICS[f.column](doc) for f in QUALITY_FILTERS}


def applies(f: QualityFilter, params: LangParams) -> bool:
    """Whether filter `f` can judge documents of `params.lang` (a required resource, such as a stop-word
    list)."""
    return f.requires is None or REQUIREMENTS[f.requires](params)


# ----------------------------------------------------------------------------------------------- decide
def _digits_for(limit: float) -> int:
    for digits in range(2, 7):
        if round(limit, digits) == limit:
            return digits
    return 6


def _pair(value: float, limit: float) -> tuple[str, str]:
    """Format a value and its threshold with enough decimals that they never look equal."""
    digits = _digits_for(limit)
    while digits < 8 and f"{value:.{digits}f}" == f"{limit:.{digits}f}":
        digits += 1
    return f"{value:.{digits}f}", f"{limit:.{digits}f}"


def decide(stats: Mapping[str, float], params: LangParams,
           annotate: frozenset[str] = frozenset()) -> tuple[str | None, str]:
    """(reason, detail) for the first filter the document fails, in registry order, or (None, "").

    Reasons are the registered filters' reasons; a detail reads like "word_repetition_ratio=0.41 > max
    0.30". A NaN statistic fails its filter. A filter whose required resource the language lacks (a
    stop-word list) is skipped, and so is a filter whose reason is in `annotate` (annotate only: its
    statistic is stored, it rejects nothing).
    """
    for f in QUALITY_FILTERS:
        if f.reason in annotate or not applies(f, params):
            continue
        detail = _failed_bound(f, stats[f.column], params)
        if detail is not None:
            return f.reason, detail
    return None, ""


def _failed_bound(f: QualityFilter, value: float, params: LangParams) -> str | None:
    """The detail of the first bound of `f` that `value` fails, or None when it passes them all."""
    for bound in f.bounds:
        limit = getattr(params, bound.field)
        if limit is None:
            continue
        is_max = bound.side == "max"
        if (value <= limit) if is_max else (value >= limit):
            continue
        op = ">" if is_max else "<"
        if bound.kind == "int":  # counts: shown as whole numbers
            if math.isnan(value):
                return f"{f.column}=nan is not a number"
            return f"{f.column}={value:g} {op} {bound.side} {limit}"
        shown, limit_text = _pair(value, limit)
        return f"{f.column}={shown} {op} {bound.side} {limit_text}"
    return None
