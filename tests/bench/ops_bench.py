"""Operator rows of `make bench` (issue 21): many small files against the same text in one file, and the
peak memory of `roots run --rethreshold` next to the run it re-decides.

Run alone: `.venv/bin/python -m tests.bench.ops_bench [--files N] [--memory-docs N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench.bench import REPO, fresh_process_row, generate_corpus, iter_corpus, print_table, rss_mb

CARD = ("name: {name}\nlanguages: [multi]\nlicense: CC0-1.0\ncustodian: {{name: bench}}\n"
        "data: {{path: {path}, format: text}}\nstatus: {{state: active}}\n")


def small_files_rows(n_files: int) -> list[dict[str, Any]]:
    """The same `n_files` one-line documents as `n_files` files in a directory and as one file, each run
    through `roots run` in this process (DirectRunner, one worker): documents/s/core of both."""
    from roots.core import workspace
    from roots.jobs.run import run_source

    lines = [d["text"].replace("\n", " ") for d in generate_corpus(n_files, seed=7)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = workspace.init(Path(tmp) / "ws")
        folder = ws.root / "quotes"
        folder.mkdir()
        for i, line in enumerate(lines):
            (folder / f"q{i:06d}.txt").write_text(line + "\n", encoding="utf-8")
        (ws.root / "one.txt").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        lm_dir = REPO / "models" / "lm"
        if lm_dir.is_dir():
            os.symlink(lm_dir.parent, ws.root / "models")
        for name, path in (("one", "one.txt"), ("quotes", "quotes")):
            (ws.sources_dir / f"{name}.yaml").write_text(CARD.format(name=name, path=path))
        run_source(ws, "one")  # warm-up: models load once per process, and neither row should pay for it
        for name, label in (("one", "one file"), ("quotes", f"{n_files} small files (a directory)")):
            c0, t0 = time.process_time(), time.perf_counter()
            result = run_source(ws, name)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            docs = result.stats["documents"]["input"]
            rows.append({"stage": f"text source, {label}", "docs": docs, "wall_s": round(wall, 3),
                         "cpu_s": round(cpu, 3), "docs_per_s_per_core": round(docs / cpu, 1),
                         "peak_rss_mb": round(rss_mb(), 1), "small_files": name == "quotes"})
    one, many = rows
    print(f"small files: {many['docs_per_s_per_core']} docs/s/core from {n_files} files vs "
          f"{one['docs_per_s_per_core']} from the same text in one file "
          f"(CPU per document {one['docs_per_s_per_core'] / many['docs_per_s_per_core']:.2f}x the one "
          "file's; goal: at most 2x)")
    return rows


def memory_child(step: str, n_docs: int, root: Path) -> dict[str, Any]:
    """In a fresh process: `run` writes the corpus and runs it; `rethreshold` loosens one threshold and
    re-decides that run from its stored statistics. The harness holds no documents."""
    from roots.core import workspace
    from roots.core.yamlio import write_yaml
    from roots.jobs.rethreshold import rethreshold
    from roots.jobs.run import run_source

    ws_dir = root / "ws"
    if step == "run":
        ws = workspace.init(ws_dir)
        with (ws.root / "bench.jsonl").open("w", encoding="utf-8") as fh:
            for doc in iter_corpus(n_docs, seed=1):
                fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
        (ws.sources_dir / "bench.yaml").write_text(
            "name: bench\nlanguages: [multi]\nlicense: CC0-1.0\ncustodian: {name: bench}\n"
            "data: {path: bench.jsonl, format: jsonl, id_field: id, url_field: url}\n"
            "status: {state: active}\n")
        c0, t0 = time.process_time(), time.perf_counter()
        run_source(ws, "bench")
    else:
        ws = workspace.resolve(ws_dir)
        write_yaml(ws.config_path, {**ws.config(), "thresholds": {"default": {"number_words_min": 1}}})
        c0, t0 = time.process_time(), time.perf_counter()
        rethreshold(ws, "bench")
    return {"wall_s": round(time.perf_counter() - t0, 3), "cpu_s": round(time.process_time() - c0, 3),
            "peak_rss_mb": round(rss_mb(), 1)}


def rethreshold_memory_rows(n_docs: int) -> list[dict[str, Any]]:
    """Peak RSS of a fresh process running a source, then of one re-thresholding it."""
    with tempfile.TemporaryDirectory() as tmp:  # the run's outputs are what the re-threshold reads
        rows = [fresh_process_row("tests.bench.ops_bench", step, n_docs, tmp, rate=True)
                for step in ("run", "rethreshold")]
    run, again = rows
    print(f"re-threshold peak memory: {again['peak_rss_mb']} MB vs the run's {run['peak_rss_mb']} MB "
          f"({n_docs} docs, fresh processes)")
    return rows


def ops_rows(n_files: int = 2000, memory_docs: int = 5000) -> list[dict[str, Any]]:
    """Every row of this module (the one call `make bench` makes)."""
    return small_files_rows(n_files) + (rethreshold_memory_rows(memory_docs) if memory_docs else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--memory-docs", type=int, default=5000, help="0: skip the memory rows")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        step, n, root = args.child
        print(json.dumps(memory_child(step, int(n), Path(root))))
        return 0
    print_table(ops_rows(args.files, args.memory_docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
