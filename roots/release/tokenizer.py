"""The BLOOM tokenizer: its exact configuration, training, line dedup of its training text, and saving.

BLOOM's tokenizer (reference §7) is a byte-level BPE with no normaliser and no byte fallback. Its
pre-tokenizer splits on a single regex that keeps runs of spaces, tabs and newlines as their own pieces
(so indentation in code survives) and never splits digits or English contractions. Training starts from
the full 256-symbol byte alphabet, so any UTF-8 text encodes without `<unk>` and decodes back exactly.

The four special tokens come first so they get ids 0-3, as in BLOOM; `</s>` (id 2) is the end-of-document
token that Megatron's `--append-eod` appends (no BOS is added).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

SPECIAL_TOKENS: tuple[str, ...] = ("<unk>", "<s>", "</s>", "<pad>")
UNK, BOS, EOS, PAD = SPECIAL_TOKENS
BLOOM_VOCAB_SIZE = 250_680
# Megatron pads the embedding to a multiple of 128 x TP; BLOOM used 250,880 (reference §6, §7).
BLOOM_PADDED_VOCAB_SIZE = 250_880
# Inside Oniguruma the inner [...] is a nested class: the negated class excludes whitespace, "(", ")", "|"
# and the listed punctuation, so each piece is an optional single space plus a run of other characters.
SPLIT_PATTERN = " ?[^(\\s|[.,!?…。，、।۔،])]+"


def build_bloom_tokenizer() -> Tokenizer:
    """An untrained tokenizer with exactly BLOOM's pipeline (reference §7), ready for `train_tokenizer`.

    `unk_token` is set on the model only so that a vocabulary missing a byte shows up as `<unk>` rather
    than silently dropping text; with the byte alphabet in the vocabulary it is never produced.
    """
    tok = Tokenizer(models.BPE(unk_token=UNK, byte_fallback=False))
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    # No post-processor: nothing (no BOS/EOS) is added by encode(); the EOD is appended explicitly.
    return tok


def train_tokenizer(texts: Iterable[str], vocab_size: int = BLOOM_VOCAB_SIZE, min_frequency: int = 2,
                    show_progress: bool = False) -> Tokenizer:
    """Train BLOOM's byte-level BPE on `texts`; the special tokens take ids 0-3.

    The initial alphabet is all 256 byte symbols even if the sample never shows some bytes, which is what
    guarantees that any UTF-8 text round-trips. The exact trainer arguments BigScience used are not
    public; these are the documented reproduction (reference §7).

    Memory: `texts` is consumed as a stream, but the trainer keeps a count per distinct pre-tokenized word
    and, while merging, the positions of every pair, so its peak follows the distinct words of the
    sample (+100 to +150 MB of RSS for the bench's 1-1.6 M-character multilingual samples at a 32k
    vocabulary); the merge bounds it by capping the sample (`tokenizer_sample_bytes`).
    """
    if vocab_size < len(SPECIAL_TOKENS) + 256:
        raise ValueError(f"vocab_size {vocab_size} cannot hold the 4 special tokens and the 256-byte "
                         "alphabet")
    tok = build_bloom_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    for i, token in enumerate(SPECIAL_TOKENS):
        if tok.token_to_id(token) != i:  # a guard against a tokenizers change in how specials are placed
            raise RuntimeError(f"special token {token} got id {tok.token_to_id(token)}, expected {i}")
    return tok


def dedup_lines(texts: Iterable[str]) -> Iterator[str]:
    """Exact line dedup across a corpus, as ROOTS did for the tokenizer's training sample (reference §7).

    Duplicated boilerplate (cookie banners, navigation, licences) otherwise becomes whole-line tokens; an
    earlier BigScience tokenizer learned entire URLs that way. Lines are compared after `strip()`, and the
    first occurrence is kept with its original whitespace. Blank lines are layout, not content, so they are
    never treated as duplicates. A document left with no content line is dropped. Lines are remembered by
    a 128-bit digest, which keeps memory per distinct line small (about 80 bytes: 8 MB per 100,000
    distinct lines) and collisions negligible; the set grows with the distinct lines of `texts`, which the
    merge bounds by capping its sample.
    """
    seen: set[bytes] = set()
    for text in texts:
        kept: list[str] = []
        has_content = False
        for line in text.split("\n"):
            key = line.strip()
            if not key:
                kept.append(line)
                continue
            digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest()
            if digest in seen:
                continue
            seen.add(digest)
            kept.append(line)
            has_content = True
        if has_content:
            yield "\n".join(kept)


def eod_id(tok: Tokenizer) -> int:
    """The end-of-document id, `</s>` (2 in BLOOM), as Megatron's `_AutoTokenizer.eod` returns eos."""
    i = tok.token_to_id(EOS)
    if i is None:
        raise ValueError(f"tokenizer has no {EOS} token")
    return i


def encode_document(tok: Tokenizer, text: str, append_eod: bool = True) -> list[int]:
    """Token ids of one document, with the EOD appended, as `preprocess_data.py --append-eod` writes them.

    A literal `</s>` or `<s>` inside a web page is encoded as ordinary text, not as a special id: otherwise
    a document could inject an end-of-document marker into the training stream. An empty document gives
    no ids at all (no lone EOD), matching Megatron's preprocessing, which skips empty documents.
    """
    return encode_documents(tok, [text], append_eod=append_eod)[0]


def encode_documents(tok: Tokenizer, texts: Sequence[str], append_eod: bool = True) -> list[list[int]]:
    """`encode_document` for a batch, encoded in parallel by the Rust side (the fast path for shards)."""
    eod = eod_id(tok) if append_eod else None
    previous = tok.encode_special_tokens
    tok.encode_special_tokens = True  # not saved in tokenizer.json, so set for the call and restored
    try:
        encodings = tok.encode_batch_fast(list(texts), add_special_tokens=False)
    finally:
        tok.encode_special_tokens = previous
    out: list[list[int]] = []
    for enc in encodings:
        ids = list(enc.ids)
        if ids and eod is not None:
            ids.append(eod)
        out.append(ids)
    return out


# HF's BPE remembers the merges of 10,000 words by default; web text in many languages has more distinct
# frequent words, and a miss re-runs the merge loop. Only words are cached, not documents.
# Memory: the cache only fills (it never evicts), up to this many words at about 0.8 KB each on the
# multilingual bench corpus (a cached word keeps a 32-byte symbol per byte of the word; scripts written
# without spaces make long words), so up to about 40 MB per tokenizing worker once a corpus has that many
# distinct words, and no more however large the corpus. Measured (merge with a supplied tokenizer, 5k and
# 50k documents, one process): 200k words 389 -> 457 MB peak and 6.1 / 26.5 s CPU; 50k words 367 -> 404 MB
# and 5.1 / 23.8 s; 10k (HF's default) 308 -> 345 MB and 5.9 / 27.3 s. 50k is the fastest and grows less.
ENCODE_WORD_CACHE = 50_000


def with_word_cache(tok: Tokenizer, capacity: int = ENCODE_WORD_CACHE) -> Tokenizer:
    """A copy of `tok` whose BPE model caches up to `capacity` words: the same ids, encoded faster.

    The cache size is not part of `tokenizer.json` (it is runtime state), so the model is rebuilt with
    every serialised field carried over; the copy serialises to exactly the same JSON. Tokenizers whose
    model is not BPE are returned unchanged.
    """
    original = tok.to_str()
    model = json.loads(original).get("model") or {}
    if model.get("type") != "BPE":
        return tok
    fresh = Tokenizer.from_str(original)
    optional = {k: model[k]
                for k in ("dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix")
                if model.get(k) is not None}
    flags = {k: bool(model.get(k)) for k in ("fuse_unk", "byte_fallback", "ignore_merges")}
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    fresh.model = models.BPE(vocab=model["vocab"], merges=merges, cache_capacity=capacity, **optional,
                             **flags)
    if fresh.to_str() != original:  # a field this version of tokenizers added and we did not carry
        return tok
    return fresh


# Text per tokenizer call when encoding shards. The Rust side builds a full `Encoding` per document
# (ids, token strings, offsets, masks: about 100 bytes per token) before any is returned, so one call's
# transient memory follows the text it is given; a fixed amount of text keeps it at a few tens of MB
# whatever the batch or document count, while still giving every core several documents at once.
ENCODE_CHARS = 1 << 18


def encode_arrays(tok: Tokenizer, texts: Sequence[str], dtype: np.dtype | type,
                  append_eod: bool = True, max_chars: int = ENCODE_CHARS) -> list[np.ndarray]:
    """`encode_documents` as one numpy array per document in `dtype`, the form shards are written from.

    Same ids (special-token text encoded as text, EOD appended to non-empty documents only); an empty
    document gives an empty array. The caller picks a dtype that holds the vocabulary
    (`megatron.dtype_for_vocab`); ids never exceed it, since they are vocabulary indices. Documents are
    handed to the tokenizer in runs of at most `max_chars` characters (a longer document alone), which
    bounds the tokenizer's transient memory; ids do not depend on how documents are grouped.
    """
    eod = eod_id(tok) if append_eod else None
    previous = tok.encode_special_tokens
    tok.encode_special_tokens = True
    out: list[np.ndarray] = []
    try:
        start = 0
        while start < len(texts):
            end, chars = start + 1, len(texts[start])
            while end < len(texts) and chars + len(texts[end]) <= max_chars:
                chars += len(texts[end])
                end += 1
            for enc in tok.encode_batch_fast(list(texts[start:end]), add_special_tokens=False):
                ids = enc.ids
                if ids and eod is not None:
                    ids.append(eod)
                out.append(np.array(ids, dtype=dtype))
            start = end
    finally:
        tok.encode_special_tokens = previous
    return out


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save(tok: Tokenizer, path: str | os.PathLike[str]) -> Path:
    """Write `tokenizer.json` atomically (a temporary name renamed into place), so a crash never leaves
    a truncated file that a later run would load."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(path, tok.to_str(pretty=True))
    return path


def load(path: str | os.PathLike[str]) -> Tokenizer:
    """Load a `tokenizer.json` written by `save` (or BLOOM's own)."""
    return Tokenizer.from_file(str(path))


def hf_tokenizer_config() -> dict[str, object]:
    """`tokenizer_config.json` for `transformers`.

    `PreTrainedTokenizerFast` rather than `BloomTokenizerFast` as the class: it loads `tokenizer.json` as
    is, whereas a model-specific class may rebuild parts of the pipeline. `clean_up_tokenization_spaces`
    is off because it rewrites " ." to "." on decode and would break the exact round trip. BLOOM's model
    repositories set `padding_side: left` (reference §7).
    """
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": UNK,
        "pad_token": PAD,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "padding_side": "left",
    }


def save_hf_files(tok: Tokenizer, directory: str | os.PathLike[str]) -> Path:
    """Write `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json` into `directory`, so
    `AutoTokenizer.from_pretrained(directory)` and `PreTrainedTokenizerFast(tokenizer_file=...)` (with the
    bos/eos/unk/pad tokens) both load it, as Megatron's HF tokenizer option expects."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for token in SPECIAL_TOKENS:
        if tok.token_to_id(token) is None:
            raise ValueError(f"tokenizer has no {token} token")
    save(tok, directory / "tokenizer.json")
    config = hf_tokenizer_config()
    _atomic_write_text(directory / "tokenizer_config.json",
                       json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": UNK, "pad_token": PAD}
    _atomic_write_text(directory / "special_tokens_map.json", json.dumps(special, indent=2) + "\n")
    return directory
