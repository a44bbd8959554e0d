"""fastText language ID on real UDHR paragraphs (roots/data/langid_labelled.jsonl)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from roots.core.errors import UserError
from roots.stages.langid import LanguageIdentifier, load, normalise_label

LABELLED = Path(__file__).resolve().parent.parent / "roots" / "data" / "langid_labelled.jsonl"
WELL_COVERED = ["ar", "bn", "ca", "de", "el", "en", "es", "eu", "fa", "fr", "gu", "he", "hi", "id", "it",
                "ja", "kn", "ko", "ml", "mr", "nl", "pa", "pl", "pt", "ru", "sw", "ta", "te", "th", "tr",
                "uk", "ur", "vi", "zh"]


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[str]]:
    by_lang: dict[str, list[str]] = defaultdict(list)
    for line in LABELLED.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        by_lang[rec["lang"]].append(rec["text"])
    return by_lang


def test_correct_on_real_paragraphs_in_many_languages(corpus):
    model = load()
    assert len(WELL_COVERED) >= 20
    for lang in WELL_COVERED:
        texts = corpus[lang]
        preds = model.predict(texts)
        correct = sum(p.lang == lang for p in preds)
        assert correct == len(texts), (lang, [p.lang for p in preds])
        assert all(0 < p.score <= 1 for p in preds), lang


def test_model_coverage_gaps_are_known():
    model = load()
    for lang in ("ig", "zu", "xh", "rw", "wo", "ln", "ha", "sn", "st", "ny"):
        assert not model.knows(lang), lang
    for lang in ("en", "yo", "sw", "so"):
        assert model.knows(lang)


def test_batch_equals_single_and_handles_newlines_and_empty():
    model = load()
    texts = ["The cat sat on the mat.\nAnd then it slept.", "", "Le chat dort sur le canapé."]
    batch = model.predict(texts)
    singles = [model.predict([t])[0] for t in texts]
    assert batch == singles
    assert batch[0].lang == "en" and batch[2].lang == "fr"
    assert model.predict([]) == []


def test_labels_normalised():
    assert normalise_label("__label__en") == "en"
    assert normalise_label("__label__eng_Latn") == "en"
    assert normalise_label("__label__ibo_Latn") == "ig"
    assert normalise_label("__label__xyz_Latn") == "xyz"


def test_bad_model_paths(tmp_path):
    with pytest.raises(UserError, match="not found"):
        LanguageIdentifier(str(tmp_path / "missing.bin"))
    bogus = tmp_path / "bogus.bin"
    bogus.write_bytes(b"not a model")
    with pytest.raises(UserError, match="not a fastText model"):
        LanguageIdentifier(str(bogus))
