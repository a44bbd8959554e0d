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
    (ws.root / "quotes" / ".DS_Store").write_bytes(b"\x00\x01 not a corpus file")  # hidden: not read
    (ws.root / "quotes" / ".git").mkdir()
    (ws.root / "quotes" / ".git" / "config").write_text("[core]\n")
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


def test_run_snapshot_names_each_dedup_pass_from_the_workers_reports(ws, tmp_path):
    """The phase a run shows comes from its workers' reports, whatever the timing: reading, then each
    dedup pass with its units done, then writing the outputs."""
    from roots.jobs.run import plan, run_snapshot

    small_files(ws.root / "quotes", 30)
    write_card(ws, "quotes", "quotes", fmt="text", languages="[en]")
    p = plan(ws, "quotes")
    assert p.dedup is not None
    out = tmp_path / "run"
    snap = run_snapshot(out, p, p.files)
    assert snap().phase == "reading and filtering"
    progress.write_report(str(out), "read", "u0", {"records": 30, "bytes": 10, "files": 30, "done": True})
    assert snap().phase.startswith("dedup: ")  # reading finished: the first dedup pass
    progress.write_report(str(out), "prepare", "b0", {"done": True})
    assert snap().phase in ("dedup: signatures", "dedup: matching duplicates") and snap().units == 1
    progress.write_report(str(out), "finish", "b0", {"done": True})
    assert snap().phase == "dedup: writing outputs"


def test_progress_in_a_log_is_a_few_plain_lines_and_quiet_is_silent(ws, capsys):
    small_files(ws.root / "quotes", 300)
    write_card(ws, "quotes", "quotes", fmt="text", languages="[en]")
    assert app.main(["--workspace", str(ws.root), "run", "quotes"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("run quotes:")]
    assert 2 <= len(lines) <= 12 and "\r" not in err
    assert lines[-1].startswith("run quotes: done: 300 documents")
    phases = [line.split(" · ")[0].removeprefix("run quotes: ") for line in lines]
    # in order, not overwritten by a late poll; the dedup phases are polled from the workers' reports, so a
    # dedup shorter than one poll may not show in a log (test_progress_line_shows_totals_rate_and_eta
    # shows them from the reports themselves)
    assert phases[-4:-1] == ["writing shards", "accounting", "verifying the input"]
    assert not any("dedup" in phase for phase in phases[phases.index("writing shards"):])
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


def _kept(out: Path) -> list[tuple[str, str]]:
    return sorted((r["id"], r["text"]) for r in outputs.read_kind(out, "kept", ["id", "text"]).to_pylist())


def _records(lang: str, prefix: str, n: int) -> list[dict]:
    return [{"id": f"{prefix}{i}", "text": t} for i, t in enumerate(udhr_paragraphs(lang, n))]


@pytest.mark.parametrize("dedup", [True, False])
def test_an_appended_file_is_processed_alone_with_the_kept_set_of_a_full_run(ws, run_cli, dedup):
    data = ws.root / "data"
    data.mkdir()
    first = _records("en", "a", 6)
    # the new file repeats two documents of the first one: one under a lower id (a full run keeps that copy
    # and drops the old one) and one under a higher id; and one of its own documents twice
    second = _records("fr", "c", 3) + [{"id": "0-early", "text": first[1]["text"]},
                                       {"id": "z-late", "text": first[2]["text"]},
                                       {"id": "c0-again", "text": _records("fr", "c", 1)[0]["text"]}]
    (data / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in first) + "{broken\n")
    write_card(ws, "grow", "data", data_extra=", id_field: id",
               extra="" if dedup else "recipe: {skip: [dedup]}\n")
    assert run_cli("--workspace", str(ws.root), "run", "grow")[0] == 0
    (data / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in second))
    rc, _, err = run_cli("--workspace", str(ws.root), "run", "grow")
    assert rc == 0, err
    res = ws.root / "runs" / "grow"
    manifest = json.loads((res / "manifest.json").read_text())
    assert manifest["incremental"]["files_read"] == 1 and manifest["incremental"]["files_from_before"] == 1
    assert run_cli("--workspace", str(ws.root), "run", "grow", "--out", str(ws.root / "full"))[0] == 0
    assert "incremental" not in json.loads((ws.root / "full" / "manifest.json").read_text())
    assert _kept(res) == _kept(ws.root / "full")
    stats = json.loads((res / "stats.json").read_text())
    docs = stats["documents"]
    assert docs == json.loads((ws.root / "full" / "stats.json").read_text())["documents"]
    assert stats["timings"]["documents_read"] == len(second)  # only the new file was read
    assert docs["input"] == len(first) + len(second) + 1 and docs["quarantined"] == 1
    if dedup:
        kept_ids = {i for i, _ in _kept(res)}
        assert "0-early" in kept_ids and "a1" not in kept_ids and "z-late" not in kept_ids
    # a changed file: a full run again
    (data / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in first[:4]))
    assert run_cli("--workspace", str(ws.root), "run", "grow")[0] == 0
    assert "incremental" not in json.loads((res / "manifest.json").read_text())


def test_staleness_follows_what_a_change_touches(ws, run_cli):
    from roots.core.yamlio import write_yaml

    (ws.root / "en.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _records("en", "e", 3)))
    write_card(ws, "prose", "en.jsonl", data_extra=", id_field: id")  # multi: English by language ID
    (ws.root / "tree").mkdir()
    (ws.root / "tree" / "main.py").write_text("def main():\n    return 42\n")
    write_card(ws, "tools", "tree", fmt="text", languages="[code]", extra="kind: code\n")
    assert run_cli("--workspace", str(ws.root), "run", "--all")[0] == 0

    def states() -> dict[str, str]:
        rc, out, err = run_cli("--workspace", str(ws.root), "status")
        assert rc == 0, err
        return {line.split()[0]: line.split()[1] for line in out.splitlines()[2:]}

    assert states() == {"prose": "finished", "tools": "finished"}
    config = ws.config()
    write_yaml(ws.config_path, {**config, "thresholds": {"de": {"number_words_min": 500}}})
    (ws.root / "models" / "lm" / "de").mkdir(parents=True)
    (ws.root / "models" / "lm" / "de" / "lm.binary").write_bytes(b"a new German model")
    assert states() == {"prose": "finished", "tools": "finished"}  # neither has German
    write_yaml(ws.config_path, {**config, "thresholds": {"en": {"number_words_min": 500}}})
    assert states() == {"prose": "stale", "tools": "finished"}  # code is not judged by English thresholds
    assert "thresholds of en" in run_cli("--workspace", str(ws.root), "status")[1]
    write_yaml(ws.config_path, config)
    (ws.root / "models" / "lm" / "en").mkdir(parents=True)
    (ws.root / "models" / "lm" / "en" / "lm.binary").write_bytes(b"a new English model")
    assert states() == {"prose": "stale", "tools": "finished"}


def test_a_write_failure_mid_run_exits_1_saying_what_and_where_and_is_shown_as_failed(ws, run_cli):
    import os
    import resource
    import signal
    import subprocess

    from tests.conftest import REPO

    (ws.root / "d.jsonl").write_text(
        "".join(json.dumps({"text": t}) + "\n" for t in udhr_paragraphs("en", 8)), encoding="utf-8")
    write_card(ws, "full", "d.jsonl", languages="[en]")

    def small_files_only() -> None:  # the system refuses writes past 20 kB (EFBIG), as a full disk would
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    proc = subprocess.run([sys.executable, "-m", "roots.cli.app", "--workspace", str(ws.root), "run", "full"],
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, preexec_fn=small_files_only,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "File too large (EFBIG)" in proc.stderr and f"writing under {ws.root / 'runs'}" in proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    runs = ws.root / "runs"
    assert not (runs / "full").exists() and not list(runs.glob(".full.tmp-*"))  # nothing looks finished
    assert "Traceback" in (runs / ".full.log").read_text()  # the details are in the log
    out = run_cli("--workspace", str(ws.root), "status")[1]
    line = next(line for line in out.splitlines() if line.startswith("full"))
    assert line.split()[1] == "failed" and "EFBIG" in line and f"log: {runs / '.full.log'}" in line


def test_an_unwritable_output_exits_1_naming_the_path(ws, run_cli):
    (ws.root / "d.jsonl").write_text(json.dumps({"text": udhr_paragraphs("en", 1)[0]}) + "\n")
    write_card(ws, "nowhere", "d.jsonl", languages="[en]")
    (ws.root / "a-file").write_text("not a directory")
    rc, _, err = run_cli("--workspace", str(ws.root), "run", "nowhere",
                         "--out", str(ws.root / "a-file" / "x" / "r"))
    assert rc == 1 and "Traceback" not in err
    assert "(ENOTDIR)" in err and str(ws.root / "a-file") in err and "choose another output path" in err


MIT_HEADER = """// Copyright (c) 2019 Example Authors
//
// Permission is hereby granted, free of charge, to any person obtaining a copy
// of this software and associated documentation files (the "Software"), to deal
// in the Software without restriction, including without limitation the rights
// to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
// copies of the Software, and to permit persons to whom the Software is
// furnished to do so, subject to the following conditions:
//
// The above copyright notice and this permission notice shall be included in
// all copies or substantial portions of the Software.
//
// THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
// IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
// FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
// AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
// LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
// OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
// SOFTWARE.
"""

LGPL_HEADER = """/*
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Lesser General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */
"""


@pytest.mark.parametrize("header, expected", [
    (MIT_HEADER, "MIT"),
    (LGPL_HEADER, "LGPL-2.1-or-later"),
    (("# This program is free software: you can redistribute it and/or modify it under the terms of the\n"
     "# GNU General Public License as published by the Free Software Foundation, either version 3 of the\n"
     "# License, or (at your option) any later version.\n"), "GPL-3.0-or-later"),
    (("/* This program is free software; you can redistribute it under the terms of the GNU General Public\n"
     " * License version 2 as published by the Free Software Foundation. */\n"), "GPL-2.0-only"),
    ("// Licensed under the Apache License, Version 2.0 (the \"License\");\n", "Apache-2.0"),
    ("/* This Source Code Form is subject to the terms of the Mozilla Public\n * License, v. 2.0. */\n",
     "MPL-2.0"),
    ("# Licensed to PSF under a Contributor Agreement; see the Python Software Foundation License.\n",
     "PSF-2.0"),
    (("/* Redistribution and use in source and binary forms, with or without modification, are permitted\n"
     " * provided that ... 3. Neither the name of the copyright holder nor the names ... */\n"),
     "BSD-3-Clause"),
    (("/* Redistribution and use in source and binary forms, with or without\n * modification, are "
     "permitted provided that the following conditions are met: ... */\n"), "BSD-2-Clause"),
    ("// just a comment about GNU tools\n", None),
])
def test_licence_headers_are_recognised(header, expected):
    from roots.stages import code

    text = header + "int main(void) { return 0; }\n"
    assert code.header_license(text) == expected
    assert code.file_license(text, None, "PSF-2.0") == ((expected, "licence header") if expected
                                                        else ("PSF-2.0", "card"))
    # an SPDX line is the file's own explicit statement and wins over a recognised header
    assert code.file_license("// SPDX-License-Identifier: BSD-2-Clause\n" + text, None, "MIT")[0] \
        == "BSD-2-Clause"


def test_leading_comment_blocks_are_left_out_per_language():
    from roots.stages import code

    c_file = LGPL_HEADER + "// more\n#include <stdio.h>\nint x;\n"
    assert code.without_leading_comments(c_file, "code-c") == "#include <stdio.h>\nint x;\n"
    assert code.without_leading_comments('#!/usr/bin/env python\n# (c) X\n"""Doc."""\nimport os\n',
                                         "code-python") == "import os\n"
    assert code.without_leading_comments("<?php\n// MIT\n/* x */\necho 1;", "code-php") == "echo 1;"
    assert code.without_leading_comments("-- only\n-- comments\n", "code-lua") == "-- only\n-- comments\n"


def test_code_licences_per_file_warn_when_they_differ_from_the_card(ws, run_cli):
    from roots.report import page

    tree = ws.root / "tree"
    tree.mkdir()
    bodies = {
        "a.js": "function addNumbers(first, second) {\n  const total = first + second;\n"
                "  console.log('the total is', total);\n  return total;\n}\n",
        "b.js": "class Counter {\n  constructor(start) { this.value = start; }\n"
                "  increment(step) { this.value += step; return this.value; }\n}\n"
                "module.exports = Counter;\n",
        "c.js": "const express = require('express');\nconst application = express();\n"
                "application.get('/', (request, response) => response.send('hello world'));\n"
                "application.listen(8080);\n",
    }
    for name, body in bodies.items():  # three different short files under one long MIT header
        (tree / name).write_text(MIT_HEADER + body)
    (tree / "d.c").write_text(LGPL_HEADER + "#include <stdio.h>\n\nint print_greeting(const char *name) {\n"
                              "    return printf(\"hello %s, welcome back\\n\", name);\n}\n")
    write_card(ws, "tools", "tree", fmt="text", languages="[code]", extra="kind: code\n")
    card = ws.sources_dir / "tools.yaml"
    card.write_text(card.read_text().replace("license: CC0-1.0", "license: PSF-2.0"))
    rc, _, err = run_cli("--workspace", str(ws.root), "run", "tools")
    assert rc == 0, err
    res = ws.root / "runs" / "tools"
    rows = outputs.read_kind(res, "kept", ["origin", "license"]).to_pylist() + \
        outputs.read_kind(res, "rejected", ["origin", "license", "reason"]).to_pylist()
    by_file = {r["origin"]: r for r in rows}
    assert by_file["d.c"]["license"] == "LGPL-2.1-or-later" and by_file["a.js"]["license"] == "MIT"
    # the shared licence block does not make the three short files near duplicates of each other
    assert not [r for r in rows if r.get("reason") == "duplicate"]
    stats = json.loads((res / "stats.json").read_text())
    assert stats["code_licenses"]["differs_from_card"] == 4
    assert stats["code_licenses"]["differing_by_license"] == {"LGPL-2.1-or-later": 1, "MIT": 3}
    notes = stats["notes"]["license_differs_from_card"]
    assert "a.js: states MIT, the card says PSF-2.0" in notes and len(notes) == 4
    html = page.build_report(res).read_text(encoding="utf-8")
    assert "4 code file(s) state a licence other than the card" in html
    assert "d.c: states LGPL-2.1-or-later" in html


def test_rethreshold_reports_its_passes(ws, run_cli):
    from roots.core.yamlio import write_yaml

    (ws.root / "en.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _records("en", "e", 4)))
    write_card(ws, "prose", "en.jsonl", languages="[en]", data_extra=", id_field: id")
    assert run_cli("--workspace", str(ws.root), "run", "prose")[0] == 0
    write_yaml(ws.config_path, {**ws.config(), "thresholds": {"en": {"number_words_min": 5000}}})
    rc, out, err = run_cli("--workspace", str(ws.root), "run", "prose", "--rethreshold")
    assert rc == 0, err
    assert "4 document(s) changed outcome" in out
    lines = [line for line in err.splitlines() if line.startswith("rethreshold prose:")]
    assert lines[0].startswith("rethreshold prose: deciding")
    assert lines[-1].startswith("rethreshold prose: done: 4 document(s) changed outcome")
