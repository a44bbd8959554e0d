"""`make bench`: documents per second per core for each stage and end to end, and peak memory.

The corpus is generated from the bundled UDHR text (many languages, paragraphs of realistic length)
plus deliberately noisy documents, so every stage does the work it does on real data. Stage rows
are measured in-process on one core; the end-to-end row runs the real Beam pipeline (DirectRunner,
one worker process) through `roots run`, so it includes Beam's own overhead.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import zstandard

from roots.stages import langid, routing
from tests.bench import pii_bench, web_bench
from tests.bench.signals_bench import signal_rows

REPO = Path(__file__).resolve().parents[2]
UDHR = REPO / "sources" / "samples" / "udhr" / "udhr.jsonl"


def generate_corpus(n_docs: int, seed: int = 0) -> list[dict[str, Any]]:
    """Deterministic multilingual documents of 3-8 UDHR articles each, 10% noisy."""
    return list(iter_corpus(n_docs, seed))


def with_noise(text: str, i: int, rng: random.Random) -> str:
    """10% noisy documents: spam (3%), PII appended (3%), mojibake (4%)."""
    roll = rng.random()
    if roll < 0.03:
        return "buy now cheap " * 200
    if roll < 0.06:
        return text + f"\nContact: user{i}@example.com or +44 20 7946 {i % 10000:04d}"
    if roll < 0.10:
        return "Ã©tÃ© " + text
    return text


def iter_corpus(n_docs: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """`generate_corpus` one document at a time (the memory rows must not hold the corpus themselves)."""
    rng = random.Random(seed)
    by_lang: dict[str, list[str]] = {}
    with UDHR.open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            by_lang.setdefault(rec["lang"], []).append(rec["text"])
    langs = sorted(lang for lang, texts in by_lang.items() if len(texts) >= 20)
    for i in range(n_docs):
        lang = rng.choice(langs)
        paras = rng.sample(by_lang[lang], k=min(len(by_lang[lang]), rng.randint(3, 8)))
        text = "\n".join(paras)
        text = with_noise(text, i, rng)
        yield {"id": f"doc{i:07d}", "text": text, "url": f"https://example.org/{lang}/{i}"}


def english_paragraphs() -> list[str]:
    """Prose paragraphs of the Python documentation bundled with the interpreter (`pydoc_data.topics`):
    English text of realistic shape that is on every machine, for comparisons whose heuristics are
    English-only (datatrove's Gopher filters)."""
    import re
    from pydoc_data.topics import topics

    out = []
    for topic in topics.values():
        for para in re.split(r"\n\s*\n", topic):
            lines = para.split("\n")
            if any(line.startswith((" ", "\t", ">>>")) for line in lines):
                continue  # code examples and indented grammar
            text = " ".join(line.strip() for line in lines)
            if len(text.split()) >= 25 and "*" not in text and "=" not in text:
                out.append(text)
    return out


def english_corpus(n_docs: int, seed: int = 0) -> list[dict[str, Any]]:
    """Deterministic English documents of 3-8 paragraphs each, with the same 10% noise as
    `generate_corpus`."""
    rng = random.Random(seed)
    paras = english_paragraphs()
    docs = []
    for i in range(n_docs):
        text = "\n".join(rng.sample(paras, k=rng.randint(3, 8)))
        text = with_noise(text, i, rng)
        docs.append({"id": f"doc{i:07d}", "text": text, "url": f"https://example.org/en/{i}"})
    return docs


def rss_mb() -> float:
    """Peak RSS of this process image. /proc's VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec,
    so a benchmark child started from a big parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, n: int, fn: Callable[[], Any], rows: list[dict[str, Any]]) -> Any:
    t0 = time.perf_counter()
    c0 = time.process_time()
    out = fn()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    rows.append({"stage": label, "docs": n, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                 "docs_per_s_per_core": round(n / cpu, 1) if cpu > 0 else None,
                 "peak_rss_mb": round(rss_mb(), 1)})
    return out


def stage_rows(docs: list[dict[str, Any]], lm_dir: Path | None) -> list[dict[str, Any]]:
    from roots.stages import langid, normalise, pii, quality

    rows: list[dict[str, Any]] = []
    texts = [d["text"] for d in docs]
    n = len(texts)
    norm = timed("normalise", n, lambda: [normalise.normalise(t) for t in texts], rows)
    model = langid.load()
    preds = timed("langid (fastText, batched)", n,
                  lambda: [p for i in range(0, n, 256) for p in model.predict(norm[i:i + 256])], rows)
    params = {p.lang: quality.load_params(p.lang) for p in preds}
    modified = timed("modify (ROOTS 2.1)", n,
                     lambda: [quality.modify_document(t, params[p.lang]) for t, p in zip(norm, preds)], rows)
    timed("quality statistics", n,
          lambda: [quality.compute_stats(t, p.lang, params[p.lang]) for t, p in zip(modified, preds)], rows)
    scrubber = pii.PiiScrubber()
    timed("pii scrub", n, lambda: [scrubber.scrub(t) for t in modified], rows)
    if lm_dir is not None:
        from roots.stages.perplexity import PerplexityModel

        lms = {d.name: PerplexityModel.load(d) for d in sorted(lm_dir.iterdir())
               if (d / "calibration.json").exists()}
        scored = [(t, lms[p.lang]) for t, p in zip(modified, preds) if p.lang in lms]
        if scored:
            timed(f"perplexity ({','.join(sorted(lms))} docs only)", len(scored),
                  lambda: [m.perplexity(t) for t, m in scored], rows)
    return rows


COMPRESSORS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "gzip": (".gz", lambda b: gzip.compress(b, compresslevel=6)),
    "zstd": (".zst", lambda b: zstandard.ZstdCompressor(level=3).compress(b)),
}
"""The compressed-input rows: the same corpus as `.jsonl.gz` and `.jsonl.zst` (the common archive forms)."""


def end_to_end(docs: list[dict[str, Any]], lm_dir: Path | None,
               with_merge: bool = False, codec: str | None = None) -> list[dict[str, Any]]:
    from roots.core import workspace
    from roots.jobs.run import run_source

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = workspace.init(Path(tmp) / "ws")
        body = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")
        name = "bench.jsonl"
        if codec is not None:
            suffix, compress = COMPRESSORS[codec]
            name, body = name + suffix, compress(body)
        (ws.root / name).write_bytes(body)
        (ws.sources_dir / "bench.yaml").write_text(
            "name: bench\nlanguages: [multi]\nlicense: CC0-1.0\ncustodian: {name: bench}\n"
            f"data: {{path: {name}, format: jsonl, id_field: id, url_field: url}}\n"
            "status: {state: active}\n")
        if lm_dir is not None:
            os.symlink(lm_dir.parent, ws.root / "models")
        c0 = time.process_time()
        t0 = time.perf_counter()
        result = run_source(ws, "bench")
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        d = result.stats["documents"]
        label = "end to end (roots run, DirectRunner)" if codec is None else f"end to end, {name} input"
        rows.append({"stage": label, "docs": d["input"], "codec": codec,
                     "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                     "docs_per_s_per_core": round(d["input"] / wall, 1),
                     "peak_rss_mb": round(rss_mb(), 1), "kept": d["kept"], "rejected": d["rejected"]})
        if with_merge:
            rows.extend(merge_rows(ws, result.out_dir))
    return rows


def vouch_workspace(ws: Any) -> None:
    """Benchmark workspaces write cards and roots.yaml by hand: record each such file as `roots governance
    accept` would, so the merge's governance gate (issue 17) lets the merge run."""
    from roots.governance import audit, changes

    for path in audit.governed_files(ws):
        if not audit.is_vouched(ws, path):
            changes.accept(ws, str(path), "benchmark workspace written by hand")


def merge_rows(ws: Any, *kept_dirs: Path, label: str = "merge", repeats: int = 2) -> list[dict[str, Any]]:
    """`roots merge` of the workspace, then HF tokenizers' own encode on the same kept texts, same process;
    each measured `repeats` times and the best kept (the machine is shared, timings are noisy).

    Shard writing is the product's own measure from the manifest (`shard_writing_cpu_s`): CPU seconds
    inside `parts.tokenize_file` for every kept file (reading, tokenizing, partial outputs; the
    tokenizer's threads included) plus the assembly of the `.bin/.idx` shards and lineage Parquet. The
    whole Beam step (`tokenize_and_write_cpu_s`) is shown too. Token rates count text tokens only (the
    appended EOD tokens are left out), as HF's encode produces them.
    """
    from roots.io import outputs
    from roots.jobs import merge
    from roots.release import tokenizer as toklib

    runs = []
    vouch_workspace(ws)
    for i in range(repeats):
        t0 = time.perf_counter()
        released = merge.merge(ws, out=ws.root / f"release-bench-{i}", vocab_size=32_000)
        runs.append((released, time.perf_counter() - t0))
    m = runs[0][0].manifest

    def best(key: str) -> float:
        return min(r.manifest["timings"][key] for r, _ in runs)

    n_docs = sum(d["train"] + d["valid"] for d in m["documents"].values())
    text_tokens = sum(x["train"] + x["valid"] for x in m["tokens"].values()) - n_docs  # one EOD per document
    shard_run = min((r for r, _ in runs), key=lambda r: r.manifest["timings"]["shard_writing_cpu_s"])
    t = shard_run.manifest["timings"]

    def row(stage: str, cpu: float, wall: float | None = None, **extra: Any) -> dict[str, Any]:
        return {"stage": f"{label}: {stage}", "docs": n_docs, "wall_s": wall, "cpu_s": round(cpu, 3),
                "docs_per_s_per_core": round(n_docs / cpu, 1) if cpu > 0 else None, **extra,
                "peak_rss_mb": round(rss_mb(), 1)}

    rows = [{**row("tokenizer training (32k)", best("tokenizer_train_cpu_s"), best("tokenizer_train_s")),
             "docs_per_s_per_core": None},
            row("shard writing", t["shard_writing_cpu_s"], tokens=text_tokens,
                shard_tokens_per_s_per_core=round(text_tokens / t["shard_writing_cpu_s"], 1),
                tokenize_cpu_s=t["shard_tokenize_cpu_s"], assemble_cpu_s=t["shard_assemble_cpu_s"]),
            row("whole Beam shard step", best("tokenize_and_write_cpu_s"), best("tokenize_and_write_s"),
                tokens=text_tokens,
                tokens_per_s_per_core=round(text_tokens / best("tokenize_and_write_cpu_s"), 1))]
    tok = toklib.load(shard_run.out_dir / "tokenizer.json")
    texts = [r["text"] for d in kept_dirs for r in outputs.iter_kind(d, "kept", ["text"])]
    for stage, encoder in (("HF encode alone (same texts, 1 core)", tok),
                           (f"HF encode, {toklib.ENCODE_WORD_CACHE // 1000}k word cache",
                            toklib.with_word_cache(tok))):
        cpu = float("inf")
        for _ in range(repeats):
            c1 = time.process_time()
            n_tok = sum(len(encoder.encode(text).ids) for text in texts)
            cpu = min(cpu, time.process_time() - c1)
        rows.append({**row(stage, cpu), "docs": len(texts), "docs_per_s_per_core": round(len(texts) / cpu, 1),
                     "tokens": n_tok, "kernel_tokens_per_s": round(n_tok / cpu, 1),
                     "reference_cache": encoder is not tok})
    rows.append({**row("end to end", 0.0, round(min(w for _, w in runs), 3)), "cpu_s": None,
                 "docs_per_s_per_core": None})
    return rows


SHARD_LANGS = {"en": 0.6, "fr": 0.1, "es": 0.1, "ar": 0.1, "zh": 0.1}


def shard_rows(n_docs: int, seed: int = 5) -> list[dict[str, Any]]:
    """The merge on a larger corpus shaped like a release: mostly English plus a few languages, one source
    per language with the per-document stages skipped (only the merge is measured here)."""
    from roots.core import workspace
    from roots.jobs.run import run_source

    rng = random.Random(seed)
    by_lang: dict[str, list[str]] = {lang: [] for lang in SHARD_LANGS}
    with UDHR.open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec["lang"] in by_lang:
                by_lang[rec["lang"]].append(rec["text"])
    with tempfile.TemporaryDirectory() as tmp:
        ws = workspace.init(Path(tmp) / "ws")
        kept_dirs = []
        for lang, share in SHARD_LANGS.items():
            with (ws.root / f"{lang}.jsonl").open("w", encoding="utf-8") as fh:
                for i in range(int(n_docs * share)):
                    text = "\n".join(rng.sample(by_lang[lang], k=min(len(by_lang[lang]), rng.randint(3, 8))))
                    fh.write(json.dumps({"id": f"{lang}{i:07d}", "text": text,
                                         "url": f"https://example.org/{lang}/{i}"},
                                        ensure_ascii=False) + "\n")
            (ws.sources_dir / f"bench_{lang}.yaml").write_text(
                f"name: bench_{lang}\nlanguages: [{lang}]\nlicense: CC0-1.0\ncustodian: {{name: bench}}\n"
                f"data: {{path: {lang}.jsonl, format: jsonl, id_field: id, url_field: url}}\n"
                "status: {state: active}\nrecipe: {skip: [langid, quality, perplexity, pii, dedup]}\n")
            kept_dirs.append(run_source(ws, f"bench_{lang}").out_dir)
        mb = sum(p.stat().st_size for p in ws.root.glob("*.jsonl")) / 1e6
        return merge_rows(ws, *kept_dirs, label=f"merge {mb:.0f}MB en-heavy")


def dedup_rows(n_docs: int, seed: int = 3) -> list[dict[str, Any]]:
    """MinHash signature throughput, and dedup end to end on a corpus with known duplicates
    (precision/recall).

    Base documents are 150 words drawn at random from the UDHR vocabulary (unrelated to one another); 5% are
    exact copies of a base document and 5% near copies (3 words changed), so the true pairs are known.
    """
    from roots.core import workspace
    from roots.dedup import minhash
    from roots.io import outputs
    from roots.jobs.run import run_source

    rng = random.Random(seed)
    vocab = sorted({w for d in generate_corpus(500, seed) for w in d["text"].split()})
    base = [" ".join(rng.choice(vocab) for _ in range(150)) for _ in range(n_docs)]
    docs = [{"id": f"base{i:06d}", "text": t} for i, t in enumerate(base)]
    truth = set()
    for j in range(n_docs // 20):
        src = rng.randrange(n_docs)
        docs.append({"id": f"zexact{j:05d}", "text": base[src]})
        words = base[src].split()
        for k in rng.sample(range(len(words)), 3):
            words[k] = "changed"
        docs.append({"id": f"znear{j:05d}", "text": " ".join(words)})
        truth |= {f"zexact{j:05d}", f"znear{j:05d}"}
    texts = [d["text"] for d in docs]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    c0 = time.process_time()
    minhash.minhash_signatures(texts, ["en"] * len(texts), 128, 1)
    cpu = time.process_time() - c0
    rows = [{"stage": "dedup: MinHash signatures (128 perm)", "docs": len(texts), "wall_s": None,
             "cpu_s": round(cpu, 3), "docs_per_s_per_core": round(len(texts) / cpu, 1),
             "mb_per_s_per_core": round(mb / cpu, 2), "peak_rss_mb": round(rss_mb(), 1)}]
    with tempfile.TemporaryDirectory() as tmp:
        ws = workspace.init(Path(tmp) / "ws")
        (ws.root / "d.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
        (ws.sources_dir / "dups.yaml").write_text(
            "name: dups\nlanguages: [en]\nlicense: CC0-1.0\ncustodian: {name: bench}\n"
            "data: {path: d.jsonl, format: jsonl, id_field: id}\nstatus: {state: active}\n"
            "recipe: {skip: [langid, quality, perplexity, pii]}\n")
        t0 = time.perf_counter()
        result = run_source(ws, "dups")
        wall = time.perf_counter() - t0
        found = {r["id"] for r in outputs.iter_kind(result.out_dir, "rejected", ["id", "reason"])
                 if r["reason"] == "duplicate"}
    # a copy and its original are interchangeable keepers: score on pairs, with base ids mapped to copies
    tp = len(found & truth) + len({f for f in found if f.startswith("base")})
    precision = tp / len(found) if found else 1.0
    recall = min(1.0, tp / len(truth)) if truth else 1.0
    rows.append({"stage": "dedup: end to end (roots run, dedup only)", "docs": len(docs),
                 "wall_s": round(wall, 3), "cpu_s": None, "docs_per_s_per_core": round(len(docs) / wall, 1),
                 "precision": round(precision, 4), "recall": round(recall, 4),
                 "peak_rss_mb": round(rss_mb(), 1)})
    return rows


BENCH_CARD = ("name: bench\nlanguages: [multi]\nlicense: CC0-1.0\ncustodian: {name: bench}\n"
              "data: {path: bench.jsonl, format: jsonl, id_field: id, url_field: url}\n"
              "status: {state: active}\n")


#: the fresh-process steps of the memory rows, in order (each reuses the workspace of the one before)
MEMORY_STEPS = ("run", "merge", "merge, tokenizer_file")


def memory_child(step: str, n_docs: int, root: Path) -> dict[str, Any]:
    """One step in this (fresh) process: `run` streams the corpus to disk and runs the source, `merge`
    merges that workspace (training the tokenizer), `merge, tokenizer_file` merges it again with the
    tokenizer the first merge trained supplied (no training: the tokenisation and assembly bound alone).
    The harness holds no documents, so the peak is the product's own."""
    from roots.core import workspace
    from roots.jobs import merge
    from roots.jobs.run import run_source

    ws_dir = root / "ws"
    c0, t0 = time.process_time(), time.perf_counter()
    if step == "run":
        ws = workspace.init(ws_dir)
        with (ws.root / "bench.jsonl").open("w", encoding="utf-8") as fh:
            for doc in iter_corpus(n_docs, seed=1):
                fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
        (ws.sources_dir / "bench.yaml").write_text(BENCH_CARD)
        lm_dir = REPO / "models" / "lm"
        if lm_dir.is_dir():
            os.symlink(lm_dir.parent, ws.root / "models")
        c0, t0 = time.process_time(), time.perf_counter()
        docs = run_source(ws, "bench").stats["documents"]["input"]
    elif step == "merge":
        vouch_workspace(workspace.resolve(ws_dir))
        c0, t0 = time.process_time(), time.perf_counter()
        merge.merge(workspace.resolve(ws_dir), vocab_size=32_000)
        docs = n_docs
    else:  # "merge, tokenizer_file": the tokenizer the first merge trained, supplied instead of trained
        from roots.core.yamlio import write_yaml

        ws = workspace.resolve(ws_dir)
        supplied = shutil.copy(ws.root / "release" / "latest" / "tokenizer.json", root / "tokenizer.json")
        write_yaml(ws.config_path, {**ws.config(), "merge": {"tokenizer_file": str(supplied)}})
        vouch_workspace(ws)
        c0, t0 = time.process_time(), time.perf_counter()
        merge.merge(ws, out=root / "release-supplied-tokenizer")
        docs = n_docs
    return {"docs": docs, "wall_s": round(time.perf_counter() - t0, 3),
            "cpu_s": round(time.process_time() - c0, 3), "peak_rss_mb": round(rss_mb(), 1)}


def memory_rows(sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """Peak RSS of fresh processes running one source, then the merges, at corpus sizes 10x apart."""
    out = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            out.extend(fresh_process_row("tests.bench.bench", step, n, tmp, rate=step == "run")
                       for step in MEMORY_STEPS)
    return out


def fresh_process_row(module: str, step: str, n: int, tmp: str, rate: bool) -> dict[str, Any]:
    """One memory row: `python -m MODULE --child STEP N TMP` in a fresh process, which prints its
    {wall_s, cpu_s, peak_rss_mb} as the last line of its output (`rate`: also docs/s/core)."""
    import subprocess

    proc = subprocess.run([sys.executable, "-m", module, "--child", step, str(n), tmp], check=False,
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"memory row {step!r} at {n} docs failed (exit {proc.returncode}):\n"
                         + proc.stderr[-3000:])
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    per_core = round(n / r["cpu_s"], 1) if rate and r["cpu_s"] else None
    return {"stage": f"memory: {step}, {n} docs (fresh process)", "docs": n, "wall_s": r["wall_s"],
            "cpu_s": r["cpu_s"], "docs_per_s_per_core": per_core, "peak_rss_mb": r["peak_rss_mb"]}


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'stage':<56} {'docs':>7} {'wall s':>8} {'cpu s':>8} {'docs/s/core':>12} {'peak RSS MB':>12}")
    for r in rows:
        print(f"{r['stage']:<56} {r['docs']!s:>7} {r['wall_s']!s:>8} {r['cpu_s']!s:>8} "
              f"{r['docs_per_s_per_core']!s:>12} {r['peak_rss_mb']!s:>12}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=int(os.environ.get("ROOTS_BENCH_DOCS", "4000")))
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--no-memory", action="store_true", help="skip the fresh-process memory rows")
    parser.add_argument("--memory-docs", type=int, default=5000,
                        help="memory rows at this corpus size and 10x it (default 5000 and 50000; at 2000 "
                             "the merge's word cache and batches are still filling, so growth from there "
                             "overstates it)")
    parser.add_argument("--memory-only", action="store_true", help="only the memory rows")
    parser.add_argument("--merge-docs", type=int,
                        default=int(os.environ.get("ROOTS_BENCH_MERGE_DOCS", "8000")),
                        help="documents of the mostly-English corpus of the shard-writing rows (0: skip)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        step, n, root = args.child
        print(json.dumps(memory_child(step, int(n), Path(root))))
        return 0
    if args.memory_only:
        print_table(memory_rows((args.memory_docs, 10 * args.memory_docs)))
        return 0
    lm_dir = REPO / "models" / "lm"
    lm = lm_dir if lm_dir.is_dir() and any(lm_dir.iterdir()) else None
    docs = generate_corpus(args.docs)
    mb = sum(len(d["text"].encode()) for d in docs) / 1e6
    print(f"corpus: {len(docs)} generated documents, {mb:.1f} MB, cores available: {os.cpu_count()}")
    rows = stage_rows(docs, lm)
    rows.extend(signal_rows(docs))  # issue 23: classifier scoring and decontamination (signals_bench.py)

    rows.extend(bench_rows([d["text"] for d in docs]))
    rows.extend(end_to_end(docs, lm, with_merge=True))
    for codec in COMPRESSORS:
        rows.extend(end_to_end(docs, lm, codec=codec))
    if args.merge_docs:
        rows.extend(shard_rows(args.merge_docs))
    rows.extend(dedup_rows(args.docs))
    from tests.bench.ops_bench import ops_rows  # small files; re-threshold memory next to the run's

    rows.extend(ops_rows(2000, 0 if args.no_memory else args.memory_docs))

    rows.extend(web_bench.web_rows())  # WARC reading + extraction, roots vs datatrove (issue 22)

    rows.extend(pii_bench.pii_rows())  # issue 19: precision/recall table and worst hostile 1 MB per tag
    if not args.no_memory:
        rows.extend(memory_rows((args.memory_docs, 10 * args.memory_docs)))
    print_table(rows)
    plain = next(r for r in rows if r["stage"].startswith("end to end (roots run"))
    for r in rows:
        if r.get("codec"):
            print(f"compressed input ({r['codec']}): {r['docs_per_s_per_core']} docs/s/core, "
                  f"{r['docs_per_s_per_core'] / plain['docs_per_s_per_core']:.2f}x the plain file's "
                  f"{plain['docs_per_s_per_core']} (same corpus, same run)")
    for r in rows:
        if r.get("mb_per_s_per_core"):
            print(f"MinHash signatures: {r['mb_per_s_per_core']} MB/s per core (target: at least 3 MB/s)")
        if r.get("precision") is not None:
            print(f"dedup against the known duplicates: precision {r['precision']}, recall {r['recall']}")
        if r.get("shard_tokens_per_s_per_core"):
            label = r["stage"].split(":")[0]
            same = [x for x in rows if x["stage"].startswith(f"{label}:")]
            hf = next(x for x in same if "kernel_tokens_per_s" in x and not x["reference_cache"])
            ref = next(x for x in same if x.get("reference_cache"))
            whole = next(x for x in same if "tokens_per_s_per_core" in x)
            print(f"{label}: shard writing {r['shard_tokens_per_s_per_core']:.0f} tokens/s per core "
                  f"({r['tokens']} text tokens; tokenize {r['tokenize_cpu_s']} s + assemble "
                  f"{r['assemble_cpu_s']} s CPU) vs HF tokenizers' own single-core encode "
                  f"{hf['kernel_tokens_per_s']:.0f} tokens/s on the same texts: ratio "
                  f"{r['shard_tokens_per_s_per_core'] / hf['kernel_tokens_per_s']:.2f} (target >= 1); HF "
                  f"encode with the same word cache as the writer {ref['kernel_tokens_per_s']:.0f}; whole "
                  f"Beam step {whole['tokens_per_s_per_core']:.0f} tokens/s per core (each best of 2 runs)")
    print("docs/s/core: stage rows divide by CPU seconds of this process; the end-to-end row divides by wall "
          "time of a single-worker DirectRunner (one core).")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


def bench_rows(texts: Sequence[str], batch_size: int = 256) -> list[dict[str, Any]]:
    """Documents per second for fastText alone, CLD3 alone and the routed combination (for `make bench`).

    Same row shape as `timed` (the routed row adds `decided_by`: documents per backend), so
    the cost of routing is visible next to the fastText-only number it replaces. Texts should be normalised
    first, as the pipeline does; models are loaded (and warmed) before timing so the rows measure prediction
    only.
    """
    router = routing.load_router()
    fasttext, cld3 = router.backend(router.order[0]), langid.load_cld3()
    n = len(texts)
    batches = [list(texts[i:i + batch_size]) for i in range(0, n, batch_size)]
    for backend in (fasttext, cld3):
        backend.predict(batches[0][:1] if batches else ["warm up"])
    rows: list[dict[str, Any]] = []
    routed: list[routing.Decision] = []

    def run(label: str, fn: Callable[[list[str]], list[Any]], sink: list[Any] | None = None) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        for batch in batches:
            out = fn(batch)
            if sink is not None:
                sink.extend(out)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append({"stage": label, "docs": n, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                     "docs_per_s_per_core": round(n / cpu, 1) if cpu > 0 else None,
                     "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})

    run("langid: fastText alone (batched)", fasttext.predict)
    run("langid: CLD3 alone", cld3.predict)
    run("langid: routed (fastText, then CLD3)", router.predict, routed)
    rows[-1]["decided_by"] = dict(sorted(Counter(d.backend for d in routed).items()))
    return rows


if __name__ == "__main__":
    sys.exit(main())
