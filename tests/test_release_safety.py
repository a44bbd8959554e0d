"""Issue 18 "What was seen" 4-6 and issue 17 item 4: merges never mix runs or race each other, an
interrupted swap never hides a finished run or release, releases are versioned and say what they are."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from roots.core import publishing, workspace
from roots.core.errors import JobError
from roots.governance import changes
from roots.jobs import merge
from roots.release import versions
from tests.conftest import REPO, udhr_paragraphs, vouch, write_card


def jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def cli(*argv: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "roots.cli.app", *argv], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> workspace.Workspace:
    from roots.cli import app

    ws = changes.init_workspace(tmp_path_factory.mktemp("safety") / "ws")
    en, fr = udhr_paragraphs("en", 8), udhr_paragraphs("fr", 3)
    jsonl(ws.root / "open.jsonl", [{"id": f"o{i}", "text": t} for i, t in enumerate(en[:3])])
    jsonl(ws.root / "nc.jsonl", [{"id": f"n{i}", "text": t} for i, t in enumerate(fr)])
    write_card(ws, "open", "open.jsonl", data_extra=", id_field: id")
    write_card(ws, "nc", "nc.jsonl", data_extra=", id_field: id")
    card = ws.sources_dir / "nc.yaml"
    card.write_text(card.read_text().replace("license: CC0-1.0", "license: CC-BY-NC-4.0"))  # training only
    vouch(ws, card)
    root = str(ws.root)
    assert app.main(["--workspace", root, "run", "--all"]) == 0
    assert app.main(["--workspace", root, "takedown", "add", "--source", "open", "--id", "o1",
                     "--reason", "author request"]) == 0
    return ws


def test_release_card_shows_per_source_counts_scope_and_takedowns(built, run_cli):
    ws = built
    rc, _, err = run_cli("--workspace", str(ws.root), "merge", "--vocab-size", "600")
    assert rc == 0, err
    rel = ws.root / "release" / "latest"
    manifest = json.loads((rel / "manifest.json").read_text())
    card = (rel / "README.md").read_text()
    lineage = [r for p in sorted((rel / "lineage").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    for name in ("open", "nc"):
        mine = [r for r in lineage if r["source"] == name]
        entry = next(s for s in manifest["sources"] if s["name"] == name)
        assert entry["documents"] == len(mine) > 0 and entry["tokens"] == sum(r["tokens"] for r in mine)
        assert f"| {len(mine):,} | {entry['tokens']:,} |" in card  # the card's row: no "–"
    assert "`nc` | `CC-BY-NC-4.0`" in card and "training only (not for redistribution)" in card
    assert "**Not for redistribution**: `nc`" in card
    assert "`open` | `CC0-1.0` | licence policy (CC0-1.0) | training and redistribution" in card
    assert "o1" not in {r["id"] for r in lineage}
    assert "- **Takedowns applied**: 1 document(s) removed (1 request(s) filed)" in card
    assert f"- **Created**: {manifest['created']}" in card and manifest["created"][:4].isdigit()
    html = (rel / "report.html").read_text()
    assert "training only (not for redistribution)" in html and "1 document(s) removed" in html


def test_two_merges_leave_two_releases_and_old_ones_can_be_removed(built, run_cli):
    ws = built
    before = versions.release_ids(ws.root / "release")
    assert run_cli("--workspace", str(ws.root), "merge", "--vocab-size", "600")[0] == 0
    assert run_cli("--workspace", str(ws.root), "merge", "--vocab-size", "600")[0] == 0
    ids = versions.release_ids(ws.root / "release")
    assert len(ids) == len(before) + 2 and set(before) < set(ids)
    assert os.readlink(ws.root / "release" / "latest") == ids[-1]
    rc, out, _ = run_cli("--workspace", str(ws.root), "release", "list")
    assert rc == 0 and all(i in out for i in ids) and out.count("*") == 1
    rc, out, _ = run_cli("--workspace", str(ws.root), "release", "remove", ids[-1])
    assert rc == 0 and f"latest is now {ids[-2]}" in out
    assert os.readlink(ws.root / "release" / "latest") == ids[-2]
    assert not (ws.root / "release" / ids[-1]).exists()
    rc, _, err = run_cli("--workspace", str(ws.root), "release", "remove", "nope")
    assert rc == 2 and "no release 'nope'" in err
    # the report of the release root is the latest release's
    rc, out, _ = run_cli("--workspace", str(ws.root), "report", str(ws.root / "release"))
    assert rc == 0 and str((ws.root / "release" / ids[-2]).resolve()) in out


def test_small_languages_folded_or_refused_and_big_vocabulary_warned(built, run_cli):
    ws = built
    (ws.root / "roots.yaml").write_text("merge: {min_language_tokens: 100000}\n")
    vouch(ws, ws.root / "roots.yaml")
    try:
        rc, out, err = run_cli("--workspace", str(ws.root), "merge", "--vocab-size", "5000")
        assert rc == 0, err
        assert "warning: the tokenizer learned" in out
        m = json.loads((ws.root / "release" / "latest" / "manifest.json").read_text())
        assert m["folded_languages"] == {"small": ["en", "fr"]} and set(m["tokens"]) == {"small"}
        assert m["warnings"] and "Lower --vocab-size" in m["warnings"][0]
        (ws.root / "roots.yaml").write_text("merge: {min_language_tokens: 100000, small_languages: refuse}\n")
        vouch(ws, ws.root / "roots.yaml")
        n = len(versions.release_ids(ws.root / "release"))
        rc, _, err = run_cli("--workspace", str(ws.root), "merge", "--vocab-size", "600")
        assert rc == 2 and "below merge.min_language_tokens (100,000): en (" in err
        assert len(versions.release_ids(ws.root / "release")) == n
    finally:
        (ws.root / "roots.yaml").write_text("")
        vouch(ws, ws.root / "roots.yaml")


def test_a_second_merge_is_refused_and_a_replaced_pinned_run_fails_the_merge(built, run_cli):
    ws = built
    with publishing.flock(ws.root / publishing.MERGE_LOCK, exclusive=True):  # a merge in progress
        rc, _, err = run_cli("--workspace", str(ws.root), "merge", "--vocab-size", "600")
    assert rc == 2 and "another merge is in progress" in err and f"process {os.getpid()}" in err
    plan = merge.gate(ws)
    run_dir = ws.root / "runs" / "open"
    copy = publishing.temp_dir_for(run_dir)
    shutil.copytree(run_dir, copy)
    m = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**m, "id": "replacement"}))
    publishing.swap_into_place(copy, run_dir)  # what an older roots or a hand copy would do
    with pytest.raises(JobError, match="the run of open in .* was replaced while the merge read it"):
        merge.check_pins(plan)
    (run_dir / "manifest.json").write_text(json.dumps(m))


def test_an_interrupted_swap_is_finished_or_rolled_back(built, run_cli):
    ws = built
    runs = ws.root / "runs"
    dead = 2 ** 22 + 12345  # above pid_max's default: no such process
    # killed between the two renames: the old run aside, the complete new one not yet in place
    os.replace(runs / "open", runs / f".open.old-abcd1234.{dead}")
    shutil.copytree(runs / f".open.old-abcd1234.{dead}", runs / ".open.tmp-abcd1234")
    rc, _, err = run_cli("--workspace", str(ws.root), "status")
    assert rc == 0 and "finished the interrupted publication" in err
    assert (runs / "open" / "manifest.json").exists()
    assert not list(runs.glob(".open.*"))
    # killed after the first rename, the new one gone: the old run is put back
    os.replace(runs / "open", runs / f".open.old-ffff0000.{dead}")
    rc, _, err = run_cli("--workspace", str(ws.root), "status")
    assert "restored" in err and (runs / "open" / "manifest.json").exists() and not list(runs.glob(".open.*"))
    # a merge finds every source (before, it silently left the hidden one out)
    os.replace(runs / "nc", runs / f".nc.old-00000000.{dead}")
    shutil.copytree(runs / f".nc.old-00000000.{dead}", runs / ".nc.tmp-00000000")
    assert [i.name for i in merge.gate(ws).included] == ["nc", "open"]
    # a release written with --out is swapped the same way
    out_dir = ws.root / "rel-out"
    assert run_cli("--workspace", str(ws.root), "merge", "--vocab-size", "600", "--out", str(out_dir))[0] == 0
    os.replace(out_dir, ws.root / f".rel-out.old-12345678.{dead}")
    shutil.copytree(ws.root / f".rel-out.old-12345678.{dead}", ws.root / ".rel-out.tmp-12345678")
    publishing.recover(out_dir)
    assert (out_dir / "manifest.json").exists() and not list(ws.root.glob(".rel-out.*"))


def release_signature(rel: Path) -> dict[str, str]:
    """What makes two releases the same release: every shard, lineage file and the tokenizer."""
    m = json.loads((rel / "manifest.json").read_text())
    return {k: v for k, v in m["files_sha256"].items()
            if k.startswith(("shards/", "lineage/")) or k == "tokenizer.json"}


def test_stress_merges_while_a_run_republishes_and_two_merges_at_once(built, run_cli):
    """Varied timing: a run of `flux` republishes (alternating two inputs) while two merges start at
    random moments. Each release must be exactly the clean release of one input or the other, with the
    takedown applied; a merge that overlaps another is refused, never raced."""
    ws = built
    root = str(ws.root)
    en = udhr_paragraphs("en", 12)
    version_a = [{"id": f"f{i}", "text": t} for i, t in enumerate(en[4:7])]
    version_b = version_a + [{"id": "f5", "text": udhr_paragraphs("es", 1)[0]}]
    write_card(ws, "flux", "flux.jsonl", data_extra=", id_field: id")
    assert run_cli("--workspace", root, "takedown", "add", "--source", "flux", "--id", "f0",
                   "--reason", "owner")[0] == 0
    clean = {}
    for label, records in (("a", version_a), ("b", version_b)):  # the clean releases, one at a time
        jsonl(ws.root / "flux.jsonl", records)
        for argv in (("run", "flux"), ("merge", "--vocab-size", "600")):
            rc, _, err = run_cli("--workspace", root, *argv)
            assert rc == 0, err
        latest = ws.root / "release" / "latest"
        manifest = json.loads((latest / "manifest.json").read_text())
        ids = {r["id"] for p in (latest / "lineage").glob("*.parquet") for r in pq.read_table(p).to_pylist()}
        assert "f0" not in ids and "f2" in ids and ("f5" in ids) == (label == "b")
        assert manifest["takedown_documents_removed"] == 2  # o1 and f0
        clean[label] = release_signature(latest)
    assert clean["a"] != clean["b"]
    rng = random.Random(18)
    current = "b"
    # the first merge starts early (the run then waits for it: the merge reads the old run), late (the
    # run has republished: the merge reads the new one), or anywhere between
    for delay in (0.3, 4.0, rng.uniform(0.3, 4.0)):
        current = "a" if current == "b" else "b"
        jsonl(ws.root / "flux.jsonl", version_a if current == "a" else version_b)
        before = set(versions.release_ids(ws.root / "release"))
        run = cli("--workspace", root, "run", "flux")
        time.sleep(delay)
        first = cli("--workspace", root, "merge", "--vocab-size", "600")
        time.sleep(rng.uniform(0.0, 0.5))
        second = cli("--workspace", root, "merge", "--vocab-size", "600")
        results = [(p, *p.communicate(timeout=180)) for p in (run, first, second)]
        assert run.returncode == 0, results[0][2]
        for proc, _, err in results[1:]:
            refused = proc.returncode == 2 and "another merge is in progress" in err
            assert proc.returncode == 0 or refused, err
            assert "Traceback" not in err
        assert any(p.returncode == 0 for p, _, _ in results[1:])
        new = set(versions.release_ids(ws.root / "release")) - before
        assert len(new) == sum(p.returncode == 0 for p, _, _ in results[1:])
        for rid in new:
            signature = release_signature(ws.root / "release" / rid)
            match = [label for label, sig in clean.items() if sig == signature]
            assert match, f"release {rid} matches no clean release"
            manifest = json.loads((ws.root / "release" / rid / "manifest.json").read_text())
            assert manifest["takedown_documents_removed"] == 2
        assert not [p for p in (ws.root / "release").iterdir() if p.name.startswith(".")]


def test_a_release_written_before_versioning_is_adopted(tmp_path):
    root = tmp_path / "release"
    (root / "shards").mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps({"created": "2026-01-02T03:04:05+00:00"}))
    (root / "shards" / "en_text_document.bin").write_bytes(b"tokens")
    rid = versions.adopt_unversioned(root)
    assert rid is not None and rid.startswith("20260102T030405Z-")
    assert sorted(p.name for p in root.iterdir()) == [rid, "latest"]
    assert (root / "latest" / "shards" / "en_text_document.bin").read_bytes() == b"tokens"
    assert versions.resolve(root) == (root / rid).resolve() and versions.adopt_unversioned(root) is None
