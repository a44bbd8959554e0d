"""Issue 18, "What was seen" 1-3, 7 and 8, through the CLI: a bad record is quarantined (never the end of
the run), every input record is counted, an input rewritten during a run fails it, an environment error
is a message, and symlinks out of the data folder are followed only when the card allows it."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from roots.core import workspace
from roots.io import outputs
from tests.conftest import REPO, udhr_paragraphs, write_card


def stats(ws: workspace.Workspace, name: str) -> dict:
    return json.loads((ws.root / "runs" / name / "stats.json").read_text())


def rows(ws: workspace.Workspace, name: str, kind: str) -> list[dict]:
    return outputs.read_kind(ws.root / "runs" / name, kind).to_pylist()


def balanced(docs: dict) -> bool:
    return docs["input"] == docs["kept"] + docs["rejected"] + docs["quarantined"]


def csv_text(header: list[str], records: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(records)
    return out.getvalue()


def corrupt_parquet(n_rows: int = 300, group: int = 100) -> bytes:
    """A Parquet file with a valid footer whose second row group's data page is overwritten."""
    table = pa.table({"id": [f"p{i}" for i in range(n_rows)],
                      "text": [f"document number {i} " * 20 for i in range(n_rows)]})
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=group, compression="none")
    data = bytearray(buf.getvalue())
    column = pq.ParquetFile(io.BytesIO(bytes(data))).metadata.row_group(1).column(1)
    start = column.data_page_offset
    data[start + 16:start + 400] = b"\xff" * 384
    return bytes(data)


def truncated_arrow_stream(n_rows: int = 200) -> bytes:
    table = pa.table({"text": [f"arrow row {i} " * 20 for i in range(n_rows)]})
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=50):
            writer.write_batch(batch)
    return sink.getvalue()[:-2000]  # the last batch is cut short


def test_bad_records_are_quarantined_and_every_record_counted(ws, run_cli):
    long_en = udhr_paragraphs("en", 1)[0]
    deep = '{"text": ' + "[" * 100_000 + "]" * 100_000 + "}"
    lines = [json.dumps({"id": "good", "text": long_en}),
             deep,  # RecursionError in json.loads
             # lone surrogates in the id, the url, an extra field and the text of a document a recipe
             # operation rejects before normalisation (the Parquet writer used to fail on them)
             ('{"id": "s\\ud800", "url": "https://x.example/\\udc00", "extra": "\\ud800", '
              '"text": "short \\ud800"}'),
             json.dumps({"id": "good2", "text": long_en + " Again."})]
    (ws.root / "j.jsonl").write_text("\n".join(lines) + "\n")
    write_card(ws, "j", "j.jsonl", languages="[en]", data_extra=", id_field: id, url_field: url",
               extra="recipe: {operations: [filter_small_docs_bytes_300], skip: [dedup]}\n")
    # UTF-16 CSV (as Excel writes it): decoded, header names clean
    csv16 = csv_text(["id", "text", "note"], [[f"c{i}", f"{long_en[:400]} {i}", f"é{i}"] for i in range(3)])
    (ws.root / "u16.csv").write_bytes(csv16.encode("utf-16"))
    write_card(ws, "u16", "u16.csv", fmt="csv", languages="[en]", data_extra=", id_field: id")
    # a field over Python's default 131,072-character CSV limit, with rows after it
    big = csv_text(["id", "text"], [*([f"b{i}", f"{long_en[:300]} {i}"] for i in range(2)),
                                    ["huge", "x" * 200_000],
                                    *([f"a{i}", f"{long_en[:300]} after {i}"] for i in range(5))])
    (ws.root / "big.csv").write_text(big)
    write_card(ws, "big", "big.csv", fmt="csv", languages="[en]", data_extra=", id_field: id",
               extra="recipe: {skip: [dedup]}\n")
    (ws.root / "bad.parquet").write_bytes(corrupt_parquet())
    write_card(ws, "pq", "bad.parquet", fmt="parquet", languages="[en]", data_extra=", id_field: id",
               extra="recipe: {skip: [dedup]}\n")
    (ws.root / "hfdir").mkdir()
    (ws.root / "hfdir" / "data-00000-of-00001.arrow").write_bytes(truncated_arrow_stream())
    write_card(ws, "hf", "hfdir", fmt="hf", languages="[en]", extra="recipe: {skip: [dedup]}\n")

    rc, _, err = run_cli("--workspace", str(ws.root), "run", "--all")
    assert rc == 0, err
    assert "Traceback" not in err

    j = stats(ws, "j")["documents"]
    assert balanced(j) and j["input"] == 4 and j["quarantined"] == 1
    (q,) = rows(ws, "j", "quarantine")
    assert q["line"] == 2 and "RecursionError" in q["error"]
    done = {r["id"]: r for r in rows(ws, "j", "kept") + rows(ws, "j", "rejected")}
    assert set(done) == {"good", "good2", "s\ufffd"}
    odd = done["s\ufffd"]
    assert odd["reason"] == "filter_small_docs_bytes_300" and odd["url"] == "https://x.example/\ufffd"

    u16 = stats(ws, "u16")["documents"]
    assert balanced(u16) and u16["input"] == 3 and u16["quarantined"] == 0
    done = rows(ws, "u16", "kept") + rows(ws, "u16", "rejected")
    assert sorted(json.loads(r["meta"])["note"] for r in done) == ["é0", "é1", "é2"]

    b = stats(ws, "big")["documents"]
    assert balanced(b) and b["input"] == 8 and b["quarantined"] == 0  # the 5 rows after the field count
    ids = {r["id"] for r in rows(ws, "big", "kept") + rows(ws, "big", "rejected")}
    assert {"huge", "a4"} <= ids

    p = stats(ws, "pq")["documents"]
    assert balanced(p) and p["input"] == 300 and p["quarantined"] == 100
    lost = sorted(r["line"] for r in rows(ws, "pq", "quarantine"))
    assert lost == list(range(101, 201)) and "row group 1" in rows(ws, "pq", "quarantine")[0]["error"]

    h = stats(ws, "hf")["documents"]
    assert balanced(h) and h["quarantined"] == 1 and h["kept"] + h["rejected"] == 150
    assert "damaged Arrow stream after row 150" in rows(ws, "hf", "quarantine")[0]["error"]


def cli_process(*argv: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "roots.cli.app", *argv], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_input_rewritten_during_a_run_fails_it(ws):
    en = udhr_paragraphs("en", 3)
    src = ws.root / "grow.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in en))
    write_card(ws, "grow", "grow.jsonl", languages="[en]")
    proc = cli_process("--workspace", str(ws.root), "run", "grow")
    deadline = time.monotonic() + 60
    while not list((ws.root / "runs").glob(".grow.tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    with src.open("a") as fh:  # a download still being written
        fh.write(json.dumps({"text": en[0] + " more"}) + "\n")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert f"input {src} changed during the run" in err and "outputs not published" in err
    assert "Traceback" not in err
    assert not (ws.root / "runs" / "grow").exists()  # nothing published, so `run --all` will not skip it
    assert not list((ws.root / "runs").glob(".grow.tmp-*"))


def test_environment_errors_are_messages(ws, run_cli):
    (ws.root / "a.jsonl").write_text(json.dumps({"text": "hello"}) + "\n")
    write_card(ws, "a", "a.jsonl", languages="[en]")
    (ws.root / "blocker").write_text("a file where the runs directory should be\n")
    (ws.root / "roots.yaml").write_text("runs_dir: blocker/runs\n")
    rc, _, err = run_cli("--workspace", str(ws.root), "run", "a")
    assert rc == 1 and "Traceback" not in err
    assert "roots: job failed: " in err and "(ENOTDIR)" in err and "blocker/runs" in err
    rc, _, err = run_cli("--workspace", str(ws.root), "--debug", "run", "a")
    assert rc == 1 and "Traceback" in err and "(ENOTDIR)" in err


def test_an_error_beam_wraps_is_unwrapped_to_its_errno():
    """Inside a Beam pipeline the worker's OSError reaches the driver wrapped in a RuntimeError."""
    import apache_beam as beam

    from pipelines.runner import make_pipeline
    from roots.core.errors import environment_error

    def write_full(_: int) -> None:
        with open("/dev/full", "w") as fh:  # every write: No space left on device
            fh.write("x" * 10)

    with pytest.raises(Exception) as info, make_pipeline(None) as p:  # as roots runs: no Prism temp
        _ = p | beam.Create([1]) | beam.Map(write_full)
    # the write fails on close, where the system names no file: the message names the pipeline step
    message = environment_error(info.value)
    assert message is not None and message.startswith("No space left on device (ENOSPC)")
    assert "pipeline step 'Map(write_full)'" in message and "the disk is full" in message
    assert environment_error(ValueError("a bug keeps its traceback")) is None


def test_symlinks_out_of_the_data_folder_need_the_card(ws, run_cli, tmp_path):
    en = udhr_paragraphs("en", 2)
    d = ws.root / "d"
    d.mkdir()
    (d / "a.jsonl").write_text(json.dumps({"id": "inside", "text": en[0]}) + "\n")
    secret = tmp_path / "elsewhere.jsonl"
    secret.write_text(json.dumps({"id": "outside", "text": en[1]}) + "\n")
    os.symlink(secret, d / "link.jsonl")
    os.symlink(ws.root / "missing.jsonl", d / "dangling.jsonl")
    os.symlink("a.jsonl", d / "alias.jsonl")  # stays inside the folder: an ordinary input
    write_card(ws, "s", "d/*.jsonl", languages="[en]", data_extra=", id_field: id",
               extra="recipe: {skip: [dedup]}\n")
    assert run_cli("--workspace", str(ws.root), "run", "s")[0] == 0
    docs = stats(ws, "s")["documents"]
    assert balanced(docs) and docs["input"] == 4 and docs["quarantined"] == 2
    why = {Path(r["file"]).name: r["error"] for r in rows(ws, "s", "quarantine")}
    assert "leading out of the data folder" in why["link.jsonl"] and "follow_symlinks" in why["link.jsonl"]
    assert "dangling symlink" in why["dangling.jsonl"]
    ids = {r["id"] for r in rows(ws, "s", "kept") + rows(ws, "s", "rejected")}
    assert "outside" not in ids and "inside" in ids
    card = ws.sources_dir / "s.yaml"
    card.write_text(card.read_text().replace("id_field: id", "id_field: id, follow_symlinks: true"))
    assert run_cli("--workspace", str(ws.root), "run", "s")[0] == 0
    docs = stats(ws, "s")["documents"]
    assert balanced(docs) and docs["input"] == 4 and docs["quarantined"] == 1  # the dangling one
    ids = {r["id"] for r in rows(ws, "s", "kept") + rows(ws, "s", "rejected")}
    assert "outside" in ids
