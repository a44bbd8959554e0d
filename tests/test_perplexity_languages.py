"""Perplexity in three languages, one without spaces: real text beats its shuffled words, the filter rejects
the shuffled copy with reason `perplexity` and keeps the original, and scores equal kenlm's own perplexity."""

from __future__ import annotations

import json
import random

import pytest

from roots.io import outputs
from roots.jobs import train_lm
from roots.stages import perplexity
from tests.conftest import REPO, udhr_paragraphs, write_card

pytestmark = pytest.mark.skipif(
    not (train_lm.REPO_TOOLS_BIN / "lmplz").exists(),
    reason="lmplz not built; `make lmplz` builds it (make test always does)")
LANGS = ("en", "fr", "zh")


def shuffled(text: str, lang: str) -> str:
    rng = random.Random(7)
    units = list(text) if lang == "zh" else text.split()
    rng.shuffle(units)
    return ("" if lang == "zh" else " ").join(units)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from roots.core import workspace

    ws = workspace.init(tmp_path_factory.mktemp("ppl3") / "ws")
    for lang in LANGS:
        train_lm.train_lm(lang, REPO / "roots" / "data" / "lm_reference" / f"{lang}.txt",
                          ws.root / "models" / "lm" / lang, order=3, vocab_size=2000)
    return ws


def test_real_text_beats_shuffled_and_matches_kenlm(trained):
    import kenlm
    import sentencepiece as spm

    for lang in LANGS:
        model = perplexity.PerplexityModel.load(trained.root / "models" / "lm" / lang)
        klm = kenlm.Model(str(model.model_dir / "lm.binary"))
        sp = spm.SentencePieceProcessor(model_file=str(model.model_dir / "sp.model"))
        for text in udhr_paragraphs(lang, 3, min_words=40):
            assert model.perplexity(text) < model.perplexity(shuffled(text, lang)), lang
            pieces = " ".join(sp.encode_as_pieces(perplexity.normalise_for_lm(text)))
            assert model.perplexity(text) == round(klm.perplexity(pieces), 1), lang


def test_filter_rejects_shuffled_keeps_originals(trained, run_cli):
    docs, limits = [], {}
    for lang in LANGS:
        model = perplexity.PerplexityModel.load(trained.root / "models" / "lm" / lang)
        texts = udhr_paragraphs(lang, 2, min_words=40)
        real = [model.perplexity(t) for t in texts]
        fake = [model.perplexity(shuffled(t, lang)) for t in texts]
        assert max(real) < min(fake)
        limits[lang] = round((max(real) + min(fake)) / 2, 1)
        docs += [{"id": f"{lang}-real-{i}", "text": t} for i, t in enumerate(texts)]
        docs += [{"id": f"{lang}-shuffled-{i}", "text": shuffled(t, lang)} for i, t in enumerate(texts)]
    (trained.root / "d.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    # lid_min 0: shuffled Chinese characters would otherwise fail language ID before perplexity sees them
    thresholds = ", ".join(f"{lang}: {{ppl_max: {limit}, lid_min: 0.0}}" for lang, limit in limits.items())
    write_card(trained, "three", "d.jsonl", languages="[en, fr, zh]", data_extra=", id_field: id",
               extra=f"recipe: {{skip: [quality, dedup], thresholds: {{{thresholds}}}}}\n")
    rc, _, err = run_cli("--workspace", str(trained.root), "run", "three")
    assert rc == 0, err
    out = trained.root / "runs" / "three"
    kept = {r["id"] for r in outputs.read_kind(out, "kept").to_pylist()}
    rejected = {r["id"]: r["reason"] for r in outputs.read_kind(out, "rejected").to_pylist()}
    assert kept == {d["id"] for d in docs if "-real-" in d["id"]}
    assert rejected == {d["id"]: "perplexity" for d in docs if "-shuffled-" in d["id"]}
