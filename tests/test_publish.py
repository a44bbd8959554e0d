from __future__ import annotations

import json

import yaml

from roots.governance import permissions
from roots.io import outputs
from tests.conftest import udhr_paragraphs, vouch, write_card


def test_publish_refuses_without_release_clearance_then_loads(ws, run_cli, tmp_path):
    docs = [{"id": f"en{i}", "text": t} for i, t in enumerate(udhr_paragraphs("en", 3))]
    (ws.root / "d.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    write_card(ws, "press", "d.jsonl", data_extra=", id_field: id")
    card = ws.sources_dir / "press.yaml"
    card.write_text(card.read_text().replace("license: CC0-1.0", "license: proprietary"))
    vouch(ws, card)
    permissions.file_permission(ws, "press", granted_by="Editor", scope="training")
    assert run_cli("--workspace", str(ws.root), "run", "press")[0] == 0
    rc, _, err = run_cli("--workspace", str(ws.root), "publish", "press", "--out", str(tmp_path / "pub"))
    assert rc == 2 and "not cleared for release" in err and "--scope release" in err
    assert not (tmp_path / "pub").exists()
    rec = permissions.file_permission(ws, "press", granted_by="Editor", scope="training,release",
                                      conditions="attribution to Le Journal", organisation="Le Journal")
    rc, _, err = run_cli("--workspace", str(ws.root), "publish", "press", "--out", str(tmp_path / "pub"))
    assert rc == 0, err
    text = (tmp_path / "pub" / "README.md").read_text()
    header = yaml.safe_load(text.split("---")[1])
    assert header["license"] and header["configs"][0]["data_files"][0]["path"] == "kept/*.parquet"
    assert rec.id in text and "attribution to Le Journal" in text and "proprietary" in text
    import datasets

    ds = datasets.load_dataset(str(tmp_path / "pub"), split="train")
    kept = outputs.read_kind(ws.root / "runs" / "press", "kept").to_pylist()
    assert sorted(ds["id"]) == sorted(r["id"] for r in kept) and len(ds) == 3
    assert sorted(ds["text"]) == sorted(r["text"] for r in kept)


def test_publish_needs_a_run(ws, run_cli, tmp_path):
    (ws.root / "d.jsonl").write_text(json.dumps({"text": "x"}) + "\n")
    write_card(ws, "open", "d.jsonl")
    rc, _, err = run_cli("--workspace", str(ws.root), "publish", "open", "--out", str(tmp_path / "p"))
    assert rc == 2 and "no finished run" in err


def test_publish_applies_takedowns_and_records_them(ws, run_cli, tmp_path):
    """A takedown filed after the run never leaves through `publish`; the folder says what it removed.
    `--dry-run` measures a takedown without filing it; `takedown list` shows what is filed."""
    texts = udhr_paragraphs("en", 4)
    docs = [{"id": f"en{i}", "text": t, "url": f"https://example.org/{'old' if i >= 2 else 'new'}/{i}"}
            for i, t in enumerate(texts)]
    (ws.root / "d.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    write_card(ws, "open", "d.jsonl", data_extra=", id_field: id, url_field: url")
    assert run_cli("--workspace", str(ws.root), "run", "open")[0] == 0
    kept_ids = set(outputs.read_kind(ws.root / "runs" / "open", "kept").column("id").to_pylist())
    assert kept_ids == {"en0", "en1", "en2", "en3"}
    trail = ws.audit_path.read_text()

    rc, out, err = run_cli("--workspace", str(ws.root), "takedown", "add", "--source", "open",
                           "--url-prefix", "https://example.org/old/", "--reason", "owner request",
                           "--dry-run")
    assert rc == 0, err
    assert "matches 2 kept document(s)" in out and "nothing was filed" in out
    assert ws.audit_path.read_text() == trail and not list(ws.takedowns_dir.glob("*.yaml"))

    assert run_cli("--workspace", str(ws.root), "takedown", "add", "--source", "open", "--id", "en1",
                   "--reason", "author asked")[0] == 0
    assert run_cli("--workspace", str(ws.root), "takedown", "add", "--source", "open",
                   "--url-prefix", "https://example.org/old/", "--reason", "owner request")[0] == 0
    rc, out, _ = run_cli("--workspace", str(ws.root), "takedown", "list", "--source", "open")
    assert rc == 0 and "id en1" in out and "url prefix https://example.org/old/" in out

    rc, _, err = run_cli("--workspace", str(ws.root), "publish", "open", "--out", str(tmp_path / "pub"))
    assert rc == 0, err
    published = set(outputs.read_kind(tmp_path / "pub", "kept").column("id").to_pylist())
    assert published == {"en0"}  # en1 by id, en2 and en3 by URL prefix
    record = json.loads((tmp_path / "pub" / "takedowns.json").read_text())
    assert record["documents_removed"] == 3
    assert sorted(t["documents_removed"] for t in record["takedowns"]) == [1, 2]
    card = (tmp_path / "pub" / "README.md").read_text()
    assert "3 document(s) removed before publication" in card and "owner request" in card
    # the run itself is untouched: only what leaves it is filtered
    assert set(outputs.read_kind(ws.root / "runs" / "open", "kept").column("id").to_pylist()) == kept_ids
    rc, _, err = run_cli("--workspace", str(ws.root), "governance", "verify")
    assert rc == 0, err


def test_publish_without_takedowns_copies_the_files_byte_for_byte(ws, run_cli, tmp_path):
    docs = [{"id": f"en{i}", "text": t} for i, t in enumerate(udhr_paragraphs("en", 3))]
    (ws.root / "d.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    write_card(ws, "open", "d.jsonl", data_extra=", id_field: id")
    assert run_cli("--workspace", str(ws.root), "run", "open")[0] == 0
    assert run_cli("--workspace", str(ws.root), "publish", "open", "--out", str(tmp_path / "pub"))[0] == 0
    for src in sorted((ws.root / "runs" / "open" / "kept").glob("*.parquet")):
        assert (tmp_path / "pub" / "kept" / src.name).read_bytes() == src.read_bytes()
    record = json.loads((tmp_path / "pub" / "takedowns.json").read_text())
    assert record == {"source": "open", "documents_removed": 0, "takedowns": []}
    assert "No takedown request concerns this source." in (tmp_path / "pub" / "README.md").read_text()


def test_takedown_dry_run_needs_a_run(ws, run_cli):
    (ws.root / "d.jsonl").write_text(json.dumps({"text": "x"}) + "\n")
    write_card(ws, "open", "d.jsonl")
    rc, _, err = run_cli("--workspace", str(ws.root), "takedown", "add", "--source", "open", "--id", "x",
                         "--reason", "r", "--dry-run")
    assert rc == 2 and "no finished run" in err and "Traceback" not in err
