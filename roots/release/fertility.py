"""Tokenizer fertility: tokens per word and per character for each language, on the release's held-out text.

BLOOM's paper compared its tokenizer with monolingual ones by fertility (tokens per word): a language the
vocabulary serves poorly is cut into many more pieces per word, so it costs more compute per word in
training and gets a shorter effective context. A data steward reads these numbers in the release report
to see which languages need more tokenizer-sample weight (`tokenizer_alpha`) or a larger vocabulary.

Measured on the validation split only (`lineage/*_valid_text_document.parquet`): the tokenizer was
trained on a sample of the training split, so fertility on text it has seen would flatter it.

Counts are raw sums so they can be added up or compared between releases: `tokens` excludes the
end-of-document token Megatron appends (it is not part of any word); `chars` counts Unicode code points;
`words` splits on whitespace, except for languages written without spaces between words (zh, ja, th, ...),
where a whitespace "word" is a whole sentence and the ratio would mean nothing. Those use
`roots.stages.quality.get_words`, which counts one word per character of such a script (and strips
punctuation), the same words the quality filters count. Each language's entry says which in `word_unit`,
because tokens per character-word and tokens per whitespace-word are not directly comparable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from roots.core.errors import UserError
from roots.release import tokenizer as toklib
from roots.stages import quality

VALID_GLOB = "*_valid_text_document.parquet"
BATCH = 256
# Languages (ISO 639 base codes) written without spaces between words; compared on the code before any
# `-`/`_` suffix, so `zh-Hant` or `ja_Latn`-style tags fall in too.
NO_SPACE_LANGS = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo", "dz", "yue", "wuu", "lzh", "gan",
                            "hak"})
WORD_UNITS = {
    "whitespace": "whitespace-separated words",
    "character": "one word per character of a script written without spaces (roots.stages.quality.get_words)",
}


def word_unit(lang: str) -> str:
    """`character` for a language written without spaces between words, else `whitespace`."""
    base = lang.replace("_", "-").split("-")[0].lower()
    return "character" if base in NO_SPACE_LANGS else "whitespace"


def count_words(text: str, lang: str) -> int:
    """Words of `text` in the unit `word_unit(lang)` names."""
    if word_unit(lang) == "character":
        return len(quality.get_words(text, lang))
    return len(text.split())


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


Sums = dict[str, dict[str, int]]
#: the raw sums kept per language (ratios are derived from them in `summarise`)
SUM_FIELDS = ("documents", "words", "chars", "tokens")


def add_document(sums: Sums, lang: str | None, text: str | None, tokens: int) -> None:
    """Count one held-out document (`tokens` without the EOD) into per-language raw sums."""
    lang, text = str(lang or "und"), text or ""
    s = sums.setdefault(lang, dict.fromkeys(SUM_FIELDS, 0))
    s["documents"] += 1
    s["words"] += count_words(text, lang)
    s["chars"] += len(text)
    s["tokens"] += tokens


def add_sums(total: Sums, part: Mapping[str, Mapping[str, int]]) -> Sums:
    """Add one part's raw sums (e.g. one kept file's, from the merge's tokenisation) into `total`."""
    for lang, s in part.items():
        t = total.setdefault(lang, dict.fromkeys(SUM_FIELDS, 0))
        for key in SUM_FIELDS:
            t[key] += int(s[key])
    return total


def summarise(sums: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, Any]]:
    """The manifest's form: raw sums plus tokens_per_word, tokens_per_char and word_unit, languages sorted."""
    return {lang: {**s, "tokens_per_word": _ratio(s["tokens"], s["words"]),
                   "tokens_per_char": _ratio(s["tokens"], s["chars"]), "word_unit": word_unit(lang)}
            for lang, s in sorted(sums.items())}


def fertility(tok: Any, docs: Iterable[tuple[str, str]],
              batch_size: int = BATCH) -> dict[str, dict[str, Any]]:
    """Per language: documents, words, chars, tokens (no EOD), tokens_per_word, tokens_per_char, word_unit.

    `docs` yields (lang, text) and is consumed once, in batches, so a large held-out split streams through
    without being held in memory. Texts are encoded exactly as the shards were (`encode_documents`, so a
    literal `</s>` in a page counts as text), which makes `tokens` equal the lineage's token count minus one
    EOD per document. Ratios are None when a language has no words (or no characters). Keys are sorted so
    the manifest is byte-identical between two runs.
    """
    sums: Sums = {}

    def flush(batch: list[tuple[str, str]]) -> None:
        ids = toklib.encode_documents(tok, [text for _, text in batch], append_eod=False)
        for (lang, text), tokens in zip(batch, ids):
            add_document(sums, lang, text, len(tokens))

    batch: list[tuple[str, str]] = []
    for lang, text in docs:
        batch.append((str(lang or "und"), text or ""))
        if len(batch) >= batch_size:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    return summarise(sums)


def held_out_keys(release_dir: Path) -> dict[str, dict[str, str]]:
    """source -> {document id -> lang} for every document of the release's validation split, from lineage.

    Holds every held-out id, so it is for checking a built release (`fertility_from_lineage`); the merge
    itself counts fertility while it tokenises (`parts.tokenize_file`) and holds only the sums."""
    wanted: dict[str, dict[str, str]] = {}
    for path in sorted((Path(release_dir) / "lineage").glob(VALID_GLOB)):
        table = pq.read_table(path, columns=["source", "id", "lang"])
        for source, doc_id, lang in zip(*(table.column(c).to_pylist() for c in ("source", "id", "lang"))):
            wanted.setdefault(source, {})[doc_id] = lang
    return wanted


def held_out_texts(wanted: Mapping[str, Mapping[str, str]],
                   run_dirs: Mapping[str, Path]) -> Iterator[tuple[str, str]]:
    """(lang, text) of the wanted documents, read from each source's `kept/*.parquet` one batch at a time.

    Only the id column is looked at for rows that are not wanted, so the text of the training split (the
    other 95%) is never turned into Python strings. A wanted id missing from the run means the run was
    redone after the release was built: measuring a subset silently would mislead, so it is an error.
    """
    for source in sorted(wanted):
        if source not in run_dirs:
            raise UserError(f"fertility: no run directory given for source {source!r} of the release.")
        pending = dict(wanted[source])
        run_dir = Path(run_dirs[source])
        for path in sorted((run_dir / "kept").glob("*.parquet")):
            for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(
                    batch_size=1024, columns=["id", "text"], use_threads=False):
                ids = batch.column("id").to_pylist()
                rows = [i for i, doc_id in enumerate(ids) if doc_id in pending]
                if not rows:
                    continue
                texts = batch.column("text").take(rows).to_pylist()
                for i, text in zip(rows, texts):
                    yield pending.pop(ids[i]), text or ""
        if pending:
            example = min(pending)
            raise UserError(f"fertility: {len(pending)} held-out document(s) of {source} (e.g. {example!r}) "
                            f"are not in {run_dir / 'kept'}; the run changed after the release was built.")


def fertility_from_lineage(tok: Any, release_dir: Path,
                           run_dirs: Mapping[str, Path]) -> dict[str, dict[str, Any]]:
    """`fertility` of the release's validation split: which documents from the lineage, their text from the
    runs (`run_dirs`: source name -> run directory). `tok` None loads the release's own `tokenizer.json`."""
    release_dir = Path(release_dir)
    if tok is None:
        tok = toklib.load(release_dir / "tokenizer.json")
    return fertility(tok, held_out_texts(held_out_keys(release_dir), run_dirs))
