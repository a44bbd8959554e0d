"""`make bench-vs-datatrove`: roots and datatrove on the same corpus, stage by stage and end to end.

Why this exists: roots makes different design choices from datatrove (Beam, score-then-decide, per-language
ROOTS parameters), and the cost of those choices should be a number measured on one machine, not a guess.

How it is measured, and why that way:

* One corpus: `tests.bench.bench.generate_corpus(--docs)` (multilingual UDHR paragraphs plus spam, PII and
  mojibake documents) written once to JSONL; both tools read that file.
* Same models: fastText `lid.176.ftz` (the copy roots uses), the roots-trained English SentencePiece +
  KenLM pair (`models/lm/en`, trained into the scratch directory from `roots/data/lm_reference/en.txt` when
  missing) and one tokenizer.json: a BLOOM-style byte-level BPE (32,000 entries) trained once on the corpus
  by `roots.release.tokenizer` before anything is timed. See `tests/bench/datatrove_bench.py` for how
  datatrove is pointed at them without downloads.
* Every measurement is a fresh process (roots' in this venv, datatrove's in `.venv-datatrove`), so its peak
  memory is its own. Peak memory is the largest sum of RSS over the process and all its descendants,
  sampled from /proc every 20 ms (shared pages of forked children are counted in each, as RSS does). HF
  tokenizers' thread pool is off in both (TOKENIZERS_PARALLELISM=false, RAYON_NUM_THREADS=1): one core each.
* Stage rows time one stage's per-document work on all documents in-process, around the loop only (models
  are loaded first), and divide by the CPU seconds of that loop: documents per second per core. No
  document is dropped between stages, so both tools do exactly the same texts. Stages: language ID,
  repetition + quality heuristics, perplexity, PII (emails + IP addresses), MinHash signatures and
  tokenisation into Megatron .bin/.idx (roots: `parts.tokenize_file`, the merge's per-file
  function; datatrove: `MegatronDocumentTokenizer`; the two .bin files are compared byte for byte).
* End-to-end rows run each tool's real pipeline on one core, with the same stages in the same order
  (LID > heuristics > perplexity > PII > MinHash near-dedup > tokenisation into Megatron shards): roots'
  `roots.jobs.run.run_source` (Beam DirectRunner, one worker; recipe with PII tags EMAIL + IP_ADDRESS and
  near-dedup only) then `roots.jobs.merge.merge` with the shared tokenizer.json (merge setting
  `tokenizer_file`), in one process; datatrove's five `LocalPipelineExecutor(workers=1)` jobs (filter +
  PII, MinHash signatures, buckets, cluster, dedup filter + MegatronDocumentTokenizer), in one process.
  CPU is that of the whole process tree from start to exit (interpreter, imports, model loading
  included), read from `wait4`; filters drop documents, so later stages see what each tool kept.
* The bare-kernels row calls the libraries under roots' end-to-end run in tight loops on one core, on the
  documents roots' run fed each (fastText predict on every document, SentencePiece + KenLM on those it
  scored, MinHash on those that reached dedup, HF tokenizers encode on those it released), inputs
  prepared before the clock starts: the floor for roots' end-to-end rate. Printed ratios: roots /
  datatrove end to end (goal >= 2x) and kernels / roots end to end (goal <= 1.5x), and where each tool's
  end-to-end CPU goes.
* End-to-end and kernel rows are each the best (least CPU) of `--repeats` runs (default 2): a shared
  machine only ever adds CPU.
* Marginal rates: both end-to-end pipelines run again on the first fifth of the corpus, and each tool's
  marginal rate is the extra documents over the extra CPU seconds between the two runs. Fixed costs
  (interpreter start, imports, model loading, Beam graph construction) cancel out, which is what a corpus
  of production size sees and what the kernels row measures (its loops exclude loading); both ratios are
  printed again on these rates.
* `--no-dedup` leaves out the separate MinHash near-dedup end-to-end rows (dedup alone, both tools).

The equivalences and the remaining differences are printed under the table and stored in the JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DATATROVE_VENV = REPO / ".venv-datatrove"
SETUP_SCRIPT = Path(__file__).resolve().parent / "setup_datatrove_venv.sh"
DATATROVE_SCRIPT = Path(__file__).resolve().parent / "datatrove_bench.py"
LM_REFERENCE = REPO / "roots" / "data" / "lm_reference" / "en.txt"
DEFAULT_JSON = REPO / "runs" / "bench_vs_datatrove.json"

STAGES = ("langid", "quality", "perplexity", "pii", "minhash", "tokenize")
TITLES = {
    "langid": "language ID (fastText lid.176.ftz)",
    "quality": "repetition + quality heuristics",
    "perplexity": "perplexity (roots en KenLM, all docs)",
    "pii": "PII: emails + IP addresses",
    "minhash": "MinHash signatures (5-grams, 14x9)",
    "tokenize": "tokenise into Megatron .bin/.idx",
    "e2e": "end to end (LID>heur>ppl>PII>dedup>shards)",
    "kernels": "bare kernels (LID+KenLM+MinHash+encode)",
    "e2e_small": "end to end, first fifth of the corpus",
    "dedup": "MinHash near-dedup end to end",
}
LSH_BANDS, LSH_ROWS, NUM_PERM = 14, 9, 128
POLL_SECONDS = 0.02
SIGNATURE_BATCH = 256  # roots.dedup.DedupConfig.signature_batch
LID_BATCH = 256  # as tests/bench/bench.py; the pipeline's default is the workspace's langid.batch_size
#: roots' PII tags that match datatrove's PIIFormatter (emails and IP addresses)
PII_TAGS = ("EMAIL", "IP_ADDRESS")
#: vocabulary of the BLOOM-style BPE trained once on the corpus for both tools (< 65,500: uint16 tokens in
#: both)
TOKENIZER_VOCAB = 32_000
#: the goals of issue 8, printed next to the measured ratios
GOAL_VS_DATATROVE, GOAL_VS_KERNELS = 2.0, 1.5
#: the marginal rate subtracts a run on the first 1/SMALL_FRACTION of the corpus from the full run
SMALL_FRACTION = 5


# ------------------------------------------------------------------------------------------ measuring
class MeasureError(RuntimeError):
    """A measured subprocess failed; the message ends with the tail of its log."""


@dataclass
class Measured:
    """One subprocess: its exit status, wall and CPU time (whole tree), and peak memory."""

    rc: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    peak_single_rss_mb: float
    result: dict[str, Any] = field(default_factory=dict)


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc (stdlib only: psutil is not a roots dependency)."""
    kids: dict[int, list[int]] = defaultdict(list)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        kids[int(stat.rsplit(b")", 1)[1].split()[1])].append(int(entry.name))
    return kids


def _rss_bytes(pid: int, page: int = os.sysconf("SC_PAGE_SIZE")) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * page
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss(root: int) -> tuple[int, int]:
    """(sum, largest) RSS in bytes over `root` and all its descendants right now."""
    kids, stack, total, largest = _children(), [root], 0, 0
    while stack:
        pid = stack.pop()
        rss = _rss_bytes(pid)
        total, largest = total + rss, max(largest, rss)
        stack.extend(kids.get(pid, ()))
    return total, largest


def run_measured(cmd: Sequence[str], log: Path, result: Path, env: dict[str, str] | None = None) -> Measured:
    """Run `cmd`, sampling its process tree's RSS, and collect CPU time with wait4 once it exits.

    wait4's rusage covers the child and every descendant it waited for, which is the whole tree for
    both tools (Beam's DirectRunner and datatrove's multiprocess manager reap their children).
    """
    has_proc = Path("/proc/self/statm").exists()
    with log.open("wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                env={**os.environ, **(env or {})})
        peak = peak_single = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if has_proc:
                total, largest = tree_rss(proc.pid)
                peak, peak_single = max(peak, total), max(peak_single, largest)
            time.sleep(POLL_SECONDS)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is the largest single process (KiB on Linux); the floor for a run too short to sample
    peak_single = max(peak_single, usage.ru_maxrss * 1024)
    peak = max(peak, peak_single)
    measured = Measured(proc.returncode, round(wall, 3), round(usage.ru_utime + usage.ru_stime, 3),
                        round(peak / 2**20, 1), round(peak_single / 2**20, 1))
    if proc.returncode != 0:
        tail = log.read_text("utf-8", errors="replace")[-3000:]
        raise MeasureError(f"{' '.join(cmd)} failed with exit status {proc.returncode} (log: {log}):\n{tail}")
    measured.result = json.loads(result.read_text())
    return measured


# ---------------------------------------------------------------------------------------- preparation
def ensure_datatrove_venv(venv: Path) -> Path:
    """Create or reuse the datatrove environment (the script is idempotent and fast when it exists)."""
    subprocess.run(["bash", str(SETUP_SCRIPT), str(venv)], check=True)
    return venv / "bin" / "python"


def ensure_lm(scratch: Path) -> Path:
    """The roots English model: models/lm/en when trained, else one trained now into the scratch dir."""
    from roots.jobs.train_lm import train_lm
    from roots.stages.perplexity import CALIBRATION, LM_BINARY, SP_MODEL

    model = REPO / "models" / "lm" / "en"
    if all((model / name).is_file() for name in (SP_MODEL, LM_BINARY, CALIBRATION)):
        return model
    model = scratch / "lm" / "en"
    print(f"{REPO / 'models' / 'lm' / 'en'} is missing: training the English model from {LM_REFERENCE} "
          f"into {model}", file=sys.stderr)
    train_lm("en", LM_REFERENCE, model)
    return model


def ensure_tokenizer(scratch: Path, corpus: Path) -> Path:
    """One BLOOM-style byte-level BPE (roots.release.tokenizer, the merge's own trainer) trained on the
    corpus, saved as tokenizer.json; both tools tokenise with this file, so their shards can be compared
    byte for byte."""
    from roots.release import tokenizer as toklib

    tok = toklib.train_tokenizer(toklib.dedup_lines(d["text"] for d in _read_texts(corpus)),
                                 vocab_size=TOKENIZER_VOCAB, min_frequency=2)
    return toklib.save_hf_files(tok, scratch / "tokenizer") / "tokenizer.json"


def write_corpus(n_docs: int, path: Path, kind: str = "multilingual") -> dict[str, Any]:
    from tests.bench.bench import english_corpus, generate_corpus

    docs = english_corpus(n_docs) if kind == "english" else generate_corpus(n_docs)
    with path.open("w", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
    return {"docs": len(docs), "mb": round(sum(len(d["text"].encode()) for d in docs) / 1e6, 2), "kind": kind}


# ------------------------------------------------------------------------- roots workers (subprocesses)
def _read_texts(corpus: Path) -> list[dict[str, Any]]:
    with corpus.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _timed(fn: Any) -> tuple[Any, float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def worker_stage(name: str, corpus: Path, lm_dir: Path, langs_file: Path | None,
                 tokenizer: Path | None = None, scratch: Path | None = None) -> dict[str, Any]:
    """One roots stage on every document, with the same functions the pipeline calls."""
    from roots.stages import langid, quality

    docs = _read_texts(corpus)
    texts = [d["text"] for d in docs]
    out: dict[str, Any] = {"docs": len(texts)}
    t0 = time.perf_counter()
    if name == "langid":
        model = langid.load()
        model.predict(["warm up"])
        out["load_s"] = time.perf_counter() - t0
        preds, out["wall_s"], out["cpu_s"] = _timed(
            lambda: [p for i in range(0, len(texts), LID_BATCH)
                     for p in model.predict(texts[i:i + LID_BATCH])])
        out["values"] = [[p.lang, round(p.score, 4)] for p in preds]
        out["kept"] = sum(p.score >= quality.load_params(p.lang).lid_min for p in preds)
        out["model"] = str(model.path)
    elif name == "quality":
        langs = ([lang for lang, _ in json.loads(langs_file.read_text())["values"]] if langs_file
                 else ["en"] * len(texts))
        params = {lang: quality.load_params(lang) for lang in set(langs)}
        quality.compute_stats("warm up the word lists", "en", params.get("en") or quality.load_params("en"))
        for lang in params:  # stop-word and flagged-word lists load on first use
            quality.stopwords(lang)
            quality.flagged_words(lang)
        out["load_s"] = time.perf_counter() - t0

        def score() -> list[str | None]:
            reasons = []
            for text, lang in zip(texts, langs):
                p = params[lang]
                modified = quality.modify_document(text, p)
                reasons.append(quality.decide(quality.compute_stats(modified, lang, p), p)[0])
            return reasons

        reasons, out["wall_s"], out["cpu_s"] = _timed(score)
        out["kept"] = reasons.count(None)
    elif name == "perplexity":
        from roots.stages.perplexity import PerplexityModel

        model = PerplexityModel.load(lm_dir)
        model.perplexity("warm up")
        out["load_s"] = time.perf_counter() - t0
        out["values"], out["wall_s"], out["cpu_s"] = _timed(lambda: [model.perplexity(t) for t in texts])
    elif name == "minhash":
        from roots.dedup import minhash

        # no language: roots.dedup picks character shingles from the script, as datatrove has no LID here
        no_langs: list[str | None] = [None] * len(texts)
        minhash.minhash_signatures(["warm up the permutations"], [None], NUM_PERM, 1, 5)
        out["load_s"] = time.perf_counter() - t0

        def sign() -> int:
            n = 0
            for i in range(0, len(texts), SIGNATURE_BATCH):
                sigs = minhash.minhash_signatures(texts[i:i + SIGNATURE_BATCH],
                                                  no_langs[i:i + SIGNATURE_BATCH], NUM_PERM, 1, 5)
                n += sum(not minhash.is_empty_signature(s) for s in sigs)
            return n

        out["signed"], out["wall_s"], out["cpu_s"] = _timed(sign)
    elif name == "pii":
        from roots.stages.pii import PiiScrubber

        scrubber = PiiScrubber(tags=frozenset(PII_TAGS))
        scrubber.scrub("warm up a@b.org 10.0.0.1")
        out["load_s"] = time.perf_counter() - t0
        scrubbed, out["wall_s"], out["cpu_s"] = _timed(lambda: [scrubber.scrub(t) for t in texts])
        out["changed"] = sum(bool(counts) for _, counts in scrubbed)
        out["replacements"] = {tag: sum(c.get(tag, 0) for _, c in scrubbed) for tag in PII_TAGS}
    elif name == "tokenize":
        import pyarrow as pa
        import pyarrow.parquet as pq

        from roots.release import parts
        from roots.release import tokenizer as toklib

        if tokenizer is None or scratch is None:
            raise SystemExit("stage tokenize needs --tokenizer and --scratch")
        # the merge's per-file function on one kept-style Parquet file (written before the clock starts):
        # read, encode in batches with the EOD appended, write .bin/.idx and the lineage table
        scratch.mkdir(parents=True, exist_ok=True)
        kept = scratch / "kept.parquet"
        pq.write_table(pa.table({"id": [d["id"] for d in docs], "text": texts,
                                 "url": [d.get("url") for d in docs], "lang": ["en"] * len(docs)}), kept)
        tok = toklib.load(tokenizer)
        toklib.encode_documents(tok, ["warm up"])
        task = {"index": 0, "source": "bench", "path": str(kept), "clearance": "licence", "record": None}
        out["load_s"] = time.perf_counter() - t0
        counts, out["wall_s"], out["cpu_s"] = _timed(
            lambda: parts.tokenize_file(tok, task, {}, str(scratch / "parts"), 0.0, 42))
        out["tokens"], out["documents_written"] = counts["tokens"], counts["documents"]
        out["batch"] = parts.BATCH
        # one language, no hold-out: the file's tokens are one .bin (a Megatron .bin or the merge's partial
        # .bin, whose bytes are the shard's), whatever layout roots.release.parts writes around it
        bins = sorted((scratch / "parts").rglob("*.bin"))
        out["bin_sha256"] = sha256_file(bins[0]) if len(bins) == 1 else f"{len(bins)} .bin files"
    else:
        raise SystemExit(f"unknown stage {name!r}")
    return out


def sha256_file(path: Path) -> str:
    from roots.core.util import sha256_file as sha

    return sha(path)


def worker_kernels(corpus: Path, lm_dir: Path, tokenizer: Path, ids_file: Path) -> dict[str, Any]:
    """The libraries roots' end-to-end run is built on, called in a tight loop on the documents that run fed
    them (ids_file, written by the roots end-to-end worker): fastText predict (list API, batches of 256) on
    every document, SentencePiece + KenLM on those roots scored, MinHash (roots.dedup's numpy path) on those
    that reached dedup, HF tokenizers encode (one thread) on those released. Inputs are prepared before
    the clock starts, exactly as roots prepares them (lower-cased for fastText, LM-normalised for KenLM)."""
    import fasttext

    from roots.dedup import minhash
    from roots.release import tokenizer as toklib
    from roots.stages import langid
    from roots.stages.perplexity import PerplexityModel, normalise_for_lm

    docs = _read_texts(corpus)
    by_id = {d["id"]: d["text"] for d in docs}
    ids = json.loads(ids_file.read_text())
    texts = [d["text"] for d in docs]
    parts: dict[str, dict[str, Any]] = {}

    def part(name: str, n: int, fn: Any) -> None:
        _, wall, cpu = _timed(fn)
        parts[name] = {"docs": n, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                       "docs_per_s": _rate(n, cpu)}

    model = fasttext.load_model(str(langid.resolve_model_path(None)))
    lid_in = [t[:langid.MAX_PREDICT_CHARS].lower().replace("\n", " ").replace("\r", " ") for t in texts]
    model.predict(lid_in[:1], k=1)
    part("fastText predict", len(lid_in),
         lambda: [model.predict(lid_in[i:i + LID_BATCH], k=1) for i in range(0, len(lid_in), LID_BATCH)])

    pm = PerplexityModel.load(lm_dir)
    pm.perplexity("warm up")
    sp, lm = pm._sp, pm._lm  # the loaded SentencePiece and KenLM objects themselves
    lm_in = [normalise_for_lm(by_id[i]) for i in ids["scored"]]
    part("SentencePiece+KenLM score", len(lm_in),
         lambda: [lm.score(" ".join(sp.encode_as_pieces(t))) for t in lm_in])

    mh_in = [by_id[i] for i in ids["deduplicated"]]
    no_langs: list[str | None] = [None] * len(mh_in)
    minhash.minhash_signatures(["warm up the permutations"], [None], NUM_PERM, 1, 5)
    part("MinHash (shingles+hash)", len(mh_in),
         lambda: [minhash.minhash_signatures(mh_in[i:i + SIGNATURE_BATCH], no_langs[i:i + SIGNATURE_BATCH],
                                           NUM_PERM, 1, 5) for i in range(0, len(mh_in), SIGNATURE_BATCH)])

    from roots.release.parts import BATCH as tok_batch

    tok = toklib.load(tokenizer)
    tok_in = [by_id[i] for i in ids["released"]]
    tok.encode_batch_fast(["warm up"], add_special_tokens=False)
    part("tokenizers encode", len(tok_in),
         lambda: [tok.encode_batch_fast(tok_in[i:i + tok_batch], add_special_tokens=False)
                  for i in range(0, len(tok_in), tok_batch)])
    return {"docs": len(texts), "wall_s": sum(p["wall_s"] for p in parts.values()),
            "cpu_s": sum(p["cpu_s"] for p in parts.values()), "parts": parts}


#: roots' recipe for the end-to-end row: every stage datatrove's pipeline has (PII limited to its two kinds,
#: near-duplicate removal only), nothing it lacks; the merge then tokenises the kept documents into shards.
E2E_RECIPE = "{pii_tags: [EMAIL, IP_ADDRESS], dedup: {exact: false, near: true}}"
#: roots' recipe for the dedup row: only near-duplicate removal (normalisation cannot be switched off).
DEDUP_RECIPE = "{skip: [langid, modify, quality, perplexity, pii], dedup: {exact: false, near: true}}"


def worker_run(corpus: Path, lm_dir: Path, scratch: Path, recipe: str,
               tokenizer: Path | None = None) -> dict[str, Any]:
    """roots' Beam pipeline on the corpus exactly as `roots run` runs it, from a throw-away workspace whose
    card sets `recipe` and whose models directory holds only the English LM (the one datatrove gets); with
    `tokenizer`, then `roots merge` with that tokenizer.json (merge setting `tokenizer_file`) into Megatron
    shards. Also writes scratch/ids.json: which documents each library was fed (for the kernels row)."""
    from roots.core import workspace
    from roots.core.yamlio import write_yaml
    from roots.io import outputs
    from roots.jobs.run import run_source

    ws = workspace.init(scratch / "ws")
    if tokenizer is not None:
        write_yaml(ws.config_path, {**ws.config(), "merge": {"tokenizer_file": str(tokenizer)}})
    os.symlink(corpus, ws.root / "bench.jsonl")
    (ws.root / "models" / "lm").mkdir(parents=True)
    os.symlink(lm_dir, ws.root / "models" / "lm" / "en")
    (ws.sources_dir / "bench.yaml").write_text(
        "name: bench\nlanguages: [multi]\nlicense: CC0-1.0\ncustodian: {name: bench}\n"
        # the corpus is linked in from the bench's scratch folder: the card allows following that link
        "data: {path: bench.jsonl, format: jsonl, id_field: id, url_field: url, follow_symlinks: true}\n"
        "status: {state: active}\n"
        f"recipe: {recipe}\n")
    result, wall, cpu = _timed(lambda: run_source(ws, "bench"))
    stats = result.stats
    if stats["documents"]["quarantined"] == stats["documents"]["input"]:
        raise RuntimeError("roots quarantined every input record of the benchmark corpus; see "
                           f"{result.out_dir / 'quarantine'}")
    backends: dict[str, int] = defaultdict(int)
    for entry in stats["languages"].values():
        for backend, n in entry.get("langid_backend", {}).items():
            backends[backend] += n
    out = {"wall_s": wall, "cpu_s": cpu, "documents": stats["documents"], "reasons": stats["reasons"],
           "stages": stats["stages"], "langid_backends": dict(backends),
           "duplicates": sum(n for reason, n in stats["reasons"].items() if reason.startswith("duplicate")),
           "stage_cpu_seconds": stats["timings"].get("stage_cpu_seconds")}
    if tokenizer is None:
        return out
    from roots.governance import audit, changes
    from roots.jobs.merge import merge

    for path in audit.governed_files(ws):  # written by hand above: recorded so the merge's gate passes
        if not audit.is_vouched(ws, path):
            changes.accept(ws, str(path), "benchmark workspace written by hand")
    released, m_wall, m_cpu = _timed(lambda: merge(ws, out=scratch / "release"))
    manifest = released.manifest
    out["merge"] = {"wall_s": m_wall, "cpu_s": m_cpu, "timings": manifest.get("timings"),
                    "documents": sum(sum(d.values()) for d in manifest["documents"].values()),
                    "tokens": sum(sum(t.values()) for t in manifest["tokens"].values()),
                    "shards": sorted(str(p.relative_to(released.out_dir))
                                     for p in (released.out_dir / "shards").glob("*.bin"))}
    rows = [*outputs.iter_kind(result.out_dir, "kept", ["id", "perplexity"]),
            *outputs.iter_kind(result.out_dir, "rejected", ["id", "perplexity", "reason"])]
    ids = {"scored": [r["id"] for r in rows if r["perplexity"] is not None],
           "deduplicated": [r["id"] for r in rows
                            if "reason" not in r or str(r["reason"]).startswith("duplicate")],
           "released": [r["id"] for r in rows if "reason" not in r]}
    (scratch / "ids.json").write_text(json.dumps(ids))
    out["ids_file"] = str(scratch / "ids.json")
    out["fed"] = {k: len(v) for k, v in ids.items()}
    return out


# ---------------------------------------------------------------------------------------- orchestration
@dataclass
class Row:
    """One line of the table."""

    stage: str
    tool: str
    docs: int
    wall_s: float
    cpu_s: float
    docs_per_s_per_core: float | None
    peak_rss_mb: float
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


def _rate(docs: int, cpu: float) -> float | None:
    return round(docs / cpu, 1) if cpu > 0 else None


class Bench:
    """Runs every measurement as a subprocess and keeps the rows."""

    def __init__(self, work: Path, dt_python: Path, corpus: Path, lm_dir: Path, lid_model: Path,
                 tokenizer: Path) -> None:
        self.work, self.dt_python, self.corpus, self.lm_dir, self.lid_model = (work, dt_python, corpus,
                                                                               lm_dir, lid_model)
        self.tokenizer = tokenizer
        self.rows: list[Row] = []
        # One core each: HF tokenizers' Rust thread pool off in both tools (it is what encode_batch uses).
        self.env = {"TOKENIZERS_PARALLELISM": "false", "RAYON_NUM_THREADS": "1"}
        self.dt_env = {**self.env, "HF_ASSETS_CACHE": str(work / "hf_assets"),
                       "HF_HOME": str(work / "hf_home"), "HF_HUB_OFFLINE": "1"}

    def roots(self, label: str, *args: str, corpus: Path | None = None) -> Measured:
        """A roots worker (this module with --worker) in a fresh process of this interpreter."""
        out = self.work / f"roots-{label}.json"
        shutil.rmtree(self.work / f"roots-{label}", ignore_errors=True)  # a repeat starts from nothing
        cmd = [sys.executable, "-m", "tests.bench.vs_datatrove", "--worker", *args,
               "--corpus", str(corpus or self.corpus),
               "--lm-dir", str(self.lm_dir), "--tokenizer", str(self.tokenizer),
               "--scratch", str(self.work / f"roots-{label}"), "--out", str(out)]
        return run_measured(cmd, self.work / f"roots-{label}.log", out, env=self.env)

    def datatrove(self, label: str, *args: str, corpus: Path | None = None) -> Measured:
        """tests/bench/datatrove_bench.py in datatrove's own environment, with a private HF cache."""
        out = self.work / f"datatrove-{label}.json"
        # a repeat starts from nothing: datatrove's executors skip tasks their logging folder marks done
        shutil.rmtree(self.work / f"datatrove-{label}", ignore_errors=True)
        cmd = [str(self.dt_python), str(DATATROVE_SCRIPT), *args, "--corpus", str(corpus or self.corpus),
               "--lid-model", str(self.lid_model), "--lm-dir", str(self.lm_dir),
               "--tokenizer", str(self.tokenizer),
               "--workdir", str(self.work / f"datatrove-{label}"), "--out", str(out)]
        return run_measured(cmd, self.work / f"datatrove-{label}.log", out, env=self.dt_env)

    def stage_row(self, stage: str, tool: str, m: Measured, note: str = "") -> Row:
        r = m.result
        row = Row(TITLES[stage], tool, r["docs"], round(r["wall_s"], 3), round(r["cpu_s"], 3),
                  _rate(r["docs"], r["cpu_s"]), m.peak_rss_mb, note,
                  {k: v for k, v in r.items() if k != "values"} | {"process": asdict(m) | {"result": None}})
        self.rows.append(row)
        return row

    def process_row(self, stage: str, tool: str, docs: int, m: Measured, note: str) -> Row:
        """A row whose CPU is the whole process tree (end-to-end measurements)."""
        row = Row(TITLES[stage], tool, docs, m.wall_s, m.cpu_s, _rate(docs, m.cpu_s), m.peak_rss_mb, note,
                  m.result | {"process": asdict(m) | {"result": None}})
        self.rows.append(row)
        return row


def compare_stages(bench: Bench, n_docs: int) -> dict[str, Any]:
    """Stage rows for both tools, plus checks that the shared models give the same answers."""
    checks: dict[str, Any] = {}
    roots_lid = bench.roots("langid", "stage", "langid")
    dt_lid = bench.datatrove("langid", "stage", "langid")
    bench.stage_row("langid", "roots", roots_lid,
                    f"batched, k=1, lower-cased, 4k chars; {roots_lid.result['kept']} pass lid_min")
    bench.stage_row("langid", "datatrove", dt_lid,
                    f"per doc, k=-1, raw text; {dt_lid.result['kept']} pass > 0.70")
    a, b = roots_lid.result["values"], dt_lid.result["values"]
    checks["langid_top1_agreement"] = round(sum(x[0] == y[0] for x, y in zip(a, b)) / max(1, len(a)), 4)
    checks["langid_model_sha256"] = dt_lid.result["lid_model_sha256"]
    langs_file = bench.work / "roots-langid.json"

    roots_q = bench.roots("quality", "stage", "quality", "--langs", str(langs_file))
    dt_q = bench.datatrove("quality", "stage", "quality")
    bench.stage_row("quality", "roots", roots_q,
                    f"ROOTS modify+stats+decide, per-language params; {roots_q.result['kept']} pass")
    parts = dt_q.result["parts"]
    bench.stage_row("quality", "datatrove", dt_q,
                    f"Gopher rep {_rate(n_docs, parts['GopherRepetitionFilter']['cpu_s'])} + quality "
                    f"{_rate(n_docs, parts['GopherQualityFilter']['cpu_s'])} docs/s, en; "
                    f"{dt_q.result['kept']} pass")

    roots_p = bench.roots("perplexity", "stage", "perplexity")
    dt_p = bench.datatrove("perplexity", "stage", "perplexity")
    a, b = roots_p.result["values"], dt_p.result["values"]
    same = sum(x == y for x, y in zip(a, b))
    checks["perplexity_identical"] = f"{same}/{len(a)}"
    bench.stage_row("perplexity", "roots", roots_p, "roots.stages.perplexity.PerplexityModel")
    bench.stage_row("perplexity", "datatrove", dt_p,
                    f"KenlmModel subclass; identical on {same}/{len(a)} docs")

    roots_pii = bench.roots("pii", "stage", "pii")
    dt_pii = bench.datatrove("pii", "stage", "pii")
    reps = ", ".join(f"{k} {v}" for k, v in roots_pii.result["replacements"].items())
    bench.stage_row("pii", "roots", roots_pii,
                    "PiiScrubber(EMAIL, IP_ADDRESS), validated spans -> PI:<TAG>; "
                    f"{roots_pii.result['changed']} docs changed ({reps})")
    bench.stage_row("pii", "datatrove", dt_pii, f"PIIFormatter (all IPs), fake addresses; "
                    f"{dt_pii.result['changed']} docs changed")
    checks["pii_docs_changed"] = f"roots {roots_pii.result['changed']} / datatrove {dt_pii.result['changed']}"

    roots_m = bench.roots("minhash", "stage", "minhash")
    dt_m = bench.datatrove("minhash", "stage", "minhash")
    bench.stage_row("minhash", "roots", roots_m, "regex words, SHA-1+affine64, numpy batch")
    bench.stage_row("minhash", "datatrove", dt_m, "spaCy words, xxhash64, mod 2^61-1")

    roots_t = bench.roots("tokenize", "stage", "tokenize")
    dt_t = bench.datatrove("tokenize", "stage", "tokenize")
    same_bin = roots_t.result["bin_sha256"] == dt_t.result["bin_sha256"]
    bench.stage_row("tokenize", "roots", roots_t,
                    f"parts.tokenize_file: Parquet in, encode x{roots_t.result['batch']}, shard "
                    f"bytes + lineage; {roots_t.result['tokens']} tokens")
    bench.stage_row("tokenize", "datatrove", dt_t,
                    f"MegatronDocumentTokenizer.write_tokens: encode_batch x10000, .bin/.idx; "
                    f"{dt_t.result['tokens']} tokens; .bin {'identical' if same_bin else 'DIFFERENT'}")
    checks["tokens"] = f"roots {roots_t.result['tokens']} / datatrove {dt_t.result['tokens']}"
    checks["megatron_bin_identical"] = same_bin
    return checks


def flows(rows: list[Row]) -> list[str]:
    """Documents in and out of each end-to-end stage, per tool: later stages see what earlier ones kept."""
    lines = []
    for row in rows:
        if row.stage != TITLES["e2e"]:
            continue
        if row.tool == "roots":
            steps = [f"{s['stage']} {s['in']}>{s['out']}"
                     for s in row.detail.get("stages", []) if s["removed"]]
            merged = row.detail.get("merge")
            if merged:
                steps.append(f"merge {merged['documents']} docs > {merged['tokens']} tokens in "
                             f"{len(merged['shards'])} shard(s)")
        else:
            steps = [f"{b['block'].split(': ', 1)[-1]} {b['total']}>{b['forwarded']}"
                     for b in row.detail.get("blocks", []) if b.get("forwarded") is not None]
            if row.detail.get("tokens") is not None:
                steps.append(f"tokenizer {row.detail['tokens']} tokens")
        lines.append(f"{row.tool} end-to-end flow: " + ", ".join(steps))
    return lines


def where_time_goes(rows: list[Row]) -> list[str]:
    """CPU seconds per stage inside each end-to-end run, largest first (what limits each tool)."""
    lines = []
    for row in rows:
        if row.stage != TITLES["e2e"]:
            continue
        if row.tool == "roots":
            parts = {f"run:{k}": float(v) for k, v in (row.detail.get("stage_cpu_seconds") or {}).items()}
            run_cpu = float(row.detail.get("cpu_s") or 0.0)
            parts["run: rest (Beam, reading, dedup, Parquet, stats)"] = max(
                0.0, run_cpu - sum(parts.values()))
            merged = row.detail.get("merge") or {}
            merge_cpu = float(merged.get("cpu_s") or 0.0)
            if merged:
                encode = float((merged.get("timings") or {}).get("tokenize_and_write_cpu_s") or 0.0)
                parts["merge: tokenise + write shards"] = encode
                parts["merge: rest (gate, lineage, card, report, hashes)"] = max(0.0, merge_cpu - encode)
            parts["process outside run+merge (imports)"] = max(0.0, row.cpu_s - run_cpu - merge_cpu)
        else:
            parts = {f"job:{k}": float(v["cpu_s"]) for k, v in (row.detail.get("jobs") or {}).items()}
            parts["process outside the jobs (imports, executor)"] = max(
                0.0, row.cpu_s - float(row.detail["cpu_s"]))
        top = sorted(parts.items(), key=lambda kv: -kv[1])
        lines.append(f"{row.tool} end-to-end CPU s by part: " + ", ".join(f"{k} {v:.2f}" for k, v in top))
    return lines


def best_of(repeats: int, measure: Callable[[], Measured]) -> Measured:
    """The measurement with the least CPU of `repeats` runs: noise from a shared machine only ever adds
    CPU, and the marginal rates subtract two such numbers, so one unlucky run would skew them."""
    return min((measure() for _ in range(max(1, repeats))), key=lambda m: m.cpu_s)


def compare_e2e(bench: Bench, n_docs: int, with_dedup: bool, repeats: int = 1) -> list[str]:
    """End-to-end rows (each the best of `repeats` runs); returns failures of the optional dedup rows
    instead of aborting on them."""
    r = best_of(repeats, lambda: bench.roots("e2e", "run", E2E_RECIPE, "merge"))
    d, merged = r.result["documents"], r.result["merge"]
    lid = ", ".join(f"{k} {v}" for k, v in sorted(r.result["langid_backends"].items()))
    bench.process_row("e2e", "roots", n_docs, r,
                      "roots run (Beam DirectRunner) + roots merge; in-process "
                      f"{_rate(n_docs, r.result['cpu_s'] + merged['cpu_s'])} docs/s/core; kept {d['kept']} "
                      f"(dups {r.result['duplicates']}); released {merged['documents']} docs, "
                      f"{merged['tokens']} tokens; LID by {lid}")
    t = best_of(repeats, lambda: bench.datatrove("e2e", "e2e"))
    bench.process_row("e2e", "datatrove", n_docs, t,
                      f"5 LocalPipelineExecutor jobs; in-process {_rate(n_docs, t.result['cpu_s'])} "
                      f"docs/s/core; dups {t.result['removed']}; released {t.result['released']} docs, "
                      f"{t.result['tokens']} tokens")
    k = min((bench.roots("kernels", "kernels", "--ids", r.result["ids_file"])
             for _ in range(max(1, repeats))), key=lambda m: m.result["cpu_s"])
    parts = "; ".join(f"{name} {v['docs_per_s']}/s on {v['docs']}" for name, v in k.result["parts"].items())
    bench.stage_row("kernels", "libraries", k, f"tight loops, docs roots fed each: {parts}")
    small, n_small = prefix_corpus(bench.corpus, n_docs // SMALL_FRACTION)
    for tool, measure in (("roots",
                           lambda: bench.roots("e2e-small", "run", E2E_RECIPE, "merge", corpus=small)),
                          ("datatrove", lambda: bench.datatrove("e2e-small", "e2e", corpus=small))):
        bench.process_row("e2e_small", tool, n_small, best_of(repeats, measure),
                          "same pipeline and settings; subtracted from the full run for the marginal rate")
    failures: list[str] = []
    if with_dedup:
        try:
            r = bench.roots("dedup", "run", DEDUP_RECIPE)
            bench.process_row("dedup", "roots", n_docs, r,
                              "Beam: normalise, MinHash-LSH, union-find; pipeline "
                              f"{_rate(n_docs, r.result['cpu_s'])} docs/s/core; removed "
                              f"{r.result['duplicates']}")
        except MeasureError as exc:
            failures.append(f"roots dedup: {exc}")
        try:
            t = bench.datatrove("dedup", "dedup")
            jobs = ", ".join(f"{k} {v['cpu_s']:.1f}" for k, v in t.result["jobs"].items())
            bench.process_row("dedup", "datatrove", n_docs, t,
                              f"4 jobs (in-job CPU s: {jobs}); removed {t.result['removed']}")
        except MeasureError as exc:
            failures.append(f"datatrove dedup: {exc}")
    return failures


def prefix_corpus(corpus: Path, n_docs: int) -> tuple[Path, int]:
    """The first `n_docs` lines of the corpus in a file beside it (the small run of the marginal rate)."""
    out = corpus.with_name(f"{corpus.stem}.first{n_docs}.jsonl")
    with corpus.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        dst.writelines(line for _, line in zip(range(n_docs), src))
    return out, n_docs


def marginal_rates(rows: list[Row]) -> dict[str, float | None]:
    """Each tool's documents per CPU second beyond its fixed costs (interpreter, imports, model loading,
    graph construction): (docs(full) - docs(small)) / (CPU(full) - CPU(small)) over the two end-to-end runs.
    This is the rate a corpus large enough to make start-up negligible would see, and the fair comparison
    with the kernels row, whose loops exclude start-up too."""
    by = {(r.stage, r.tool): r for r in rows}
    out: dict[str, float | None] = {}
    for tool in ("roots", "datatrove"):
        full, small = by.get((TITLES["e2e"], tool)), by.get((TITLES["e2e_small"], tool))
        extra = full.cpu_s - small.cpu_s if full and small else 0.0
        out[tool] = round((full.docs - small.docs) / extra, 1) if full and small and extra > 0 else None
    return out


#: roots' per-document stages that call none of the kernel libraries (ROOTS heuristics, word removals,
#: normalisation, PII, recipe, decisions): required work that the kernels row leaves out.
NON_KERNEL_STAGES = ("recipe", "normalise", "modify", "quality", "pii", "decide")


def kernel_floor(rows: list[Row]) -> float | None:
    """The smallest kernels / roots ratio roots could reach with zero overhead: (kernel CPU + the CPU of its
    stages that call no kernel library, from the run's own stage timers) / kernel CPU, on the same documents.
    A ratio goal below this cannot be met by cutting overhead alone."""
    by = {(r.stage, r.tool): r for r in rows}
    run, kernels = by.get((TITLES["e2e"], "roots")), by.get((TITLES["kernels"], "libraries"))
    stages = (run.detail.get("stage_cpu_seconds") or {}) if run else {}
    if not kernels or kernels.cpu_s <= 0 or not stages:
        return None
    return round((kernels.cpu_s + sum(float(stages.get(s) or 0.0) for s in NON_KERNEL_STAGES))
                 / kernels.cpu_s, 2)


def ratios(rows: list[Row]) -> dict[str, float | None]:
    """roots / datatrove end to end, how many times the kernels' rate roots' end-to-end rate is, and both
    again on the marginal (start-up excluded) rates; and the floor of the kernels ratio (`kernel_floor`)."""
    rate = {(r.stage, r.tool): r.docs_per_s_per_core for r in rows}
    roots_e2e, dt_e2e = rate.get((TITLES["e2e"], "roots")), rate.get((TITLES["e2e"], "datatrove"))
    kernels = rate.get((TITLES["kernels"], "libraries"))
    marginal = marginal_rates(rows)
    m_roots, m_dt = marginal["roots"], marginal["datatrove"]
    return {"roots_over_datatrove_e2e": round(roots_e2e / dt_e2e, 2) if roots_e2e and dt_e2e else None,
            "kernels_over_roots_e2e": round(kernels / roots_e2e, 2) if roots_e2e and kernels else None,
            "roots_marginal_docs_per_s_per_core": m_roots, "datatrove_marginal_docs_per_s_per_core": m_dt,
            "roots_over_datatrove_marginal": round(m_roots / m_dt, 2) if m_roots and m_dt else None,
            "kernels_over_roots_marginal": round(kernels / m_roots, 2) if m_roots and kernels else None,
            "kernels_over_roots_floor": kernel_floor(rows)}


EQUIVALENT = [
    ("Same input file (tests.bench.bench.generate_corpus), same machine, one core per tool, "
     "fresh process each."),
    ("Language ID: the same fastText file, lid.176.ftz (sha256 checked); threshold 0.70 in both "
     "(roots' default lid_min; datatrove's own default is 0.65)."),
    ("Perplexity: the same roots-trained sp.model + lm.binary, the same normalisation and the same cc_net "
     "score (checked per document); max 1500 (ROOTS en) for documents labelled en, others unscored."),
    "MinHash: word 5-grams, 64-bit hashes, 14 bands x 9 rows (roots' lsh_params(0.7, 128)).",
    ("PII: emails and IP addresses in both (roots tags EMAIL + IP_ADDRESS, datatrove PIIFormatter with "
     "only_remove_public_ips=False because roots redacts private addresses too)."),
    ("Tokenisation: the same tokenizer.json (a BLOOM-style byte-level BPE, vocabulary "
     f"{TOKENIZER_VOCAB:,}, trained once on the corpus by roots.release.tokenizer), '</s>' appended to every "
     "document, uint16 tokens in Megatron's mmap .bin/.idx format in both (roots' merge and datatrove's "
     "MegatronDocumentTokenizer); the tokenisation stage rows check that the two .bin files are identical."),
    ("Kernels row: the libraries under roots' end-to-end run (fastText predict, SentencePiece + KenLM score, "
     "roots.dedup MinHash, HF tokenizers encode) in tight loops, one core, on exactly the documents roots' "
     "run fed each of them (every document; those scored; those that reached dedup; those released)."),
]
DIFFERENT = [
    ("Language ID: roots lower-cases, truncates to 4,000 characters and predicts in batches of 256 with "
     "k=1; datatrove predicts one raw document at a time with k=-1 (all 176 scores). roots applies "
     "per-language lid_min (0.70-0.95, >=), datatrove one threshold (>)."),
    ("Heuristics are not the same rules: roots computes ROOTS's six statistics (word count, character and "
     "word repetition, special characters, stop words, flagged words) with per-language parameters and "
     "its own word splitting; datatrove runs Gopher repetition + Gopher quality with spaCy's English "
     "tokenizer and English stop words for every document (its default; no per-language config). Gopher "
     "filters return at the first failed rule; roots computes every statistic for every document."),
    ("Datatrove has no perplexity filter (only CCNetPerplexityStats with edugp's Hub models, lower-cased and "
     "accent-stripped input); the datatrove side uses a subclass of its KenlmModel that loads roots' files "
     "and normalises as roots.stages.perplexity does "
     "(tests/bench/datatrove_bench.py, RootsPerplexityFilter)."),
    ("End to end, roots also normalises text (ftfy, NFC, control characters), applies ROOTS's word removals "
     "before scoring, scores every stage for every document (score, then decide) and writes kept and "
     "rejected documents to Parquet with their statistics; datatrove drops a document at the first failing "
     "filter (so later filters see fewer documents: mostly English survives Gopher quality) and writes only "
     "kept documents, gzipped JSONL, which its dedup and tokenisation jobs read back. roots' language ID "
     "also routes the documents fastText is unsure of to CLD3 (roots/data/langid_routing.yaml); the "
     "end-to-end note counts the documents each backend labelled."),
    ("PII: roots finds candidates with bounded regexes and validates them (TLD, IPv4/IPv6 parsing) and "
     "writes PI:EMAIL / PI:IP_ADDRESS, repeating until nothing matches; datatrove runs one email and one "
     "IPv4 regex (no IPv6) and substitutes fake addresses. roots scrubs every document it writes, rejected "
     "ones included; datatrove only those that passed its filters."),
    ("Tokenisation end to end: `roots merge` (Beam DirectRunner) re-checks clearance and takedowns, holds "
     "out 5% per language for validation, writes one shard pair per language and split plus a lineage "
     "table per shard, tokenizer files, blend weights, data card, report and a manifest hashing every file; "
     "datatrove's MegatronDocumentTokenizer writes one .bin/.idx for the task. roots encodes with "
     "encode_batch_fast (no offsets) in batches of roots.release.parts.BATCH and never turns a literal "
     "'</s>' in the text into the special id; datatrove uses encode_batch (with offsets) in batches of "
     "10,000 and its EOS post-processor. Neither trains a tokenizer in the timed runs. Because datatrove's "
     "English-only Gopher quality filter drops nearly every non-English document, its dedup and tokenisation "
     "jobs get far fewer documents than roots' (the end-to-end flow lines give the counts)."),
    ("Dedup inside end to end: roots' run removes near duplicates among the documents its filters kept, in "
     "the same Beam job (recipe dedup: {exact: false, near: true}); datatrove runs its signature, 14 "
     "bucket, cluster and filter steps as separate jobs over files on disk."),
    ("MinHash: roots hashes regex \\w+ words (characters for scripts without spaces) with SHA-1 + the "
     "datasketch affine64 permutation; datatrove tokenizes with spaCy, hashes with xxhash64 and permutes "
     "modulo 2^61-1. Dedup end to end: roots' Beam pipeline with every other stage skipped (it still "
     "normalises and writes Parquet) groups hash-bucketed band-key files and clusters with one union-find "
     "combine in Beam; datatrove runs "
     "its four local jobs (signatures, 14 bucket tasks, cluster, filter) through files on disk."),
    ("Peak memory is the summed RSS of each process tree (datatrove's LocalPipelineExecutor always starts a "
     "multiprocess manager process; Beam's DirectRunner runs in-process)."),
]


def print_table(rows: list[Row], corpus: dict[str, Any]) -> None:
    print(f"\ncorpus ({corpus.get('kind', 'multilingual')}): {corpus['docs']} documents, {corpus['mb']} MB; "
          f"machine: {os.cpu_count()} cores; "
          "docs/s/core = documents / CPU seconds")
    head = (f"{'stage':<44} {'tool':<10} {'docs':>6} {'wall s':>8} {'CPU s':>8} {'docs/s/core':>11} "
            f"{'peak RSS MB':>11}")
    print(head + "  notes")
    print("-" * (len(head) + 40))
    last = None
    for r in rows:
        stage = r.stage if r.stage != last else ""
        last = r.stage
        print(f"{stage:<44} {r.tool:<10} {r.docs:>6} {r.wall_s:>8.2f} {r.cpu_s:>8.2f} "
              f"{r.docs_per_s_per_core!s:>11} {r.peak_rss_mb:>11.1f}  {r.note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=5000, help="documents to generate (default 5000)")
    parser.add_argument("--corpus-kind", choices=("multilingual", "english"), default="multilingual",
                        help="multilingual: UDHR in many languages (tests.bench.bench.generate_corpus); "
                             "english: prose from the bundled Python docs, where datatrove's English-only "
                             "Gopher filters keep documents too, so both tools do the downstream work")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON,
                        help=f"results file (default {DEFAULT_JSON})")
    parser.add_argument("--datatrove-venv", type=Path, default=DATATROVE_VENV)
    parser.add_argument("--no-dedup", action="store_true", help="skip the MinHash dedup end-to-end rows")
    parser.add_argument("--repeats", type=int, default=2,
                        help="end-to-end and kernel rows: best (least CPU) of this many runs (default 2)")
    parser.add_argument("--keep-workdir", action="store_true",
                        help="keep the scratch directory (logs, outputs)")
    # internal: one measurement inside a worker subprocess
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--lm-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--langs", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tokenizer", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ids", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)

    started = time.perf_counter()
    dt_python = ensure_datatrove_venv(args.datatrove_venv)
    work = Path(tempfile.mkdtemp(prefix="roots-vs-datatrove-"))
    try:
        from roots.stages import langid

        lm_dir = ensure_lm(work)
        lid_model = langid.resolve_model_path(None)
        corpus_path = work / "corpus.jsonl"
        corpus = write_corpus(args.docs, corpus_path, args.corpus_kind)
        tokenizer = ensure_tokenizer(work, corpus_path)
        bench = Bench(work, dt_python, corpus_path, lm_dir, lid_model, tokenizer)
        print(f"benchmarking {corpus['docs']} documents ({corpus['mb']} MB) in {work}", file=sys.stderr)
        try:
            checks = compare_stages(bench, corpus["docs"])
            failures = compare_e2e(bench, corpus["docs"], with_dedup=not args.no_dedup, repeats=args.repeats)
        except MeasureError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
        print_table(bench.rows, corpus)
        for failure in failures:
            print(f"\nFAILED (row left out) {failure}")
        found = ratios(bench.rows)
        print(f"\nroots / datatrove end to end: {found['roots_over_datatrove_e2e']}x docs/s/core "
              f"(goal >= {GOAL_VS_DATATROVE}x)")
        print(f"bare kernels / roots end to end: {found['kernels_over_roots_e2e']}x (roots is that many "
              f"times slower than its libraries alone; goal <= {GOAL_VS_KERNELS}x)")
        print("marginal (start-up excluded, full run minus the run on the first fifth): roots "
              f"{found['roots_marginal_docs_per_s_per_core']}, datatrove "
              f"{found['datatrove_marginal_docs_per_s_per_core']} docs/s/core; roots / datatrove "
              f"{found['roots_over_datatrove_marginal']}x, kernels / roots "
              f"{found['kernels_over_roots_marginal']}x")
        print(f"floor of kernels / roots: {found['kernels_over_roots_floor']}x (kernel CPU plus roots' "
              f"stages that call no kernel library: {', '.join(NON_KERNEL_STAGES)}; what roots would reach "
              "with no other overhead at all)")
        print("\nchecks: " + ", ".join(f"{k}={v}" for k, v in checks.items()))
        print("\n".join(flows(bench.rows)))
        print("\n".join(where_time_goes(bench.rows)))
        print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}; wall times include waiting for "
              "the CPU when the machine is busy, docs/s/core (CPU time) does not")
        print("\nequivalent:\n" + "\n".join(f"  - {line}" for line in EQUIVALENT))
        print("different:\n" + "\n".join(f"  - {line}" for line in DIFFERENT))
        dt_version = next(r.detail.get("datatrove_version") for r in bench.rows if r.tool == "datatrove")
        versions = {"datatrove": dt_version, "python": sys.version.split()[0]}
        report = {"corpus": corpus, "cores": os.cpu_count(), "load_average": os.getloadavg(),
                  "versions": versions,
                  "models": {"lid": str(lid_model), "lm": str(lm_dir), "tokenizer_vocab": TOKENIZER_VOCAB},
                  "ratios": found, "goals": {"roots_over_datatrove_e2e": f">= {GOAL_VS_DATATROVE}",
                                              "kernels_over_roots_e2e": f"<= {GOAL_VS_KERNELS}",
                                              "roots_over_datatrove_marginal": f">= {GOAL_VS_DATATROVE}",
                                              "kernels_over_roots_marginal": f"<= {GOAL_VS_KERNELS}"},
                  "where_time_goes": where_time_goes(bench.rows), "checks": checks,
                  "rows": [asdict(r) for r in bench.rows], "failures": failures, "equivalent": EQUIVALENT,
                  "different": DIFFERENT,
                  "total_seconds": round(time.perf_counter() - started, 1)}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nresults: {args.json} (total {report['total_seconds']} s)")
    finally:
        if args.keep_workdir:
            print(f"scratch directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _worker(args: argparse.Namespace) -> int:
    kind, *rest = args.worker
    if kind == "stage":
        result = worker_stage(rest[0], args.corpus, args.lm_dir, args.langs, args.tokenizer, args.scratch)
    elif kind == "run":
        args.scratch.mkdir(parents=True, exist_ok=True)
        result = worker_run(args.corpus, args.lm_dir, args.scratch, rest[0],
                            args.tokenizer if rest[1:] == ["merge"] else None)
    elif kind == "kernels":
        result = worker_kernels(args.corpus, args.lm_dir, args.tokenizer, args.ids)
    else:
        raise SystemExit(f"unknown worker {kind!r}")
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
