"""Quality classifiers a steward trains (`roots classifier train`): fastText supervised models that score how
much a document looks like the steward's wanted text, after DCLM's and RedPajama-2's fastText signals.

Score, then decide, as for every other stage: each document of a classifier's language gets `NAME_score`
(the model's probability of the positive label) in its `signals`, and the cut is applied afterwards from the
stored score, so `run --rethreshold` re-decides without the model. The cut is either an absolute
`min_score` or a `percentile` of the held-out positive examples' scores stored at training time (as
`roots lm train` stores perplexity percentiles): `percentile: 10` rejects what scores below 90% of the
wanted text did.

Text goes to the model the way language ID sends it (`roots.stages.langid`): the first `MAX_CHARS`
characters, lower-cased, line breaks as spaces, the same at training and at scoring. fastText 0.9.3 with
numpy 2 fails on `predict(str)`, so scoring always passes a list (one call per batch).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from roots.core.errors import UserError
from roots.core.schema import CLASSIFIER_PREFIX
from roots.core.util import interpolate_percentile

MAX_CHARS = 4000
POSITIVE, NEGATIVE = "__label__pos", "__label__neg"
MODEL_FILE, META_FILE = "model.bin", "meta.json"
PERCENTILES: tuple[int, ...] = (0, 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 100)
NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")


def prepare(text: str) -> str:
    """What the model reads of a document, identical at training and scoring time."""
    return text[:MAX_CHARS].lower().replace("\n", " ").replace("\r", " ")


def check_name(name: str, where: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise UserError(
            f"{where}: classifier name {name!r} must be lower-case letters, digits and _ "
            "(starting with a letter, at most 40 characters), e.g. `wiki_ref`."
        )
    return name


@dataclass(frozen=True)
class ClassifierSpec:
    """One active classifier of a run: where its model is, which language it scores, and its cut."""

    name: str
    model_dir: str
    lang: str | None  # None: every language
    min_score: float | None = None
    percentile: float | None = None

    @property
    def reason(self) -> str:
        return f"{CLASSIFIER_PREFIX}{self.name}"

    @property
    def column(self) -> str:
        return f"{self.name}_score"

    def applies(self, lang: str) -> bool:
        return self.lang is None or self.lang == lang


def read_meta(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / META_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{path} is missing or unreadable ({exc}); train the classifier with "
            f"`roots classifier train {Path(model_dir).name} ...`."
        ) from None


def percentile_of(meta: Mapping[str, Any], pct: float) -> float | None:
    """The held-out positive score at `pct`, interpolated between the stored points (None: none stored)."""
    return interpolate_percentile((meta.get("percentiles") or {}).get("positive") or {}, pct)


def cut_of(spec: ClassifierSpec, meta: Mapping[str, Any] | None) -> tuple[float | None, str]:
    """(the minimum score a document needs, how it was set); the percentile form needs the model's meta."""
    if spec.percentile is None:
        return spec.min_score, "min"
    if meta is None:
        return None, f"p{spec.percentile:g} of held-out positives (model not found here)"
    value = percentile_of(meta, spec.percentile)
    return (None, "no percentiles stored") if value is None else (value, f"min (p{spec.percentile:g})")


def resolve_specs(
    config: Mapping[str, Any] | None, classifiers_dir: Path, where: str
) -> tuple[ClassifierSpec, ...]:
    """The active classifiers from a `classifiers: {NAME: {min_score: 0.5} | {percentile: 10}}` mapping.

    Each needs its trained model under `classifiers_dir/NAME` (checked now, not in a worker), and exactly
    one of `min_score` (0..1) or `percentile` (0..100); `lang` overrides the language it was trained for.
    """
    specs = []
    for name, values in sorted((config or {}).items()):
        at = f"{where}: `classifiers.{name}`"
        check_name(str(name), at)
        if not isinstance(values, Mapping):
            raise UserError(f"{at} must be a mapping such as {{min_score: 0.5}} or {{percentile: 10}}.")
        unknown = sorted(set(values) - {"min_score", "percentile", "lang"})
        if unknown:
            raise UserError(f"{at}: unknown key(s) {', '.join(unknown)}; valid: min_score, percentile, lang.")
        chosen = [k for k in ("min_score", "percentile") if values.get(k) is not None]
        if len(chosen) != 1:
            raise UserError(f"{at}: give exactly one of `min_score` (0 to 1) or `percentile` (0 to 100).")
        key = chosen[0]
        value = values[key]
        top = 1.0 if key == "min_score" else 100.0
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= top:
            raise UserError(f"{at}: `{key}` must be a number between 0 and {top:g}, got {value!r}.")
        model_dir = classifiers_dir / str(name)
        meta = read_meta(model_dir) if (model_dir / META_FILE).exists() else None
        if meta is None or not (model_dir / MODEL_FILE).is_file():
            raise UserError(
                f"{at}: no trained classifier in {model_dir}; train it with "
                f"`roots classifier train {name} --positive FILE --negative FILE`."
            )
        lang = values.get("lang", meta.get("lang"))
        specs.append(
            ClassifierSpec(
                str(name),
                str(model_dir),
                str(lang) if lang else None,
                float(value) if key == "min_score" else None,
                float(value) if key == "percentile" else None,
            )
        )
    return tuple(specs)


class Classifier:
    """A trained model directory; the fastText model is loaded on first use and dropped when pickled."""

    def __init__(self, model_dir: str | Path, model: Any = None) -> None:
        """`model`: an already trained fastText model (training measures it before its meta exists)."""
        self.model_dir = Path(model_dir)
        self.meta = read_meta(self.model_dir) if model is None else {}
        self._model: Any = model

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}

    def _loaded(self) -> Any:
        if self._model is None:
            import fasttext

            try:
                self._model = fasttext.load_model(str(self.model_dir / MODEL_FILE))
            except ValueError as exc:
                raise UserError(
                    f"{self.model_dir / MODEL_FILE} is not a fastText model ({exc}); retrain the classifier."
                ) from None
        return self._model

    def scores(self, texts: Sequence[str]) -> list[float]:
        """P(positive) for each text, one batched fastText call (a list, never a single string)."""
        if not texts:
            return []
        labels, probs = self._loaded().predict([prepare(t) for t in texts], k=2)
        out = []
        for lbls, ps in zip(labels, probs):
            score = next((float(p) for lbl, p in zip(lbls, ps) if lbl == POSITIVE), None)
            if score is None:  # only the negative label came back: its complement
                neg = next((float(p) for lbl, p in zip(lbls, ps) if lbl == NEGATIVE), 1.0)
                score = 1.0 - neg
            out.append(0.0 if math.isnan(score) else round(min(1.0, max(0.0, score)), 6))
        return out


@lru_cache(maxsize=16)
def load(model_dir: str) -> Classifier:
    """One model per worker process, whatever the number of DoFn instances."""
    return Classifier(model_dir)
