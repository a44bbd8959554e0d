"""Tests for roots.stages.perplexity: cc_net normalisation, KenLM training with the real lmplz, ROOTS
perplexity."""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import random
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roots.core.errors import JobError, UserError
from roots.jobs import train_lm
from roots.stages import perplexity

REPO = Path(__file__).resolve().parent.parent
LM_REFERENCE = REPO / "roots" / "data" / "lm_reference"

# Natural English written for this test (general domain, so the model is not just the UDHR).
ENGLISH_TRAIN = """\
The weather was cold and wet for most of the week, so we stayed inside and read books.
On Saturday morning the sun came out and the children went to play in the park.
My grandmother used to bake bread every Sunday, and the whole house smelled of it.
She always said that good bread needs time, patience and a warm kitchen.
The train to the city leaves at seven in the morning and arrives two hours later.
Most people who work in the city take the train because parking is expensive.
The museum is open every day except Monday, and entry is free for students.
We spent the afternoon looking at old maps and paintings of the harbour.
The river runs through the middle of the town and into the sea.
In the summer, boats carry visitors up and down the river to see the old bridges.
The doctor told him to drink more water and to walk for half an hour every day.
After a few weeks he felt much better and started to sleep well again.
The library has a large collection of books about the history of the region.
Many of the oldest books were written by hand and are kept in a special room.
Our neighbours have two dogs and a cat, and the animals get along very well.
Every evening the dogs wait by the door for their owners to come home.
The teacher asked the students to write a short story about their holidays.
Some of the stories were funny, and some of them were surprisingly sad.
The company announced that it would open a new office in the north of the country.
The new office will employ about two hundred people by the end of next year.
Scientists have found that the ice at the poles is melting faster than expected.
The report says that sea levels could rise by more than a metre this century.
He opened the window and listened to the birds singing in the garden.
The garden was full of roses, and the air smelled sweet after the rain.
She wrote a letter to her brother, who was living on the other side of the world.
It took almost three weeks for the letter to arrive at his house.
The market in the square sells fresh fruit, vegetables, cheese and fish.
On busy days it is hard to walk between the stalls because of the crowds.
The old castle on the hill was built more than eight hundred years ago.
Today it is a museum, and thousands of tourists visit it every summer.
The football match was cancelled because the field was covered in snow.
The players were disappointed, but the fans were happy to stay at home.
Learning a new language takes time, but it opens the door to another culture.
The best way to learn is to speak with people and to read as much as you can.
The farmer got up before dawn to feed the cows and the chickens.
In the autumn the whole family helped to bring in the harvest.
The city council decided to build a new bridge across the river.
Work on the bridge will begin in the spring and should take two years.
The little boy was afraid of the dark, so his mother left the light on.
She sat by his bed and told him a story until he fell asleep.
The restaurant on the corner serves the best soup in the whole town.
It is usually full at lunch time, so it is a good idea to book a table.
The storm knocked down several trees and cut the power to hundreds of homes.
Workers repaired the lines during the night, and the lights came back in the morning.
The students were nervous before the exam, but most of them passed.
Their teacher was proud of them and invited the whole class for a party.
The hospital is looking for nurses and doctors to work in the new children's ward.
The new ward has bright rooms, a playground and a small library for the patients.
The shop closes early on Sundays, so we went there on Saturday afternoon.
We bought a new table, four chairs and a lamp for the living room.
The village is small, but it has a school, a church, a post office and two pubs.
Everyone knows everyone else, and news travels very quickly.
The plane was delayed by three hours because of the fog.
The passengers waited in the airport and tried to sleep on the hard chairs.
The festival takes place every year at the end of August.
Musicians from all over the world come to play in the streets and in the parks.
The mountains were covered in snow, and the view from the top was beautiful.
We walked for six hours and came back tired but very happy.
His first novel was a great success and was translated into twenty languages.
He is now writing a second book about the life of his grandfather during the war.
"""

# Held out: never in the training corpus, natural English on the same everyday topics.
ENGLISH_TEST = [
    "The children played in the garden until it was time for dinner.",
    "We took the early train to the city and visited the museum in the afternoon.",
    "The old bridge over the river was repaired after the storm last winter.",
    "She told her brother that the market in the square sells the best fresh bread.",
    "Most of the students in the class want to learn a new language next year.",
]

FRENCH_TEST = [
    "Les enfants ont joué dans le jardin jusqu'à l'heure du dîner.",
    "Nous avons pris le premier train pour la ville et visité le musée l'après-midi.",
    "Le vieux pont sur la rivière a été réparé après la tempête de l'hiver dernier.",
    "Elle a dit à son frère que le marché de la place vend le meilleur pain frais.",
    "La plupart des étudiants de la classe veulent apprendre une nouvelle langue l'année prochaine.",
]


def _lmplz_or_skip() -> None:
    try:
        train_lm.find_tool("lmplz")
        train_lm.find_tool("build_binary")
    except UserError:
        pytest.skip("KenLM's lmplz/build_binary are not built; `make lmplz` builds them (the Makefile's "
                    "test target always does, so this skip only happens when pytest is run by hand)")


def _english_corpus(path: Path) -> Path:
    lines = ENGLISH_TRAIN.splitlines()
    reference = LM_REFERENCE / "en.txt"
    if reference.is_file():  # UDHR paragraphs shipped for the demo models: more real English
        lines += reference.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def en_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[perplexity.PerplexityModel, dict, Path]:
    _lmplz_or_skip()
    root = tmp_path_factory.mktemp("lm")
    corpus = _english_corpus(root / "en.txt")
    out = root / "ws" / "models" / "lm" / "en"
    info = train_lm.train_lm("en", corpus, out, vocab_size=600, memory="64M", holdout_fraction=0.1, seed=0)
    return perplexity.PerplexityModel.load(out), info, corpus


# ------------------------------------------------------------------------------------------------
# normalisation (no lmplz needed)
# ------------------------------------------------------------------------------------------------


def test_normalise_digits_become_zero_including_non_ascii_digits() -> None:
    assert perplexity.normalise_for_lm("In 1948, 58 states") == "In 0000, 00 states"
    assert perplexity.normalise_for_lm("٣ and ३") == "0 and 0"  # Arabic-Indic and Devanagari digits


def test_normalise_keeps_case_and_accents() -> None:
    assert perplexity.normalise_for_lm("Élan CAFÉ Straße") == "Élan CAFÉ Straße"


def test_normalise_removes_newlines_and_control_characters_without_spaces() -> None:
    # ROOTS deletes codes 0-31 and 127-159: "\n" joins the lines, it does not become a space
    assert perplexity.normalise_for_lm("first line\nsecond\tcolumn\x85end\x00") == "first linesecondcolumnend"
    assert perplexity.normalise_for_lm("  \n padded \t ") == "padded"
    assert "\n" not in perplexity.normalise_for_lm("a\r\nb\n\nc")


def test_normalise_unicode_punctuation_map() -> None:
    # cc_net's own test string for replace_unicode_punct and its expected output, except that the
    # fullwidth "１" (a \d digit) becomes "0": digits are replaced before punctuation, as in ROOTS/cc_net
    weird = "，。、„”“«»１」「《》´∶：？！（）；–—．～’…━〈〉【】％"
    expected = ',.,"""""0""""\'::?!();- - . ~\'...-<>[]%'
    assert perplexity.normalise_for_lm(weird + "►") == expected + "-"
    assert perplexity.normalise_for_lm("l’homme — «libre»…") == "l'homme  -  \"libre\"..."


def test_normalise_exotic_whitespace_and_strip() -> None:
    assert perplexity.normalise_for_lm("\u3000a\u00a0b\u2009c ") == "a b c"
    assert perplexity.normalise_for_lm("") == ""
    assert perplexity.normalise_for_lm("\n\t\x01") == ""


def _reference_normalise(text: str) -> str:
    """`normalise_for_lm` as ROOTS wrote it, with `str.translate`: the regex version must match it."""
    import re

    text = re.sub("[" + "".join(map(chr, [*range(32), *range(127, 160)])) + "]", "", text).strip()
    if not text:
        return text
    text = text.translate(str.maketrans({c: " " for c in perplexity._EXOTIC_WHITESPACE}))
    text = re.sub(r"\d", "0", text)
    return text.translate(str.maketrans(perplexity._UNICODE_PUNCT))


_LM_TRICKY = [*perplexity._UNICODE_PUNCT, *perplexity._EXOTIC_WHITESPACE, "\n", "\t", "\x85", "\x00", "٣",
              "१", "7", " "]


@settings(max_examples=400)
@given(st.lists(st.one_of(st.sampled_from(_LM_TRICKY), st.text(), st.text(st.characters(max_codepoint=127))),
                max_size=12).map("".join))
def test_normalise_matches_the_translate_reference(text: str) -> None:
    assert perplexity.normalise_for_lm(text) == _reference_normalise(text)


# ------------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["", "english", "EN", "e", "en-US", "../en", "zh_", "12"])
def test_bad_language_code_is_a_user_error(tmp_path: Path, lang: str) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("some text\n", encoding="utf-8")
    with pytest.raises(UserError, match="language code"):
        train_lm.train_lm(lang, corpus, tmp_path / "out")


def test_missing_corpus_is_a_user_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(UserError, match="nope.txt"):
        train_lm.train_lm("en", missing, tmp_path / "out")


def test_corpus_empty_after_normalisation_is_a_user_error(tmp_path: Path) -> None:
    _lmplz_or_skip()
    corpus = tmp_path / "blank.txt"
    corpus.write_text("\n   \n\t\n\x00\n", encoding="utf-8")
    with pytest.raises(UserError, match="blank.txt"):
        train_lm.train_lm("en", corpus, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_lmplz_is_a_user_error_with_the_make_hint(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("ROOTS_KENLM_BIN", str(empty))
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(train_lm, "REPO_TOOLS_BIN", empty)
    with pytest.raises(UserError, match=r"lmplz not found.*make lmplz"):
        train_lm.find_tool("lmplz")
    corpus = tmp_path / "c.txt"
    corpus.write_text("some text\n", encoding="utf-8")
    with pytest.raises(UserError, match="make lmplz"):
        train_lm.train_lm("en", corpus, tmp_path / "out")


def test_failing_lmplz_is_a_job_error_with_its_stderr(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _lmplz_or_skip()
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake = fake_bin / "lmplz"
    fake.write_text("#!/bin/sh\necho 'boom: disk on fire' >&2\nexit 3\n", encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("ROOTS_KENLM_BIN", str(fake_bin))
    corpus = _english_corpus(tmp_path / "en.txt")
    out = tmp_path / "models" / "lm" / "en"
    with pytest.raises(JobError, match=r"(?s)lmplz.*exit status 3.*disk on fire"):
        train_lm.train_lm("en", corpus, out, vocab_size=300, memory="32M")
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # the temporary directory was cleaned up


def test_load_of_an_incomplete_directory_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "sp.model").write_bytes(b"")
    with pytest.raises(UserError, match=r"lm\.binary"):
        perplexity.PerplexityModel.load(tmp_path)


# ------------------------------------------------------------------------------------------------
# training and scoring with the real lmplz
# ------------------------------------------------------------------------------------------------


def test_train_writes_model_files_and_calibration(
        en_model: tuple[perplexity.PerplexityModel, dict, Path]) -> None:
    model, info, corpus = en_model
    files = sorted(p.name for p in model.model_dir.iterdir())
    assert files == ["calibration.json", "lm.binary", "sp.model"]
    assert not [p for p in model.model_dir.parent.iterdir() if p.name.startswith(".")]  # no temp leftovers
    calib = json.loads((model.model_dir / "calibration.json").read_text("utf-8"))
    assert calib == model.calibration
    assert {k: v for k, v in info.items() if k != "model_dir"} == calib
    assert calib["lang"] == "en" and calib["order"] == 5
    assert calib["corpus_sha256"] == hashlib.sha256(corpus.read_bytes()).hexdigest()
    assert calib["n_heldout_lines"] >= 1
    assert calib["n_train_lines"] + calib["n_heldout_lines"] == calib["n_lines"]
    assert calib["calibration_source"] == "heldout"
    assert set(calib["versions"]) >= {"kenlm", "sentencepiece", "roots"}
    assert 0 < calib["vocab_size"] <= 600


def test_calibration_percentiles_are_monotone(
        en_model: tuple[perplexity.PerplexityModel, dict, Path]) -> None:
    model, _, _ = en_model
    pct = model.calibration["percentiles"]
    keys = sorted(pct, key=lambda k: float(k[1:]))
    assert [float(k[1:]) for k in keys] == [0, 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 100]
    values = [pct[k] for k in keys]
    assert values == sorted(values) and values[0] > 0
    assert model.calibration["cc_net_cutoffs"] == {"head": pct["p30"], "middle": pct["p60"]}
    assert model.percentile_threshold(50) == pytest.approx(pct["p50"])
    assert pct["p30"] <= model.percentile_threshold(35) <= pct["p40"]
    assert model.percentile_threshold(0) == pct["p0"] and model.percentile_threshold(100) == pct["p100"]
    with pytest.raises(UserError):
        model.percentile_threshold(101)


def _salad(text: str, seed: int = 0) -> str:
    words = text.split()
    random.Random(seed).shuffle(words)
    return " ".join(words)


def test_english_scores_lower_than_word_salad_and_french(
        en_model: tuple[perplexity.PerplexityModel, dict, Path]) -> None:
    model, _, _ = en_model
    english = [model.perplexity(s) for s in ENGLISH_TEST]
    salad = [model.perplexity(_salad(s)) for s in ENGLISH_TEST]
    french = [model.perplexity(s) for s in FRENCH_TEST]
    doc_en = model.perplexity(" ".join(ENGLISH_TEST))
    doc_salad = model.perplexity(_salad(" ".join(ENGLISH_TEST)))
    doc_fr = model.perplexity(" ".join(FRENCH_TEST))
    print(f"en {english} salad {salad} fr {french} | doc en {doc_en} salad {doc_salad} fr {doc_fr}")
    assert doc_en * 1.5 < doc_salad
    assert doc_en * 3 < doc_fr
    assert sum(e < s for e, s in zip(english, salad, strict=True)) >= 4
    assert all(e < f for e, f in zip(english, french, strict=True))
    assert max(english) < min(french)


def test_perplexity_is_exactly_the_roots_formula(
        en_model: tuple[perplexity.PerplexityModel, dict, Path]) -> None:
    import kenlm
    import sentencepiece as spm

    model, _, _ = en_model
    sp = spm.SentencePieceProcessor(model_file=str(model.model_dir / "sp.model"))
    klm = kenlm.Model(str(model.model_dir / "lm.binary"))
    doc = "In 2024 the Museum\nopened “a new wing”…\tfor 3 years"
    pieces = " ".join(sp.encode_as_pieces(perplexity.normalise_for_lm(doc)))
    assert "\n" not in pieces  # one line: the score is document-level
    expected = round(10 ** (-klm.score(pieces, bos=True, eos=True) / (len(pieces.split()) + 1)), 1)
    assert model.perplexity(doc) == expected
    # normalisation is applied at scoring time: equivalent spellings score the same
    assert model.perplexity("It cost 15 dollars.") == model.perplexity("It cost 99 dollars.")
    assert model.perplexity("l’homme") == model.perplexity("l'homme")
    assert math.isfinite(model.perplexity("")) and model.perplexity("") > 0


def test_model_pickles_without_its_native_objects(
        en_model: tuple[perplexity.PerplexityModel, dict, Path]) -> None:
    model, _, _ = en_model
    score = model.perplexity(ENGLISH_TEST[0])  # forces loading
    clone = pickle.loads(pickle.dumps(model))
    assert clone._lm is None and clone._sp is None
    assert clone.perplexity(ENGLISH_TEST[0]) == score


def test_training_is_deterministic_and_replaces_atomically(tmp_path: Path) -> None:
    _lmplz_or_skip()
    corpus = _english_corpus(tmp_path / "en.txt")
    out = tmp_path / "ws" / "models" / "lm" / "en"
    first = train_lm.train_lm("en", corpus, out, vocab_size=300, memory="32M", seed=7)
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()}
    # over an existing model
    second = train_lm.train_lm("en", corpus, out, vocab_size=300, memory="32M", seed=7)
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()} == digests
    assert first == second
    assert sorted(p.name for p in out.parent.iterdir()) == ["en"]
    reference = tmp_path / "plain"
    reference.mkdir()  # the model directory gets ordinary permissions, not mkdtemp's private 0700
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE(reference.stat().st_mode)


_LM_TEXT = st.one_of(
    st.text(alphabet=st.characters(max_codepoint=127), max_size=200),  # ASCII: pieces counted without a split
    st.text(alphabet=st.sampled_from(list("ab cd\u3000\u2028\u1680\u00a0’…—é\n\t1٣")), max_size=60),
    st.text(max_size=80),
)


@settings(max_examples=200, deadline=None)
@given(text=_LM_TEXT)
def test_perplexity_fast_count_matches_the_formula(en_model: tuple[perplexity.PerplexityModel, dict, Path],
                                                   text: str) -> None:
    model, _, _ = en_model
    model.perplexity("warm up")
    doc = " ".join(model._sp.encode_as_pieces(perplexity.normalise_for_lm(text)))
    log_score, length = 0.0, 0
    for line in doc.split("\n"):
        log_score += model._lm.score(line)
        length += len(line.split()) + 1
    assert model.perplexity(text) == round(10.0 ** (-log_score / length), 1)
