"""What an operator relies on (issue 21): directories of many small files, progress, a clean temp folder."""

from __future__ import annotations

import io
import json
import sys
import tempfile
from pathlib import Path

import pytest

from pipelines.batching import pack_files
from roots.cli import app
from roots.core import progress
from roots.io import outputs
from tests.conftest import udhr_paragraphs, write_card


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def small_files(root: Path, n: int) -> list[str]:
    """`n` one-line text files in a directory tree (two sub-folders reuse the same file names)."""
    words = " ".join(udhr_paragraphs("en", 4, 60)).split()
    texts = []
    for i in range(n):
        start = (i * 7) % (len(words) - 40)
        texts.append(" ".join(words[start:start + 30]) + f" Quote {i}.")
        (root / f"part{i % 2}").mkdir(parents=True, exist_ok=True)
        (root / f"part{i % 2}" / f"q{i // 2:05d}.txt").write_text(texts[-1] + "\n", encoding="utf-8")
    return texts


def test_directory_of_2000_small_files_is_read_whole_with_one_progress_line(ws, monkeypatch):
    texts = small_files(ws.root / "quotes", 2000)
    write_card(ws, "quotes", "quotes", fmt="text", languages="[en]",
               extra="recipe: {skip: [dedup]}\n")
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert app.main(["--workspace", str(ws.root), "run", "quotes"]) == 0
    res = ws.root / "runs" / "quotes"
    docs = json.loads((res / "stats.json").read_text())["documents"]
    assert docs["input"] == 2000 == docs["kept"] + docs["rejected"] + docs["quarantined"]
    kept = outputs.read_kind(res, "kept", ["id", "origin", "text"]).to_pylist()
    rejected = outputs.read_kind(res, "rejected", ["id", "origin", "text"]).to_pylist()
    rows = kept + rejected
    assert sorted(r["text"] for r in rows) == sorted(texts)
    # the same file name in two folders: two documents, told apart by their path inside the directory
    assert len({r["id"] for r in rows}) == 2000
    assert {r["origin"] for r in rows} >= {"part0/q00000.txt:1", "part1/q00000.txt:1"}
    manifest = json.loads((res / "manifest.json").read_text())
    assert len(manifest["input"]["files"]) == 2000
    # one live line, rewritten in place, ended once; no line per file
    shown = terminal.getvalue()
    lines = [line for line in shown.split("\n") if "run quotes" in line]
    assert len(lines) == 1, shown[-2000:]
    assert "\r" in lines[0] and "done: 2,000 documents" in lines[0].rsplit("\r", 1)[-1]
    assert "q00001" not in shown


def test_progress_in_a_log_is_a_few_plain_lines_and_quiet_is_silent(ws, capsys):
    small_files(ws.root / "quotes", 300)
    write_card(ws, "quotes", "quotes", fmt="text", languages="[en]")
    assert app.main(["--workspace", str(ws.root), "run", "quotes"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("run quotes:")]
    assert 2 <= len(lines) <= 12 and "\r" not in err
    assert lines[-1].startswith("run quotes: done: 300 documents")
    assert any("dedup" in line for line in lines)  # the dedup phase is named, not silent
    assert app.main(["--workspace", str(ws.root), "run", "quotes", "--quiet"]) == 0
    assert "run quotes" not in capsys.readouterr().err


def test_progress_line_shows_totals_rate_and_eta():
    shown = progress.Progress("run web", stream=FakeTerminal(), quiet=False)
    shown.phase_started = shown.started = shown.started - 10  # ten seconds into the run
    line = shown.render(progress.Snapshot("reading and filtering", docs=5000, bytes=25_000_000,
                                          bytes_total=100_000_000, units=3, units_total=12))
    assert "reading and filtering" in line and "3/12 files" in line and "5,000 docs" in line
    assert "25.0 MB of 100.0 MB (25%)" in line and "500 docs/s" in line and "ETA 0:30" in line


def test_plain_lines_are_periodic_not_per_update():
    out = io.StringIO()
    shown = progress.Progress("merge", stream=out, quiet=False, plain_every=3600)
    for i in range(1000):
        shown.show(progress.Snapshot("tokenizing kept files", units=i, units_total=1000))
    shown.phase("assembling shards")
    shown.close("done")
    assert [line.split(" · ")[0] for line in out.getvalue().splitlines()] == [
        "merge: tokenizing kept files", "merge: assembling shards", "merge: done (0:00)"]


def test_small_files_are_packed_large_ones_stay_alone():
    files = [(f"/d/s{i:04d}.txt", 100) for i in range(5000)] + [("/d/big.jsonl", 50_000_000)]
    units = pack_files(files, group_bytes=1_000_000, group_files=2000)
    assert sum(len(paths) for _, paths in units) == 5001
    assert [len(paths) for _, paths in units] == [1, 2000, 2000, 1000]
    assert units[0] == (outputs.file_id("/d/big.jsonl"), [("/d/big.jsonl", 50_000_000)])
    assert pack_files(list(reversed(files)), 1_000_000, 2000) == units  # names depend only on the files
    assert len({name for name, _ in units}) == len(units)


def test_a_run_leaves_nothing_in_the_system_temp_folder(ws, monkeypatch, tmp_path, run_cli):
    temp = tmp_path / "system-temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("TMPDIR", str(temp))
    (ws.root / "d.jsonl").write_text(
        "".join(json.dumps({"text": t}) + "\n" for t in udhr_paragraphs("en", 3)), encoding="utf-8")
    write_card(ws, "tidy", "d.jsonl", languages="[en]")
    rc, _, err = run_cli("--workspace", str(ws.root), "run", "tidy")
    assert rc == 0, err
    assert sorted(p.name for p in temp.iterdir()) == []


@pytest.mark.parametrize("location, expected", [("dir", "dir/**"), ("dir/", "dir/**"),
                                                ("dir/*.txt", "dir/*.txt"), ("file.txt", "file.txt")])
def test_a_directory_location_reads_every_file_below_it(tmp_path, location, expected):
    from roots.io.readers import file_pattern

    (tmp_path / "dir").mkdir()
    (tmp_path / "file.txt").write_text("x\n")
    assert file_pattern("text", str(tmp_path / location)) == str(tmp_path / expected)
    assert file_pattern("jsonl", str(tmp_path / location)) == str(tmp_path / expected)
