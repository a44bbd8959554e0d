"""KenLM perplexity scoring, exactly the way ROOTS/cc_net did it (training: `roots.jobs.train_lm`).

ROOTS dropped OSCAR documents whose perplexity under a per-language 5-gram KenLM model was above a
threshold (reference §2.4). The perplexity is only meaningful if the text is normalised and
tokenised *identically* at training and at scoring time, so this module owns the single
normalisation function (`normalise_for_lm`) and both sides of the pipeline:

* `roots.jobs.train_lm.train_lm` normalises a corpus, trains a SentencePiece unigram model, estimates a
  5-gram model with KenLM's `lmplz` (a C++ tool built by `make lmplz`, see `roots/tools/build_kenlm.sh`),
  converts it with `build_binary`, and calibrates perplexity percentiles on held-out lines so that thresholds
  can be chosen for models that are not the ROOTS Wikipedia ones.
* `PerplexityModel` loads such a directory lazily (it is pickled into Beam workers, so the heavy
  C++ objects are only created on first use) and scores a document as ROOTS did.

Nothing here downloads anything: models are trained locally from corpora the operator supplies.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from roots.core.errors import JobError, UserError
from roots.core.util import interpolate_percentile

__all__ = [
    "CALIBRATION_PERCENTILES",
    "NORMALISATION_VERSION",
    "PerplexityModel",
    "normalise_for_lm",
]

# --------------------------------------------------------------------------------------------------
# Normalisation (cc_net `text_normalizer` + ROOTS `ModifyingDocuments.normalization`)
# --------------------------------------------------------------------------------------------------

#: Bumped whenever `normalise_for_lm` changes; stored in calibration.json so a model trained with an
#: older normalisation can be detected instead of silently producing shifted perplexities.
NORMALISATION_VERSION = 1

# Codes 0-31 and 127-159. This deliberately includes "\n", "\r" and "\t": ROOTS removed them (not
# replaced them with spaces), which is why its perplexity is a whole-document score (§2.4 step 3).
_NON_PRINTING_RE = re.compile("[" + "".join(map(chr, [*range(32), *range(127, 160)])) + "]")

# `uniform_whitespace`: exotic whitespace characters mapped to a plain space (runs are not collapsed;
# SentencePiece's default normaliser already squeezes repeated spaces).
_EXOTIC_WHITESPACE = (
    "\u00a0"  # no-break space
    "\u2002"  # en space
    "\u2003"  # em space
    "\u2007"  # figure space
    "\u2008"  # punctuation space
    "\u2009"  # thin space
    "\u200a"  # hair space
    "\u202f"  # narrow no-break space
    "\u3000"  # ideographic space
    "\ufffc"  # object replacement character
)
_WHITESPACE_RE = re.compile(f"[{_EXOTIC_WHITESPACE}]")

# `\d` is Unicode-aware in Python, as it was in cc_net: Arabic-Indic, Devanagari... digits become 0.
_DIGIT_RE = re.compile(r"\d")
_ASCII_DIGITS_TO_ZERO = bytes.maketrans(b"0123456789", b"0000000000")
_ASCII_NON_PRINTING = bytes([*range(32), 127])

# cc_net's `replace_unicode_punct` map (also ROOTS `normalization.py`), character for character.
_UNICODE_PUNCT: dict[str, str] = {
    "，": ",",
    "。": ".",
    "、": ",",
    "„": '"',
    "”": '"',
    "“": '"',
    "«": '"',
    "»": '"',
    "１": '"',
    "」": '"',
    "「": '"',
    "《": '"',
    "》": '"',
    "´": "'",
    "∶": ":",
    "：": ":",
    "？": "?",
    "！": "!",
    "（": "(",
    "）": ")",
    "；": ";",
    "–": "-",
    "—": " - ",
    "．": ". ",
    "～": "~",
    "’": "'",
    "…": "...",
    "━": "-",
    "〈": "<",
    "〉": ">",
    "【": "[",
    "】": "]",
    "％": "%",
    "►": "-",
}
_PUNCT_RE = re.compile("[" + "".join(map(re.escape, _UNICODE_PUNCT)) + "]")


def _replace_punct(match: re.Match[str]) -> str:
    return _UNICODE_PUNCT[match.group()]


def normalise_for_lm(text: str) -> str:
    """Normalise text for the perplexity model: the ONE function used for training and scoring.

    Steps, in the order ROOTS applied them: remove non-printing characters (codes 0-31 and
    127-159, including newlines and tabs), strip, map exotic whitespace to spaces, replace every
    digit with "0", and map unicode punctuation to ASCII with cc_net's table. There is no
    lower-casing and accents are kept, matching the ROOTS/cc_net models (`LOWER_CASE=False`,
    `REMOVE_ACCENTS=False`). Digits become 0 because cc_net trained with `NORMALIZE_NUMBERS=True`;
    scoring without it would make every number an unseen token.

    The two character maps are regex substitutions that ASCII text skips (every key is non-ASCII):
    `str.translate` with a dict looks up every character and cost more than the SentencePiece encode.
    ASCII text takes the bytes route: its only digits are 0-9, and 127 its only code over 126.
    """
    if text.isascii():  # one bytes.translate deletes the control bytes and zeroes the digits
        ascii_bytes = text.encode("ascii").translate(_ASCII_DIGITS_TO_ZERO, _ASCII_NON_PRINTING)
        return ascii_bytes.decode("ascii").strip()
    text = _NON_PRINTING_RE.sub("", text).strip()
    if not text:
        return text
    text = _WHITESPACE_RE.sub(" ", text)
    text = _DIGIT_RE.sub("0", text)
    return _PUNCT_RE.sub(_replace_punct, text)


# --------------------------------------------------------------------------------------------------
# Model files
# --------------------------------------------------------------------------------------------------

#: Percentiles stored in calibration.json (0 and 100 are the min and max, so that any percentile can
#: be interpolated). 30 and 60 are cc_net's head/middle/tail cut points.
CALIBRATION_PERCENTILES: tuple[int, ...] = (0, 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 100)

SP_MODEL = "sp.model"
LM_BINARY = "lm.binary"
CALIBRATION = "calibration.json"


# --------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------


class PerplexityModel:
    """A trained model directory (sp.model, lm.binary, calibration.json) that scores documents.

    The SentencePiece processor and the KenLM model are loaded on first use and dropped when pickled,
    so the object is cheap to construct in a driver and to ship to Beam workers.
    """

    def __init__(self, model_dir: Path, calibration: dict[str, Any]) -> None:
        self.model_dir = Path(model_dir)
        self.calibration = calibration
        self._sp: Any = None
        self._lm: Any = None
        self._pieces_are_fields = False

    @classmethod
    def load(cls, model_dir: Path | str) -> PerplexityModel:
        """Open a directory written by `train_lm`; checks that the files are there, loads nothing heavy."""
        model_dir = Path(model_dir)
        missing = [name for name in (SP_MODEL, LM_BINARY, CALIBRATION) if not (model_dir / name).is_file()]
        if missing:
            raise UserError(
                f"perplexity model directory {model_dir} lacks {', '.join(missing)}; "
                "train the model for this language first (`roots lm train`)"
            )
        try:
            calibration = json.loads((model_dir / CALIBRATION).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{model_dir / CALIBRATION} is unreadable: {exc}; retrain the model") from None
        version = calibration.get("normalization_version")
        if version != NORMALISATION_VERSION:
            raise UserError(
                f"{model_dir} was trained with normalisation version {version}, this code uses "
                f"{NORMALISATION_VERSION}: perplexities would not be comparable; retrain the model"
            )
        return cls(model_dir, calibration)

    def _ensure_loaded(self) -> None:
        if self._lm is not None:
            return
        import kenlm
        import sentencepiece as spm

        try:
            sp = spm.SentencePieceProcessor(model_file=str(self.model_dir / SP_MODEL))
            lm = kenlm.Model(str(self.model_dir / LM_BINARY))
        except (OSError, RuntimeError) as exc:
            raise JobError(f"cannot load the perplexity model in {self.model_dir}: {exc}") from None
        self._sp, self._lm = sp, lm
        # True for models that escape spaces (SentencePiece's default, and the ROOTS/cc_net models)
        self._pieces_are_fields = all(p and not any(c.isspace() for c in p)
                                      for p in sp.encode_as_pieces("a b  c d"))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_sp"] = state["_lm"] = None
        return state

    def perplexity(self, text: str) -> float:
        """Perplexity of a document, exactly as ROOTS' `compute_perplexity_score` (§2.4).

        Normalise, tokenise into SentencePiece pieces joined by spaces, then for each "\\n"-separated
        line add KenLM's log10 score (with <s> and </s>) and `len(line.split()) + 1`; the result is
        `round(10 ** (-log_score / length), 1)`. Normalisation removes "\\n", so there is always
        exactly one line and the score is document-level: the loop is kept to match ROOTS literally.
        """
        self._ensure_loaded()
        normalised = normalise_for_lm(text)
        pieces = self._sp.encode_as_pieces(normalised)
        doc = " ".join(pieces)
        if "\n" not in doc:  # always, after normalisation: the loop below on one line, without its splits
            # Normalised ASCII text has no whitespace but " ", which SentencePiece escapes, so every piece is
            # one whitespace-separated field and counting them needs no split (a third of this wrapper's
            # cost).
            fields = len(pieces) if normalised.isascii() and self._pieces_are_fields else len(doc.split())
            return round(10.0 ** (-self._lm.score(doc) / (fields + 1)), 1)
        log_score, length = 0.0, 0
        for line in doc.split("\n"):
            log_score += self._lm.score(line)
            length += len(line.split()) + 1
        return round(10.0 ** (-log_score / length), 1)

    def percentile_threshold(self, pct: float) -> float:
        """Perplexity at percentile `pct` (0-100) of the held-out distribution, interpolated linearly.

        Used to turn "keep the best 90%" into a threshold for a locally trained model, whose
        perplexity scale differs from the ROOTS Wikipedia models' fixed cut-offs.
        """
        if not 0.0 <= pct <= 100.0:
            raise UserError(f"percentile must be between 0 and 100, got {pct}")
        value = percentile_value(self.calibration, pct)
        if value is None:
            raise UserError(f"{self.model_dir / CALIBRATION} has no percentiles; retrain the model")
        return value


# --------------------------------------------------------------------------------------------------
# The perplexity cap
# --------------------------------------------------------------------------------------------------


def percentile_value(calibration: Mapping[str, Any], pct: float) -> float | None:
    """The perplexity at percentile `pct` of a model's calibration (`percentiles`: {"p30": value, ...}),
    interpolated linearly between the stored points; None when the calibration has none."""
    return interpolate_percentile(calibration.get("percentiles") or {}, pct)


def read_calibration(lm_dir: str | os.PathLike[str] | None, lang: str) -> dict[str, Any] | None:
    """`lang`'s calibration.json under a run's model directory, or None when it is not on this machine."""
    path = Path(lm_dir) / lang / CALIBRATION if lm_dir else None
    if path is None or not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def ppl_cap(params: Any, calibration: Mapping[str, Any] | None) -> tuple[float | None, str]:
    """(the perplexity cap, how it was set) for a language's resolved parameters (`quality.resolve_params`).

    `ppl_percentile` (cc_net style) wins over `ppl_max` (ROOTS's absolute cap); a percentile cap needs the
    model's calibration, and without it there is no cap to apply or to draw. The processor, the report and
    the data card all call this, so the cap applied is the cap shown.
    """
    pct = params.ppl_percentile
    if pct is None:
        return params.ppl_max, "max"
    if calibration is None:
        return None, f"p{pct:g} of calibration (model not found here)"
    value = percentile_value(calibration, pct)
    if value is None:
        return None, "percentile cap (calibration has no percentiles)"
    return value, f"max (p{pct:g})"
