"""End-to-end runs of the per-source Beam pipeline (DirectRunner) on small real inputs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from roots.core.errors import UserError
from roots.io import outputs
from roots.jobs import run
from tests.conftest import udhr_paragraphs, write_card


def table(out: Path, kind: str) -> pa.Table:
    return outputs.read_kind(out, kind)


def stats(out: Path) -> dict:
    return json.loads((out / "stats.json").read_text())


def assert_accounted(out: Path, expected_input: int) -> dict:
    s = stats(out)["documents"]
    assert s["input"] == expected_input
    assert s["input"] == s["kept"] + s["rejected"] + s["quarantined"]
    assert table(out, "kept").num_rows == s["kept"]
    assert table(out, "rejected").num_rows == s["rejected"]
    assert table(out, "quarantine").num_rows == s["quarantined"]
    return s


def jsonl(path: Path, records: list, extra_lines: list[bytes] = ()) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in records] + list(extra_lines)
    path.write_bytes(b"\n".join(lines) + b"\n")


@pytest.fixture(scope="module")
def texts() -> dict[str, list[str]]:
    return {lang: udhr_paragraphs(lang, 4) for lang in ("en", "fr", "de", "wo")}


def test_jsonl_multi_source_accounts_for_everything(ws, texts, run_cli):
    records = [{"id": f"en{i}", "text": t, "url": f"https://example.org/en/{i}"}
               for i, t in enumerate(texts["en"])]
    records += [{"id": f"fr{i}", "text": t} for i, t in enumerate(texts["fr"])]
    records += [{"id": "short", "text": "Too short to keep."}, {"id": "empty", "text": "   "}]
    broken = [b"{broken json", json.dumps({"id": "num", "text": 42}).encode(), b'{"text": "\xff\xfe"}']
    jsonl(ws.root / "data" / "a.jsonl", records[:5], broken)
    jsonl(ws.root / "data" / "b.jsonl", records[5:])
    write_card(ws, "mix", "data/*.jsonl", data_extra=", id_field: id, url_field: url")
    rc, out, err = run_cli("--workspace", str(ws.root), "run", "mix")
    assert rc == 0, err
    assert "kept" in out and "mix" in out  # summary table
    res = ws.root / "runs" / "mix"
    s = assert_accounted(res, len(records) + len(broken))
    assert s["quarantined"] == 3
    kept = table(res, "kept").to_pylist()
    assert {r["lang"] for r in kept} == {"en", "fr"}
    assert all(r["source"] == "mix" and 0 < r["lang_score"] <= 1 for r in kept)
    assert next(r for r in kept if r["id"] == "en0")["url"] == "https://example.org/en/0"
    for column in ("number_words", "char_repetition_ratio", "word_repetition_ratio",
                   "special_characters_ratio", "stopwords_ratio", "flagged_words_ratio", "n_bytes"):
        assert all(r[column] is not None for r in kept), column
    rejected = {r["id"]: r for r in table(res, "rejected").to_pylist()}
    assert rejected["short"]["reason"] in {"word_count", "language"}
    quarantine = table(res, "quarantine").to_pylist()
    assert sorted(q["line"] for q in quarantine) == [6, 7, 8]
    manifest = json.loads((res / "manifest.json").read_text())
    assert manifest["input"]["fingerprint"] and manifest["config_hash"] and manifest["finished"]


def test_rerun_is_byte_identical(ws, texts, run_cli):
    jsonl(ws.root / "d.jsonl", [{"text": t} for lang in ("en", "fr", "de") for t in texts[lang]])
    write_card(ws, "same", "d.jsonl", languages="[en]")
    assert run_cli("--workspace", str(ws.root), "run", "same")[0] == 0
    res = ws.root / "runs" / "same"

    def snapshot() -> dict[str, bytes]:
        return {str(p.relative_to(res)): p.read_bytes() for kind in ("kept", "rejected")
                for p in sorted((res / kind).glob("*.parquet"))}

    first = snapshot()
    assert run_cli("--workspace", str(ws.root), "run", "same")[0] == 0
    assert snapshot() == first
    # declared English: French and German are rejected by language ID, with the prediction in the detail
    rejected = table(res, "rejected").to_pylist()
    assert {r["reason"] for r in rejected} == {"language"}
    assert {r["lang_predicted"] for r in rejected} == {"fr", "de"}
    assert table(res, "kept").num_rows == 4


def test_declared_language_unknown_to_model_is_not_filtered(ws, texts, run_cli):
    # Wolof: neither fastText's lid.176 nor CLD3 knows it
    jsonl(ws.root / "wo.jsonl", [{"text": t} for t in texts["wo"]])
    write_card(ws, "wolof", "wo.jsonl", languages="[wo]", extra="recipe: {skip: [quality]}\n")
    assert run_cli("--workspace", str(ws.root), "run", "wolof")[0] == 0
    res = ws.root / "runs" / "wolof"
    kept = table(res, "kept").to_pylist()
    assert (len(kept) == 4 and {r["lang"] for r in kept} == {"wo"}
            and {r["lang_backend"] for r in kept} == {"declared"})
    notes = stats(res)["notes"]["langid_not_filtered"]
    assert notes and notes[0].startswith("wo:")


@pytest.mark.parametrize("fmt", ["parquet", "csv", "text-line", "text-document", "hf"])
def test_every_format(ws, texts, run_cli, fmt):
    docs = [t.replace("\n", " ") for t in texts["en"] + texts["fr"]]
    data = ws.root / "data"
    data.mkdir()
    expected_quarantine = 0
    if fmt == "parquet":
        pq.write_table(pa.table({"text": docs + [None], "id": [str(i) for i in range(len(docs) + 1)]}),
                       data / "p.parquet")
        expected_quarantine, path, extra = 1, "data/*.parquet", ", id_field: id"
    elif fmt == "csv":
        body = "id,text\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(docs)) + "99,a,b\n"
        (data / "c.csv").write_text(body)
        expected_quarantine, path, extra = 1, "data/c.csv", ", id_field: id"
    elif fmt == "text-line":
        (data / "t.txt").write_bytes("\n".join(docs).encode() + b"\n\xff\xfe broken\n")
        expected_quarantine, path, extra = 1, "data/t.txt", ", text_unit: line"
    elif fmt == "text-document":
        for i, t in enumerate(docs):
            (data / f"doc{i}.txt").write_text(t)
        path, extra = "data/*.txt", ", text_unit: document"
    else:
        import datasets

        datasets.Dataset.from_dict({"text": docs}).save_to_disk(str(data / "hfds"))
        path, extra = "data/hfds", ""
    card_fmt = fmt.split("-")[0]
    write_card(ws, "fmt", path, fmt=card_fmt, data_extra=extra)
    rc, _, err = run_cli("--workspace", str(ws.root), "run", "fmt")
    assert rc == 0, err
    s = assert_accounted(ws.root / "runs" / "fmt", len(docs) + expected_quarantine)
    assert s["quarantined"] == expected_quarantine
    assert s["kept"] >= 6


def test_huge_document_is_rejected_fast_not_processed(ws, texts, run_cli):
    huge = ("word " * 10_000_000)[:50_000_000]
    jsonl(ws.root / "h.jsonl", [{"id": "huge", "text": huge}, {"id": "ok", "text": texts["en"][0]}])
    write_card(ws, "big", "h.jsonl")
    t0 = time.perf_counter()
    assert run_cli("--workspace", str(ws.root), "run", "big")[0] == 0
    assert time.perf_counter() - t0 < 60
    rejected = table(ws.root / "runs" / "big", "rejected").to_pylist()
    assert [r["reason"] for r in rejected] == ["too_long"]
    assert rejected[0]["n_chars"] == 50_000_000 and len(rejected[0]["text"]) == 1_000_000
    assert table(ws.root / "runs" / "big", "kept").num_rows == 1


def test_failed_run_leaves_no_finished_output(ws, texts, monkeypatch):
    jsonl(ws.root / "f.jsonl", [{"text": texts["en"][0]}])
    write_card(ws, "fail", "f.jsonl")

    def boom(*args, **kwargs):
        raise RuntimeError("worker died")

    from pipelines import source_pipeline

    monkeypatch.setattr(source_pipeline, "run_pipeline", boom)
    with pytest.raises(RuntimeError):
        run.run_source(ws, "fail")
    runs = ws.root / "runs"
    assert not (runs / "fail").exists()
    assert not list(runs.glob(".fail.tmp-*"))


def test_a_failed_run_shows_as_failed_until_a_run_succeeds(ws, texts, monkeypatch, run_cli):
    jsonl(ws.root / "f.jsonl", [{"text": texts["en"][0]}])
    write_card(ws, "fail", "f.jsonl")
    _, out, _ = run_cli("--workspace", str(ws.root), "status")
    assert "fail" in out and "not run" in out
    from pipelines import source_pipeline

    real = source_pipeline.run_pipeline

    def boom(*args, **kwargs):
        raise RuntimeError("worker died")

    monkeypatch.setattr(source_pipeline, "run_pipeline", boom)
    with pytest.raises(RuntimeError):
        run.run_source(ws, "fail")
    _, out, _ = run_cli("--workspace", str(ws.root), "status")
    line = next(line for line in out.splitlines() if line.startswith("fail "))
    assert "failed" in line and "RuntimeError: worker died" in line and "roots run fail" in line
    monkeypatch.setattr(source_pipeline, "run_pipeline", real)
    assert run_cli("--workspace", str(ws.root), "run", "fail")[0] == 0
    _, out, _ = run_cli("--workspace", str(ws.root), "status")
    line = next(line for line in out.splitlines() if line.startswith("fail "))
    assert "finished" in line and "failed" not in line
    # a failure after a finished run says that the finished run is still there
    monkeypatch.setattr(source_pipeline, "run_pipeline", boom)
    with pytest.raises(RuntimeError):
        run.run_source(ws, "fail")
    _, out, _ = run_cli("--workspace", str(ws.root), "status")
    line = next(line for line in out.splitlines() if line.startswith("fail "))
    assert "failed" in line and "is still in place" in line
    assert (ws.root / "runs" / "fail" / "manifest.json").exists()


def test_user_errors(ws, run_cli):
    write_card(ws, "nofiles", "missing/*.jsonl")
    rc, _, err = run_cli("--workspace", str(ws.root), "run", "nofiles")
    assert rc == 2 and "no files match" in err
    (ws.sources_dir / "dead.yaml").write_text(
        "name: dead\nlanguages: [en]\nlicense: CC0-1.0\ncustodian: {name: X}\n"
        "data: {path: x.jsonl, format: jsonl}\nstatus: {state: killed, reason: bad quality}\n")
    rc, _, err = run_cli("--workspace", str(ws.root), "run", "dead")
    assert rc == 2 and "killed (bad quality)" in err
    rc, _, err = run_cli("--workspace", str(ws.root), "run")
    assert rc == 2 and "--all" in err


def test_run_all_and_recipe_operations(ws, texts, run_cli):
    jsonl(ws.root / "r.jsonl", [{"id": "a",
                                 "text": texts["en"][0] + "\nvar x = {1};\n<script>alert(1)</script>"},
                                {"id": "b", "text": "tiny"}])
    write_card(ws, "rec", "r.jsonl", languages="[en]",
               extra="recipe: {operations: [filter_remove_empty_docs, remove_lines_with_code, "
                     "filter_small_docs_bytes_300]}\n")
    jsonl(ws.root / "o.jsonl", [{"text": texts["fr"][0]}])
    write_card(ws, "other", "o.jsonl")
    rc, out, err = run_cli("--workspace", str(ws.root), "run", "--all")
    assert rc == 0, err
    assert "rec" in out and "other" in out
    res = ws.root / "runs" / "rec"
    kept = table(res, "kept").to_pylist()
    assert len(kept) == 1 and "{" not in kept[0]["text"] and "<script" not in kept[0]["text"]
    rejected = table(res, "rejected").to_pylist()
    assert rejected[0]["reason"] == "filter_small_docs_bytes_300"
    assert stats(res)["reasons"] == {"filter_small_docs_bytes_300": 1}


def test_unknown_recipe_is_user_error(ws):
    jsonl(ws.root / "u.jsonl", [{"text": "x"}])
    write_card(ws, "u", "u.jsonl", extra="recipe: {operations: [filter_small_docs_bytes_x]}\n")
    with pytest.raises(UserError):
        run.run_source(ws, "u")


def test_compressed_inputs_through_a_run(ws, texts, run_cli):
    """`.jsonl.gz`, `.jsonl.zst` and `.csv.bz2` run like their plain files (Beam's own decompression
    would crash), and a truncated `.gz` keeps the records before the damage and quarantines the rest."""
    import bz2
    import gzip

    import zstandard

    docs = [t.replace("\n", " ") for t in texts["en"] + texts["fr"]]
    lines = b"".join(json.dumps({"id": f"d{i}", "text": t}).encode() + b"\n" for i, t in enumerate(docs))
    data = ws.root / "data"
    data.mkdir()
    (data / "a.jsonl.gz").write_bytes(gzip.compress(lines))
    german = b"".join(json.dumps({"id": f"z{i}", "text": t.replace("\n", " ")}).encode() + b"\n"
                      for i, t in enumerate(texts["de"]))
    (data / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(german))
    write_card(ws, "packed", "data/*.jsonl.*", data_extra=", id_field: id")
    body = "id,text\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(docs))
    (data / "c.csv.bz2").write_bytes(bz2.compress(body.encode()))
    write_card(ws, "csvbz", "data/c.csv.bz2", fmt="csv", data_extra=", id_field: id")
    # many records, cut short: the first ones survive, one quarantine entry marks where reading stopped
    many = b"".join(json.dumps({"id": f"m{i}", "text": docs[i % len(docs)] + f" {i}"}).encode() + b"\n"
                    for i in range(3000))
    whole = gzip.compress(many)
    (data / "cut").mkdir()
    (data / "cut" / "m.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    write_card(ws, "cut", "data/cut/m.jsonl.gz", data_extra=", id_field: id")
    for name in ("packed", "csvbz", "cut"):
        rc, _, err = run_cli("--workspace", str(ws.root), "run", name)
        assert rc == 0, err
    s = assert_accounted(ws.root / "runs" / "packed", len(docs) + len(texts["de"]))
    assert s["quarantined"] == 0 and s["kept"] >= 10
    # bytes in count the text read, not the compressed files, so they compare with bytes out
    assert stats(ws.root / "runs" / "packed")["bytes"]["in"] == len(lines) + len(german)
    kept_ids = set(table(ws.root / "runs" / "packed", "kept").column("id").to_pylist())
    assert any(i.startswith("d") for i in kept_ids) and any(i.startswith("z") for i in kept_ids)
    s = assert_accounted(ws.root / "runs" / "csvbz", len(docs))
    assert s["quarantined"] == 0
    cut = ws.root / "runs" / "cut"
    q = table(cut, "quarantine").to_pylist()
    assert len(q) == 1 and "corrupt gzip stream" in q[0]["error"]
    n_before = stats(cut)["documents"]["input"] - 1
    assert 0 < n_before < 3000 and q[0]["line"] == n_before + 1
    ids = table(cut, "kept").column("id").to_pylist() + table(cut, "rejected").column("id").to_pylist()
    assert sorted(ids, key=lambda i: int(i[1:])) == [f"m{i}" for i in range(n_before)]


def test_commands_print_no_third_party_import_warning(ws, texts):
    """`roots status` imports Beam; Beam's BigQuery notice must not reach the operator's terminal."""
    import subprocess
    import sys

    jsonl(ws.root / "f.jsonl", [{"text": texts["en"][0]}])
    write_card(ws, "quiet", "f.jsonl")
    proc = subprocess.run([sys.executable, "-m", "roots", "--workspace", str(ws.root), "status"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "quiet" in proc.stdout and "apitools" not in proc.stderr + proc.stdout
    assert "WARNING" not in proc.stderr


def test_stage_cpu_seconds_are_cpu_time(ws, texts):
    """stats.json's per-stage seconds are CPU time of the working threads: they can never add up to more
    than the CPU the whole process used (wall-clock timers did, on a loaded machine)."""
    jsonl(ws.root / "f.jsonl", [{"text": t} for t in texts["en"] + texts["fr"]])
    write_card(ws, "cpu", "f.jsonl")
    c0, w0 = time.process_time(), time.perf_counter()
    result = run.run_source(ws, "cpu")
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    stages = result.stats["timings"]["stage_cpu_seconds"]
    assert set(stages) >= {"normalise", "langid", "quality", "pii"}
    assert 0 < sum(stages.values()) <= cpu + 0.05 and result.stats["timings"]["wall_seconds"] <= wall + 0.05
