"""The datatrove side of `make bench-vs-datatrove`; runs inside `.venv-datatrove`, never inside roots' venv.

It imports only datatrove, its dependencies and the standard library, so what is measured is datatrove as
its users install it (tests/bench/setup_datatrove_venv.sh). `tests/bench/vs_datatrove.py` starts it once
per measurement in a fresh process, so every process's peak memory belongs to one measurement, and reads
the JSON result it writes.

Modes (each writes one JSON object to --out):

* `stage NAME`: one datatrove block's per-document method on every document of the corpus, in-process,
  timed around the loop only (models are loaded before the clock starts). Documents are not dropped between
  stages, so both tools do the work of a stage on exactly the same texts. NAME is one of `langid`,
  `quality` (GopherRepetitionFilter then GopherQualityFilter, each on every document), `perplexity`
  (every document, with the English model), `pii` (PIIFormatter, emails and IPv4 addresses), `minhash`
  (signatures only) or `tokenize` (MegatronDocumentTokenizer's `write_tokens`: encode and write one
  Megatron .bin/.idx pair, with the tokenizer.json given by --tokenizer and `</s>` appended).
* `e2e`: the real pipeline on one core, every job a `LocalPipelineExecutor(workers=1)`, run one after the
  other in this process, as datatrove's examples chain filtering, MinHash dedup and tokenisation:
  1. filter: JsonlReader -> LanguageFilter -> GopherRepetitionFilter -> GopherQualityFilter ->
     RootsPerplexityFilter -> PIIFormatter -> JsonlWriter (the kept documents, gzipped JSONL);
  2-4. MinhashDedupSignature, MinhashDedupBuckets (one task per bucket), MinhashDedupCluster on them;
  5. tokenize: JsonlReader -> MinhashDedupFilter -> MegatronDocumentTokenizer (Megatron .bin/.idx).
  Filters drop documents as datatrove does, so later blocks see fewer documents.
* `dedup`: datatrove's four MinHash jobs (signatures, buckets, cluster, filter), each with tasks=1.

Where datatrove is pointed at roots' models, and why:

* Language ID: datatrove's `FT176LID` has no model-path argument; it downloads lid.176.bin into the
  Hugging Face assets cache through `cached_asset_path_or_download`. `seed_lid_model` copies roots'
  lid.176.ftz to exactly that path (computed with datatrove's own functions, inside a private
  HF_ASSETS_CACHE set by the caller) and writes the `.completed` marker, so the stock LanguageFilter loads
  our model and nothing is downloaded. `check_lid_model` verifies afterwards that the file is unchanged.
* Perplexity: datatrove has no perplexity *filter*, only `CCNetPerplexityStats`, whose `KenlmModel`
  downloads edugp's models from the Hub and normalises text differently (lower-cases, strips accents)
  from how roots trained its model. `RootsKenlmModel` subclasses that `KenlmModel` (keeping its cc_net
  scoring loop) to load roots' local sp.model + lm.binary and normalise exactly as
  roots.stages.perplexity does, and `RootsPerplexityFilter` is the few-line filter around it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.utils.perplexity import KenlmModel, SentencePiece

#: roots' default `lid_min` (roots/data/filter_params.yaml); datatrove's own default is 0.65.
LID_THRESHOLD = 0.70
#: roots' `ppl_max` for English (ROOTS's value), applied to documents labelled `en` in both tools.
PPL_MAX_EN = 1500.0
#: roots' MinHash banding for threshold 0.7 and 128 permutations: 14 bands x 9 rows, 64-bit hashes.
MINHASH_BANDS, MINHASH_ROWS = 14, 9
#: the end-of-document token roots' tokenizer appends (roots.release.tokenizer.EOS), appended here
#: by datatrove.
EOS_TOKEN = "</s>"


def pii_formatter() -> Any:
    """Emails and IPv4 addresses, private ones included: roots' IP_ADDRESS tag redacts every valid address,
    datatrove's default (only_remove_public_ips=True) only public ones."""
    from datatrove.pipeline.formatters import PIIFormatter

    return PIIFormatter(remove_emails=True, remove_ips=True, only_remove_public_ips=False)


def megatron_tokenizer(output_folder: Path, tokenizer: Path) -> Any:
    from datatrove.pipeline.tokens import MegatronDocumentTokenizer

    return MegatronDocumentTokenizer(str(output_folder), tokenizer_name_or_path=str(tokenizer),
                                     eos_token=EOS_TOKEN)


# ------------------------------------------------------------------------------------------ perplexity
# roots.stages.perplexity.normalise_for_lm, re-implemented here because this process cannot import roots.
# The cc_net punctuation table is datatrove's own copy (`KenlmModel.unicode_punct`), identical to roots'.
# The caller checks that both tools give identical perplexities on the whole corpus.
_NON_PRINTING_RE = re.compile("[" + "".join(map(chr, [*range(32), *range(127, 160)])) + "]")
_WHITESPACE_TABLE = str.maketrans({c: " " for c in "\u00a0\u2002\u2003\u2007\u2008\u2009\u200a\u202f"
                                                   "\u3000\ufffc"})
_DIGIT_RE = re.compile(r"\d")
_PUNCT_TABLE = str.maketrans(KenlmModel.unicode_punct)


def normalize_like_roots(text: str) -> str:
    """roots' LM normalisation: drop non-printing characters (newlines included), strip, exotic whitespace
    to spaces, digits to 0, unicode punctuation to ASCII; no lower-casing, accents kept."""
    text = _NON_PRINTING_RE.sub("", text).strip()
    if not text:
        return text
    text = text.translate(_WHITESPACE_TABLE)
    text = _DIGIT_RE.sub("0", text)
    return text.translate(_PUNCT_TABLE)


class _LocalSentencePiece(SentencePiece):
    """datatrove's SentencePiece wrapper reading a local sp.model instead of edugp's Hub copy."""

    def __init__(self, path: Path) -> None:
        super().__init__(model_dataset=str(path.parent), model_name=path.stem)
        self.path = path

    @property
    def model(self) -> Any:
        if self._model is None:
            import sentencepiece

            self._model = sentencepiece.SentencePieceProcessor(model_file=str(self.path))
        return self._model


class RootsKenlmModel(KenlmModel):
    """datatrove's `KenlmModel` (cc_net's scoring: per-line KenLM log10 score with <s></s>, pieces + 1 as the
    length, rounded to 0.1) on a roots model directory, with roots' normalisation instead of edugp's."""

    def __init__(self, model_dir: Path, language: str) -> None:
        super().__init__(model_dataset=str(model_dir), language=language)
        self.model_dir = Path(model_dir)

    @property
    def model(self) -> Any:
        if self._model is None:
            import kenlm

            self._model = kenlm.Model(str(self.model_dir / "lm.binary"))
        return self._model

    @property
    def tokenizer(self) -> SentencePiece:
        if self._tokenizer is None:
            self._tokenizer = _LocalSentencePiece(self.model_dir / "sp.model")
        return self._tokenizer

    def normalize(self, text: str) -> str:
        return normalize_like_roots(text)


class RootsPerplexityFilter(BaseFilter):
    """Drop documents whose perplexity under their language's model is above `max_perplexity`.

    Documents in a language without a model pass unscored, as in roots (`ppl_status: no_model`).
    """

    name = "🤯 KenLM perplexity (roots model)"
    _requires_dependencies: ClassVar[list[str]] = ["kenlm", "sentencepiece"]

    def __init__(self, model_dirs: dict[str, str], max_perplexity: float) -> None:
        super().__init__()
        self.models = {lang: RootsKenlmModel(Path(d), lang) for lang, d in model_dirs.items()}
        self.max_perplexity = max_perplexity

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        model = self.models.get(doc.metadata.get("language"))
        if model is None:
            return True
        ppl = model.get_perplexity(doc.text)
        doc.metadata["perplexity"] = ppl
        if ppl > self.max_perplexity:
            return False, "perplexity"
        return True


# ---------------------------------------------------------------------------------------------- models
def _lid_cache_path() -> Path:
    """Where datatrove's FT176LID looks for its model, computed exactly as `cached_asset_path_or_download`."""
    from datatrove.utils.lid import FT176LID
    from fsspec.core import strip_protocol
    from huggingface_hub import cached_assets_path

    folder = cached_assets_path(library_name="datatrove", namespace="lid", subfolder=FT176LID.MODEL_SUBFOLDER)
    return Path(folder) / strip_protocol(FT176LID.MODEL_URL).replace("/", "_")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def seed_lid_model(model: Path) -> Path:
    """Put roots' fastText model where datatrove expects lid.176.bin, marked complete (no download)."""
    target = _lid_cache_path()
    if not (target.exists() and _sha256(target) == _sha256(model)):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model, target)
    Path(f"{target}.completed").touch()
    return target


def check_lid_model(model: Path) -> str:
    """Fail loudly if datatrove replaced the seeded file (i.e. it used another model than roots)."""
    target = _lid_cache_path()
    digest = _sha256(target)
    if digest != _sha256(model):
        raise SystemExit(f"datatrove's LID model {target} is not {model}: the comparison would be invalid")
    return digest


# ---------------------------------------------------------------------------------------------- stages
def read_corpus(path: Path) -> list[Document]:
    """The generated corpus as datatrove Documents (the same fields JsonlReader would produce)."""
    docs = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            docs.append(Document(text=rec["text"], id=rec["id"], metadata={"url": rec.get("url")}))
    return docs


def _timed(fn: Any) -> tuple[Any, float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def _verdict(result: bool | tuple[bool, str]) -> str:
    """'keep' or the drop reason of a datatrove filter result."""
    if isinstance(result, tuple):
        return "keep" if result[0] else result[1]
    return "keep" if result else "drop"


def run_stage(name: str, args: argparse.Namespace) -> dict[str, Any]:
    docs = read_corpus(args.corpus)
    out: dict[str, Any] = {"docs": len(docs)}
    t0 = time.perf_counter()
    if name == "langid":
        from datatrove.pipeline.filters import LanguageFilter

        seed_lid_model(args.lid_model)
        block = LanguageFilter(language_threshold=LID_THRESHOLD)
        block.filter(Document(text="warm up", id="0"))  # loads the model before the clock starts
        out["load_s"] = time.perf_counter() - t0
        verdicts, out["wall_s"], out["cpu_s"] = _timed(lambda: [_verdict(block.filter(d)) for d in docs])
        out["values"] = [[d.metadata["language"], round(d.metadata["language_score"], 4)] for d in docs]
        out["kept"] = verdicts.count("keep")
        out["lid_model_sha256"] = check_lid_model(args.lid_model)
    elif name == "quality":
        from datatrove.pipeline.filters import (
            GopherQualityFilter,
            GopherRepetitionFilter,
        )

        rep, qual = GopherRepetitionFilter(language="en"), GopherQualityFilter(language="en")
        rep.filter(Document(text="warm up the tokenizer", id="0"))
        qual.filter(Document(text="warm up the tokenizer", id="0"))
        out["load_s"] = time.perf_counter() - t0
        rep_v, rep_wall, rep_cpu = _timed(lambda: [_verdict(rep.filter(d)) for d in docs])
        qual_v, qual_wall, qual_cpu = _timed(lambda: [_verdict(qual.filter(d)) for d in docs])
        out.update(wall_s=rep_wall + qual_wall, cpu_s=rep_cpu + qual_cpu,
                   parts={"GopherRepetitionFilter": {"wall_s": rep_wall, "cpu_s": rep_cpu},
                          "GopherQualityFilter": {"wall_s": qual_wall, "cpu_s": qual_cpu}},
                   kept=sum(a == b == "keep" for a, b in zip(rep_v, qual_v)))
    elif name == "perplexity":
        model = RootsKenlmModel(args.lm_dir, "en")
        model.get_perplexity("warm up")
        out["load_s"] = time.perf_counter() - t0
        values, out["wall_s"], out["cpu_s"] = _timed(lambda: [model.get_perplexity(d.text) for d in docs])
        out["values"] = values
    elif name == "minhash":
        import tempfile

        from datatrove.pipeline.dedup.minhash import MinhashDedupSignature

        with tempfile.TemporaryDirectory() as tmp:
            block = MinhashDedupSignature(tmp, config=_minhash_config(), language="en")
            block.get_signature(block.get_shingles("warm up the tokenizer and the permutations"))
            out["load_s"] = time.perf_counter() - t0

            def sign() -> int:
                n = 0
                for d in docs:
                    shingles = block.get_shingles(d.text)
                    if shingles.size:
                        block.get_signature(shingles)
                        n += 1
                return n

            out["signed"], out["wall_s"], out["cpu_s"] = _timed(sign)
    elif name == "pii":
        block = pii_formatter()
        block.format("warm up a@b.org 10.0.0.1")
        out["load_s"] = time.perf_counter() - t0
        texts = [d.text for d in docs]
        scrubbed, out["wall_s"], out["cpu_s"] = _timed(lambda: [block.format(t) for t in texts])
        out["changed"] = sum(a != b for a, b in zip(texts, scrubbed))
    elif name == "tokenize":
        if args.tokenizer is None:
            raise SystemExit("stage tokenize needs --tokenizer")
        block = megatron_tokenizer(args.workdir / "shards", args.tokenizer)
        block.tokenizer.encode("warm up")  # loads tokenizer.json before the clock starts
        out["load_s"] = time.perf_counter() - t0
        written, out["wall_s"], out["cpu_s"] = _timed(lambda: block.write_tokens(iter(docs), "stage_tokens"))
        out["tokens"] = int(sum(written.sequence_lengths))
        out["documents_written"] = len(written.sequence_lengths)
        out["bin_sha256"] = _sha256(args.workdir / "shards" / "stage_tokens.bin")
    else:
        raise SystemExit(f"unknown stage {name!r}")
    return out


def _minhash_config() -> Any:
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.utils.hashing import HashConfig

    return MinhashConfig(n_grams=5, num_buckets=MINHASH_BANDS, hashes_per_bucket=MINHASH_ROWS, seed=1,
                         hash_config=HashConfig(precision=64))


# ------------------------------------------------------------------------------------------- pipelines
def _run_jobs(jobs: list[tuple[str, Any]]) -> tuple[dict[str, Any], float, float]:
    """Run datatrove executors in order, timing each: ({"jobs": {name: wall/cpu}}, total wall, total CPU)."""
    out: dict[str, Any] = {"jobs": {}}
    total_wall = total_cpu = 0.0
    for name, executor in jobs:
        _, wall, cpu = _timed(executor.run)
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
        out["jobs"][name] = {"wall_s": wall, "cpu_s": cpu}
    return out, total_wall, total_cpu


def _block_stats(logging_dir: Path) -> list[dict[str, Any]]:
    """Per-block documents in/out and time from datatrove's own stats.json."""
    rows = []
    for block in json.loads((logging_dir / "stats.json").read_text()):
        stats = block.get("stats", {})

        def count(key: str, stats: dict[str, Any] = stats) -> int | None:
            value = stats.get(key)
            return int(value["total"]) if isinstance(value, dict) else value

        timing = block.get("time_stats")
        total_s = timing.get("total", 0.0) if isinstance(timing, dict) else float(timing or 0.0)
        rows.append({"block": block["name"], "time_s": round(total_s, 3),
                     "total": count("total"), "forwarded": count("forwarded"), "dropped": count("dropped"),
                     "documents": count("documents"), "tokens": count("tokens")})
    return rows


def run_e2e(args: argparse.Namespace) -> dict[str, Any]:
    """Filtering (with PII), MinHash dedup and Megatron tokenisation, as five local jobs on one core."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets
    from datatrove.pipeline.filters import (
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    if args.tokenizer is None:
        raise SystemExit("e2e needs --tokenizer")
    seed_lid_model(args.lid_model)
    work, cfg = args.workdir, _minhash_config()

    def local(pipeline: list[Any], name: str, tasks: int = 1) -> LocalPipelineExecutor:
        return LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1,
                                     logging_dir=str(work / "logs" / name), skip_completed=False)

    jobs = [
        ("filter", local([
            JsonlReader(str(args.corpus.parent), glob_pattern=args.corpus.name),
            LanguageFilter(language_threshold=LID_THRESHOLD),
            GopherRepetitionFilter(language="en"),
            GopherQualityFilter(language="en"),
            RootsPerplexityFilter({"en": str(args.lm_dir)}, max_perplexity=PPL_MAX_EN),
            pii_formatter(),
            JsonlWriter(str(work / "filtered")),
        ], "filter")),
        ("signatures", local([JsonlReader(str(work / "filtered")),
                              MinhashDedupSignature(str(work / "sigs"), config=cfg, language="en")],
                             "signatures")),
        # stage 2 insists on at least one task per bucket; workers=1 still runs them one after another
        ("buckets", local([MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=cfg)],
                          "buckets", tasks=cfg.num_buckets)),
        ("cluster", local([MinhashDedupCluster(str(work / "buckets"), str(work / "remove_ids"), config=cfg)],
                          "cluster")),
        ("tokenize", local([JsonlReader(str(work / "filtered")), MinhashDedupFilter(str(work / "remove_ids")),
                            megatron_tokenizer(work / "shards", args.tokenizer)], "tokenize")),
    ]
    out, total_wall, total_cpu = _run_jobs(jobs)
    blocks = _block_stats(work / "logs" / "filter") + _block_stats(work / "logs" / "tokenize")
    dedup = next(b for b in blocks if "minhash" in b["block"].lower())
    writer = blocks[-1]
    out.update(wall_s=total_wall, cpu_s=total_cpu, blocks=blocks, removed=dedup["dropped"] or 0,
               released=dedup["forwarded"], lid_model_sha256=check_lid_model(args.lid_model),
               tokens=writer.get("tokens"), shards=sorted(p.name for p in (work / "shards").glob("*")))
    return out


def run_dedup(args: argparse.Namespace) -> dict[str, Any]:
    """datatrove's examples/minhash_deduplication.py, local, on one core (workers=1), roots' banding."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    work, cfg = args.workdir, _minhash_config()

    def reader() -> JsonlReader:
        return JsonlReader(str(args.corpus.parent), glob_pattern=args.corpus.name)

    def local(pipeline: list[Any], name: str, tasks: int = 1) -> LocalPipelineExecutor:
        return LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1,
                                     logging_dir=str(work / "logs" / name), skip_completed=False)

    jobs = [
        ("signatures", local([reader(), MinhashDedupSignature(str(work / "sigs"), config=cfg, language="en")],
                             "signatures")),
        # stage 2 insists on at least one task per bucket; workers=1 still runs them one after another
        ("buckets", local([MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=cfg)],
                          "buckets", tasks=cfg.num_buckets)),
        ("cluster", local([MinhashDedupCluster(str(work / "buckets"), str(work / "remove_ids"), config=cfg)],
                          "cluster")),
        ("filter", local([reader(), MinhashDedupFilter(str(work / "remove_ids")),
                          JsonlWriter(str(work / "dedup"))], "filter")),
    ]
    out, total_wall, total_cpu = _run_jobs(jobs)
    blocks = _block_stats(work / "logs" / "filter")
    dedup = next(b for b in blocks if "MinHash" in b["block"] or "minhash" in b["block"].lower())
    out.update(wall_s=total_wall, cpu_s=total_cpu, removed=dedup["dropped"] or 0, kept=dedup["forwarded"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("stage", "e2e", "dedup"))
    parser.add_argument("stage", nargs="?",
                        help="with `stage`: langid, quality, perplexity, pii, minhash or tokenize")
    parser.add_argument("--corpus", type=Path, required=True, help="JSONL with id, text, url")
    parser.add_argument("--lid-model", type=Path, required=True, help="roots' lid.176.ftz")
    parser.add_argument("--lm-dir", type=Path, required=True, help="roots' model directory for en")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer.json for `stage tokenize` and `e2e`")
    parser.add_argument("--workdir", type=Path, required=True, help="scratch directory for outputs and logs")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON result")
    args = parser.parse_args(argv)
    if "HF_ASSETS_CACHE" not in os.environ:
        # Never touch the user's own Hugging Face cache (the LID model is seeded into this one).
        print("warning: HF_ASSETS_CACHE is not set; seeding the default Hugging Face assets cache",
              file=sys.stderr)
    args.workdir.mkdir(parents=True, exist_ok=True)
    import datatrove

    if args.mode == "stage":
        result = run_stage(args.stage or "", args)
    elif args.mode == "e2e":
        result = run_e2e(args)
    else:
        result = run_dedup(args)
    result["datatrove_version"] = getattr(datatrove, "__version__", None) or _dist_version("datatrove")
    args.out.write_text(json.dumps(result))
    return 0


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
