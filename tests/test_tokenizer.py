"""The BLOOM tokenizer: configuration matches the spec (reference §7), training on real multilingual text,
exact round trips of any text (whitespace and code included), and loading through `transformers`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, pre_tokenizers

from roots.release import tokenizer as T
from tests.conftest import UDHR

LANGS = ("en", "fr", "es", "de", "ru", "zh", "ja", "ar", "hi", "bn", "ur", "vi", "sw")

CODE = (
    "def f(x):\n"
    "    if x:\n"
    "        return [i  for i in range(x)]  # two spaces\n"
    "\treturn None\n"
    "\n\n"
    "class A:\n"
    "\t\tpass   \n"
    "        \t  mixed = 1\r\n"
)


def sample_texts() -> list[str]:
    texts = []
    with UDHR.open(encoding="utf-8") as fh:
        for rec in map(json.loads, fh):
            if rec["lang"] in LANGS:
                texts.append(rec["text"])
    return texts


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    texts = sample_texts()
    assert {json.loads(line)["lang"] for line in UDHR.open(encoding="utf-8")} >= set(LANGS)
    return T.train_tokenizer(T.dedup_lines(texts + [CODE] * 3), vocab_size=2000)


def byte_decoder() -> dict[str, int]:
    """GPT-2's byte <-> printable-symbol table, inverted, to read byte-level pre-tokens as text."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), 256)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def pieces(tok: Tokenizer, text: str) -> list[str]:
    table = byte_decoder()
    return [bytes(table[c] for c in p).decode("utf-8") for p, _ in tok.pre_tokenizer.pre_tokenize_str(text)]


def test_configuration_matches_the_bloom_spec(tok: Tokenizer) -> None:
    cfg = json.loads(tok.to_str())
    assert cfg["normalizer"] is None
    assert cfg["pre_tokenizer"] == {
        "type": "Sequence",
        "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": " ?[^(\\s|[.,!?…。，、।۔،])]+"}, "behavior": "Isolated",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        ],
    }
    assert cfg["decoder"]["type"] == "ByteLevel"
    assert cfg["post_processor"] is None  # no BOS/EOS added by encode
    assert cfg["model"]["type"] == "BPE" and cfg["model"]["byte_fallback"] is False
    assert [(t["id"], t["content"], t["special"]) for t in cfg["added_tokens"]] == [
        (0, "<unk>", True), (1, "<s>", True), (2, "</s>", True), (3, "<pad>", True)]
    # the untrained pipeline is the same
    fresh = json.loads(T.build_bloom_tokenizer().to_str())
    assert fresh["pre_tokenizer"] == cfg["pre_tokenizer"] and fresh["normalizer"] is None


def test_special_tokens_vocab_and_alphabet(tok: Tokenizer) -> None:
    assert [tok.id_to_token(i) for i in range(4)] == ["<unk>", "<s>", "</s>", "<pad>"]
    assert T.eod_id(tok) == 2
    assert tok.get_vocab_size() == 2000
    assert set(pre_tokenizers.ByteLevel.alphabet()) <= set(tok.get_vocab())  # all 256 bytes
    with pytest.raises(ValueError):
        T.train_tokenizer(["abc"], vocab_size=259)


def test_pre_tokenizer_pieces_from_the_spec(tok: Tokenizer) -> None:
    """The examples in reference §7, checked through the trained tokenizer's own pre-tokenizer."""
    assert pieces(tok, " foo(bar)|baz!  two") == [" foo", "(", "bar", ")|", "baz", "! ", " two"]
    assert pieces(tok, "\n    return") == ["\n   ", " return"]
    assert pieces(tok, "我爱北京。你好") == ["我爱北京", "。", "你好"]
    assert pieces(tok, "12345 don't") == ["12345", " don't"]  # no digit or contraction splits


def test_training_is_deterministic() -> None:
    texts = sample_texts()[:300]
    assert (T.train_tokenizer(texts, vocab_size=600).to_str()
            == T.train_tokenizer(texts, vocab_size=600).to_str())


def test_real_text_round_trips_and_compresses(tok: Tokenizer) -> None:
    texts = sample_texts()
    encoded = T.encode_documents(tok, texts, append_eod=False)
    assert all(tok.decode(ids, skip_special_tokens=False) == text for ids, text in zip(encoded, texts))
    assert not any(0 in ids for ids in encoded)  # never <unk>
    n_bytes = sum(len(t.encode()) for t in texts)
    assert sum(map(len, encoded)) < n_bytes / 2  # the BPE actually learned merges for every script


@pytest.mark.parametrize("text", [
    CODE,
    "a  b   c    d",
    "    leading and trailing    ",
    "\t\ttabs\t\tinside\t",
    "\n\n\nnewlines\n\n",
    "  \u3000 ideographic space, nbsp\u00a0\u00a0here",
])
def test_whitespace_survives(tok: Tokenizer, text: str) -> None:
    ids = tok.encode(text).ids
    assert tok.decode(ids) == text
    assert "".join(pieces(tok, text)) == text


def test_code_indentation_is_tokenized_as_whitespace_runs(tok: Tokenizer) -> None:
    """Indentation never merges into a word: a token holding a letter or digit has at most one leading space
    and no other whitespace."""
    assert pieces(tok, "\n    return x") == ["\n   ", " return", " x"]
    assert pieces(tok, "\n\t\treturn x") == ["\n\t\t", "return", " x"]
    for ids in (tok.encode(CODE).ids, tok.encode(sample_texts()[0]).ids):
        for piece in (tok.decode([i]) for i in ids):
            body = piece.removeprefix(" ")
            if any(c.isalnum() for c in piece):
                assert not any(c.isspace() for c in body), repr(piece)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_round_trips(tok: Tokenizer, text: str) -> None:
    ids = tok.encode(text).ids
    assert tok.decode(ids, skip_special_tokens=False) == text
    if "<unk>" not in text:  # plain encode() matches special tokens written literally
        assert 0 not in ids


fragments = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["</s>", "<s>", "<pad>", "<unk>", " ", "  ", "\t", "\n", "\r\n", "。", "(", ")", "|", "…",
                     "،", "।", "🙂", "\x00", "\ufeff", "e\u0301"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(fragments, max_size=20).map("".join))
def test_documents_round_trip_and_cannot_inject_eod(tok: Tokenizer, text: str) -> None:
    """A literal "</s>" inside a document is text, so the only special id is the appended EOD."""
    ids = T.encode_document(tok, text)
    if not text:
        assert ids == []
        return
    assert ids[-1] == 2
    assert not set(ids[:-1]) & {0, 1, 2, 3}
    assert tok.decode(ids[:-1]) == text
    assert tok.encode_special_tokens is False  # the temporary setting was restored


def test_dedup_lines() -> None:
    docs = ["Cookie banner\nArticle one.\n\nShared line", "  Cookie banner  \nArticle two.", "Shared line",
            "\n\n", "Article one.\nArticle three.\n"]
    assert list(T.dedup_lines(docs)) == [
        "Cookie banner\nArticle one.\n\nShared line",
        "Article two.",  # duplicate compared after strip()
        # "Shared line" alone: every content line seen, document dropped; the blank-only one too
        "Article three.\n",
    ]
    assert list(T.dedup_lines(iter(["x", "y", "x"]))) == ["x", "y"]


def test_save_and_load(tok: Tokenizer, tmp_path: Path) -> None:
    path = T.save(tok, tmp_path / "sub" / "tokenizer.json")
    assert T.load(path).to_str() == tok.to_str()
    assert [p.name for p in path.parent.iterdir()] == ["tokenizer.json"]  # no temporary left
    T.save_hf_files(tok, tmp_path / "hf")
    assert sorted(p.name for p in (tmp_path / "hf").iterdir()) == [
        "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    cfg = json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())
    assert (cfg["bos_token"], cfg["eos_token"], cfg["unk_token"],
            cfg["pad_token"]) == ("<s>", "</s>", "<unk>", "<pad>")


def test_transformers_loads_identically(tok: Tokenizer, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    transformers = pytest.importorskip("transformers", exc_type=ImportError)
    T.save_hf_files(tok, tmp_path)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"),
                                                bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                                pad_token="<pad>")
    auto = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    texts = sample_texts()[::7] + [CODE, "a  b\t\tc", "我爱北京。你好"]
    ours = T.encode_documents(tok, texts, append_eod=False)
    for hf in (fast, auto):
        assert (hf.unk_token_id, hf.bos_token_id, hf.eos_token_id, hf.pad_token_id) == (0, 1, 2, 3)
        got = [hf(t)["input_ids"] for t in texts]  # default add_special_tokens=True adds nothing
        assert got == ours
        assert [hf.decode(ids) for ids in got] == texts  # no clean-up of spaces before punctuation
    assert auto.padding_side == "left"
