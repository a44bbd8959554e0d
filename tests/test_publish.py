from __future__ import annotations

import json

import yaml

from roots.governance import permissions
from roots.io import outputs
from tests.conftest import udhr_paragraphs, write_card


def test_publish_refuses_without_release_clearance_then_loads(ws, run_cli, tmp_path):
    docs = [{"id": f"en{i}", "text": t} for i, t in enumerate(udhr_paragraphs("en", 3))]
    (ws.root / "d.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    write_card(ws, "press", "d.jsonl", data_extra=", id_field: id")
    card = ws.sources_dir / "press.yaml"
    card.write_text(card.read_text().replace("license: CC0-1.0", "license: proprietary"))
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
