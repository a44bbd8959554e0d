"""`make bench` rows for web sources (issue 22): WARC reading + HTML extraction, roots against datatrove.

What is measured, each in a fresh process pinned to one core (so every rate is per core and every peak
memory belongs to one measurement):

* roots: `roots.io.readers.read` on a WARC (fastwarc, charset rules, record rules, the card's extractor),
  once per extractor (resiliparse, trafilatura, justext);
* datatrove: its `WarcReader` (warcio) feeding its `Trafilatura` extractor (favour_precision, as FineWeb),
  run the way its pipelines run them (`run()` generators, the extractor in its timeout sandbox process;
  CPU time counts that process too), in `.venv-datatrove`.

Input: the bundled sample (`sources/samples/web_sample/web_sample.warc.gz`, 35 real pages) repeated 20
times (gzip members concatenate into a valid WARC). Rates are HTML pages per CPU second; both tools see
the same 700 pages. Quality is scored on the hand-checked sample (`annotations.json`: for 28 pages, main
text sentences to keep and chrome lines to drop) and on the multilingual test pages (`tests/web_pages.py`:
six languages, three scripts, identical chrome around each article). Memory: roots on the sample repeated
20 and 200 times; the peak must not grow with the file.

This module imports only the standard library at the top, so the datatrove child can run it from
`.venv-datatrove` (`python tests/bench/web_bench.py --child datatrove ...`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sources" / "samples" / "web_sample" / "web_sample.warc.gz"
ANNOTATIONS = REPO / "sources" / "samples" / "web_sample" / "annotations.json"
PAGES_PER_COPY = 35
EXTRACTORS = ("resiliparse", "trafilatura", "justext")


# ------------------------------------------------------------------------------------------- children

def _pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def child_roots(extractor: str, warc: Path, out: Path, keep_texts: bool) -> None:
    from roots.io import readers, web

    web.extract("<html><body><p>warm up</p></body></html>", extractor)  # imports before the clock
    spec = readers.ReaderSpec(source="bench", fmt="warc", extractor=extractor)
    pages, texts = 0, {}
    t0, c0 = time.perf_counter(), _cpu()
    with open(warc, "rb") as fh:
        for record in readers.read(spec, str(warc), fh):
            if record["kind"] != "doc":
                continue
            reject = record.get("reject")
            if reject is None or reject[0] == "no_main_text":  # an HTML page the extractor worked on
                pages += 1
                if keep_texts and record["url"]:
                    texts.setdefault(record["url"], record["text"])
    cpu, wall = _cpu() - c0, time.perf_counter() - t0
    peak = peak_rss_mb()
    out.write_text(json.dumps({"pages": pages, "cpu_s": cpu, "wall_s": wall, "peak_rss_mb": peak,
                               "texts": texts}))


def child_datatrove(warc: Path, out: Path, keep_texts: bool) -> None:
    import trafilatura
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.readers import WarcReader

    trafilatura.extract("<html><body><p>warm up</p></body></html>")
    reader = WarcReader(str(warc.parent), glob_pattern=warc.name, doc_progress=False)
    extractor = Trafilatura(favour_precision=True, timeout=10.0)
    counted = {"pages": 0}

    def counting(docs):
        for doc in docs:
            counted["pages"] += 1
            yield doc

    texts: dict[str, str] = {}
    t0, c0 = time.perf_counter(), _cpu()
    for doc in extractor.run(counting(reader.run(None, 0, 1)), 0, 1):
        if keep_texts:
            texts.setdefault(doc.metadata.get("url") or "", doc.text)
    cpu, wall = _cpu() - c0, time.perf_counter() - t0
    peak = peak_rss_mb()
    out.write_text(json.dumps({"pages": counted["pages"], "cpu_s": cpu, "wall_s": wall, "peak_rss_mb": peak,
                               "texts": texts}))


# ------------------------------------------------------------------------------------------- parent

def repeat_warc(copies: int, out: Path) -> Path:
    """The sample `copies` times over: concatenated gzip members are one valid WARC."""
    data = SAMPLE.read_bytes()
    with out.open("wb") as fh:
        for _ in range(copies):
            fh.write(data)
    return out


def peak_rss_mb() -> float:
    """This process's own peak resident set (VmHWM), as `tests.bench.bench.rss_mb` measures it. Not imported
    from there: this file also runs as a child in datatrove's environment, which has no roots. Not
    `ru_maxrss`: a child started from the bench reports the bench's peak (779 MB for both file sizes)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def datatrove_python() -> Path | None:
    """`ROOTS_DATATROVE_PYTHON`, else `.venv-datatrove` (built by `make bench-vs-datatrove`), else None."""
    given = os.environ.get("ROOTS_DATATROVE_PYTHON")
    path = Path(given) if given else REPO / ".venv-datatrove" / "bin" / "python"
    return path if path.exists() else None


def run_child(python: Path, args: list[str], scratch: Path) -> dict[str, Any]:
    out = scratch / f"child-{len(list(scratch.iterdir()))}.json"
    cmd = [str(python), str(Path(__file__).resolve()), "--child", *args, str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def score(texts: dict[str, str], pages: dict[str, dict[str, list[str]]]) -> dict[str, float]:
    """Main-text recall (share of the `main` sentences found) and chrome removal (share of the `chrome`
    lines absent), over the annotated pages; a page an extractor returned nothing for keeps nothing."""
    found = main = dropped = chrome = 0
    for url, want in pages.items():
        text = _norm(texts.get(url) or "")
        lines = {_norm(line) for line in (texts.get(url) or "").split("\n")}
        main += len(want["main"])
        found += sum(_norm(s) in text for s in want["main"])
        chrome += len(want["chrome"])
        # a chrome string counts as kept when it is a line of its own or appears inside the text
        dropped += sum(not (_norm(c) in lines or _norm(c) in text) for c in want["chrome"])
    return {"main_kept": round(found / main, 3) if main else 0.0,
            "chrome_dropped": round(dropped / chrome, 3) if chrome else 0.0}


def multilingual_pages() -> tuple[Path, dict[str, dict[str, list[str]]]]:
    """The tests' WARC (six languages, three scripts) and its annotations: paragraphs in, chrome out."""
    from tests.web_pages import ARTICLES, CHROME_LINES, CHROME_MENU, LEGACY, write_warc

    path = Path(tempfile.mkdtemp(prefix="roots-web-ml-")) / "multilingual.warc.gz"
    write_warc(path, gzip=True, truncate_last=False)
    chrome = [*CHROME_LINES, "Related story number 1", *CHROME_MENU]
    return path, {url: {"main": paras, "chrome": chrome} for url, _, _, _, paras in [*ARTICLES, LEGACY]}


def web_rows(copies: int = 20, memory_copies: tuple[int, int] = (20, 200)) -> list[dict[str, Any]]:
    """Rows for bench.py's table plus a printed summary: rates, quality and the memory check."""
    annotated = json.loads(ANNOTATIONS.read_text())["pages"]
    ml_warc, ml_pages = multilingual_pages()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="roots-web-bench-") as tmp:
        scratch = Path(tmp)
        (scratch / "children").mkdir()
        kids = scratch / "children"
        big = repeat_warc(copies, scratch / "timing.warc.gz")
        tools: list[tuple[str, Path, list[str]]] = [
            (f"roots ({ex})", Path(sys.executable), ["roots", ex]) for ex in EXTRACTORS]
        dt = datatrove_python()
        if dt is not None:
            tools.append(("datatrove (WarcReader+Trafilatura)", dt, ["datatrove"]))
        else:
            print("web bench: no .venv-datatrove (run `make bench-vs-datatrove` once to build it); the "
                  "datatrove row is missing", file=sys.stderr)
        for label, python, args in tools:
            timed = run_child(python, [*args, str(big), "0"], kids)
            quality = score(run_child(python, [*args, str(SAMPLE), "1"], kids)["texts"], annotated)
            ml = score(run_child(python, [*args, str(ml_warc), "1"], kids)["texts"], ml_pages)
            rows.append({"stage": f"web: read+extract, {label}", "docs": timed["pages"],
                         "wall_s": round(timed["wall_s"], 3), "cpu_s": round(timed["cpu_s"], 3),
                         "docs_per_s_per_core": round(timed["pages"] / timed["cpu_s"], 1),
                         "peak_rss_mb": round(timed["peak_rss_mb"], 1), "web_tool": label,
                         "quality_sample": quality, "quality_multilingual": ml})
        for n in memory_copies:
            warc = repeat_warc(n, scratch / f"memory-{n}.warc.gz")
            m = run_child(Path(sys.executable), ["roots", "resiliparse", str(warc), "0"], kids)
            rows.append({"stage": f"web: memory, roots (resiliparse), sample x{n}",
                         "docs": m["pages"], "wall_s": round(m["wall_s"], 3), "cpu_s": round(m["cpu_s"], 3),
                         "docs_per_s_per_core": round(m["pages"] / m["cpu_s"], 1),
                         "peak_rss_mb": round(m["peak_rss_mb"], 1), "web_memory_copies": n})
            warc.unlink()
    summarise(rows)
    return rows


def summarise(rows: list[dict[str, Any]]) -> None:
    tools = [r for r in rows if r.get("web_tool")]
    for r in tools:
        q, ml = r["quality_sample"], r["quality_multilingual"]
        print(f"web: {r['web_tool']}: {r['docs_per_s_per_core']} pages/s/core; hand-checked sample: main "
              f"text kept {q['main_kept']:.0%}, chrome dropped {q['chrome_dropped']:.0%}; multilingual "
              f"pages: kept {ml['main_kept']:.0%}, dropped {ml['chrome_dropped']:.0%}")
    dt = next((r for r in tools if r["web_tool"].startswith("datatrove")), None)
    default = next(r for r in tools if r["web_tool"] == "roots (resiliparse)")
    if dt is not None:
        print(f"web: roots (resiliparse, the default) / datatrove = "
              f"{default['docs_per_s_per_core'] / dt['docs_per_s_per_core']:.1f}x pages/s/core (goal >= 2x "
              "at equal or better quality)")
    mem = [r for r in rows if r.get("web_memory_copies")]
    if len(mem) == 2:
        print(f"web: roots peak RSS {mem[0]['peak_rss_mb']} MB on {mem[0]['docs']} pages, "
              f"{mem[1]['peak_rss_mb']} MB on {mem[1]['docs']} pages (10x the file)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if args.child:
        _pin_one_core()
        kind, *rest = args.child
        if kind == "roots":
            extractor, warc, keep, out = rest
            child_roots(extractor, Path(warc), Path(out), keep == "1")
        else:
            warc, keep, out = rest
            child_datatrove(Path(warc), Path(out), keep == "1")
        return 0
    rows = web_rows(args.copies)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
